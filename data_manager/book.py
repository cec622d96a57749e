"""The one place that mutates an order book.

`L2Book` holds price levels (Kraken, Gemini, Coinbase, KuMEX level 2); `L3Book` holds individual orders
(Bitstamp, KuMEX level 3)
and offers the same best-first `levels(side)` view. Prices and sizes are `Decimal`, exact as the venue
wrote them. Each side keeps its levels in price order (`SortedLevels` for L2, a `SortedDict` of price
levels for L3), bids read from the high end and asks from the low end, so reading the top of the book
never costs work that grows with the book, and a walk costs only the levels it consumes.

`check()` asserts every invariant; tests call it after every mutation (the sortedcontainers habit).
"""
from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from itertools import chain, islice
from operator import itemgetter, lt
from typing import Iterable, Iterator

from sortedcontainers import SortedDict

Level = tuple[Decimal, Decimal]
"""(price, size), as read from a book side, best first."""


class Side(str, Enum):
    BID = "bid"
    ASK = "ask"


_BID = Side.BID
"""For the hot paths: reading an Enum member from its class costs ten times a global lookup (3.11)."""


class L2Book:
    """Aggregated price levels. `apply` with size 0 deletes; deleting an absent level is ignored.

    Each side is a `SortedLevels`: the `(price, size)` tuples readers get, kept in price order, so a walk
    is a C-level iteration with no lookup per level, the best level is an index away, and a change costs
    two bisects (no hashing: a Decimal computes its hash on first use, and that costs several lookups).
    Bids are read from the high end, asks from the low end.
    """

    __slots__ = ("_bids", "_asks")

    def __init__(self) -> None:
        self._bids = SortedLevels()
        self._asks = SortedLevels()

    def apply(self, side: Side, price: Decimal, size: Decimal) -> None:
        if side is _BID:
            self.update(((price, size),), ())
        else:
            self.update((), ((price, size),))

    def update(self, bids: Iterable[Level], asks: Iterable[Level], depth: int | None = None) -> None:
        """`apply` every level of one message in the order sent (the last change of a price wins), then
        keep at most `depth` levels per side if given (`truncate`). The two sides never share a level,
        so applying all bids before all asks changes nothing. The `(price, size)` tuples are kept as
        given (they are immutable)."""
        if bids:
            _apply_all(self._bids, bids)
        if asks:
            _apply_all(self._asks, asks)
        if depth is not None:
            self.truncate(depth)

    def replace(self, bids: Iterable[Level], asks: Iterable[Level]) -> None:
        """Load a snapshot: the old book is discarded, never merged (no ghost levels). The `(price, size)`
        tuples are kept as given; size 0 rows are left out."""
        self._bids = SortedLevels(filter(itemgetter(1), bids))
        self._asks = SortedLevels(filter(itemgetter(1), asks))

    def clear(self) -> None:
        self._bids = SortedLevels()
        self._asks = SortedLevels()

    def truncate(self, depth: int) -> None:
        """Drop levels beyond `depth`: venues with a depth limit never delete what falls out of it."""
        while len(self._bids) > depth:
            self._bids.pop_lowest()
        while len(self._asks) > depth:
            self._asks.pop_highest()

    def best(self, side: Side) -> Level | None:
        if side is _BID:  # read after every message: the chunks directly, no method calls
            chunks = self._bids._levels
            return chunks[-1][-1] if chunks else None
        chunks = self._asks._levels
        return chunks[0][0] if chunks else None

    def levels(self, side: Side) -> Iterator[Level]:
        """Best first, lazily: a walk that stops early costs only what it consumed."""
        return self._bids.descending() if side is _BID else self._asks.ascending()

    def top(self, side: Side, count: int) -> list[Level]:
        return list(islice(self.levels(side), count))

    def depth(self, side: Side) -> int:
        return len(self._bids if side is _BID else self._asks)

    def size_at(self, side: Side, price: Decimal) -> Decimal | None:
        level = (self._bids if side is _BID else self._asks).get(price)
        return None if level is None else level[1]

    def crossed(self) -> bool:
        bids, asks = self._bids._levels, self._asks._levels  # asked after every message, as best()
        return bool(bids) and bool(asks) and bids[-1][-1][0] >= asks[0][0][0]

    def as_dict(self) -> dict[str, list[list[str]]]:
        """The whole book as strings, best first: for comparing books exactly in tests and reports."""
        return {side.value: [[str(p), str(s)] for p, s in self.levels(side)] for side in Side}

    def check(self) -> None:
        for side, levels in ((Side.BID, self._bids), (Side.ASK, self._asks)):
            levels.check()
            for price, size in levels.ascending():
                assert isinstance(price, Decimal) and isinstance(size, Decimal), (side, price, size)
                assert size > 0, f"{side.value} level {price} has size {size}"
                assert price > 0, f"{side.value} price {price} is not positive"


