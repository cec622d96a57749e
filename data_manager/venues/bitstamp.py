"""Bitstamp spot, WebSocket API v2: a level-3 (order-by-order) book from `live_orders_<pair>`, seeded from
the REST `GET /api/v2/order_book/<pair>/?group=2` snapshot. The L2 view is that L3 book aggregated
(`L3Book.levels`): the diff channel has no sequence and no checksum, the order channel has an event chain.

Protocol (shared/venues-bitstamp.md; section numbers below are that note's):
- one URL, `wss://ws.bitstamp.net`; one `bts:subscribe` per channel (`{"event":"bts:subscribe","data":
  {"channel":"live_orders_btcusd"}}`), acked by `bts:subscription_succeeded` (§4). Client frames must stay
  under 512 bytes (§5): ours are ~65. Route on `channel`: book data names no symbol (§2).
- `order_created` / `order_changed` / `order_deleted` (§3.1): `amount_str` is the order's REMAINING size
  after the event, `amount_traded` this event's fill (per event, not cumulative), `id_str` / `price_str` /
  `amount_str` the exact twins of double-valued numbers (read only those). Every event carries `event_id`
  and `pre_event_id`: `pre_event_id` must equal the previous event's `event_id` (§8 "Chain and gap rule").
- the socket sends no snapshot: buffer events (the shared `SnapshotBridge`, positions = `microtimestamp`
  in µs), fetch `group=2` once something is buffered, refetch while the snapshot is older than the first
  buffered event or lacks its `microtimestamp` (§6; the edge caches it ~1 s, so a `_=<ms>` nonce is added,
  UNVERIFIED whether honoured everywhere: a 400 answer turns it off), load its `[price, amount, order_id]`
  rows (queue order within a price = ascending order id, §6), replay what it does not hold (§8 step 4).
- any break of the chain, `bts:request_reconnect`, or a lost socket: drop the book, reconnect, reseed from
  a fresh snapshot. Never patch across a gap (§8). Duplicated events (an `event_id` already taken on this
  connection) are skipped: they are already applied.

Timestamps (§3.1, §6): event stamps are whole milliseconds, the snapshot's `microtimestamp` is µs and marks
the book's last change. A snapshot at P certainly holds every event stamped in an EARLIER millisecond than
P's; events stamped in P's own millisecond may fall either side of it. So the bridge position is the last
µs of the millisecond before P's, and events from P's millisecond are replayed; they are idempotent here
(a create of an order already resting sets its size, a change of an unknown order inserts it, a delete
of an unknown order is counted), which closes the residual risk §8 step 4 names. A snapshot from the
first buffered event's own millisecond is accepted (slack 999 µs), i.e. refetch exactly when the snapshot
is older than the first buffered event. Live, a create/change stamped before P's millisecond is dropped (a
socket behind REST); a delete always applies (§8 step 4). Buffered deletes from before P's millisecond
are dropped by the bridge with the rest: a snapshot that marks the book's last change reflects them.

Liveness: only order events prove a channel alive (70-160 a second on btcusd, §3.1); the `bts:heartbeat`
sent every 10 s keeps intermediaries from idling the socket out, and its answer touches no book.

Marketable orders (§8 "Caveats", §10 open question 1, UNVERIFIED and conflicting): S3/S5 saw aggressive
orders published as `order_created` at their limit price BEFORE the fills they cause; S4 saw the fills
first and a create for the remainder only. Both are handled by one rule (see `BitstampProcessor._place`):
an order placed at a price that crosses the opposite touch is held PENDING, outside the book, so the book
itself is never crossed and never shown crossed. It rests (at the back of its level) when a later
`order_changed` of its own shows it passive, or when the stream has moved past its millisecond and it no
longer crosses (its fills are in, or its counterparties left first); an `order_deleted` drops it. One
still crossing after its millisecond and `aggressor_grace` seconds of venue time (or
`AGGRESSOR_GRACE_EVENTS` events) is a crossed book: a `CrossedBook` fault, and a reseed.

Other UNVERIFIED points and how they are tolerated: `order_source` values other than "orderbook" (§3.1;
their events are chain-checked but not applied, and a source may run a chain of its own); price-zero
creates (market orders, §8: their whole lifecycle is skipped by id); price moves on `order_changed` (the
order goes to the back of its new level); a delete's price (may be off-grid, §8: never used, only
checked to be a number); `amount` on a full-fill delete (unused: deletes remove by id);
`bts:request_reconnect`'s `data` (any value).
"""
from __future__ import annotations

