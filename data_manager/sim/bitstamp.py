"""The simulated Bitstamp venue: WebSocket API v2 `live_orders_<pair>` and the REST endpoints a client reads,
in Bitstamp's shapes (shared/venues-bitstamp.md; section numbers are that note's).

WebSocket (`ws_url`): `bts:subscribe` / `bts:unsubscribe` one channel a frame, acked by
`bts:subscription_succeeded` / `bts:unsubscription_succeeded`; an unknown lowercase pair is acked and then
silent, a malformed channel gets `bts:error` "Invalid channel provided.", non-JSON "Incorrect JSON format.",
another event "Bad subscription string." (§4, §2); a client frame over 512 bytes closes the socket with
1009 (§5); `bts:heartbeat` is answered `{"status":"success"}`. Then, per flow step, one frame per order
event on every subscribed channel.

Each pair's book is a price-time matching engine of its own (`OrderFlow`; integer cents and satoshis
inside, exact strings on the wire). The frames are as the real ones (§3.1): `id` / `price` / `amount` as
JSON numbers beside their exact `*_str` twins, `amount` the remaining size, `amount_traded` the fill of
this very event ("0" otherwise), `amount_at_create`, `order_subtype`, rounded `datetime`, a `microtimestamp`
quantised to whole milliseconds, and `event_id` / `pre_event_id` chained per channel in the UUID-like form
whose first 16 hex digits are the microtimestamp, the 4th group counts events within a millisecond and the
last holds the market id and a four-state counter. Order ids grow with time, so a level's queue is
ascending id, which is what the REST snapshot lists.

The flow: passive limits near the touch, cancels, partial cancels, aggressive limits published as a
marketable `order_created` at their limit BEFORE the fills they cause (S3/S5's reading of §10 question 1:
each fill is the maker's change/delete, then the taker's change; a remainder rests or, for IOC, is
deleted), price-zero market orders, post-only orders that arrive marketable and are deleted having traded
nothing, deletes of orders nobody saw (warm-up orphans, §8 step 6), deletes carrying an off-grid execution
price (§8), and arbitrage sweeps so that the book follows the common mid.

REST (`rest_url`): `GET /api/v2/order_book/<pair>/?group=0|1|2` (group 2: `[price, amount, order_id]` rows,
§6) whose `microtimestamp` is the µs of the book's last change; with `edge_cache_seconds` a request without
a `_` nonce within that window gets the cached copy (the Imperva edge, §6); with `refuse_nonce` a nonce is
refused as HTTP 400 code 400.018. `GET /api/v2/trading-pairs-info/` in its documented shape.

Faults (FaultPlan kinds, `SUPPORTED_FAULTS`): gap, drop, duplicate, disconnect, silence, garbage, crossed,
slow-snapshot, request-reconnect. There is no checksum on Bitstamp: "checksum" is refused.
"""
from __future__ import annotations

import asyncio
import json
import logging
import random
from dataclasses import dataclass
from decimal import Decimal
from itertools import takewhile
from typing import Any, Callable, ClassVar, Mapping

from sortedcontainers import SortedList

from data_manager.sim.clock import SimClock
from data_manager.sim.http import Handler, Request, Response
from data_manager.sim.market import Market
from data_manager.sim.server import Session, SimVenue, SimVenueSettings

log = logging.getLogger(__name__)

BUY, SELL = 0, 1                      # `order_type`
SIDE_NAMES = {"bid": BUY, "ask": SELL}
CENTS_PER_UNIT = 100                  # price tick 0.01 of the quote
LOTS_PER_UNIT = 100_000_000           # amount lot 1e-8 of the base
CHANNEL_PREFIX = "live_orders_"
MAX_CLIENT_FRAME_BYTES = 512
SLOW_SNAPSHOT_SECONDS = 1.5
RECONNECT_GRACE_SECONDS = 3.0         # after bts:request_reconnect the venue closes the socket itself
FIRST_ORDER_ID = 2_050_000_000_000_000
SUPPORTED_FAULTS = ("gap", "drop", "duplicate", "disconnect", "silence", "garbage", "crossed", "slow-snapshot",
                    "request-reconnect")