def _apply_all(side: SortedLevels, levels: Iterable[Level]) -> None:
    """Size 0 deletes (an absent level: nothing to do), any other size sets the level."""
    for level in levels:
        if level[1]:
            side.set(level)
        else:
            side.delete(level[0])


_PRICE = itemgetter(0)


def _last_of_each_price(ordered: list[Level]) -> list[Level]:
    kept: list[Level] = []
    for level in ordered:
        if kept and kept[-1][0] == level[0]:
            kept[-1] = level
        else:
            kept.append(level)
    return kept


class SortedLevels:
    """`(price, size)` levels with distinct prices, in ascending price order, for one side of a book.

    The sortedcontainers layout without its per-key dict: a list of chunks, each a sorted list of prices
    (`_prices[c]`, what bisect compares) beside the matching levels (`_levels[c]`), and `_maxes[c]`, the
    last price of chunk c. Finding a price is a bisect over the chunks' maxes and one inside a chunk;
    an insert or delete moves at most one chunk's pointers (chunks are split at 2 * LOAD and joined to a
    neighbour below LOAD / 4), so no change costs work that grows with the book. Iterating is chaining
    the chunks of levels, in C.
    """

    LOAD = 500

    __slots__ = ("_prices", "_levels", "_maxes", "_count")

    def __init__(self, levels: Iterable[Level] = ()) -> None:
        """`levels` in any order (a snapshot's are sorted already: sorting them is one pass); for a
        repeated price the last one given wins."""
        ordered = sorted(levels, key=_PRICE)  # stable: of equal prices, the last given comes last
        prices = list(map(_PRICE, ordered))
        if not all(map(lt, prices, islice(prices, 1, None))):
            ordered = _last_of_each_price(ordered)
            prices = list(map(_PRICE, ordered))
        step = self.LOAD
        self._prices = [prices[i:i + step] for i in range(0, len(prices), step)]
        self._levels = [ordered[i:i + step] for i in range(0, len(ordered), step)]
        self._maxes = [chunk[-1] for chunk in self._prices]
        self._count = len(ordered)

    def __len__(self) -> int:
        return self._count

    def _find(self, price: Decimal) -> tuple[int, int] | None:
        """(chunk, index) of `price`, None if absent."""
        c = bisect_left(self._maxes, price)
        if c == len(self._maxes):
            return None
        prices = self._prices[c]
        i = bisect_left(prices, price)
        return (c, i) if prices[i] == price else None

    def get(self, price: Decimal) -> Level | None:
        found = self._find(price)
        return None if found is None else self._levels[found[0]][found[1]]

    def set(self, level: Level) -> None:
        """Put `level` in place of the level at its price, or insert it."""
        price = level[0]
        maxes = self._maxes
        c = bisect_left(maxes, price)
        if c == len(maxes):  # above every price: the end of the last chunk
            if not maxes:
                self._prices.append([price])
                self._levels.append([level])
                maxes.append(price)
                self._count = 1
                return
            c -= 1
            self._prices[c].append(price)
            self._levels[c].append(level)
            maxes[c] = price
        else:
            prices = self._prices[c]
            i = bisect_left(prices, price)
            if prices[i] == price:
                self._levels[c][i] = level
                return
            prices.insert(i, price)
            self._levels[c].insert(i, level)
        self._count += 1
        if len(self._prices[c]) > 2 * self.LOAD:
            self._split(c)

    def delete(self, price: Decimal) -> bool:
        """Remove the level at `price`; False if there is none."""
        maxes = self._maxes
        c = bisect_left(maxes, price)
        if c == len(maxes):
            return False
        prices = self._prices[c]
        i = bisect_left(prices, price)
        if prices[i] != price:
            return False
        del prices[i]
        del self._levels[c][i]
        self._count -= 1
        if len(prices) >= self.LOAD // 4 and i < len(prices):
            return True  # the usual case: the chunk keeps its size and its last price
        self._shrunk(c)
        return True

    def pop_lowest(self) -> Level:
        level = self._levels[0].pop(0)
        del self._prices[0][0]
        self._count -= 1
        self._shrunk(0)
        return level

    def pop_highest(self) -> Level:
        level = self._levels[-1].pop()
        self._prices[-1].pop()
        self._count -= 1
        self._shrunk(len(self._maxes) - 1)
        return level

    def lowest(self) -> Level | None:
        return self._levels[0][0] if self._levels else None

    def highest(self) -> Level | None:
        return self._levels[-1][-1] if self._levels else None

    def ascending(self) -> Iterator[Level]:
        return chain.from_iterable(self._levels)

    def descending(self) -> Iterator[Level]:
        return chain.from_iterable(map(reversed, reversed(self._levels)))

    def _split(self, c: int) -> None:
        half = len(self._prices[c]) // 2
        for chunks in (self._prices, self._levels):
            chunk = chunks[c]
            chunks[c:c + 1] = [chunk[:half], chunk[half:]]
        self._maxes[c:c + 1] = [self._prices[c][-1], self._prices[c + 1][-1]]

    def _shrunk(self, c: int) -> None:
        """Chunk c lost a level: drop it if empty, join it to a neighbour if small, fix its max."""
        prices = self._prices[c]
        if len(prices) >= self.LOAD // 4 or len(self._maxes) == 1:
            if prices:
                self._maxes[c] = prices[-1]
            else:  # the only chunk, now empty
                self._prices.clear()
                self._levels.clear()
                self._maxes.clear()
            return
        if c == len(self._maxes) - 1:  # join the last chunk to the one before it
            c -= 1
        for chunks in (self._prices, self._levels):
            chunks[c:c + 2] = [chunks[c] + chunks[c + 1]]
        self._maxes[c:c + 2] = [self._prices[c][-1]]
        if len(self._prices[c]) > 2 * self.LOAD:
            self._split(c)

    def check(self) -> None:
        assert len(self._prices) == len(self._levels) == len(self._maxes)
        assert self._count == sum(map(len, self._prices))
        previous = None
        for prices, levels, top in zip(self._prices, self._levels, self._maxes):
            assert prices and len(prices) == len(levels) <= 2 * self.LOAD, "chunk size"
            assert top == prices[-1], "chunk max"
            for price, level in zip(prices, levels):
                assert type(level) is tuple and len(level) == 2 and level[0] == price, (price, level)
                assert previous is None or previous < price, f"prices out of order at {price}"
                previous = price


