"""Numbers as people and machines read them: fixed scale, never an exponent, time in UTC.

Computation stays exact (`Decimal` from the venues' text); rounding happens only here, when a number is
shown or written. Every scale is fixed per kind of number so that a column (or a JSON field) always has
the same number of decimals:

- sizes (base units): 8 decimals (the satoshi);
- quote amounts (notional, fee, net): 8 decimals in JSON, cents for people;
- basis points and percentages: 2 decimals;
- prices: the venue's tick (`price_scale`), at least cents.
"""
from __future__ import annotations

import time
from decimal import ROUND_HALF_EVEN, Decimal
from itertools import islice
from typing import Iterable

from data_manager.book import Level

SIZE_SCALE = 8
AMOUNT_SCALE = 8
BPS_SCALE = 2
MIN_PRICE_SCALE = 2
MAX_PRICE_SCALE = 8
TICK_SAMPLE = 20
"""Levels read from the top of each side to learn a book's tick (its prices' decimals)."""
BPS = Decimal(10_000)

_QUANTA = {scale: Decimal(1).scaleb(-scale) for scale in range(0, MAX_PRICE_SCALE + 1)}


def fixed(value: Decimal | None, scale: int) -> str | None:
    """`value` rounded half-even to `scale` decimals, as plain digits (None stays None).

    `format(..., "f")` never writes an exponent, whatever the Decimal's own exponent (1E-8, 0E-8)."""
    if value is None:
        return None
    rounded = value.quantize(_QUANTA[scale], ROUND_HALF_EVEN)
    if not rounded:  # -0.00 reads as a sign error
        rounded = abs(rounded)
    return f"{rounded:.{scale}f}"


def grouped(value: Decimal | None, scale: int, missing: str = "n/a") -> str:
    """For people: thousands separators, `scale` decimals (59,999.90)."""
    if value is None:
        return missing
    rounded = value.quantize(_QUANTA[scale], ROUND_HALF_EVEN)
    if not rounded:
        rounded = abs(rounded)
    return f"{rounded:,.{scale}f}"


def signed(value: Decimal | None, scale: int = BPS_SCALE, missing: str = "n/a") -> str:
    """A difference for people: +1.25 / -0.50 (a zero has no sign)."""
    if value is None:
        return missing
    text = grouped(value, scale)
    return text if text.startswith("-") or not value.quantize(_QUANTA[scale]) else "+" + text


def plain(value: Decimal) -> str:
    """A number as the user wrote it, without trailing zeros or an exponent (1E+1 -> 10, 1.50 -> 1.5)."""
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def decimals(price: Decimal) -> int:
    exponent = price.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def price_scale(*sides: Iterable[Level]) -> int:
    """The book's tick, as decimals: the most decimals among the top levels of each side, at least
    cents, at most 8. Read from the venue's own prices (as they came off the wire), so Kraken's BTC-USD
    prints at 0.1 -> cents, Coinbase's at 0.01, an ETH-BTC book at its 5 decimals."""
    found = MIN_PRICE_SCALE
    for side in sides:
        for price, _ in islice(side, TICK_SAMPLE):
            found = max(found, decimals(price))
    return min(found, MAX_PRICE_SCALE)


def bps_worse(action_is_buy: bool, price: Decimal | None, reference: Decimal | None) -> Decimal | None:
    """How much worse than `reference` a fill at `price` is, in basis points: paying more on a buy,
    receiving less on a sell (negative: better than the reference)."""
    if price is None or reference is None or not reference:
        return None
    difference = price - reference if action_is_buy else reference - price
    return difference / reference * BPS


def iso_utc(epoch: float | None) -> str | None:
    """ISO 8601 in UTC with milliseconds: 2026-12-01T21:10:00.123Z."""
    if epoch is None:
        return None
    millis = epoch_ms(epoch)
    seconds, ms = divmod(millis, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{ms:03d}Z"


def epoch_ms(epoch: float | None) -> int | None:
    return None if epoch is None else int(round(epoch * 1000))


def clock(epoch: float) -> str:
    """HH:MM:SS UTC, for a person."""
    return time.strftime("%H:%M:%S UTC", time.gmtime(epoch))


def duration(seconds: float) -> str:
    """A short human duration: 850 ms, 4.2 s, 3 min 5 s, 2 h 10 min."""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"