import json
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal
from operator import itemgetter
from typing import Any, Callable, NamedTuple, Sequence

from data_manager.book import L3Book, Side
from data_manager.errors import (CrossedBook, EventChainBreak, MessageError, ReconnectRequested, SnapshotError,
                                 excerpt)
from data_manager.feed import Fetch, FeedBook, FeedProcessor, FeedSettings, HttpRequest, OrderEvent, Send
from data_manager.parse import decode_object, fast_level, integer, level, number, size
from data_manager.registry import ConnectLimits, VenueSpec
from data_manager.symbols import Symbol
from data_manager.sync import BridgeState, SnapshotBridge

log = logging.getLogger(__name__)

NAME = "bitstamp"
WS_URL = "wss://ws.bitstamp.net"
REST_URL = "https://www.bitstamp.net"
MARKETS = {("BTC", "USD"): "btcusd", ("ETH", "USD"): "ethusd"}
"""Unified (base, quote) -> Bitstamp's market symbol (`GET /api/v2/markets/` `market_symbol`, §2)."""
CHANNEL_PREFIX = "live_orders_"
CREATED, CHANGED, DELETED = "order_created", "order_changed", "order_deleted"
ORDER_EVENTS = frozenset({CREATED, CHANGED, DELETED})
QUIET_EVENTS = frozenset({"bts:subscription_succeeded", "bts:unsubscription_succeeded", "bts:heartbeat"})
ORDERBOOK_SOURCE = "orderbook"
SIDES = {0: Side.BID, 1: Side.ASK}   # `order_type`: 0 buy, 1 sell
HEARTBEAT = '{"event":"bts:heartbeat"}'
HEARTBEAT_SECONDS = 10.0
MAX_CLIENT_FRAME_BYTES = 512
MAX_ID_CHARS = 20                    # order ids are ~2.05e15 today (16 digits); u64 has 20
MAX_EVENT_ID_CHARS = 64              # 36 in the UUID-like form
SAME_MILLISECOND_SLACK = 999
"""µs: a snapshot from the first buffered event's own millisecond bridges (see the module docstring)."""
STALE_RETRY_SECONDS = 1.0            # the REST edge caches the snapshot about this long (§6)
RETRY_SECONDS = 2.0                  # a failed snapshot request (no answer, 5xx)
RATE_LIMITED_RETRY_SECONDS = 10.0    # 429 (the documented limit is 8,000-10,000 requests / 10 min, §5)
AGGRESSOR_GRACE_EVENTS = 5000
"""Events an aggressive order may stay marketable (pending) before the book counts as crossed: a backstop
to `aggressor_grace` (venue time) should the venue's clock stand still."""
RECENT_EVENT_IDS = 4096              # event ids remembered per channel to recognise a duplicate
MARKET_ORDER_IDS = 10_000            # price-zero orders whose lifecycle is being skipped, per channel
_ZERO = Decimal(0)
_BID, _ASK = Side.BID, Side.ASK


# --- errors of this protocol -----------------------------------------------------------------------
# --- settings and symbols --------------------------------------------------------------------------
@dataclass(frozen=True)
class BitstampSettings(FeedSettings):
    url: str = field(default=WS_URL, metadata={"schemes": ("ws://", "wss://")})
    rest_url: str = field(default=REST_URL, metadata={"schemes": ("http://", "https://")})
    max_age: float = field(default=10.0, metadata={"minimum": 0.5, "maximum": 3600})
    """btcusd carries 70-160 order events a second (§3.1): 10 s without one is a stalled channel (§8)."""
    cache_buster: bool = True
    """Add `&_=<ms>` to the snapshot URL so the edge cache answers a fresh book (§6, UNVERIFIED)."""
    aggressor_grace: float = field(default=2.0, metadata={"minimum": 0.05, "maximum": 60})
    """Seconds of venue time a marketable order may stay pending before the book counts as crossed."""


def native_symbol(symbol: Symbol) -> str:
    market = MARKETS.get((symbol.base, symbol.quote))
    if market is None:
        raise ValueError(f"bitstamp: no market for {symbol} here (known: "
                         f"{', '.join(f'{b}-{q}' for b, q in MARKETS)})")
    return market


