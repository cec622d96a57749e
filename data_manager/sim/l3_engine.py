"""A seeded price-time matching engine that writes KuCoin Futures level3v2 events (the simulator's KuMEX).

Orders rest FIFO per price. Every step is one order arriving at the venue, told as the documented level-3
v2 lifecycle (FD "Full matching engine data: Level 3 V2", fixture README):

    limit that rests     received, open
    limit that crosses   received, match..., then open (the rest, `ts` > `orderTime`) or done filled
    market order         received, match..., done filled (the taker was never on the book)
    cancel               done canceled
    size reduction       update (the order keeps its place in the queue)

A `match` carries `side` (the taker's), `size` (filled) and `remainSize` (the maker's size left); a maker
filled completely gets `match` with `remainSize "0"` then `done filled`. Every event takes the next
`sequence`; each change of a price level's total is also a level-2 change with its own sequence, so the
same engine serves `/contractMarket/level2` subscribers.

Units: price in integer ticks of `tick` (default `TICK` = 1 USD, the XBTUSDM `tickSize` of the 2021 docs
and of the fixture's contract; the simulated KuMEX passes 0.1, the 2026 value), size in integer contracts
of 1 USD (lot 1). Orders are worth 0.001 to ~5 BTC, and
the book keeps at least `levels` prices per side with several orders at most prices, so a 15 BTC market
order walks a few dozen levels. Exact integers inside; strings only when a frame is written.

Time: without a `clock` the engine keeps its own synthetic nanoseconds from `START_NS` (2021-04-17, the
fixture's day: repeatable, for benchmarks). With `clock` (a callable giving epoch nanoseconds, e.g. the
simulator's `SimClock.ns`) every `ts`, `orderTime` and level-2 `timestamp` is the clock's NOW, strictly
increasing: a client that compares stamps with the wall clock or with sequence numbers sees a
plausible current venue. The random draws are the same either way, so a seed gives the same flow.
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass
from decimal import Decimal
from typing import Callable

from sortedcontainers import SortedList

TICK = Decimal(1)
BUY, SELL = "buy", "sell"
OPPOSITE = {BUY: SELL, SELL: BUY}
SIDE_NAMES = {"bid": BUY, "ask": SELL, BUY: BUY, SELL: SELL}
START_NS = 1_618_617_600_000_000_000  # 2021-04-17, when the fixture's flow was made
encode = json.JSONEncoder(separators=(",", ":")).encode
"""Compact JSON, one encoder for every frame (json.dumps with separators builds one per call)."""


@dataclass(slots=True)
class RestingOrder:
    order_id: str
    side: str
    tick: int
    size: int          # contracts
    order_time: int    # ns, when the venue received it
    ts: int            # ns, when it entered the book (FIFO order within a price)


@dataclass(frozen=True, slots=True)
class Event:
    """One level3v2 message: its `subject` and its `data` (sequence included), ready to serialise."""

    subject: str
    data: dict


@dataclass(frozen=True, slots=True)
class LevelChange:
    """A price level's new total after an event, for level-2 subscribers (size 0: the level is gone)."""

    sequence: int
    side: str
    price: str
    size: int
    ts: int


@dataclass(frozen=True, slots=True)
class Step:
    events: list[Event]
    changes: list[LevelChange]


