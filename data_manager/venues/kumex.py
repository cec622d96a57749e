"""KuCoin Futures (KuMEX) inverse perpetuals (XBTUSDM): level 2 first, upgraded to level 3 when served.

Three small state machines, each written once (venues.md 4, venues-2026.md 2):

1. The link, per connection (`Link`):
       TOKEN --bullet answer--> OPENING --socket open--> WELCOME --welcome--> READY
   `on_begin` asks for a fresh token on every attempt (`POST /api/v1/bullet-public`); its answer names
   the server, the ping interval (18 s today) and the ping timeout. Connect to
   `endpoint?token=...&connectId=...`; after the `welcome` subscribe; acks are matched by id. Pings
   every `pingInterval`; a pong is proof of life for the book (a quiet book is not stale) and no pong
   within `pingTimeout` means the connection is dead.
2. The sync of each book topic (`Stream`) with the shared `SnapshotBridge` (slack 1, positions =
   `sequence`): buffer, GET the REST snapshot, drop what it covers, replay; then `sequence` steps by 1
   exactly (lower: a duplicate, skipped; higher: `SequenceGap`, rebuilt in place on this connection).
3. The book in use (`Level3`):
       OFF (level3: false)            the level-2 book, always
       TRYING --level 3 in sync--> IN_USE     the level-2 book is live meanwhile; then an L3Book
       TRYING --refused / silent / snapshot refused--> UNAVAILABLE   final for the session
   The level-2 topic is subscribed first and its book goes live as soon as it is bridged. Level 3
   (`/contractMarket/level3v2`, withdrawn from the docs in 2021) is subscribed on the same connection
   once level 2 stands, and the book is swapped only when that stream is in sync, so a level 3 that
   never comes costs nothing. Refused means an `error` frame carrying our subscribe id (wire, 2026)
   or the connectId (docs); silent means no level-3 message 15 s after the ack. `feed.notes` and
   `feed.book_kind` always say which book is in use. After a fault the rebuild starts with level 2
   again (fast: one snapshot), then upgrades again.

A fault of the level-3 stream while it is not yet the book restarts that stream only: the live level-2
book is not the one that went wrong. Sizes are contracts; `feed.convert` turns them into base units
(XBTUSDM: 1 contract = 1 USD, BTC = contracts x contract_value / price, 8 dp half-even per level).
One connection per symbol (`multiplexed=False`): the level-3 verdict, the in-place rebuild (the base
clears every book of a connection on a fault) and the silence timer are per contract, so a gap on one
contract never blanks another; two symbols cost two tokens, well within the limits.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum
from functools import partial
from typing import Any, Callable, Sequence
from urllib.parse import quote

from data_manager.book import L3Book, Order, Side
from data_manager.errors import (BadLevel, ConnectionLost, CrossedBook, FeedError, MessageError, SequenceGap,
                                 SnapshotError)
from data_manager.feed import (Connect, Fetch, FeedBook, FeedProcessor, FeedSettings, HttpRequest, OrderEvent, Reconnect,
                               Send)
from data_manager.parse import decode_object, integer
from data_manager.registry import ConnectLimits, VenueSpec
from data_manager.symbols import Symbol
from data_manager.sync import BridgeState, Bridged, SnapshotBridge
from data_manager.venues.kumex_parse import (MATCH, OPEN, RECEIVED, VENUE as NAME, Event, RestRefusal, apply_level3, in_base_units,
                                             level2_change, level2_snapshot, level3_event, level3_snapshot,
                                             read_token, rest_answer)

log = logging.getLogger(__name__)

PING_SECONDS = 18.0
"""pingInterval of today's bullet answer (K-USDK, K-PROBE 2026-09-22); the answer's own value wins."""
PING_TIMEOUT_SECONDS = 10.0
WELCOME_SECONDS = 10.0
"""Connected, but no welcome for this long: the server is not speaking (the official SDK waits 5 s)."""
LEVEL3_SILENCE_SECONDS = 15.0
"""Level 3 acked, but no level3v2 message for this long: not served (venues-2026 2.7 suggests 15 s)."""
RATE_LIMITED_SECONDS = 60.0
"""A snapshot answered HTTP 429 (or code 429000): the level-3 snapshot was limited to 1 request/min per IP
(docs 2021-02-25)."""
RETRY_SECONDS = 2.0
"""A snapshot answered HTTP 5xx, not at all (status 0), or unreadably: ask again after this long."""
REFUSED_RETRY_SECONDS = 60.0
"""Any other snapshot refusal (a 4xx, an error `code` with HTTP 200): it will not fix itself quickly."""
TOKEN_TAG = "token"
NATIVE = {("BTC", "USD"): "XBTUSDM", ("ETH", "USD"): "ETHUSDM"}
"""Inverse (coin-margined) perpetuals, 1 USD per contract; note XBT, not BTC."""
ZERO = Decimal(0)
IN_PLACE = (SequenceGap, CrossedBook, BadLevel, MessageError, SnapshotError)
"""Faults a fresh snapshot on the same connection cures; anything else (the socket, staleness) reconnects."""


@dataclass(frozen=True)
class KumexSettings(FeedSettings):
    url: str = field(default="wss://ws-api-futures.kucoin.com/", metadata={"schemes": ("ws://", "wss://")})
    """Only a fallback: the server to connect to comes with every token (K-USDK: "use a dynamic URL")."""
    rest_url: str = field(default="https://api-futures.kucoin.com", metadata={"schemes": ("http://", "https://")})
    level3: bool = False
    """Also try level 3 on the same connection (withdrawn from the docs in 2021; UNVERIFIED today)."""
    contract_value: Decimal = field(default=Decimal(1), metadata={"minimum": Decimal("1E-8")})
    """USD per contract (XBTUSDM: multiplier -1, 1 contract = 1 USD)."""
    max_age: float = field(default=45.0, metadata={"minimum": 0.5, "maximum": 3600})
    """More than twice the 18 s ping interval: a quiet book is kept alive by pongs."""


class Link(str, Enum):
    """One connection's handshake."""

    TOKEN = "token"        # the bullet-public answer is awaited (or its retry is due)
    OPENING = "opening"    # Connect was asked for; the socket is not open yet
    WELCOME = "welcome"    # open; KuCoin's welcome is awaited before anything is sent
    READY = "ready"        # welcomed: subscriptions go out, pings run
    CLOSED = "closed"      # the socket is gone; a new attempt starts with `begin`