def subscribe_message(channel: str) -> str:
    """§4: `{"event":"bts:subscribe","data":{"channel":"live_orders_btcusd"}}`, one channel a frame."""
    text = json.dumps({"event": "bts:subscribe", "data": {"channel": channel}}, separators=(",", ":"))
    if len(text.encode()) >= MAX_CLIENT_FRAME_BYTES:
        raise ValueError(f"subscribe for {channel!r} is {len(text)} bytes: Bitstamp closes at 513")
    return text


# --- parsed input ----------------------------------------------------------------------------------
class OrderUpdate(NamedTuple):
    """One `live_orders` event, validated whole before anything is applied."""

    kind: str                  # CREATED / CHANGED / DELETED
    order_id: str              # `id_str`
    side: Side
    price: Decimal | None      # None: a price-zero (market) order, or a delete (its price is never used)
    size: Decimal              # remaining after the event (`amount_str`); 0 for a delete
    filled: Decimal | None     # `amount_traded` (absent before 2023)
    stamp: int                 # `microtimestamp`, µs (whole ms on this channel)
    event_id: str
    pre_event_id: str
    source: str                # `order_source`


class Pending(NamedTuple):
    """A marketable order held out of the book while its fills arrive."""

    side: Side
    price: Decimal
    size: Decimal
    since_stamp: int           # venue µs when it first went pending
    since_events: int          # the channel's event count then
    last_ms: int               # the millisecond of its latest own event


@dataclass(slots=True)
class ChannelStats:
    """What happened on one channel since the processor was built (logs, tests, the integrity story)."""

    snapshots: int = 0
    replayed: int = 0              # buffered events replayed after the latest snapshot
    refetches: int = 0             # snapshots older than the buffer (or without a microtimestamp)
    duplicates: int = 0            # events whose event_id was already taken: skipped
    covered: int = 0               # creates/changes the loaded snapshot already held: dropped
    unknown_deletes: int = 0       # deletes of orders we never had (§8 step 6 warm-up; takers)
    aggressors: int = 0            # orders that arrived marketable and were held pending
    aggressors_rested: int = 0     # ... of which rested once passive
    market_orders: int = 0         # price-zero lifecycles skipped
    other_sources: int = 0         # events of an order_source other than "orderbook": not applied


class LiveOrders:
    """One `live_orders_<pair>` subscription: its book, chain, snapshot bridge and pending aggressors."""

    def __init__(self, feed: FeedBook) -> None:
        self.feed = feed
        self.book: L3Book = feed.book       # the same object for the processor's lifetime (cleared, not replaced)
        self.native = feed.native
        self.channel = CHANNEL_PREFIX + feed.native
        self.bridge: SnapshotBridge[OrderUpdate] = SnapshotBridge(slack=SAME_MILLISECOND_SLACK)
        self.stats = ChannelStats()
        self.reset()

    def reset(self) -> None:
        """A new connection: a new chain, a new bridge, nothing pending."""
        self.bridge.restart()
        self.last_event_id: str | None = None
        self.last_by_source: dict[str, str] = {}
        self._recent: deque[str] = deque()
        self._recent_set: set[str] = set()
        self.pending: dict[str, Pending] = {}
        self.market_orders: dict[str, None] = {}
        self.fetch_tag: str | None = None
        self.fetch_after = 0.0
        self.events = 0

    def link(self, update: OrderUpdate) -> bool:
        """Check the event's place in the chain and take it; False for a duplicate (already taken).

        §8: `cur.pre_event_id == prev.event_id`, the first event after connect unchecked. Whether
        non-"orderbook" sources share the chain is UNVERIFIED (§10 item 6): an event may also follow its
        own source's last event, and a source's first event starts its own chain. With one source (all
        that was ever observed) this is exactly the documented rule."""
        event_id = update.event_id
        if event_id in self._recent_set:
            self.stats.duplicates += 1
            return False
        last = self.last_event_id
        if last is not None and update.pre_event_id != last:
            own = self.last_by_source.get(update.source)
            if own is not None and update.pre_event_id != own:
                raise EventChainBreak(NAME, self.channel, last, update.pre_event_id)
            if own is None:
                log.info("%s: %s: first %r event starts a chain of its own", NAME, self.channel, update.source)
        self.last_event_id = event_id
        self.last_by_source[update.source] = event_id
        self._recent.append(event_id)
        self._recent_set.add(event_id)
        if len(self._recent) > RECENT_EVENT_IDS:
            self._recent_set.discard(self._recent.popleft())
        return True

    def skip_market_order(self, order_id: str) -> None:
        if order_id not in self.market_orders:
            self.stats.market_orders += 1
            self.market_orders[order_id] = None
            if len(self.market_orders) > MARKET_ORDER_IDS:
                del self.market_orders[next(iter(self.market_orders))]


