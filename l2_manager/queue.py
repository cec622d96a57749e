"""The order-level (L3) view: which orders a market order hits, and where a limit order placed now
would stand in the queue, with an estimate of its time to fill.

Queue position is time priority at one price: every order already resting at that price is ahead of
a new one, and so is everything resting at better prices on the same side (a seller fills those first).
Sizes here are in the venue's own units (BTC on Bitstamp, contracts on KuMEX): the queue is the venue's.

The time to fill comes from the traded rate seen while the command watches the feed (`TradeFlow`):
- with `OrderEvent`s carrying a `filled` size (the processors that publish order events), the size
  takers filled against resting orders on our side, per second;
- otherwise from book changes: the size that left the front of the best queue on our side (a front
  order shrinking or disappearing), per second. Cancels at the front count as fills there, so this may
  overstate the rate; the output says which method was used.
Either way it assumes the rate holds and nothing new joins ahead.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable, Sequence

from data_manager.book import Side
from data_manager.feed import BookChanged, BookView, OrderEvent
from l2_manager.depletion import Action

_ZERO = Decimal(0)
_ONE = Decimal(1)
_SIDE_WORDS = {"bid": Side.BID, "buy": Side.BID, "ask": Side.ASK, "sell": Side.ASK}
"""OrderEvent.side is the venue's word for the side of the order the event is about."""


def orders_hit(orders: Sequence[Any], fraction: Decimal) -> list[tuple[Any, Decimal]]:
    """The orders a market order takes at one level, in time priority, with the size taken from each:
    all of them for a level taken whole; for a level taken in part (`fraction` of it), the first ones
    until that part is used up, the last of them in part."""
    if fraction >= _ONE:
        return [(order, order.size) for order in orders]
    left = sum((order.size for order in orders), _ZERO) * fraction
    out = []
    for order in orders:
        if left <= 0:
            break
        take = order.size if order.size < left else left
        out.append((order, take))
        left -= take
    return out


def resting_side(action: Action) -> Side:
    """A limit buy rests on the bids, a limit sell on the asks."""
    return Side.BID if action is Action.BUY else Side.ASK


def _better(side: Side, price: Decimal, than: Decimal) -> bool:
    return price > than if side is Side.BID else price < than


@dataclass(frozen=True)
class QueuePosition:
    action: Action
    price: Decimal
    size: Decimal
    unit: str
    crosses: bool                       # the price reaches the other side: it would trade at once
    opposite_best: Decimal | None
    orders_ahead: tuple[Any, ...]       # at the price, time priority (empty for an L2 book)
    ahead_at_price: Decimal
    better_levels: int
    ahead_better: Decimal               # resting at better prices on the same side
    order_level: bool                   # an L3 book: orders are known one by one

    @property
    def ahead(self) -> Decimal:
        return self.ahead_at_price + self.ahead_better


def queue_position(view: BookView, action: Action, price: Decimal, size: Decimal) -> QueuePosition:
    """Where a limit order of `size` at `price`, placed now, would stand on `view`'s book (native units)."""
    side = resting_side(action)
    opposite = view.best(Side.ASK if side is Side.BID else Side.BID)
    crosses = opposite is not None and (price >= opposite[0] if side is Side.BID else price <= opposite[0])
    levels = 0
    ahead_better = at_price = _ZERO
    for level_price, level_size in view.native_levels(side):
        if _better(side, level_price, price):
            ahead_better += level_size
            levels += 1
            continue
        if level_price == price:
            at_price = level_size
        break
    orders = tuple(view.orders_at(side, price)) if view.book_kind == "L3" else ()
    unit = "contracts" if view.instrument == "perpetual" else view.symbol.base
    return QueuePosition(action, price, size, unit, crosses, None if opposite is None else opposite[0], orders,
                         at_price, levels, ahead_better, view.book_kind == "L3")


class TradeFlow:
    """What takers consumed on one side of one feed while it was watched. Subscribe `on_action` to the
    data manager (`manager.subscribe`) for the sampling window."""

    def __init__(self, view: BookView, side: Side, clock: Callable[[], float]) -> None:
        self.view = view
        self.side = side
        self.clock = clock
        self.started = clock()
        self.event_fills = _ZERO
        self.events = 0
        self.front_consumed = _ZERO
        self.changes = 0
        self._front = self._read_front()

    def on_action(self, action: object) -> None:
        if type(action) is OrderEvent and action.key == self.view.key:
            if action.filled and _SIDE_WORDS.get(str(action.side).lower()) is self.side:
                self.event_fills += action.filled
                self.events += 1
        elif type(action) is BookChanged and action.key == self.view.key:
            self.changes += 1
            self._front_changed()

    def _read_front(self) -> tuple[Decimal, str | None, Decimal] | None:
        """(price, front order id or None for L2, its size or the level's) of the best level."""
        best = next(iter(self.view.native_levels(self.side)), None)
        if best is None:
            return None
        if self.view.book_kind == "L3":
            orders = self.view.orders_at(self.side, best[0])
            if orders:
                return best[0], orders[0].order_id, orders[0].size
        return best[0], None, best[1]

    def _front_changed(self) -> None:
        before, now = self._front, self._read_front()
        self._front = now
        if before is None:
            return
        price, order_id, size = before
        if now is not None and now[0] == price and now[1] == order_id:
            if now[2] < size:
                self.front_consumed += size - now[2]
            return
        if now is not None and _better(self.side, now[0], price):
            return  # a better level arrived in front: nothing was consumed
        if order_id is not None and any(o.order_id == order_id for o in self.view.orders_at(self.side, price)):
            return  # the front order is still there (a better level came and went)
        self.front_consumed += size

    def rate(self) -> tuple[Decimal | None, float, str]:
        """(size per second or None, seconds watched, how it was estimated)."""
        elapsed = max(self.clock() - self.started, 1e-9)
        words = "bids" if self.side is Side.BID else "asks"
        if self.events:
            return (self.event_fills / Decimal(repr(elapsed)), elapsed,
                    f"from {self.events} order-event fills against the {words} over {elapsed:.1f} s")
        if self.changes:
            return (self.front_consumed / Decimal(repr(elapsed)), elapsed,
                    f"from book changes: size that left the front of the best {words[:-1]} queue over "
                    f"{elapsed:.1f} s (fills and front cancels alike: it may overstate the rate)")
        return None, elapsed, f"no change seen on the {words} in {elapsed:.1f} s: no rate to estimate from"


@dataclass(frozen=True)
class FillEstimate:
    rate: Decimal | None                # size per second
    seconds_watched: float
    method: str
    to_front: float | None              # seconds until the order reaches the front (all ahead filled)
    to_fill: float | None               # seconds until it is filled entirely


def estimate(position: QueuePosition, rate: Decimal | None, watched: float, method: str) -> FillEstimate:
    if not rate:
        return FillEstimate(rate, watched, method, None, None)
    return FillEstimate(rate, watched, method, float(position.ahead / rate),
                        float((position.ahead + position.size) / rate))