@dataclass(slots=True)
class Order:
    order_id: str
    side: Side
    price: Decimal
    size: Decimal


class _OrderLevel:
    """Orders resting at one price, in time priority (dict order = arrival order), and their total."""

    __slots__ = ("orders", "total")

    def __init__(self) -> None:
        self.orders: dict[str, Order] = {}
        self.total = Decimal(0)


class L3Book:
    """Individual orders: an `order_id -> Order` index plus, per side, price -> orders in arrival order.

    A size change keeps an order's place in its queue (venues shrink orders in place); only `add`
    appends. Level totals are kept up to date on every change so `levels()` costs nothing extra. Both
    sides are keyed by the order's own price object, whose hash is computed once (bids are read from the
    high end, asks from the low end).
    """

    __slots__ = ("_orders", "_bids", "_asks")

    def __init__(self) -> None:
        self._orders: dict[str, Order] = {}
        self._bids: SortedDict = SortedDict()  # price -> _OrderLevel; best = last
        self._asks: SortedDict = SortedDict()  # price -> _OrderLevel; best = first

    def _side(self, side: Side) -> SortedDict:
        return self._bids if side is _BID else self._asks

    def __len__(self) -> int:
        return len(self._orders)

    def __contains__(self, order_id: str) -> bool:
        return order_id in self._orders

    def clear(self) -> None:
        self._orders.clear()
        self._bids.clear()
        self._asks.clear()

    def add(self, order_id: str, side: Side, price: Decimal, size: Decimal) -> None:
        """Append an order at the back of its price's queue."""
        if order_id in self._orders:
            raise ValueError(f"order {order_id} is already on the book")
        if size <= 0 or price <= 0:
            raise ValueError(f"order {order_id}: price {price} and size {size} must be positive")
        order = Order(order_id, side, price, size)
        levels = self._side(side)
        level = levels.get(price)
        if level is None:
            level = levels[price] = _OrderLevel()
        level.orders[order_id] = order
        level.total += size
        self._orders[order_id] = order

    def set_size(self, order_id: str, size: Decimal) -> bool:
        """New absolute size, keeping time priority; 0 removes. False when the order is unknown."""
        order = self._orders.get(order_id)
        if order is None:
            return False
        if size <= 0:
            return self.remove(order_id)
        level = self._side(order.side)[order.price]
        level.total += size - order.size
        order.size = size
        return True

    def remove(self, order_id: str) -> bool:
        """Take an order off the book; False when it was not there (takers, rejected orders)."""
        order = self._orders.pop(order_id, None)
        if order is None:
            return False
        levels = self._side(order.side)
        level = levels[order.price]
        del level.orders[order_id]
        level.total -= order.size
        if not level.orders:
            del levels[order.price]
        return True

    def order(self, order_id: str) -> Order | None:
        return self._orders.get(order_id)

    def best(self, side: Side) -> Level | None:
        levels = self._side(side)
        if not levels:
            return None
        price, level = levels.peekitem(-1 if side is _BID else 0)
        return price, level.total

    def levels(self, side: Side) -> Iterator[Level]:
        """Aggregated (price, total size) best first, lazily."""
        if side is _BID:
            levels = self._bids
            return ((price, levels[price].total) for price in reversed(levels))
        return ((price, level.total) for price, level in self._asks.items())

    def orders_at(self, side: Side, price: Decimal) -> list[Order]:
        level = self._side(side).get(price)
        return list(level.orders.values()) if level else []

    def depth(self, side: Side) -> int:
        return len(self._side(side))

    def crossed(self) -> bool:
        bids, asks = self._bids, self._asks
        return bool(bids) and bool(asks) and bids.peekitem(-1)[0] >= asks.peekitem(0)[0]

    def check(self) -> None:
        seen = 0
        for side in Side:
            levels = self._side(side)
            levels._check()
            for price, level in levels.items():
                assert level.orders, f"{side.value} level {price} is empty but kept"
                assert level.total == sum(o.size for o in level.orders.values()), f"total at {price}"
                for order_id, order in level.orders.items():
                    assert self._orders.get(order_id) is order, f"index disagrees on {order_id}"
                    assert order.side is side and order.price == price and order.size > 0, order
                    seen += 1
        assert seen == len(self._orders), "index holds orders that no level holds"