REQUEST_RECONNECT_DATA = (None, "", {})   # §4: the payload was never captured; clients must accept any
SUBTYPE_LIMIT, SUBTYPE_MARKET, SUBTYPE_IOC, SUBTYPE_POST_ONLY = 0, 2, 4, 5   # S6's reading, UNVERIFIED
NAMES = {"BTC": "Bitcoin", "ETH": "Ether", "USD": "U.S. dollar", "EUR": "Euro"}
encode = json.JSONEncoder(separators=(",", ":")).encode


def price_text(cents: int) -> str:
    """2 decimals, as `price_str` is written on btcusd: "58356.10"."""
    return f"{cents // CENTS_PER_UNIT}.{cents % CENTS_PER_UNIT:02d}"


def amount_text(lots: int) -> str:
    """8 decimals, as `amount_str`: "0.00171371"."""
    return f"{lots // LOTS_PER_UNIT}.{lots % LOTS_PER_UNIT:08d}"


def traded_text(lots: int) -> str:
    """`amount_traded`: "0" when nothing traded, else 8 decimals ("0.00572000")."""
    return amount_text(lots) if lots else "0"


def number_form(text: str) -> str:
    """The JSON-number twin of a decimal string, as the venue writes it (58356.10 -> 58356.1, 64839.00
    -> 64839): the shortest form, never an exponent."""
    return text.rstrip("0").rstrip(".") if "." in text else text


@dataclass(slots=True)
class Order:
    order_id: int
    side: int
    cents: int
    lots: int
    at_create: int
    subtype: int


