"""Walking a book for a size: what a market order of N BTC would get, level by level.

Pure functions over best-first `(price, size)` iterators, so a walk costs only the levels it consumes,
whatever the book's size. "Buy eats asks, sell eats bids" is written once, in `consumed_side`.
The merged walk is a lazy k-way merge (a heap of each venue's next level) of the venues' already-sorted
sides: it never concatenates or re-sorts whole books, and every merged fill keeps its venue, so the
merged answer is also the allocation of the order across venues.

A walk is on the hot path of every answer (up to thousands of levels), so it does only what it must per
level: append the level as the book gave it, add its size, compare. `Fill` objects, the notional and the
partial last level are made once, at the end or when read.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from enum import Enum
from heapq import heapify, heappop, heapreplace, merge
from itertools import islice, starmap, tee
from operator import itemgetter, mul
from typing import Iterable, Iterator, Mapping

from data_manager.book import Level, Side

try:  # public from Python 3.14; before, the same C functions that heapq.merge(reverse=True) uses
    from heapq import heapify_max, heappop_max, heapreplace_max  # type: ignore[attr-defined]
except ImportError:
    from heapq import _heapify_max as heapify_max  # type: ignore[attr-defined]
    from heapq import _heappop_max as heappop_max  # type: ignore[attr-defined]
    from heapq import _heapreplace_max as heapreplace_max  # type: ignore[attr-defined]

BPS = Decimal(10_000)
SATOSHI = Decimal("0.00000001")
"""Sizes found by a walk for an amount of the quote currency are rounded down to this."""
_ZERO = Decimal(0)


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


@dataclass(frozen=True, slots=True)
class Depletion:
    """The result of walking one book (or the merged book) for `requested` units.

    A walk touches up to thousands of levels, and building one frozen `Fill` per level would cost more
    than the walk itself, so the walk keeps the consumed levels as the book gave them (`levels`: price,
    size taken; `venues`: whose each level is) and `fills` are built only when read (rendering).
    """

    venue: str
    action: Action
    requested: Decimal
    levels: tuple[Level, ...]
    venues: tuple[str, ...]
    filled: Decimal

    @classmethod
    def of_fills(cls, venue: str, action: Action, requested: Decimal, fills: Iterable[Fill]) -> "Depletion":
        fills = tuple(fills)
        return cls(venue, action, requested, tuple((f.price, f.size) for f in fills),
                   tuple(f.venue for f in fills), sum((f.size for f in fills), _ZERO))

    @property
    def fills(self) -> tuple[Fill, ...]:
        return tuple(Fill(venue, price, size) for venue, (price, size) in zip(self.venues, self.levels))

    @property
    def notional(self) -> Decimal:
        return sum(starmap(mul, self.levels), _ZERO)

    @property
    def side(self) -> Side:
        return consumed_side(self.action)

    @property
    def vwap(self) -> Decimal | None:
        """None when nothing filled: an empty book has no price, not a division by zero."""
        filled = self.filled
        return self.notional / filled if filled else None

    @property
    def best_price(self) -> Decimal | None:
        return self.levels[0][0] if self.levels else None

    @property
    def worst_price(self) -> Decimal | None:
        return self.levels[-1][0] if self.levels else None

    @property
    def shortfall(self) -> Decimal:
        return self.requested - self.filled

    @property
    def complete(self) -> bool:
        return self.shortfall == 0

    @property
    def levels_consumed(self) -> int:
        return len(self.levels)

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


def _check_size(size: Decimal) -> None:
    if size <= 0:
        raise ValueError(f"size must be positive, got {size}")


def deplete_liquidity(venue: str, action: Action, size: Decimal, levels: Iterable[Level]) -> Depletion:
    """Walk one venue's side (best first) until `size` is filled or the side runs out."""
    _check_size(size)
    taken: list[Level] = []
    take = taken.append
    filled = size - size  # see _complete
    for level in levels:
        before = filled
        filled += level[1]
        take(level)
        if filled >= size:
            filled = _complete(taken, size, before)  # trims the last level: before the tuple is made
            return Depletion(venue, action, size, tuple(taken), (venue,) * len(taken), filled)
    return Depletion(venue, action, size, tuple(taken), (venue,) * len(taken), _total(taken))


def _complete(taken: list[Level], size: Decimal, before: Decimal) -> Decimal:
    """The last level taken completes the order: only `size - before` of it is taken. Returns `filled`.

    Exact decimals keep their operands' exponent (2.5 - 1.50 = 1.00), so the numbers printed must come
    from the same operations as the plain walk's (remaining = size, minus each level; filled = 0, plus
    each take). `before`, the sum of the levels before, started at a zero with `size`'s exponent, so
    `size - before` is that walk's remaining, and 0 + (before + remaining) its filled."""
    price, _ = taken[-1]
    remaining = size - before
    taken[-1] = (price, remaining)
    return _ZERO + (before + remaining)


def _total(taken: list[Level]) -> Decimal:
    """`filled` when the side ran out: 0 plus every level, in order (as the plain walk sums)."""
    return sum(map(itemgetter(1), taken), _ZERO)