class Level3(str, Enum):
    """Which book is in use: level 2, or level 3 once it is in sync."""

    OFF = "off"                  # settings.level3 is false
    TRYING = "trying"            # subscribed (or about to be); the level-2 book is in use meanwhile
    IN_USE = "in use"            # the book is the level-3 book
    UNAVAILABLE = "unavailable"  # refused, silent or its snapshot refused: level 2 for the session


@dataclass
class Stream:
    """One book topic on the connection and its sync with the REST snapshot."""

    level: int
    topic: str
    url: str             # the REST snapshot
    tag: str             # the Fetch tag of that snapshot
    bridge: SnapshotBridge = field(default_factory=lambda: SnapshotBridge(slack=1))
    subscribe_id: str | None = None
    acked: bool = False
    seen: bool = False         # a message of this topic arrived on this connection
    refused: bool = False      # the venue answered our subscribe with an error
    last: int | None = None    # the last applied sequence, once synced
    duplicates: int = 0        # messages skipped because their sequence was already held

    def restart(self) -> None:
        """The book of this topic starts over (the subscription stands)."""
        self.bridge.restart()
        self.last = None

    def reset(self) -> None:
        """A new connection: nothing subscribed yet."""
        self.restart()
        self.subscribe_id = None
        self.acked = self.seen = self.refused = False

    def accept(self, sequence: int, delta: Any) -> bool:
        """True: apply `delta` now (it is the next one). False: buffered for the snapshot, or a
        duplicate. A skipped sequence, live or in the buffer, is a `SequenceGap`."""
        last = self.last
        if last is None:
            last = self.bridge.last_buffered()
            if last is None or sequence == last + 1:
                self.bridge.buffer(sequence, delta)
                return False
        elif sequence == last + 1:
            self.last = sequence
            return True
        if sequence <= last:
            self.duplicates += 1
            return False
        raise SequenceGap(NAME, last + 1, sequence)