# --- parsing ---------------------------------------------------------------------------------------
def _short(value: Any) -> str:
    """A venue value inside an error reason, bounded (the frame itself is quoted as an excerpt)."""
    return excerpt(repr(value), 48)


def _order_id(data: dict, text: str) -> str:
    """`id_str` (exact; the JSON number `id` is a double, §3.1), or `id` when a frame lacks the twin."""
    value = data.get("id_str")
    if type(value) is str and 0 < len(value) <= MAX_ID_CHARS and value.isascii() and value.isdigit():
        return value
    raw = data.get("id")
    if value is None and type(raw) is int and 0 <= raw < 10 ** MAX_ID_CHARS:
        return str(raw)
    raise MessageError(NAME, f"order id {_short(value)} is not a decimal id", text)


def _microseconds(value: Any, what: str, text: str) -> int:
    """A µs stamp ("1786269871707000", or a JSON integer). ASCII is checked first: `parse.integer` takes
    any `str.isdigit()` text, and `int("²")` raises."""
    if type(value) is str and not value.isascii():
        raise MessageError(NAME, f"{what} {_short(value)} is not an integer", text)
    return integer(NAME, value, what, text)


def _event_ids(message: dict, text: str) -> tuple[str, str, str]:
    event_id, pre_event_id = message.get("event_id"), message.get("pre_event_id")
    source = message.get("order_source", ORDERBOOK_SOURCE)
    for what, value in (("event_id", event_id), ("pre_event_id", pre_event_id), ("order_source", source)):
        if type(value) is not str or not 0 < len(value) <= MAX_EVENT_ID_CHARS:
            raise MessageError(NAME, f"{what} {_short(value)} is not an event id: the chain cannot be checked",
                               text)
    return event_id, pre_event_id, source


def parse_order(event: str, message: dict, text: str) -> OrderUpdate:
    """One `live_orders` frame, checked whole. §3.1, a real frame (2026-08-09, S3 fixture):

    {"data":{"id":2037472560562176,"id_str":"2037472560562176","order_type":1,"order_subtype":0,
     "datetime":"1786269872","microtimestamp":"1786269871707000","amount":0.51590918,
     "amount_str":"0.51590918","amount_traded":"0.00572000","amount_at_create":"0.53481582",
     "price":64840.12,"price_str":"64840.12","is_liquidation":false},"channel":"live_orders_btcusd",
     "event":"order_changed","event_id":"0006589a-5d2d-1378-0003-000103000020",
     "pre_event_id":"0006589a-5d2d-1378-0002-000102000020","order_source":"orderbook"}

    A delete's price is checked to be a number but never used (it may be an off-grid execution price,
    e.g. "63941.91523761", §8); nor is its `amount` (full-fill semantics UNVERIFIED, §10 item 7)."""
    data = message.get("data")
    if type(data) is not dict:
        raise MessageError(NAME, f"{event} without a data object", text)
    event_id, pre_event_id, source = _event_ids(message, text)
    order_id = _order_id(data, text)
    order_type = data.get("order_type")
    side = SIDES.get(order_type) if type(order_type) is int else None
    if side is None:
        raise MessageError(NAME, f"order_type {_short(order_type)} is neither 0 (buy) nor 1 (sell)", text)
    stamp = _microseconds(data.get("microtimestamp"), "microtimestamp", text)
    traded = data.get("amount_traded")
    filled = None if traded is None else size(NAME, side, "-", traded, text)
    price_value = data.get("price_str", data.get("price"))
    if event == DELETED:
        if price_value is not None:
            number(NAME, price_value, "price", text)
        return OrderUpdate(DELETED, order_id, side, None, _ZERO, filled, stamp, event_id, pre_event_id, source)
    amount_value = data.get("amount_str", data.get("amount"))
    checked = fast_level(price_value, amount_value)
    if checked is None:
        if number(NAME, price_value, "price", text) == 0:  # a market order (§8 "Price-zero creates")
            return OrderUpdate(event, order_id, side, None, size(NAME, side, 0, amount_value, text), filled,
                               stamp, event_id, pre_event_id, source)
        checked = level(NAME, side, price_value, amount_value, text)
    return OrderUpdate(event, order_id, side, checked[0], checked[1], filled, stamp, event_id, pre_event_id,
                       source)