class OrderFlow:
    """One pair's true order book (FIFO per price) and the `live_orders` frames of every change."""

    def __init__(self, rng: random.Random, native: str, market_id: int, mid: Decimal, levels: int,
                 next_id: Callable[[], int], now_us: int) -> None:
        self.rng = rng
        self.native = native
        self.channel = CHANNEL_PREFIX + native
        self.market_id = market_id
        self.levels_wanted = levels
        self.next_id = next_id
        self.orders: dict[int, Order] = {}
        self.queues: tuple[dict[int, dict[int, Order]], dict[int, dict[int, Order]]] = ({}, {})
        self.ticks = (SortedList(key=lambda cents: -cents), SortedList())   # best first on both sides
        self.mid_cents = int(mid * CENTS_PER_UNIT)
        self.unit_lots = max(1, int(LOTS_PER_UNIT * 60_000 / max(float(mid), 1.0)))   # ~ a BTC's worth
        self.last_change_us = now_us          # the REST snapshot's microtimestamp: the book's last change
        self._us = now_us                     # the venue's (µs) clock of the latest event
        self._ms = -1
        self._in_ms = 0
        self._ring = 0
        self.last_event_id = self._event_id(now_us // 1000 * 1000)
        self._frames: list[str] = []
        self._build()

    # --- reading the true book ---------------------------------------------------------------------
    def best(self, side: int) -> int | None:
        ticks = self.ticks[side]
        return ticks[0] if ticks else None

    def levels(self, side: int) -> list[tuple[Decimal, Decimal]]:
        queues = self.queues[side]
        return [(Decimal(price_text(t)), Decimal(amount_text(sum(o.lots for o in queues[t].values()))))
                for t in self.ticks[side]]

    def queue_orders(self, side: int) -> dict[Decimal, list[tuple[str, Decimal]]]:
        """price -> [(order id, amount)] in queue order, best price first."""
        queues = self.queues[side]
        return {Decimal(price_text(t)): [(str(o.order_id), Decimal(amount_text(o.lots))) for o in queues[t].values()]
                for t in self.ticks[side]}

    def snapshot(self, group: int) -> dict[str, Any]:
        """The body of `GET /api/v2/order_book/<pair>/?group=N` (§6): bids best first, asks best first;
        group 2 one `[price, amount, order_id]` row per order in queue order, 1 one row per price,
        0 one `[price, amount]` row per order."""
        def rows(side: int) -> list[list[str]]:
            out: list[list[str]] = []
            for t in self.ticks[side]:
                queue = self.queues[side][t].values()
                if group == 1:
                    out.append([price_text(t), amount_text(sum(o.lots for o in queue))])
                elif group == 2:
                    out.extend([price_text(t), amount_text(o.lots), str(o.order_id)] for o in queue)
                else:
                    out.extend([price_text(t), amount_text(o.lots)] for o in queue)
            return out
        stamp = self.last_change_us
        return {"timestamp": str(stamp // 1_000_000), "microtimestamp": str(stamp), "bids": rows(BUY),
                "asks": rows(SELL)}

    # --- the flow ----------------------------------------------------------------------------------
    def step(self, mid: Decimal, now_us: int) -> list[str]:
        """One arrival at the venue (plus the sweeps and refills around it): its frames, in order, with
        the book already changed."""
        self._frames = []
        self._us = max(self._us + 1, now_us)
        self.mid_cents = int(mid * CENTS_PER_UNIT)
        self._follow_mid()
        side = BUY if self.rng.random() < 0.5 else SELL
        roll = self.rng.random()
        if roll < 0.36:
            self._passive(side)
        elif roll < 0.58:
            self._cancel_near_touch(side)
        elif roll < 0.68:
            self._partial_cancel(side)
        elif roll < 0.82:
            self._aggressive_limit(side)
        elif roll < 0.87:
            self._market_order(side)
        elif roll < 0.94:
            self._post_only_marketable(side)
        else:
            self._orphan_delete(side)
        for s in (BUY, SELL):
            self._keep_depth(s)
        if not self._frames:   # every step says something (a drop or a gap always has a frame to hit)
            self._passive(side)
        return self._frames

    def skip_event(self) -> None:
        """The `gap` fault: an event id is used up and never sent; the next event names it as previous."""
        self.last_event_id = self._event_id(self._next_stamp())

    def crossing_frame(self) -> str:
        """The `crossed` fault: a bid at the best ask that never trades and never leaves. It is chained
        like any event (so only the crossing is wrong) but never enters the true book."""
        ask = self.best(SELL)
        cents = ask if ask is not None else self.mid_cents
        ghost = Order(self.next_id(), BUY, cents, self.unit_lots // 10, self.unit_lots // 10, SUBTYPE_LIMIT)
        return self._frame("order_created", ghost)

    def _follow_mid(self) -> None:
        """Quotes the common mid has moved through are swept by an aggressive order (an arbitrageur)."""
        for side, taker in ((BUY, SELL), (SELL, BUY)):
            best = self.best(side)
            if best is None or (best < self.mid_cents if side == BUY else best > self.mid_cents):
                continue
            queues = self.queues[side]
            through = takewhile((lambda t: t >= self.mid_cents) if side == BUY else (lambda t: t <= self.mid_cents),
                                self.ticks[side])
            lots = sum(o.lots for t in through for o in queues[t].values())
            self._take(Order(self.next_id(), taker, self.mid_cents, lots, lots, SUBTYPE_IOC), rest=False)

    def _passive(self, side: int) -> None:
        """A limit order that rests a few ticks behind the mid, never through the other side."""
        offset = 1 + int(self.rng.expovariate(1 / 15))
        opposite = self.best(1 - side)
        if side == BUY:
            cents = self.mid_cents - offset
            cents = min(cents, opposite - 1) if opposite is not None else cents
        else:
            cents = self.mid_cents + offset
            cents = max(cents, opposite + 1) if opposite is not None else cents
        if cents > 0:
            self._rest(Order(self.next_id(), side, cents, self._lots(), 0, SUBTYPE_POST_ONLY), publish=True)

    def _cancel_near_touch(self, side: int) -> None:
        order = self._near_touch(side)
        if order is not None and len(self.orders) > 2:
            self._remove(order)
            self._publish("order_deleted", order)

    def _partial_cancel(self, side: int) -> None:
        """A resize down (`amount_traded` "0"): the order keeps its place in the queue."""
        order = self._near_touch(side)
        if order is not None and order.lots > 1:
            order.lots = self.rng.randint(1, order.lots - 1)
            self._publish("order_changed", order)

    def _aggressive_limit(self, side: int) -> None:
        """A limit through the touch: published marketable first, then its fills; GTC rests the rest."""
        opposite = self.best(1 - side)
        if opposite is None:
            return
        through = int(self.rng.expovariate(1 / 3))
        cents = opposite + through if side == BUY else max(1, opposite - through)
        lots = self._lots()
        ioc = self.rng.random() < 0.3
        self._take(Order(self.next_id(), side, cents, lots, lots, SUBTYPE_IOC if ioc else SUBTYPE_LIMIT),
                   rest=not ioc)

    def _market_order(self, side: int) -> None:
        """Price 0 on its create (§8 "Price-zero creates"); its later events carry execution prices."""
        lots = self._lots() // 3 + 1
        self._take(Order(self.next_id(), side, 0, lots, lots, SUBTYPE_MARKET), rest=False)

    def _post_only_marketable(self, side: int) -> None:
        """Arrives marketable, is refused as post-only: created then deleted, having traded nothing (S5)."""
        opposite = self.best(1 - side)
        if opposite is None:
            return
        order = Order(self.next_id(), side, opposite, self._lots(), 0, SUBTYPE_POST_ONLY)
        order.at_create = order.lots
        self._publish("order_created", order)
        self._publish("order_deleted", order)

    def _orphan_delete(self, side: int) -> None:
        """A delete of an order never seen on the stream nor in any snapshot (a client counts it)."""
        best = self.best(side)
        cents = best if best is not None else self.mid_cents
        ghost = Order(self.next_id(), side, cents, self._lots(), 0, SUBTYPE_LIMIT)
        ghost.at_create = ghost.lots
        self._publish("order_deleted", ghost)

    def _take(self, taker: Order, rest: bool) -> None:
        """Publish the taker's create at its limit (0: a market order), then each fill: the maker's change
        or delete, then the taker's change (or its delete when it is done). A limit's remainder rests, its
        last change already showing it passive; an IOC's or a market order's remainder is deleted."""
        self._publish("order_created", taker)
        opposite = 1 - taker.side
        ticks = self.ticks[opposite]
        filled_value = filled = 0
        while taker.lots and ticks:
            cents = ticks[0]
            if taker.cents and (cents > taker.cents if taker.side == BUY else cents < taker.cents):
                break
            maker = next(iter(self.queues[opposite][cents].values()))
            fill = min(taker.lots, maker.lots)
            taker.lots -= fill
            filled += fill
            filled_value += fill * cents
            if fill == maker.lots:
                before = maker.lots
                self._remove(maker)
                maker.lots = self.rng.choice((0, before))   # a full fill's `amount`: UNVERIFIED (§10 item 7)
                self._publish("order_deleted", maker, traded=fill)
            else:
                maker.lots -= fill
                self._publish("order_changed", maker, traded=fill)
            execution = price_text(cents)
            if taker.lots:
                self._publish("order_changed", taker, traded=fill, price=execution if not taker.cents else None)
            else:
                self._publish("order_deleted", taker, traded=fill, price=self._average(filled_value, filled))
        if not taker.lots:
            return
        if rest and taker.cents and filled:
            self._rest(taker, publish=False)
        else:
            self._publish("order_deleted", taker, price=self._average(filled_value, filled) if filled else None)

    def _keep_depth(self, side: int) -> None:
        """At least `levels` prices a side (new orders behind the worst); beyond 1.5x, the worst go."""
        ticks = self.ticks[side]
        step = -1 if side == BUY else 1
        while len(ticks) < self.levels_wanted:
            worst = ticks[-1] if ticks else self.mid_cents
            cents = worst + step * (1 + int(self.rng.expovariate(1 / 3)))
            if cents <= 0:
                return
            for _ in range(1 + min(5, int(self.rng.expovariate(1 / 1.5)))):
                self._rest(Order(self.next_id(), side, cents, self._lots(), 0, SUBTYPE_POST_ONLY), publish=True)
        while len(ticks) > self.levels_wanted * 3 // 2:
            for order in list(self.queues[side][ticks[-1]].values()):
                self._remove(order)
                self._publish("order_deleted", order)

    # --- the book's own mutations --------------------------------------------------------------
    def _rest(self, order: Order, publish: bool) -> None:
        """At the back of its price's queue (ids grow with time: the queue is ascending id)."""
        if not order.at_create:
            order.at_create = order.lots
        queues = self.queues[order.side]
        queue = queues.get(order.cents)
        if queue is None:
            queue = queues[order.cents] = {}
            self.ticks[order.side].add(order.cents)
        queue[order.order_id] = order
        self.orders[order.order_id] = order
        if publish:
            self._publish("order_created", order)

    def _remove(self, order: Order) -> None:
        queues = self.queues[order.side]
        queue = queues[order.cents]
        del queue[order.order_id]
        del self.orders[order.order_id]
        if not queue:
            del queues[order.cents]
            self.ticks[order.side].remove(order.cents)

    def _near_touch(self, side: int) -> Order | None:
        ticks = self.ticks[side]
        if not ticks:
            return None
        queue = self.queues[side][ticks[min(len(ticks) - 1, int(self.rng.expovariate(1 / 8)))]]
        return list(queue.values())[self.rng.randrange(len(queue))]

    def _lots(self) -> int:
        """Mostly small orders, some medium, a few large (in a BTC's worth of the base)."""
        roll = self.rng.random()
        scale = 0.0005 if roll < 0.6 else 0.05 if roll < 0.92 else 0.5
        return max(1, int(self.unit_lots * scale * self.rng.uniform(0.2, 4)))

    @staticmethod
    def _average(value: int, lots: int) -> str:
        """A taker's average execution price to 8 decimals: an off-grid delete price (§8)."""
        return str((Decimal(value) / lots / CENTS_PER_UNIT).quantize(Decimal("1E-8")))

    def _build(self) -> None:
        """The book before the first step: resting orders only, no events."""
        for side in (BUY, SELL):
            step = -1 if side == BUY else 1
            cents = self.mid_cents + step * (1 + self.rng.randint(0, 2))
            for _ in range(self.levels_wanted + self.levels_wanted // 5):
                if cents <= 0:
                    break
                for _ in range(1 + min(5, int(self.rng.expovariate(1 / 1.5)))):
                    self._rest(Order(self.next_id(), side, cents, self._lots(), 0, SUBTYPE_POST_ONLY), publish=False)
                cents += step * (1 + int(self.rng.expovariate(1 / 3)))

    # --- frames ----------------------------------------------------------------------------------
    def _next_stamp(self) -> int:
        """The next event's true µs; the channel shows it as a whole millisecond (§3.1)."""
        self._us += self.rng.randint(3, 40)
        return self._us // 1000 * 1000

    def _event_id(self, stamp: int) -> str:
        """`0006589a-5c98-2678-0000-000101000020`: 16 hex digits of the stamp, the count within its
        millisecond, then the market id, a four-state counter and a constant tail (§3.1)."""
        if stamp != self._ms:
            self._ms, self._in_ms = stamp, 0
        else:
            self._in_ms += 1
        self._ring = (self._ring + 1) % 4
        digits = f"{stamp:016x}"
        return (f"{digits[:8]}-{digits[8:12]}-{digits[12:]}-{self._in_ms:04x}-"
                f"{self.market_id:04x}{self._ring:02x}000020")

    def _publish(self, event: str, order: Order, traded: int = 0, price: str | None = None) -> None:
        self._frames.append(self._frame(event, order, traded, price))

    def _frame(self, event: str, order: Order, traded: int = 0, price: str | None = None) -> str:
        """The next event of the channel's chain, keys in the order of the real frames (§3.1), `data`
        first; `price` overrides the order's own (an execution price)."""
        stamp = self._next_stamp()
        self.last_change_us = self._us
        event_id, previous = self._event_id(stamp), self.last_event_id
        self.last_event_id = event_id
        price_str = price if price is not None else price_text(order.cents)
        amount_str = amount_text(order.lots)
        return (
            f'{{"data":{{"id":{order.order_id},"id_str":"{order.order_id}","order_type":{order.side},'
            f'"order_subtype":{order.subtype},"datetime":"{(stamp + 500_000) // 1_000_000}",'
            f'"microtimestamp":"{stamp}","amount":{number_form(amount_str)},"amount_str":"{amount_str}",'
            f'"amount_traded":"{traded_text(traded)}","amount_at_create":"{amount_text(order.at_create)}",'
            f'"price":{number_form(price_str)},"price_str":"{price_str}","is_liquidation":false}},'
            f'"channel":"{self.channel}","event":"{event}","event_id":"{event_id}",'
            f'"pre_event_id":"{previous}","order_source":"orderbook"}}')


class BitstampSim(SimVenue):
    name = "bitstamp"
    path = "/"
    supported_faults: ClassVar[tuple[str, ...]] = SUPPORTED_FAULTS
    default_symbols: ClassVar[Mapping[str, str]] = {"btcusd": "BTC-USD"}
    rest_not_found: ClassVar[Any] = {"status": "error", "reason": "Not found"}

    def __init__(self, market: Market, seed: int, settings: SimVenueSettings,
                 symbols: Mapping[str, str] | None = None, clock: SimClock | None = None,
                 host: str = "127.0.0.1", edge_cache_seconds: float = 0.0, refuse_nonce: bool = False) -> None:
        super().__init__(market, seed, settings, symbols, clock, host)
        self._last_id = FIRST_ORDER_ID + self.rng.randrange(1_000_000_000)
        now = self.clock.us()
        self.flows = {native: OrderFlow(random.Random(f"bitstamp-{seed}-{native}"), native, index + 1,
                                        self.mid(native), settings.levels, self._next_order_id, now)
                      for index, native in enumerate(self.symbols)}
        self.edge_cache_seconds = edge_cache_seconds
        self.refuse_nonce = refuse_nonce
        self.snapshots_served = 0
        self.snapshot_requests: list[Request] = []
        self._cache: dict[tuple[str, int], tuple[float, dict]] = {}
        self._slow_snapshots = 0

    def _next_order_id(self) -> int:
        """Ids grow with time across every pair (Bitstamp's are ~2.05e15 in 2026)."""
        self._last_id += self.rng.randint(1, 40_000)
        return self._last_id

    # --- the true book, for tests ----------------------------------------------------------------
    def _flow(self, native: str | None) -> OrderFlow:
        return self.flows[native] if native is not None else next(iter(self.flows.values()))

    def true_book(self, native: str | None = None) -> dict[str, list[tuple[Decimal, Decimal]]]:
        """{'bid': [(price, amount)...], 'ask': [...]} best first, in the base currency."""
        flow = self._flow(native)
        return {name: flow.levels(side) for name, side in SIDE_NAMES.items()}

    def true_orders(self, native: str | None = None) -> dict[str, dict[Decimal, list[tuple[str, Decimal]]]]:
        """{'bid': {price: [(order id, amount)...] in queue order}, 'ask': {...}}, best price first."""
        flow = self._flow(native)
        return {name: flow.queue_orders(side) for name, side in SIDE_NAMES.items()}

    # --- REST ----------------------------------------------------------------------------------
    def rest_routes(self) -> Mapping[tuple[str, str], Handler]:
        routes: dict[tuple[str, str], Handler] = {("GET", "/api/v2/trading-pairs-info/"): self._pairs_info}
        for native in self.symbols:
            routes[("GET", f"/api/v2/order_book/{native}/")] = self._order_book
            routes[("GET", f"/api/v2/order_book/{native}")] = self._order_book
        return routes

    async def _order_book(self, request: Request) -> Response:
        """§6. The body is taken when the request is handled; a slow-snapshot fault answers it later."""
        native = request.path.rstrip("/").rsplit("/", 1)[-1]
        group_text = request.query.get("group", "1")
        if group_text not in ("0", "1", "2"):
            return Response(400, {"status": "error", "reason": {"group": ["Invalid group."]}, "code": "400.002"})
        nonce = "_" in request.query
        if nonce and self.refuse_nonce:
            return Response(400, {"status": "error", "reason": "Unsupported GET parameter(s): _",
                                  "code": "400.018"})
        self.snapshot_requests.append(request)
        group = int(group_text)
        now = self.clock.now()
        cached = self._cache.get((native, group))
        if not nonce and cached is not None and now - cached[0] < self.edge_cache_seconds:
            body = cached[1]
        else:
            body = self.flows[native].snapshot(group)
            if self.edge_cache_seconds > 0:
                self._cache[(native, group)] = (now, body)
        self.snapshots_served += 1
        if self._slow_snapshots:
            self._slow_snapshots -= 1
            await asyncio.sleep(SLOW_SNAPSHOT_SECONDS)
        return Response(200, body)

    async def _pairs_info(self, request: Request) -> Response:
        """`GET /api/v2/trading-pairs-info/` (obsolete since 2024 but still read by clients, §2)."""
        pairs = []
        for native, unified in self.symbols.items():
            base, quote = unified.split("-")
            pairs.append({"name": f"{base}/{quote}", "url_symbol": native, "base_decimals": 8,
                          "counter_decimals": 2, "instant_order_counter_decimals": 2,
                          "minimum_order": f"10.00 {quote}", "trading": "Enabled",
                          "instant_and_market_orders": "Enabled",
                          "description": f"{NAMES.get(base, base)} / {NAMES.get(quote, quote)}"})
        return Response(200, pairs)

    # --- WebSocket -----------------------------------------------------------------------------
    async def serve_session(self, session: Session) -> None:
        session.state["channels"] = []
        async for text in session.ws:
            if len(text) > MAX_CLIENT_FRAME_BYTES:   # §5: "read limited at 513 bytes"
                await session.ws.close(1009, "read limited at 513 bytes")
                return
            reply = self._answer(session, text)
            if reply is not None and not session.silenced:
                await session.send(reply)

    def _answer(self, session: Session, text: str | bytes) -> str | None:
        try:
            request = json.loads(text)
        except ValueError:
            return _error("Incorrect JSON format.")
        event = request.get("event") if isinstance(request, dict) else None
        if event == "bts:heartbeat":
            return encode({"event": "bts:heartbeat", "channel": "", "data": {"status": "success"}})
        data = request.get("data") if event in ("bts:subscribe", "bts:unsubscribe") else None
        channel = data.get("channel") if isinstance(data, dict) else None
        if not isinstance(channel, str):
            return _error("Bad subscription string.")
        if channel != channel.lower() or "/" in channel or not channel.replace("_", "").replace("-", "").isalnum():
            return _error("Invalid channel provided.")
        channels: list[str] = session.state["channels"]
        native = channel[len(CHANNEL_PREFIX):] if channel.startswith(CHANNEL_PREFIX) else None
        served = native in self.flows
        if event == "bts:subscribe":
            if served and native not in channels:
                channels.append(native)
            answer = "bts:subscription_succeeded"   # an unknown pair too: acked, then silence (§2)
        else:
            if served and native in channels:
                channels.remove(native)
            answer = "bts:unsubscription_succeeded"
        session.subscribed = bool(channels)
        return encode({"event": answer, "channel": channel, "data": {}})

    # --- the flow --------------------------------------------------------------------------------
    def step(self) -> dict[str, list[str]]:
        now = self.clock.us()
        return {native: flow.step(self.mid(native), now) for native, flow in self.flows.items()}

    def frames_for(self, session: Session, change: dict[str, list[str]]) -> list[str]:
        frames: list[str] = []
        for native in session.state.get("channels", ()):
            frames += change[native]
        return frames

    def inject(self, session: Session, kind: str, frames: list[str]) -> list[str]:
        channels = session.state.get("channels") or list(self.flows)
        if kind == "gap":
            for native in channels:
                self.flows[native].skip_event()   # every later event of the channel, for every client
            return frames
        if kind == "drop":
            return frames[1:]
        if kind == "crossed":
            return frames + [self.flows[channels[0]].crossing_frame()]
        if kind == "slow-snapshot":
            self._slow_snapshots += 1
            return frames
        if kind == "request-reconnect":
            data = REQUEST_RECONNECT_DATA[(session.number - 1) % len(REQUEST_RECONNECT_DATA)]
            self.spawn(self._close_later(session))
            return frames + [encode({"event": "bts:request_reconnect", "channel": "", "data": data})]
        return super().inject(session, kind, frames)

    async def _close_later(self, session: Session) -> None:
        """§4: after bts:request_reconnect the client has "a few seconds"; then the venue closes."""
        await asyncio.sleep(RECONNECT_GRACE_SECONDS)
        if session in self.sessions:
            await session.ws.close()


def _error(message: str) -> str:
    """§4: `{"event":"bts:error","channel":"","data":{"code":null,"message":"Bad subscription string."}}`."""
    return encode({"event": "bts:error", "channel": "", "data": {"code": None, "message": message}})
