"""Liquidity near the mid: how much rests within x % of it on each side (depth bands), and how much a
market order can take without its last fill going more than X bps past the mid (`--limit-bps`).

Both read one side best first and stop at the widest bound, so they cost only the levels inside it.
Prices are the books' own (before fees): a band says what rests there, not what it costs after fees.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Iterable, Sequence

from data_manager.book import Level, Side

DEFAULT_BANDS = (Decimal("0.1"), Decimal("0.5"), Decimal("1"), Decimal("2"), Decimal("5"))
"""Percent of mid; config key `depth_bands` (when the lead adds it) or `--bands` override them."""
_ZERO = Decimal(0)
_HUNDRED = Decimal(100)
_BPS = Decimal(10_000)


@dataclass(frozen=True)
class Within:
    """What one side holds from its best level to a price bound."""

    size: Decimal = _ZERO
    notional: Decimal = _ZERO
    levels: int = 0
    worst: Decimal | None = None       # the last price inside the bound


def bound(side: Side, mid: Decimal, fraction: Decimal) -> Decimal:
    """The price `fraction` of mid away from it, on the side's far side (below for bids)."""
    return mid * (1 - fraction) if side is Side.BID else mid * (1 + fraction)


def _inside(side: Side, price: Decimal, limit: Decimal) -> bool:
    return price >= limit if side is Side.BID else price <= limit


def bands(levels: Iterable[Level], side: Side, mid: Decimal, percents: Sequence[Decimal]) -> list[Within]:
    """For each band (percent of mid, any order), what rests between the best level and the band's
    bound. One pass: a level inside a band is inside every wider band, so each level is credited to
    the narrowest band that holds it and the totals are summed outwards at the end."""
    order = sorted(range(len(percents)), key=lambda i: percents[i])
    limits = [bound(side, mid, percents[i] / _HUNDRED) for i in order]
    sizes = [_ZERO] * len(limits)
    notionals = [_ZERO] * len(limits)
    counts = [0] * len(limits)
    worst: list[Decimal | None] = [None] * len(limits)
    band = 0
    for price, size in levels:
        while band < len(limits) and not _inside(side, price, limits[band]):
            band += 1
        if band == len(limits):
            break
        sizes[band] += size
        notionals[band] += price * size
        counts[band] += 1
        worst[band] = price
    out: list[Within] = []
    running = Within()
    for i in range(len(limits)):
        running = Within(running.size + sizes[i], running.notional + notionals[i], running.levels + counts[i],
                         worst[i] if worst[i] is not None else running.worst)
        out.append(running)
    result: list[Within] = [Within()] * len(percents)
    for rank, index in enumerate(order):
        result[index] = out[rank]
    return result


def within_bps(levels: Iterable[Level], side: Side, mid: Decimal, limit_bps: Decimal) -> Within:
    """What a market order can take before a fill would be more than `limit_bps` past `mid`."""
    return bands(levels, side, mid, [limit_bps / _BPS * _HUNDRED])[0]