def request_frame(ident: str, kind: str, topic: str) -> str:
    """FD / K-USDK: {"id":"1545910660739","type":"subscribe","topic":"/contractMarket/level2:XBTUSDM",
    "privateChannel":false,"response":true}; the id goes as a string (acks echo a string)."""
    return json.dumps({"id": ident, "type": kind, "topic": topic, "privateChannel": False, "response": True},
                      separators=(",", ":"))


def order_event(feed: FeedBook, subject: str, event: Event, order: Order | None, ts: Any) -> OrderEvent:
    """The event as subscribers see it: the order's side and price, its size after the event (0 when it
    left the book), what a match filled, the venue's `ts` (ns) as epoch seconds."""
    kind = event[0]
    at = ts / 1e9 if type(ts) is int else None
    if kind == OPEN:
        return OrderEvent(feed.key, subject, event[1], event[2].value, event[3], event[4], at=at)
    if kind == RECEIVED:
        return OrderEvent(feed.key, subject, event[1], client_oid=event[2], at=at)
    if order is None:  # a taker or a rejected order: never on the book
        return OrderEvent(feed.key, subject, event[1], filled=event[2] if kind == MATCH else None, at=at)
    return OrderEvent(feed.key, subject, event[1], order.side.value, order.price,
                      order.size if event[1] in feed.book else ZERO, event[2] if kind == MATCH else None, at=at)


def _ident(value: Any) -> str | None:
    """A frame's `id` compared as a string (the docs send numbers, acks echo strings)."""
    if type(value) is int:
        return str(value)
    return value if type(value) is str else None


def _why(message: dict) -> str:
    code, data = message.get("code"), message.get("data")
    return f"{str(code)[:12] if type(code) in (int, str) else '?'} {data[:120] if type(data) is str else ''}".strip()