@dataclass(frozen=True)
class Snapshot:
    """A parsed `group=2` body: orders as (order id, side, price, size), in queue order."""

    stamp: int
    orders: list[tuple[str, Side, Decimal, Decimal]]


def snapshot_stamp(message: dict, text: str) -> int | None:
    """The snapshot's `microtimestamp` in µs; None when absent (older snapshots lacked it, S9: refetch)."""
    value = message.get("microtimestamp")
    return None if value is None else _microseconds(value, "snapshot microtimestamp", text)


def snapshot_orders(message: dict, text: str) -> list[tuple[str, Side, Decimal, Decimal]]:
    """The rows of `GET /api/v2/order_book/btcusd/?group=2` (§6), real head (2026-09-04, S5):

    {"timestamp": "1788552093", "microtimestamp": "1788552093805649", "bids": [["79829.24", "0.43225827",
     "2046841309597697"], ["79829.24", "0.00166542", "2046841312759811"], ...], "asks": [...]}

    Rows are [price, amount, order_id]. Two-column rows are the aggregated book: refused ("L2 wearing
    L3's clothes", §8). Within a price the queue is ascending order id (§6), whatever the listing order.
    A missing side is an empty side (S9 saw snapshots without bids or asks)."""
    seen: set[str] = set()
    keyed: list[tuple[int, str, Side, Decimal, Decimal]] = []
    for key, side in (("bids", _BID), ("asks", _ASK)):
        rows = message.get(key, [])
        if type(rows) is not list:
            raise MessageError(NAME, f"snapshot {key} is not a list", text)
        for row in rows:
            if type(row) is not list or len(row) != 3:
                if type(row) is list and len(row) == 2:
                    raise SnapshotError(NAME, f"snapshot {key} rows are [price, amount]: the aggregated book, "
                                              "not group=2's orders")
                raise MessageError(NAME, f"snapshot {key} row {_short(row)} is not [price, amount, order_id]",
                                   text)
            price_text, amount_text, order_id = row
            checked = fast_level(price_text, amount_text) or level(NAME, side, price_text, amount_text, text)
            if not (type(order_id) is str and 0 < len(order_id) <= MAX_ID_CHARS and order_id.isascii()
                    and order_id.isdigit()):
                raise MessageError(NAME, f"snapshot order id {_short(order_id)} is not a decimal id", text)
            if order_id in seen:
                raise SnapshotError(NAME, f"order {order_id} is listed twice in the snapshot")
            seen.add(order_id)
            if checked[1]:
                keyed.append((int(order_id), order_id, side, checked[0], checked[1]))
    keyed.sort(key=itemgetter(0))
    return [(order_id, side, price, amount) for _, order_id, side, price, amount in keyed]