class L3Engine:
    """The true order book of the simulated venue, and the events that move it."""

    def __init__(self, rng: random.Random, mid: Decimal, levels: int = 300, symbol: str = "XBTUSDM",
                 sequence: int = 3_262_700_000, level2_sequence: int = 1_668_015_000_000,
                 tick: Decimal = TICK, clock: Callable[[], int] | None = None) -> None:
        self.rng = rng
        self.tick = tick
        self._clock = clock                       # epoch ns, or None: synthetic time from START_NS
        self.symbol = symbol
        self.topic = f"/contractMarket/level3v2:{symbol}"
        self.levels_wanted = levels
        self.sequence = sequence                  # the last level3v2 sequence handed out
        self.level2_sequence = level2_sequence    # the last level-2 sequence handed out
        self.orders: dict[str, RestingOrder] = {}
        self._queues: dict[str, dict[int, dict[str, RestingOrder]]] = {BUY: {}, SELL: {}}
        self._totals: dict[str, dict[int, int]] = {BUY: {}, SELL: {}}
        self._ticks = {BUY: SortedList(key=lambda t: -t), SELL: SortedList()}
        self._ids = 0
        self._now = START_NS if clock is None else clock()
        self._mid_tick = int(mid / tick)
        self._events: list[Event] = []
        self._changes: list[LevelChange] = []
        self._building = False
        self._build()

    # --- reading the true book --------------------------------------------------------------------
    def price(self, tick: int) -> Decimal:
        """The price of `tick`, written plainly: 60026 and 60026.5 with a 0.1 tick (never 60026.0),
        as KuCoin writes prices today ("83614", "90631.2": venues-2026 2.2)."""
        value = tick * self.tick
        if self.tick == TICK:
            return value
        value = value.normalize()
        return value if value.as_tuple().exponent <= 0 else value.quantize(TICK)

    def best_tick(self, side: str) -> int | None:
        ticks = self._ticks[SIDE_NAMES[side]]
        return ticks[0] if ticks else None

    def depth(self, side: str) -> int:
        return len(self._ticks[SIDE_NAMES[side]])

    def levels(self, side: str) -> list[tuple[Decimal, Decimal]]:
        """(price, total contracts) best first; side is "bid"/"ask" (or "buy"/"sell")."""
        side = SIDE_NAMES[side]
        totals = self._totals[side]
        return [(self.price(t), Decimal(totals[t])) for t in self._ticks[side]]

    def book_orders(self, side: str) -> list[tuple[Decimal, list[tuple[str, Decimal]]]]:
        """(price, [(order_id, size)...] in time priority) best first: the exact book a client must hold."""
        side = SIDE_NAMES[side]
        queues = self._queues[side]
        return [(self.price(t), [(o.order_id, Decimal(o.size)) for o in queues[t].values()])
                for t in self._ticks[side]]

    def snapshot(self) -> dict:
        """`data` of GET /api/v2/level3/snapshot: rows [orderTime, orderId, price, size, ts], unsorted
        as the docs warn (shuffled by a generator of its own, so the flow does not depend on it)."""
        rows = {BUY: [], SELL: []}
        for order in self.orders.values():
            rows[order.side].append([order.order_time, order.order_id, self._price_text(order.tick),
                                     str(order.size), order.ts])
        shuffle = random.Random(self.sequence).shuffle
        for side_rows in rows.values():
            shuffle(side_rows)
        return {"symbol": self.symbol, "sequence": self.sequence, "bids": rows[BUY], "asks": rows[SELL],
                "ts": self._now}

    def level2_snapshot(self) -> dict:
        """`data` of GET /api/v1/level2/snapshot: [price string, size number], asks up, bids down."""
        def side_rows(side: str) -> list:
            return [[self._price_text(t), self._totals[side][t]] for t in self._ticks[side]]
        return {"symbol": self.symbol, "sequence": self.level2_sequence, "asks": side_rows(SELL),
                "bids": side_rows(BUY), "ts": self._now}

    # --- writing frames ---------------------------------------------------------------------------
    def render(self, event: Event) -> str:
        """One event as the text frame the venue sends."""
        return encode({"type": "message", "topic": self.topic, "subject": event.subject, "data": event.data})

    def events(self, n: int, mid: Decimal | None = None) -> list[str]:
        """Step until at least `n` new events exist and return them all as frames (whole steps, so the
        engine's book is exactly the book after the last frame): a benchmark's input after `snapshot()`."""
        frames: list[str] = []
        while len(frames) < n:
            frames.extend(map(self.render, self.step(mid).events))
        return frames

    # --- the flow ---------------------------------------------------------------------------------
    def step(self, mid: Decimal | None = None) -> Step:
        """One order arrives (plus the refills that keep the book deep): its events, already applied."""
        if mid is not None:
            self._mid_tick = int(mid / self.tick)
        self._events, self._changes = [], []
        self._advance(self.rng.randint(1_000_000, 50_000_000))
        self._follow_mid()
        roll = self.rng.random()
        side = BUY if self.rng.random() < 0.5 else SELL
        if roll < 0.45:
            self._limit_near_mid(side)
        elif roll < 0.73:
            self._cancel_near_touch(side)
        elif roll < 0.85:
            self._reduce_near_touch(side)
        else:
            self._market(side, self._contracts(0.001, 0.5))
        for s in (BUY, SELL):
            self._keep_depth(s)
        return Step(self._events, self._changes)

    # --- orders entered from outside (sim order entry), each one step of its own ----------------------
    def place(self, side: str, tick: int, size: int, client_oid: str | None = None) -> Step:
        """A limit order of `size` contracts at `tick`: it trades what it crosses, rests the rest."""
        return self._entered(lambda: self._limit(SIDE_NAMES[side], tick, size), client_oid)

    def market(self, side: str, size: int, client_oid: str | None = None) -> Step:
        """A market order of `size` contracts: it fills resting orders, best price first, oldest first."""
        return self._entered(lambda: self._market(SIDE_NAMES[side], size), client_oid)

    def cancel(self, order_id: str) -> Step:
        order = self.orders.get(order_id)
        if order is None:
            raise KeyError(f"order {order_id} is not on the {self.symbol} book")
        return self._entered(lambda: self._cancel(order), None)

    def _entered(self, path: Callable[[], None], client_oid: str | None) -> Step:
        """Run one order path between two steps; its `received` carries `client_oid` when given."""
        self._events, self._changes = [], []
        self._advance(self.rng.randint(1_000_000, 50_000_000))
        path()
        if client_oid is not None and self._events and self._events[0].subject == "received":
            self._events[0].data["clientOid"] = client_oid
        return Step(self._events, self._changes)

    def skip_sequence(self, level: int = 3) -> None:
        """A venue-side gap: one sequence number is never sent (the `gap` fault)."""
        if level == 3:
            self.sequence += 1
        else:
            self.level2_sequence += 1

    def _follow_mid(self) -> None:
        """Quotes the mid has moved through are hit: a market order sweeps each such level (an
        arbitrageur's trade), so the book follows the common mid and never sits across it."""
        for side, taker in ((BUY, SELL), (SELL, BUY)):
            ticks = self._ticks[side]
            while len(ticks) > 1 and (ticks[0] >= self._mid_tick if side == BUY else ticks[0] <= self._mid_tick):
                self._market(taker, self._totals[side][ticks[0]])

    def _limit_near_mid(self, side: str) -> None:
        """A limit order a few ticks behind the mid; one that reaches the other side trades first and
        rests what is left."""
        offset = 1 + int(self.rng.expovariate(1 / 12))
        tick = self._mid_tick - offset if side == BUY else self._mid_tick + offset
        self._limit(side, tick, self._order_size())

    def _limit(self, side: str, tick: int, size: int) -> None:
        order_id = self._new_id()
        received = self._emit("received", {"orderId": order_id, "clientOid": self._new_id()})
        left = self._take(order_id, side, size, tick)
        if left:
            self._rest(RestingOrder(order_id, side, tick, left, received, received))
        else:
            self._emit("done", {"reason": "filled", "orderId": order_id})

    def _market(self, side: str, size: int) -> None:
        order_id = self._new_id()
        self._emit("received", {"orderId": order_id, "clientOid": self._new_id()})
        left = self._take(order_id, side, size, None)
        self._emit("done", {"reason": "filled" if not left else "canceled", "orderId": order_id})

    def _take(self, taker_id: str, side: str, size: int, limit: int | None) -> int:
        """Fill against the other side, best price first, oldest order first; returns what is left."""
        maker_side = OPPOSITE[side]
        ticks = self._ticks[maker_side]
        while size and ticks:
            tick = ticks[0]
            if limit is not None and (tick > limit if side == BUY else tick < limit):
                break
            maker = next(iter(self._queues[maker_side][tick].values()))
            filled = min(size, maker.size)
            size -= filled
            self._set_size(maker, maker.size - filled)
            self._emit("match", {"side": side, "price": self._price_text(tick), "size": str(filled),
                                 "remainSize": str(maker.size), "makerOrderId": maker.order_id,
                                 "takerOrderId": taker_id, "tradeId": self._new_id()})
            self._level_changed(maker_side, tick)
            if not maker.size:
                self._emit("done", {"reason": "filled", "orderId": maker.order_id})
        return size

    def _cancel_near_touch(self, side: str) -> None:
        order = self._pick_near_touch(side)
        if order is not None and self.depth(side) > 1:
            self._cancel(order)

    def _reduce_near_touch(self, side: str) -> None:
        order = self._pick_near_touch(side)
        if order is not None and order.size > 1:
            self._set_size(order, self.rng.randint(1, order.size - 1))
            self._emit("update", {"orderId": order.order_id, "size": str(order.size)})
            self._level_changed(side, order.tick)

    def _pick_near_touch(self, side: str) -> RestingOrder | None:
        ticks = self._ticks[side]
        if not ticks:
            return None
        tick = ticks[min(len(ticks) - 1, int(self.rng.expovariate(1 / 10)))]
        queue = self._queues[side][tick]
        return list(queue.values())[self.rng.randrange(len(queue))]

    def _cancel(self, order: RestingOrder) -> None:
        self._set_size(order, 0)
        self._emit("done", {"reason": "canceled", "orderId": order.order_id})
        self._level_changed(order.side, order.tick)

    def _keep_depth(self, side: str) -> None:
        """At least `levels` prices per side (new orders behind the worst one); far levels beyond 1.5x
        that are canceled, as far quotes are on a real book."""
        ticks = self._ticks[side]
        direction = -1 if side == BUY else 1
        while len(ticks) < self.levels_wanted:
            tick = (ticks[-1] if ticks else self._mid_tick) + direction * self._gap()
            for _ in range(self._orders_per_level()):
                self._limit(side, tick, self._order_size())
        while len(ticks) > self.levels_wanted * 3 // 2:
            for order in list(self._queues[side][ticks[-1]].values()):
                self._cancel(order)

    # --- book mutation (the engine's own) ---------------------------------------------------------
    def _rest(self, order: RestingOrder) -> None:
        """Append at the back of its price's queue and tell it (`open`), except while building."""
        if not self._building:
            order.ts = self._emit("open", {"side": order.side, "price": self._price_text(order.tick),
                                           "size": str(order.size), "orderId": order.order_id,
                                           "orderTime": order.order_time})
        queues = self._queues[order.side]
        queue = queues.get(order.tick)
        if queue is None:
            queue = queues[order.tick] = {}
            self._ticks[order.side].add(order.tick)
            self._totals[order.side][order.tick] = 0
        queue[order.order_id] = order
        self._totals[order.side][order.tick] += order.size
        self.orders[order.order_id] = order
        if not self._building:
            self._level_changed(order.side, order.tick)

    def _set_size(self, order: RestingOrder, size: int) -> None:
        """New size in place (queue position kept); 0 takes the order off the book."""
        self._totals[order.side][order.tick] += size - order.size
        order.size = size
        if size:
            return
        queue = self._queues[order.side][order.tick]
        del queue[order.order_id]
        del self.orders[order.order_id]
        if not queue:
            del self._queues[order.side][order.tick]
            del self._totals[order.side][order.tick]
            self._ticks[order.side].remove(order.tick)

    def _emit(self, subject: str, fields: dict) -> int:
        """Append one event with the next sequence and a later `ts` (ns); returns that `ts`."""
        self.sequence += 1
        self._advance(self.rng.randint(200, 20_000))
        self._events.append(Event(subject, {"symbol": self.symbol, "sequence": self.sequence, **fields,
                                            "ts": self._now}))
        return self._now

    def _level_changed(self, side: str, tick: int) -> None:
        self.level2_sequence += 1
        self._changes.append(LevelChange(self.level2_sequence, side, self._price_text(tick),
                                         self._totals[side].get(tick, 0), self._now // 1_000_000))

    # --- the starting book and random draws -------------------------------------------------------
    def _build(self) -> None:
        """The book before the first step: no events (it is what the first snapshot shows)."""
        self._building = True
        start = self._now
        self._now = start - 3_600_000_000_000  # an hour of history before the first step
        for side in (BUY, SELL):
            direction = -1 if side == BUY else 1
            tick = self._mid_tick + direction * (1 + self.rng.randint(0, 1))
            for _ in range(self.levels_wanted + self.levels_wanted // 5):
                for _ in range(self._orders_per_level()):
                    self._now += self.rng.randint(1_000_000, 1_000_000_000)
                    self._rest(RestingOrder(self._new_id(), side, tick, self._order_size(), self._now,
                                            self._now))
                tick += direction * self._gap()
        self._now = start
        self._building = False

    def _advance(self, synthetic_ns: int) -> None:
        """Move the engine's time on: by `synthetic_ns` without a clock; to the clock's now (at least
        one microsecond later than the last stamp, so stamps stay strictly increasing) with one."""
        if self._clock is None:
            self._now += synthetic_ns
        else:
            self._now = max(self._now + 1_000, self._clock())

    def _orders_per_level(self) -> int:
        return 1 + min(7, int(self.rng.expovariate(1 / 2.5)))

    def _order_size(self) -> int:
        """Contracts worth 0.001 to ~5 BTC: mostly small, some medium, a few large."""
        roll = self.rng.random()
        if roll < 0.6:
            return self._contracts(0.001, 0.1)
        if roll < 0.9:
            return self._contracts(0.1, 1.0)
        return self._contracts(1.0, 5.0)

    def _contracts(self, low_btc: float, high_btc: float) -> int:
        """A BTC amount drawn in [low, high) as whole contracts of 1 USD at the current mid."""
        return max(1, int(self.rng.uniform(low_btc, high_btc) * int(self._mid_tick * self.tick)))

    def _gap(self) -> int:
        return 1 + (self.rng.random() < 0.3)

    def _new_id(self) -> str:
        """24 hex digits like KuCoin's ids: seconds, a counter (unique), random filler."""
        self._ids += 1
        return f"{self._now // 1_000_000_000:08x}{self._ids:06x}{self.rng.getrandbits(40):010x}"

    def _price_text(self, tick: int) -> str:
        return str(self.price(tick))