def deplete_merged(action: Action, size: Decimal, sides: Mapping[str, Iterable[Level]], name: str = "merged") -> Depletion:
    """Walk the cross-venue book: the best level of any venue first, until `size` is filled.

    A lazy k-way merge with the walk folded in (ties keep the order of `sides`, so the answer is
    deterministic): a heap holds each venue's next level as [price, venue's position, level, venue, iterator]
    (a max-heap for the bids, with the position negated), so a step is one C-level heap operation and
    nothing is tagged."""
    _check_size(size)
    if consumed_side(action) is Side.BID:  # best = highest: a max-heap, ties to the first venue
        make_heap, pop, replace, tie = heapify_max, heappop_max, heapreplace_max, -1
    else:
        make_heap, pop, replace, tie = heapify, heappop, heapreplace, 1
    heap = []
    for order, (venue, levels) in enumerate(sides.items()):
        iterator = iter(levels)
        level = next(iterator, None)
        if level is not None:
            heap.append([level[0], tie * order, level, venue, iterator])
    make_heap(heap)
    taken: list[Level] = []
    venues: list[str] = []
    take, credit = taken.append, venues.append
    filled = size - size  # see _complete
    while heap:
        entry = heap[0]
        level = entry[2]
        take(level)
        credit(entry[3])
        before = filled
        filled += level[1]
        if filled >= size:
            filled = _complete(taken, size, before)  # trims the last level: before the tuple is made
            return Depletion(name, action, size, tuple(taken), tuple(venues), filled)
        level = next(entry[4], None)  # the venue's next level takes its place in the heap
        if level is None:
            pop(heap)
        else:
            entry[0] = level[0]
            entry[2] = level
            replace(heap, entry)
    return Depletion(name, action, size, tuple(taken), tuple(venues), _total(taken))


# --- fee-aware and quote-sized walks ---------------------------------------------------------------
def adjusted(levels: Iterable[Level], factor: Decimal) -> Iterator[Level]:
    """Levels at what a taker really pays or receives per unit: price x factor (1 + fee on a buy,
    1 - fee on a sell), lazily."""
    return ((price * factor, size) for price, size in levels)


def deplete_after_fees(action: Action, size: Decimal, sides: Mapping[str, Iterable[Level]],
                       factors: Mapping[str, Decimal], name: str = "merged") -> Depletion:
    """The merged walk ordered by fee-adjusted price: the cheapest split of `size` across venues after
    fees, given the books. The fills keep each venue's own (gross) prices.

    The heap walk runs over the adjusted prices; each venue's side is `tee`d so that the k-th fill of a
    venue takes the gross price of that venue's k-th level (a venue's fills come best first, in its own
    order), which costs only the levels consumed and needs no division to undo the fee."""
    gross: dict[str, Iterator[Level]] = {}
    walked: dict[str, Iterator[Level]] = {}
    for venue, levels in sides.items():
        gross[venue], mine = tee(levels)
        walked[venue] = adjusted(mine, factors[venue])
    walk = deplete_merged(action, size, walked, name)
    levels = tuple((next(gross[venue])[0], taken) for venue, (_, taken) in zip(walk.venues, walk.levels))
    return Depletion(name, action, size, levels, walk.venues, walk.filled)


def size_for_quote(amount: Decimal, levels: Iterable[Level]) -> tuple[Decimal, bool]:
    """The base size whose (fee-adjusted) value reaches `amount` of the quote currency, walking
    `levels` best first; (size, complete). The last level is taken in part, rounded down to the
    satoshi, so the value never exceeds `amount` (it falls short by less than one satoshi's worth).
    `complete` is False when the side ran out first."""
    filled = value = _ZERO
    for price, available in levels:
        worth = price * available
        if value + worth >= amount:
            part = ((amount - value) / price).quantize(SATOSHI, rounding=ROUND_DOWN)
            return filled + part, True
        value += worth
        filled += available
    return filled, False


def merged_levels(side: Side, sides: Iterable[Iterable[Level]]) -> Iterator[Level]:
    """Several venues' sides of one kind as one best-first stream (lazy), for walks that need no venue
    labels (a quote-sized merged walk, depth bands of the merged book)."""
    return merge(*sides, key=itemgetter(0), reverse=side is Side.BID)


def capped(levels: Iterable[Level], cap: Decimal | None) -> Iterator[Level]:
    """A side holding at most `cap` in all (None: no cap): a venue that must not take more."""
    if cap is None:
        yield from levels
        return
    left = cap
    for price, available in levels:
        if left <= 0:
            return
        take = available if available < left else left
        left -= take
        yield price, take


def after_walk(levels: Iterable[Level], consumed: int, last_taken: Decimal | None) -> tuple[Decimal | None, Decimal | None]:
    """(best, last_full): where the side's best price would be after a walk took `consumed` levels, the
    last one only `last_taken` of it (that level's price if some of it is left, else the next level's;
    None: the walk emptied the side), and the full size of that last level. Reads `consumed + 1` levels."""
    if consumed == 0 or last_taken is None:
        first = next(iter(levels), None)
        return (first[0] if first else None), None
    window = list(islice(levels, consumed - 1, consumed + 1))
    if not window:
        return None, None
    last = window[0]
    if last_taken < last[1]:
        return last[0], last[1]
    return (window[1][0] if len(window) > 1 else None), last[1]
