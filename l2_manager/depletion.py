"""Walking a book for a size: what a market order of N BTC would get, level by level.

Pure functions over best-first `(price, size)` iterators, so a walk costs only the levels it consumes,
whatever the book's size. "Buy eats asks, sell eats bids" is written once, in `consumed_side`.
The merged walk is a lazy k-way merge (`heapq.merge`) of the venues' already-sorted sides: it never
concatenates or re-sorts whole books, and every merged fill keeps its venue, so the merged answer is
also the allocation of the order across venues.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import Iterable, Iterator, Mapping

from data_manager.book import Level, Side

BPS = Decimal(10_000)


class Action(str, Enum):
    BUY = "buy"
    SELL = "sell"


def consumed_side(action: Action) -> Side:
    """A buy takes liquidity from the asks, a sell from the bids."""
    return Side.ASK if action is Action.BUY else Side.BID


@dataclass(frozen=True, slots=True)
class Fill:
    venue: str
    price: Decimal
    size: Decimal


@dataclass(frozen=True, slots=True)
class FillStep:
    """One consumed level with the running totals a trader reads down the list."""

    fill: Fill
    cumulative: Decimal
    running_vwap: Decimal


@dataclass(frozen=True)
class Depletion:
    """The result of walking one book (or the merged book) for `requested` units."""

    venue: str
    action: Action
    requested: Decimal
    fills: tuple[Fill, ...]

    @property
    def side(self) -> Side:
        return consumed_side(self.action)

    @property
    def filled(self) -> Decimal:
        return sum((f.size for f in self.fills), Decimal(0))

    @property
    def notional(self) -> Decimal:
        return sum((f.price * f.size for f in self.fills), Decimal(0))

    @property
    def vwap(self) -> Decimal | None:
        """None when nothing filled: an empty book has no price, not a division by zero."""
        filled = self.filled
        return self.notional / filled if filled else None

    @property
    def best_price(self) -> Decimal | None:
        return self.fills[0].price if self.fills else None

    @property
    def worst_price(self) -> Decimal | None:
        return self.fills[-1].price if self.fills else None

    @property
    def shortfall(self) -> Decimal:
        return self.requested - self.filled

    @property
    def complete(self) -> bool:
        return self.shortfall == 0

    @property
    def levels_consumed(self) -> int:
        return len(self.fills)

    @property
    def slippage_bps(self) -> Decimal | None:
        """How much worse than the best price the average is, in basis points (>= 0)."""
        vwap, best = self.vwap, self.best_price
        if vwap is None or best is None:
            return None
        cost = vwap - best if self.action is Action.BUY else best - vwap
        return cost / best * BPS

    def steps(self) -> Iterator[FillStep]:
        cumulative = notional = Decimal(0)
        for fill in self.fills:
            cumulative += fill.size
            notional += fill.price * fill.size
            yield FillStep(fill, cumulative, notional / cumulative)

    def allocation(self) -> dict[str, Decimal]:
        """Size per venue, in the order venues first appear in the walk."""
        out: dict[str, Decimal] = {}
        for fill in self.fills:
            out[fill.venue] = out.get(fill.venue, Decimal(0)) + fill.size
        return out


def _walk(venue: str, action: Action, size: Decimal, levels: Iterable[tuple[str, Decimal, Decimal]]) -> Depletion:
    if size <= 0:
        raise ValueError(f"size must be positive, got {size}")
    fills = []
    remaining = size
    for level_venue, price, available in levels:
        take = available if available < remaining else remaining
        fills.append(Fill(level_venue, price, take))
        remaining -= take
        if not remaining:
            break
    return Depletion(venue, action, size, tuple(fills))


def deplete_liquidity(venue: str, action: Action, size: Decimal, levels: Iterable[Level]) -> Depletion:
    """Walk one venue's side (best first) until `size` is filled or the side runs out."""
    return _walk(venue, action, size, _tag(venue, levels))


def merged_levels(action: Action, sides: Mapping[str, Iterable[Level]]) -> Iterator[tuple[str, Decimal, Decimal]]:
    """All venues' levels of the consumed side, best first, lazily; each tagged with its venue.

    Ties at one price keep the order of `sides` (heapq.merge is stable), so the output is deterministic.
    """
    tagged = [_tag(venue, levels) for venue, levels in sides.items()]
    descending = consumed_side(action) is Side.BID
    return heapq.merge(*tagged, key=_price, reverse=descending)


def _tag(venue: str, levels: Iterable[Level]) -> Iterator[tuple[str, Decimal, Decimal]]:
    for price, size in levels:
        yield venue, price, size


def _price(level: tuple[str, Decimal, Decimal]) -> Decimal:
    return level[1]


def deplete_merged(action: Action, size: Decimal, sides: Mapping[str, Iterable[Level]], name: str = "merged") -> Depletion:
    """Walk the cross-venue book: the best level of any venue first, until `size` is filled."""
    return _walk(name, action, size, merged_levels(action, sides))