class KumexProcessor(FeedProcessor):
    """One KuMEX connection carrying one contract (see the module docstring for the three machines)."""

    venue = NAME
    book_kind = "L2"
    ping_interval = PING_SECONDS
    no_book_after = RATE_LIMITED_SECONDS + 15.0
    """A rate-limited snapshot (429: 60 s) gets its second chance before the no-book watchdog reconnects."""

    def __init__(self, settings: KumexSettings, symbols: Sequence[tuple[Symbol, str]],
                 clock: Callable[[], float] = time.time) -> None:
        if len(symbols) != 1:
            raise ValueError("a KuMEX connection carries one symbol (VENUE.multiplexed is False)")
        super().__init__(settings, symbols, clock)
        self.feed = next(iter(self.books.values()))
        native = self.feed.native
        rest = settings.rest_url.rstrip("/")
        self.token_url = f"{rest}/api/v1/bullet-public"
        self.level2 = Stream(2, f"/contractMarket/level2:{native}",
                             f"{rest}/api/v1/level2/snapshot?symbol={native}", "level2-snapshot")
        self.level3 = Stream(3, f"/contractMarket/level3v2:{native}",
                             f"{rest}/api/v2/level3/snapshot?symbol={native}", "level3-snapshot")
        self.l2_book = self.feed.book
        self.l3_book = L3Book()
        self.feed.convert = partial(in_base_units, settings.contract_value)
        self.level3_state = Level3.TRYING if settings.level3 else Level3.OFF
        self.level3_note = ""            # why level 3 is unavailable
        self.link = Link.CLOSED
        self.connect_id: str | None = None
        self.ping_timeout = PING_TIMEOUT_SECONDS
        self._ping: tuple[str, float] | None = None   # (id, sent at) of the oldest ping without a pong
        self._level3_deadline: float | None = None    # level 3 is silent if nothing arrives by then
        self._welcome_deadline = 0.0
        self._unsubscribe_id: str | None = None
        self._last_id = 0
        self._describe()

    # --- the link ------------------------------------------------------------------------------
    def on_begin(self) -> None:
        """A fresh token for every connection (one token per connection, valid 24 h: K-DOC-L2)."""
        self.link = Link.TOKEN
        self.emit(Fetch(HttpRequest("POST", self.token_url), TOKEN_TAG))

    def _on_token(self, status: int, body: str) -> None:
        if self.link is not Link.TOKEN:
            return  # a leftover answer
        try:
            answer = rest_answer(body, "bullet-public") if status == 200 else None
            token = read_token(answer, body) if isinstance(answer, dict) else None
        except MessageError as error:  # no connection yet, so nothing to resync: this attempt failed
            self._token_failed(error.detail())
            return
        if token is None:
            refused = f" code {answer.code} {answer.message}" if isinstance(answer, RestRefusal) else ""
            self._token_failed(f"HTTP {status}{refused}".strip())
            return
        self.ping_interval = token.ping_interval or PING_SECONDS
        self.ping_timeout = token.ping_timeout or PING_TIMEOUT_SECONDS
        endpoint = token.endpoint
        if endpoint is None:
            endpoint = self.settings.url
            log.warning("%s: the token names no server: connecting to the configured %s", self.venue, endpoint)
        self.connect_id = self._new_id()
        separator = "&" if "?" in endpoint else "?"
        self.link = Link.OPENING
        self.emit(Connect(f"{endpoint}{separator}token={quote(token.token, safe='=')}&connectId={self.connect_id}"))

    def _token_failed(self, why: str) -> None:
        """No token, no connection: the attempt ends here and the shell tries again after its backoff
        (within the venue's limits); no book changes state, since no socket was ever open."""
        self.link = Link.CLOSED
        self.emit(Reconnect(f"bullet-public failed: {why}"))

    def on_reset(self) -> None:
        self.level2.reset()
        self.level3.reset()
        self._ping = self._level3_deadline = self._unsubscribe_id = None

    def on_connected(self) -> None:
        self.link = Link.WELCOME  # KuCoin wants nothing before its welcome
        self._welcome_deadline = self.clock() + WELCOME_SECONDS

    def connection_lost(self, reason: str) -> None:
        super().connection_lost(reason)
        self.link = Link.CLOSED  # answers and timers of the old socket are not ours any more
        self.level2.restart()
        self.level3.restart()
        if self.level3_state is Level3.IN_USE:
            self.level3_state = Level3.TRYING  # the next connection starts with level 2 again
        self._use_level2_book()

    def ping_message(self) -> str | None:
        """FD: `{"id":"1545910590801","type":"ping"}` every pingInterval; the oldest unanswered one counts."""
        if self.link is not Link.READY:
            return None
        ident = self._new_id()
        if self._ping is None:
            self._ping = (ident, self.clock())
        return json.dumps({"id": ident, "type": "ping"}, separators=(",", ":"))

    def _new_id(self) -> str:
        """A millisecond id, as the docs use; strictly increasing, so two requests never share one."""
        self._last_id = max(int(self.clock() * 1000), self._last_id + 1)
        return str(self._last_id)

    # --- frames --------------------------------------------------------------------------------
    def on_frame(self, text: str) -> None:
        """Dispatch on `type` (welcome / ack / pong / message / error; notice and command carry
        nothing for a book: K-USDK constants.py), then on `topic`, then on `subject`."""
        message = decode_object(NAME, text)
        kind = message.get("type")
        if kind == "message":
            self._on_message(message, text)
        elif kind == "pong":
            self._ping = None   # {"id":"p16","type":"pong","timestamp":1790113097236506} (K-PROBE 6)
            self.touch_all()
        elif kind == "ack":
            self._on_ack(_ident(message.get("id")))
        elif kind == "welcome":
            self._on_welcome(_ident(message.get("id")))
        elif kind == "error":
            self._on_error(message, text)

    def _on_welcome(self, ident: str | None) -> None:
        """{"id":"hQvf8jkno","type":"welcome"}: the id is our connectId (docs; tolerated if not)."""
        if self.link is not Link.WELCOME:
            return
        if ident != self.connect_id:
            log.debug("%s: welcome id %r is not our connectId %r", self.venue, ident, self.connect_id)
        self.link = Link.READY
        self._subscribe(self.level2)

    def _subscribe(self, stream: Stream) -> None:
        stream.subscribe_id = self._new_id()
        self.emit(Send(request_frame(stream.subscribe_id, "subscribe", stream.topic)))

    def _subscribe_level3(self) -> None:
        """Level 3 goes out once level 2 stands (acked or delivering), so an error frame carrying the
        connectId can only be about the one subscribe still unanswered."""
        if self.level3_state is Level3.TRYING and self.level3.subscribe_id is None:
            self._subscribe(self.level3)
            self._level3_deadline = self.clock() + LEVEL3_SILENCE_SECONDS

    def _on_ack(self, ident: str | None) -> None:
        """{"id":"1545910660739","type":"ack"}."""
        if ident is None:
            return
        if ident == self.level2.subscribe_id:
            self.level2.acked = True
            log.info("%s: subscribed to %s", self.feed.key, self.level2.topic)
            self._subscribe_level3()
        elif ident == self.level3.subscribe_id and self.level3_state is Level3.TRYING:
            self.level3.acked = True
            log.info("%s: subscribed to %s", self.feed.key, self.level3.topic)
            if not self.level3.seen:
                self._level3_deadline = self.clock() + LEVEL3_SILENCE_SECONDS

    def _on_error(self, message: dict, text: str) -> None:
        """{"id":"p28","type":"error","code":404,"data":"topic does not exist"} with our subscribe id
        (wire, K-PROBE 4), or with the connectId (docs). Anything else is about the connection
        (e.g. {"type":"error","code":400,"data":"ping timeout"}, then the venue closes)."""
        ident, why = _ident(message.get("id")), _why(message)
        l2, l3 = self.level2, self.level3
        if ident is not None and ident == self._unsubscribe_id:
            return
        if (self.level3_state is Level3.TRYING and l3.subscribe_id is not None
                and (ident == l3.subscribe_id or (ident == self.connect_id and not l3.acked))):
            self._fall_back(f"subscribe refused: {why}", unsubscribe=False)
            return
        if l2.subscribe_id is not None and (ident == l2.subscribe_id
                                            or (ident == self.connect_id and not (l2.acked or l2.seen))):
            l2.refused = True
            raise MessageError(NAME, f"level-2 subscribe refused: {why}", text)
        raise ConnectionLost(NAME, f"venue error {why}")

    def _on_message(self, message: dict, text: str) -> None:
        topic = message.get("topic")
        if topic == self.level2.topic:
            if self.level3_state is not Level3.IN_USE:  # in use, level 2 is not read
                if message.get("subject") != "level2":
                    raise MessageError(NAME, "a level-2 message without subject level2", text)
                self._on_level2(message.get("data"), text)
        elif topic == self.level3.topic:
            if self.level3_state is Level3.TRYING:
                self._level3_step(self._on_level3, message.get("subject"), message.get("data"), text)
            elif self.level3_state is Level3.IN_USE:
                self._on_level3(message.get("subject"), message.get("data"), text)
        # other topics were never subscribed (the fixture's tickerV2): not ours

    def _on_level2(self, data: Any, text: str) -> None:
        if type(data) is not dict:
            raise MessageError(NAME, "message without a data object", text)
        delta = level2_change(data, text)
        stream, feed = self.level2, self.feed
        if not stream.seen:
            stream.seen = True
            self._subscribe_level3()
        self.touch(feed)
        if stream.accept(delta[0], delta):
            self.l2_book.apply(delta[1], delta[2], delta[3])
            feed.health.integrity.last_sequence = delta[0]
            self.applied(feed)
        elif stream.last is None:
            self._fetch_if_due(stream)

    def _on_level3(self, subject: Any, data: Any, text: str) -> None:
        if type(data) is not dict:
            raise MessageError(NAME, "message without a data object", text)
        sequence = integer(NAME, data.get("sequence"), "sequence", text)
        event = level3_event(subject, data, text)
        stream = self.level3
        if not stream.seen:
            stream.seen = True
            self._level3_deadline = None
        if self.level3_state is not Level3.IN_USE:
            stream.accept(sequence, (sequence, event, text))
            self._fetch_if_due(stream)
            return
        feed = self.feed
        self.touch(feed)
        if stream.accept(sequence, None):
            order = self.l3_book.order(event[1])
            apply_level3(self.l3_book, event, text)
            feed.health.integrity.last_sequence = sequence
            self.emit(order_event(feed, subject, event, order, data.get("ts")))
            if event[0] != RECEIVED:
                self.applied(feed)

    def _level3_step(self, step: Callable[..., None], *args: Any) -> None:
        """Level 3 while it is not the book yet: a fault of its own restarts its sync (logged) and
        leaves the live level-2 book alone. (Only `FeedError`, the venue's faults, is caught.)"""
        try:
            step(*args)
        except FeedError as error:
            log.warning("%s: level-3 sync restarts (%s: %s); the level-2 book stays in use",
                        self.feed.key, error.kind, error.detail())
            self.level3.restart()

    # --- snapshots -----------------------------------------------------------------------------
    def _syncing(self, stream: Stream) -> bool:
        if stream is self.level2:
            return self.level3_state is not Level3.IN_USE
        return self.level3_state is Level3.TRYING

    def _fetch_if_due(self, stream: Stream) -> None:
        if stream.bridge.fetch_due(self.clock()):
            self.emit(Fetch(HttpRequest("GET", stream.url), stream.tag))

    def on_http(self, tag: str, status: int, body: str) -> None:
        if tag == TOKEN_TAG:
            self._on_token(status, body)
        elif self.link is not Link.READY:
            return  # an answer for a connection that is gone
        elif tag == self.level2.tag and self._syncing(self.level2):
            self._on_snapshot(self.level2, status, body)
        elif tag == self.level3.tag and self._syncing(self.level3):
            self._level3_step(self._on_snapshot, self.level3, status, body)

    def _on_snapshot(self, stream: Stream, status: int, body: str) -> None:
        """A REST snapshot answer: retry (429: 60 s; 5xx / no answer: 2 s), refuse, or bridge it."""
        now = self.clock()
        try:
            answer = rest_answer(body, f"level-{stream.level} snapshot") if status == 200 else None
        except MessageError:
            stream.bridge.failed(now, RETRY_SECONDS)  # an unreadable answer: not again at once
            raise
        if answer is None and (status in (0, 429) or status >= 500):
            self._snapshot_failed(stream, RATE_LIMITED_SECONDS if status == 429 else RETRY_SECONDS, f"HTTP {status}")
            return
        if not isinstance(answer, dict):
            refusal = answer if isinstance(answer, RestRefusal) else RestRefusal(str(status), body[:80])
            if refusal.rate_limited:
                self._snapshot_failed(stream, RATE_LIMITED_SECONDS, f"code {refusal.code}")
            elif stream is self.level3:
                self._fall_back(f"level-3 snapshot refused: HTTP {status} code {refusal.code} {refusal.message}",
                                unsubscribe=True)
            else:
                stream.bridge.failed(now, REFUSED_RETRY_SECONDS)
                raise SnapshotError(NAME, f"level-2 snapshot refused: HTTP {status} code {refusal.code} "
                                           f"{refusal.message}")
            return
        native = self.feed.native
        if stream is self.level2:
            sequence, bids, asks = level2_snapshot(answer, native, body)
            bridged = stream.bridge.snapshot(sequence, (bids, asks))
        else:
            sequence, orders = level3_snapshot(answer, native, body)
            bridged = stream.bridge.snapshot(sequence, orders)
        if bridged is None:  # asked again with the next message or tick: never in a tight loop
            log.info("%s: level-%d snapshot %d cannot bridge the buffer: fetching again", self.feed.key,
                     stream.level, sequence)
        elif stream is self.level2:
            self._load_level2(bridged)
        else:
            self._load_level3(bridged)

    def _snapshot_failed(self, stream: Stream, delay: float, why: str) -> None:
        log.warning("%s: level-%d snapshot failed (%s): asking again in %g s", self.feed.key, stream.level,
                    why, delay)
        stream.bridge.failed(self.clock(), delay)

    def _load_level2(self, bridged: Bridged) -> None:
        """Replace the book (never merge), replay what the snapshot does not hold, go live."""
        bids, asks = bridged.snapshot
        book, stream, feed = self.l2_book, self.level2, self.feed
        book.replace(bids, asks)
        last = bridged.position
        for last, side, price, size in bridged.replay:
            book.apply(side, price, size)
        stream.last = last
        self.go_live(feed, bridged.position)
        feed.health.integrity.last_sequence = last
        self.applied(feed)
        log.info("%s: level-2 snapshot %d loaded, %d buffered messages replayed", feed.key, bridged.position,
                 len(bridged.replay))

    def _load_level3(self, bridged: Bridged) -> None:
        """Build the level-3 book aside; only a whole, uncrossed one replaces the level-2 book."""
        book, stream, feed = self.l3_book, self.level3, self.feed
        book.clear()
        for oid, side, price, size in bridged.snapshot:
            book.add(oid, side, price, size)
        last = bridged.position
        for last, event, text in bridged.replay:
            apply_level3(book, event, text)
        if book.crossed():
            raise CrossedBook(NAME, book.best(Side.BID)[0], book.best(Side.ASK)[0])
        stream.last = last
        self.level3_state = Level3.IN_USE
        feed.book = book
        self.level2.restart()   # not read while level 3 is in use; it starts over after a fault
        self.l2_book.clear()
        self._describe()
        self.go_live(feed, bridged.position)
        feed.health.integrity.last_sequence = last
        self.emit(feed.changed_action)
        log.info("%s: level-3 snapshot %d loaded, %d buffered messages replayed: the book is level 3 now",
                 feed.key, bridged.position, len(bridged.replay))

    # --- level 3: upgrade, fallback ------------------------------------------------------------
    def _fall_back(self, why: str, unsubscribe: bool) -> None:
        """Level 3 is not served: the level-2 book stays in use for the rest of the session, said in
        notes (a reconnect does not ask again: the answer would be the same, after up to 15 s)."""
        if self.level3_state is not Level3.TRYING:
            return
        log.warning("%s: level 3 unavailable (%s): level 2 for this session", self.feed.key, why)
        stream = self.level3
        if unsubscribe and stream.subscribe_id is not None:
            self._unsubscribe_id = self._new_id()
            self.emit(Send(request_frame(self._unsubscribe_id, "unsubscribe", stream.topic)))
        stream.reset()
        self.l3_book.clear()
        self.level3_state = Level3.UNAVAILABLE
        self.level3_note = why
        self._level3_deadline = None
        self._describe()

    def _use_level2_book(self) -> None:
        self.feed.book = self.l2_book
        self.l2_book.clear()
        self.l3_book.clear()
        self._describe()

    def _describe(self) -> None:
        state = self.level3_state
        if state is Level3.IN_USE:
            kind, note = "L3", "L3"
        elif state is Level3.UNAVAILABLE:
            kind, note = "L2", f"L2 (level 3 unavailable: {self.level3_note})"
        elif state is Level3.TRYING:
            kind, note = "L2", "L2 (level 3 not in sync yet)"
        else:
            kind, note = "L2", "L2"
        self.feed.book_kind = kind
        self.feed.notes = (note,)

    # --- time and faults -----------------------------------------------------------------------
    def on_tick(self, now: float) -> None:
        if self.link is Link.WELCOME and now > self._welcome_deadline:
            raise ConnectionLost(NAME, f"no welcome within {WELCOME_SECONDS:g} s of connecting")
        if self.link is not Link.READY:
            return
        if self._ping is not None and now - self._ping[1] > self.ping_timeout:
            raise ConnectionLost(NAME, f"no pong {now - self._ping[1]:.1f} s after our ping "
                                        f"(pingTimeout {self.ping_timeout:g} s)")
        if self._level3_deadline is not None and now >= self._level3_deadline:
            answered = "acked, then silent" if self.level3.acked else "neither acked nor refused"
            self._fall_back(f"no level-3 message within {LEVEL3_SILENCE_SECONDS:g} s ({answered})", unsubscribe=True)
        for stream in (self.level2, self.level3):
            if self._syncing(stream) and stream.bridge.state is not BridgeState.SYNCED:
                self._fetch_if_due(stream)

    def resync_in_place(self, error: FeedError) -> bool:
        """Rebuild on this connection whenever the subscription stands: a gap, a crossed book, a bad
        level, a garbled frame or a bad snapshot all call for the same cure, a fresh snapshot bridged to
        the stream, and the sequence numbers prove nothing is missing after it. WebSocket frames
        arrive whole or not at all, so a garbled frame is the venue's, not the connection's. The
        rebuild starts with level 2 again (one fast snapshot), then upgrades to level 3 again."""
        if self.link is not Link.READY or self.level2.refused or not isinstance(error, IN_PLACE):
            return False
        self.level2.restart()
        self.level3.restart()
        if self.level3_state is Level3.IN_USE:
            self.level3_state = Level3.TRYING
        self._use_level2_book()
        return True