# --- the processor ---------------------------------------------------------------------------------
class BitstampProcessor(FeedProcessor):
    """Every configured pair's L3 book from `live_orders_<pair>` + the REST `group=2` snapshot."""

    venue = NAME
    book_kind = "L3"
    ping_interval = HEARTBEAT_SECONDS

    def __init__(self, settings: BitstampSettings, symbols: Sequence[tuple[Symbol, str]],
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(settings, symbols, clock)
        self.settings: BitstampSettings = settings
        self._rest_url = settings.rest_url.rstrip("/")
        self._cache_buster = settings.cache_buster
        self._grace_us = int(settings.aggressor_grace * 1_000_000)
        self._channels = {live.channel: live for live in map(LiveOrders, self.books.values())}
        self._by_native = {live.native: live for live in self._channels.values()}
        self._fetching: dict[str, LiveOrders] = {}   # Fetch tag -> its channel (only the latest per channel)
        self._fetch_serial = 0

    def stats(self, native: str) -> ChannelStats:
        return self._by_native[native].stats

    def pending(self, native: str) -> dict[str, Pending]:
        """Aggressive orders held out of the book right now, by order id (tests, diagnostics)."""
        return dict(self._by_native[native].pending)

    # --- lifecycle ---------------------------------------------------------------------------------
    def on_reset(self) -> None:
        self._fetching.clear()
        for live in self._channels.values():
            live.reset()

    def on_connected(self) -> None:
        for live in self._channels.values():
            self.emit(Send(subscribe_message(live.channel)))

    def ping_message(self) -> str:
        """§4 client `bts:heartbeat` (no interval is documented; crypto-ws-client sends one per 10 s).
        It keeps idle intermediaries from closing the socket. Its answer is not evidence that a channel
        is alive, so it touches no book: only order events do."""
        return HEARTBEAT

    def on_tick(self, now: float) -> None:
        for live in self._channels.values():
            self._maybe_fetch(live, now)

    # --- frames ------------------------------------------------------------------------------------
    def on_frame(self, text: str) -> None:
        message = decode_object(NAME, text)
        event, channel = message.get("event"), message.get("channel", "")
        if type(event) is not str or type(channel) is not str:
            raise MessageError(NAME, "a frame without a string event and channel", text)
        live = self._channels.get(channel)
        if event in ORDER_EVENTS:
            if live is not None:   # a channel we did not subscribe to is not ours to read
                self._on_order(live, parse_order(event, message, text))
        else:
            self._on_control(event, live, message, text)

    def _on_control(self, event: str, live: LiveOrders | None, message: dict, text: str) -> None:
        """§4: `{"event":"bts:subscription_succeeded","channel":"live_orders_btcusd","data":{}}`,
        `{"event":"bts:heartbeat","channel":"","data":{"status":"success"}}`, `{"event":"bts:error",
        "channel":"","data":{"code":null,"message":"Invalid channel provided."}}`, and
        `{"event":"bts:request_reconnect","channel":"","data":null}` (its `data` never captured: any)."""
        if event == "bts:request_reconnect":
            raise ReconnectRequested(NAME, message.get("data"))
        if event == "bts:error":
            data = message.get("data")
            reason = data.get("message") if type(data) is dict else data
            raise MessageError(NAME, f"venue error {_short(reason)}", text)
        if event == "bts:subscription_succeeded" and live is not None:
            log.info("%s: subscribed to %s", NAME, live.channel)
        elif live is not None and event not in QUIET_EVENTS:
            raise MessageError(NAME, f"unknown event {_short(event)} on {live.channel}: its effect on the book "
                                     "is unknown", text)
        # anything else (a heartbeat answer, an unsubscribe ack, other channels' data) changes no book

    def _on_order(self, live: LiveOrders, update: OrderUpdate) -> None:
        if not live.link(update):
            return
        feed = live.feed
        self.touch(feed)
        bridge = live.bridge
        if bridge.state is not BridgeState.SYNCED:
            bridge.buffer(update.stamp, update)
            self._maybe_fetch(live, self.clock())
            return
        if update.kind != DELETED and bridge.covered(update.stamp):
            live.stats.covered += 1   # a create/change the snapshot already holds (a socket behind REST)
            return
        if self._apply(live, update):
            self.applied(feed)

    # --- the snapshot ------------------------------------------------------------------------------
    def _maybe_fetch(self, live: LiveOrders, now: float) -> None:
        if now < live.fetch_after or not live.bridge.fetch_due(now):
            return
        self._fetch_serial += 1
        tag = f"snapshot {live.native} {self._fetch_serial}"
        if live.fetch_tag is not None:
            self._fetching.pop(live.fetch_tag, None)   # an answer to an abandoned request is not waited for
        live.fetch_tag = tag
        self._fetching[tag] = live
        url = f"{self._rest_url}/api/v2/order_book/{live.native}/?group=2"
        if self._cache_buster:
            url += f"&_={int(now * 1000)}"
        self.emit(Fetch(HttpRequest("GET", url), tag))

    def on_http(self, tag: str, status: int, body: str) -> None:
        live = self._fetching.pop(tag, None)
        if live is None:
            log.debug("%s: answer to %s ignored (an earlier connection or request)", NAME, tag)
            return
        live.fetch_tag = None
        now = self.clock()
        if status != 200:
            self._snapshot_failed(live, status, body, now)
            return
        message = decode_object(NAME, body)
        stamp = snapshot_stamp(message, body)
        if stamp is None:
            live.stats.refetches += 1
            live.bridge.failed(now, STALE_RETRY_SECONDS)
            log.info("%s: %s snapshot without a microtimestamp: fetching again", NAME, live.native)
            return
        bridged = live.bridge.snapshot(stamp // 1000 * 1000 - 1, message)
        if bridged is None:
            live.stats.refetches += 1
            live.fetch_after = now + STALE_RETRY_SECONDS
            log.info("%s: %s snapshot at %d is older than the first buffered event: fetching again in %g s",
                     NAME, live.native, stamp, STALE_RETRY_SECONDS)
            return
        self._load(live, Snapshot(stamp, snapshot_orders(message, body)), bridged.replay)

    def _snapshot_failed(self, live: LiveOrders, status: int, body: str, now: float) -> None:
        """429 and 5xx (or no answer, status 0) are retried; a 400 while the cache-buster is on turns it
        off (the docs say GET parameters may be refused, error 400.018, §10 item 8); anything else
        means this connection cannot get a book: reconnect (with the shell's backoff)."""
        if status == 429:
            live.bridge.failed(now, RATE_LIMITED_RETRY_SECONDS)
        elif status == 0 or status >= 500:
            live.bridge.failed(now, RETRY_SECONDS)
        elif status == 400 and self._cache_buster:
            self._cache_buster = False
            log.warning("%s: snapshot refused (HTTP 400 %s): asking again without the cache-buster",
                        NAME, body[:120])
            live.bridge.failed(now, 0.0)
        else:
            raise SnapshotError(NAME, f"{live.native} snapshot answered HTTP {status}: {body[:120]!r}")

    def _load(self, live: LiveOrders, snapshot: Snapshot, replay: list[OrderUpdate]) -> None:
        """Replace the book (never merge), then replay the buffered events it does not hold."""
        feed, book = live.feed, live.book
        book.clear()
        live.pending.clear()
        for order_id, side, price, amount in snapshot.orders:
            book.add(order_id, side, price, amount)
        if book.crossed():
            raise CrossedBook(NAME, book.best(_BID)[0], book.best(_ASK)[0])
        live.stats.snapshots += 1
        live.stats.replayed = len(replay)
        for update in replay:
            self._apply(live, update)
        self.go_live(feed)
        self.applied(feed)
        log.info("%s: %s snapshot at %d loaded (%d orders), %d buffered events replayed", NAME, live.native,
                 snapshot.stamp, len(snapshot.orders), len(replay))

    # --- applying one event ------------------------------------------------------------------------
    def _apply(self, live: LiveOrders, update: OrderUpdate) -> bool:
        """Apply one chain-checked event; True when the book changed (§8 "Event semantics")."""
        live.events += 1
        if update.source != ORDERBOOK_SOURCE:
            live.stats.other_sources += 1   # e.g. stop orders (S6): not on the visible book, UNVERIFIED
            return False
        order_id = update.order_id
        if update.kind == DELETED:
            changed = self._delete(live, order_id)
            if order_id in live.market_orders:
                del live.market_orders[order_id]
        elif order_id in live.market_orders or update.price is None:
            live.skip_market_order(order_id)   # a market order: never on the book (§8), its events are told
            changed = False
        else:
            changed = self._place(live, update)
        if live.pending:
            changed = self._settle(live, update.stamp) or changed
        self.emit(OrderEvent(live.feed.key, update.kind, order_id, update.side.value, update.price,
                             update.size if update.kind != DELETED else None, update.filled, at=update.stamp / 1e6))
        return changed

    def _delete(self, live: LiveOrders, order_id: str) -> bool:
        """Remove by id, never by the delete's price (§8). Unknown ids are counted, not faults: warm-up
        deletes of orders the snapshot missed (§8 step 6), takers that never rested."""
        if live.book.remove(order_id):
            return True
        if live.pending.pop(order_id, None) is None and order_id not in live.market_orders:
            live.stats.unknown_deletes += 1
        return False

    def _place(self, live: LiveOrders, update: OrderUpdate) -> bool:
        """Put an order at (side, price, remaining size): a create, or a change (set, never a delta).

        - Resting at the same price: the size is set in place (its queue position kept; 0 removes it).
        - Resting at another price (a price move, §8): it leaves its level and joins the back of the new
          one (priority after a move is UNVERIFIED, §10 item 3).
        - Unknown (a change of an order we never had: upserted, §8 step 4; or a create): placed.
        - Placed at a price that crosses the opposite touch: held PENDING, out of the book, until its own
          change shows it passive, its delete drops it, or `_settle` decides (module docstring)."""
        book = live.book
        order_id, side, price, amount = update.order_id, update.side, update.price, update.size
        resting = book.order(order_id)
        if resting is not None:
            if resting.side is not side:
                raise MessageError(NAME, f"order {order_id} changed side from {resting.side.value} to "
                                         f"{side.value}")
            if resting.price == price:
                return book.set_size(order_id, amount)
            book.remove(order_id)
        held = live.pending.pop(order_id, None)
        if not amount:
            return resting is not None
        if _crosses(book, side, price):
            if held is None:
                live.stats.aggressors += 1
                held = Pending(side, price, amount, update.stamp, live.events, 0)
            live.pending[order_id] = held._replace(price=price, size=amount, last_ms=update.stamp // 1000)
            return resting is not None
        book.add(order_id, side, price, amount)
        if held is not None:
            live.stats.aggressors_rested += 1
        return True

    def _settle(self, live: LiveOrders, stamp: int) -> bool:
        """Judge the pending aggressors after an event, once the stream has moved past an aggressor's
        millisecond (a match is published within one: S5; a sweep of hundreds of makers is hundreds of
        events in it). Then one that no longer crosses rests; one still crossing after the grace (venue
        time, or events as a backstop against a stuck venue clock) is a crossed book."""
        book = live.book
        millisecond = stamp // 1000
        changed = False
        for order_id, held in list(live.pending.items()):
            if millisecond <= held.last_ms:
                continue
            if not _crosses(book, held.side, held.price):
                del live.pending[order_id]
                book.add(order_id, held.side, held.price, held.size)
                live.stats.aggressors_rested += 1
                changed = True
            elif (live.events - held.since_events > AGGRESSOR_GRACE_EVENTS
                  or stamp - held.since_stamp > self._grace_us):
                opposite = book.best(_ASK if held.side is _BID else _BID)[0]   # it crosses: there is one
                bid, ask = (held.price, opposite) if held.side is _BID else (opposite, held.price)
                log.warning("%s: %s: order %s stayed marketable for %d events / %.3f s", NAME, live.channel,
                            order_id, live.events - held.since_events, (stamp - held.since_stamp) / 1e6)
                raise CrossedBook(NAME, bid, ask)
        return changed


def _crosses(book: L3Book, side: Side, price: Decimal) -> bool:
    """Would an order at `price` on `side` trade against the opposite touch?"""
    if side is _BID:
        best = book.best(_ASK)
        return best is not None and price >= best[0]
    best = book.best(_BID)
    return best is not None and price <= best[0]


SIM_FAULTS = {
    "gap": "the venue skips one event id: the next event's pre_event_id names an event never sent",
    "drop": "this connection loses one order event (the chain breaks at the next one)",
    "duplicate": "one step's events are sent twice (already-taken event ids are skipped)",
    "disconnect": "the socket is closed under the client",
    "silence": "nothing more is sent, socket kept open (stale, then a reconnect)",
    "garbage": "a frame that is not JSON",
    "crossed": "a marketable create that never trades nor leaves (held pending, then a crossed-book fault)",
    "slow-snapshot": "the next snapshot is answered 1.5 s late (the client buffers meanwhile)",
    "request-reconnect": "bts:request_reconnect, then the venue closes the socket a few seconds later",
}

VENUE = VenueSpec(
    name=NAME,
    title="Bitstamp spot, WebSocket v2 live_orders (L3, event-id chain) + REST group=2 snapshot",
    settings=BitstampSettings,
    processor=BitstampProcessor,
    native_symbol=native_symbol,
    instrument="spot",
    # One connection per pair: a chain break means reconnect-and-reseed (§8), and on a shared connection
    # it would drop and reseed every other pair's book too (a 387 KB snapshot each).
    multiplexed=False,
    simulator="data_manager.sim.bitstamp:BitstampSim",
    sim_faults=SIM_FAULTS,
    limits=ConnectLimits(min_interval=1.0, attempts=30, per_seconds=60.0, immediate_retry=True,
                         source="UNVERIFIED: Bitstamp publishes no WebSocket connection limit "
                                "(venues-bitstamp.md §5); conservative: 1 attempt a second, 30 a minute"),
)
