"""The one place that mutates an order book.

`L2Book` holds price levels (Kraken, Gemini, Coinbase); `L3Book` holds individual orders (KuMEX level 3)
and offers the same best-first `levels(side)` view. Prices and sizes are `Decimal`, exact as the venue
wrote them. Each side is a `SortedDict`, bids keyed by the negated price, so that on both sides the best
level is the first key: `best()` is `peekitem(0)` and a walk is a plain forward iteration, so reading the
top of the book never costs work that grows with the book.

`check()` asserts every invariant; tests call it after every mutation (the sortedcontainers habit).
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import Iterable, Iterator

from sortedcontainers import SortedDict

Level = tuple[Decimal, Decimal]
"""(price, size), as read from a book side, best first."""


class Side(str, Enum):
    BID = "bid"
    ASK = "ask"

    @property
    def opposite(self) -> "Side":
        return Side.ASK if self is Side.BID else Side.BID


def _sort_key(side: Side, price: Decimal) -> Decimal:
    """Bids are stored under -price so that the best level of either side is the first key."""
    return -price if side is Side.BID else price


class L2Book:
    """Aggregated price levels. `apply` with size 0 deletes; deleting an absent level is ignored."""

    __slots__ = ("_sides",)

    def __init__(self) -> None:
        self._sides: dict[Side, SortedDict] = {Side.BID: SortedDict(), Side.ASK: SortedDict()}

    def apply(self, side: Side, price: Decimal, size: Decimal) -> None:
        levels = self._sides[side]
        key = -price if side is Side.BID else price
        if size:
            levels[key] = size
        else:
            levels.pop(key, None)

    def replace(self, bids: Iterable[Level], asks: Iterable[Level]) -> None:
        """Load a snapshot: the old book is discarded, never merged (no ghost levels)."""
        self._sides[Side.BID] = SortedDict((-price, size) for price, size in bids if size)
        self._sides[Side.ASK] = SortedDict((price, size) for price, size in asks if size)

    def clear(self) -> None:
        for levels in self._sides.values():
            levels.clear()

    def truncate(self, depth: int) -> None:
        """Drop levels beyond `depth`: venues with a depth limit never delete what falls out of it."""
        for levels in self._sides.values():
            while len(levels) > depth:
                levels.popitem()

    def best(self, side: Side) -> Level | None:
        levels = self._sides[side]
        if not levels:
            return None
        key, size = levels.peekitem(0)
        return (-key if side is Side.BID else key), size

    def levels(self, side: Side) -> Iterator[Level]:
        """Best first, lazily: a walk that stops early costs only what it consumed."""
        levels = self._sides[side]
        if side is Side.BID:
            return ((-key, levels[key]) for key in levels)
        return iter(levels.items())

    def top(self, side: Side, count: int) -> list[Level]:
        out = []
        for level in self.levels(side):
            if len(out) == count:
                break
            out.append(level)
        return out

    def depth(self, side: Side) -> int:
        return len(self._sides[side])

    def size_at(self, side: Side, price: Decimal) -> Decimal | None:
        return self._sides[side].get(_sort_key(side, price))

    def crossed(self) -> bool:
        bid, ask = self.best(Side.BID), self.best(Side.ASK)
        return bid is not None and ask is not None and bid[0] >= ask[0]

    def as_dict(self) -> dict[str, list[list[str]]]:
        """The whole book as strings, best first: for comparing books exactly in tests and reports."""
        return {side.value: [[str(p), str(s)] for p, s in self.levels(side)] for side in Side}

    def check(self) -> None:
        for side, levels in self._sides.items():
            levels._check()
            for key, size in levels.items():
                assert isinstance(key, Decimal) and isinstance(size, Decimal), (side, key, size)
                assert size > 0, f"{side.value} level {key} has size {size}"
                price = -key if side is Side.BID else key
                assert price > 0, f"{side.value} price {price} is not positive"


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
    appends. Level totals are kept up to date on every change so `levels()` costs nothing extra.
    """

    __slots__ = ("_orders", "_sides")

    def __init__(self) -> None:
        self._orders: dict[str, Order] = {}
        self._sides: dict[Side, SortedDict] = {Side.BID: SortedDict(), Side.ASK: SortedDict()}

    def __len__(self) -> int:
        return len(self._orders)

    def __contains__(self, order_id: str) -> bool:
        return order_id in self._orders

    def clear(self) -> None:
        self._orders.clear()
        for levels in self._sides.values():
            levels.clear()

    def add(self, order_id: str, side: Side, price: Decimal, size: Decimal) -> None:
        """Append an order at the back of its price's queue."""
        if order_id in self._orders:
            raise ValueError(f"order {order_id} is already on the book")
        if size <= 0 or price <= 0:
            raise ValueError(f"order {order_id}: price {price} and size {size} must be positive")
        order = Order(order_id, side, price, size)
        key = _sort_key(side, price)
        levels = self._sides[side]
        level = levels.get(key)
        if level is None:
            level = levels[key] = _OrderLevel()
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
        level = self._sides[order.side][_sort_key(order.side, order.price)]
        level.total += size - order.size
        order.size = size
        return True

    def remove(self, order_id: str) -> bool:
        """Take an order off the book; False when it was not there (takers, rejected orders)."""
        order = self._orders.pop(order_id, None)
        if order is None:
            return False
        levels = self._sides[order.side]
        key = _sort_key(order.side, order.price)
        level = levels[key]
        del level.orders[order_id]
        level.total -= order.size
        if not level.orders:
            del levels[key]
        return True

    def order(self, order_id: str) -> Order | None:
        return self._orders.get(order_id)

    def best(self, side: Side) -> Level | None:
        levels = self._sides[side]
        if not levels:
            return None
        key, level = levels.peekitem(0)
        return (-key if side is Side.BID else key), level.total

    def levels(self, side: Side) -> Iterator[Level]:
        """Aggregated (price, total size) best first, lazily."""
        levels = self._sides[side]
        if side is Side.BID:
            return ((-key, levels[key].total) for key in levels)
        return ((key, level.total) for key, level in levels.items())

    def orders_at(self, side: Side, price: Decimal) -> list[Order]:
        level = self._sides[side].get(_sort_key(side, price))
        return list(level.orders.values()) if level else []

    def depth(self, side: Side) -> int:
        return len(self._sides[side])

    def crossed(self) -> bool:
        bid, ask = self.best(Side.BID), self.best(Side.ASK)
        return bid is not None and ask is not None and bid[0] >= ask[0]

    def check(self) -> None:
        seen = 0
        for side, levels in self._sides.items():
            levels._check()
            for key, level in levels.items():
                price = -key if side is Side.BID else key
                assert level.orders, f"{side.value} level {price} is empty but kept"
                assert level.total == sum(o.size for o in level.orders.values()), f"total at {price}"
                for order_id, order in level.orders.items():
                    assert self._orders.get(order_id) is order, f"index disagrees on {order_id}"
                    assert order.side is side and order.price == price and order.size > 0, order
                    seen += 1
        assert seen == len(self._orders), "index holds orders that no level holds"