# --- the registry entry --------------------------------------------------------------------------
def native_symbol(symbol: Symbol) -> str:
    native = NATIVE.get((symbol.base, symbol.quote))
    if native is None:
        raise ValueError(f"kumex has no inverse perpetual for {symbol} (it has: "
                         f"{', '.join(f'{b}-{q}' for b, q in NATIVE)})")
    return native


def venue_notes(settings: KumexSettings, symbol: Symbol) -> tuple[str, ...]:
    value = settings.contract_value
    return (f"perpetual future {native_symbol(symbol)}: prices carry a basis over spot",
            f"sizes are contracts of {value} {symbol.quote}: {symbol.base} = contracts x {value} / price "
            f"(8 dp, half-even, per level)")


SIM_FAULTS = {
    "gap": "the venue skips one sequence number on every book topic (all later messages are one higher)",
    "drop": "this connection loses one message of each book topic it is subscribed to",
    "duplicate": "one step's messages are sent twice (already-held sequences are skipped)",
    "disconnect": "the socket is closed after a message",
    "silence": "no data and no pongs any more, socket kept open (the ping timeout notices)",
    "crossed": "a made-up order (level 3) or level (level 2) at the best ask, numbered as the next message",
    "garbage": "a frame that is not JSON",
    "slow-snapshot": "the connection's first REST snapshot is taken at once but answered 1.5 s later",
    "l3-refused": "the level-3 subscribe is answered by an error frame (404 topic does not exist), carrying "
                  "our id, or the connectId with the simulator's refusal_echo='connectId'",
    "l3-silent": "the level-3 subscribe is acked, then nothing is ever sent on it",
}

VENUE_SPEC_LIMITS = ConnectLimits(
    min_interval=2.0, attempts=30, per_seconds=60.0, immediate_retry=True,
    source="venues.md 4 (docs: 30 connections/min, 50 per user); venues-2026.md 2.5 (docs 2026-08-27: "
           "100 client messages/10 s, <= 800 concurrent connections, no per-minute figure, so the 30/min rule "
           "is kept; each attempt also costs a bullet-public token, weight 10 of 2,000 per 30 s)")

VENUE = VenueSpec(
    name=NAME,
    title="KuCoin Futures (KuMEX) inverse perpetual: level 2 + REST snapshot (sequence +1), "
          "upgraded to level 3 when served",
    settings=KumexSettings,
    processor=KumexProcessor,
    native_symbol=native_symbol,
    instrument="perpetual",
    multiplexed=False,
    simulator="data_manager.sim.kumex:KumexSim",
    sim_faults=SIM_FAULTS,
    limits=VENUE_SPEC_LIMITS,
    notes=venue_notes,
)
