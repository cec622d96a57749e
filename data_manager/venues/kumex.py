"""KuCoin Futures (KuMEX) `XBTUSDM`: a level-3 (order-by-order) book, or level 2 when level 3 is refused.

Protocol (venues.md section 4; the shapes of captures/kumex_l3_XBTUSDM_documented/):

1. `POST /api/v1/bullet-public` gives a token and a server; connect to
   `endpoint?token=...&connectId=...`, wait for the `welcome` whose `id` is our connectId, subscribe
   (`id` as a string, `privateChannel false`, `response true`), match the `ack` by `id`.
2. Dispatch on `type` (welcome / ack / pong / message / error), then on `topic`, then on `subject`.
3. Book sync, the same for both feeds: buffer the topic's messages; once some are buffered, GET the REST
   snapshot (once; the shell keeps receiving meanwhile); a snapshot that ends before the message just
   ahead of the buffer cannot bridge the stream: fetch again; a snapshot newer than the buffer waits
   until the buffer reaches it; load it, drop the buffered messages it covers, replay the rest. Live,
   `sequence` must step by 1 (lower: a duplicate, skipped; higher: `SequenceGap`, resync on the same
   connection).
4. Level 3 was withdrawn by KuCoin in 2021. When the venue refuses it (an `error` answer to the subscribe,
   a refused level-3 snapshot) or stays silent for 10 s after the ack, the processor switches to
   `/contractMarket/level2:XBTUSDM` + `GET /api/v1/level2/snapshot` on the same connection, says so in
   `mode_note` and logs a WARNING. The switch lasts for the processor's lifetime: a reconnect does not
   try level 3 again (the venue answered once; asking again costs up to 10 s of no book each time).

Sizes are contracts. `XBTUSDM` is inverse: one contract is `contract_value` USD (|multiplier| = 1), so a
level of N contracts at price P holds N * contract_value / P BTC; `levels()` converts lazily, per level
read, so a reader that stops early pays only for what it read.
"""
from __future__ import annotations

import json
import logging
import secrets
import time
from collections import deque
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Callable, Iterator
from urllib.parse import quote

from data_manager.book import L2Book, Level, Side
from data_manager.errors import BadLevel, MessageError, SequenceGap, SnapshotError
from data_manager.venues.base import BookState, HttpRequest, VenueProcessor

log = logging.getLogger(__name__)

SUCCESS = "200000"
"""KuCoin's `code` for a successful REST answer."""

SIDES = {"buy": Side.BID, "sell": Side.ASK}
BTC_QUANTUM = Decimal("1E-8")
LEVEL3_SILENCE_SECONDS = 10.0
"""Level 3 subscribed and acked, but no level3v2 message for this long: the venue no longer serves it."""
SNAPSHOT_TIMEOUT_SECONDS = 30.0
"""A snapshot request with no answer for this long is forgotten, so a new one can be asked for."""
RATE_LIMITED_RETRY_SECONDS = 60.0
"""HTTP 429 on a snapshot: the level-3 snapshot was limited to 1 request/min per IP (docs, 2021-02-25)."""
RETRY_SECONDS = 2.0
"""A 5xx or network failure on a snapshot: ask again after this long."""
MAX_BUFFERED = 200_000
"""Messages kept while waiting for a snapshot; the oldest go first (a later snapshot still bridges)."""
L2_NOTE = "L2 (level 3 unavailable)"
L2_CONFIGURED_NOTE = "L2 (level 3 off in the configuration)"

PARSE_ERRORS = (KeyError, TypeError, ValueError, ArithmeticError, AttributeError, IndexError)
"""What a frame of the wrong shape raises while we read it; turned into MessageError, never a traceback."""


@dataclass(frozen=True)
class Feed:
    """What differs between the level-3 and the level-2 feed: the topic and where its snapshot lives."""

    level: int
    topic: str
    snapshot_path: str


def feeds(symbol: str) -> tuple[Feed, Feed]:
    """The level-3 feed (tried first) and the level-2 fallback, for one symbol."""
    return (Feed(3, f"/contractMarket/level3v2:{symbol}", "/api/v2/level3/snapshot"),
            Feed(2, f"/contractMarket/level2:{symbol}", "/api/v1/level2/snapshot"))


@dataclass(frozen=True)
class BookSnapshot:
    """A parsed REST snapshot. Level 3: rows are (order_id, side, price, size) in load order (best price
    first, time priority within a price). Level 2: rows are (side, price, size)."""

    sequence: int
    rows: list[tuple]


Buffered = tuple[int, str, dict, str]
"""(sequence, subject, data, frame text) of a message waiting for the snapshot."""


_DECODER = json.JSONDecoder(parse_float=Decimal)


def _load_frame(text: str | bytes) -> Any:
    """`json.loads(text, parse_float=Decimal)` without building a decoder per frame: a str that is
    exactly one JSON value goes straight to `raw_decode` (skipping `decode`'s two whitespace scans);
    anything else (whitespace around it, bytes, an error) is left to json.loads, which decides."""
    if type(text) is str:
        try:
            value, end = _DECODER.raw_decode(text)
            if end == len(text):
                return value
        except ValueError:
            pass
    return json.loads(text, parse_float=Decimal)


def decimal(value: Any) -> Decimal:
    """An exact number from a JSON string or integer ("61000", 2000); floats never reach here."""
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
        raise TypeError(f"expected a number, got {value!r}")
    number = Decimal(value)
    if not number.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    return number


def integer(value: Any) -> int:
    """Sequences and nanosecond times are JSON integers beyond 2^53: they must stay exact ints."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {value!r}")
    return value


def order_id(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError(f"expected an order id string, got {value!r}")
    return value


class KumexProcessor(VenueProcessor):
    """Sans-I/O KuMEX client: bullet token, welcome/subscribe/ack, snapshot + buffered stream, fallback."""

    venue = "kumex"
    book_kind = "L3"
    size_unit = "contracts"

    def __init__(self, symbol: str = "XBTUSDM", rest_url: str = "https://api-futures.kucoin.com",
                 level3: bool = True, contract_value: Decimal = Decimal(1),
                 clock: Callable[[], float] = time.time, connect_id: str | None = None) -> None:
        super().__init__(symbol, clock)
        self.rest_url = rest_url.rstrip("/")
        self.contract_value = contract_value
        self.fixed_connect_id = connect_id
        self.connect_id = connect_id
        self.ping_interval: float | None = None
        self.ping_timeout: float | None = None
        self.duplicates = 0                 # messages skipped because their sequence was already applied
        self.last_sequence: int | None = None
        self._level3_feed, self._level2_feed = feeds(symbol)
        self.feed = self._level3_feed
        if not level3:
            self._use_level2(L2_CONFIGURED_NOTE)
        self._last_id = 0
        self._in_flight_since: float | None = None
        self._retry_at = 0.0
        self._start_connection()

    # --- modes --------------------------------------------------------------------------------
    @property
    def level3(self) -> bool:
        return self.feed.level == 3

    def _use_level2(self, note: str) -> None:
        """From here on: the level-2 topic, its snapshot, and an L2Book answering `levels()`."""
        self.feed = self._level2_feed
        self.book = L2Book()
        self.mode_note = note

    def _fall_back(self, reason: str, unsubscribe: bool) -> None:
        """Level 3 is not served: switch to level 2 on the same connection, and say so (never silently)."""
        if not self.level3:
            return
        log.warning("%s: level 3 unavailable (%s): falling back to %s", self.venue, reason,
                    self._level2_feed.topic)
        old_topic = self.feed.topic
        self._use_level2(L2_NOTE)
        self.integrity.notes.append(f"level 3 unavailable: {reason}")
        self._restart_sync()
        self.state = BookState.SYNCING
        if self._subscribed:
            if unsubscribe:
                self.outbox.append(self._request_frame("unsubscribe", old_topic))
            self._subscribe()

    # --- connection: token, url, welcome, subscribe, ping -----------------------------------------
    def token_request(self) -> HttpRequest:
        return HttpRequest("POST", self.rest_url + "/api/v1/bullet-public")

    def connect_url(self, url: str, token_response: str | None = None) -> str:
        """The WebSocket URL from the bullet answer; `url` (the configured one) is not used: KuCoin
        names the server per token.

        FD "Apply connect token" (trimmed):
        {"code":"200000","data":{"token":"vYNlCtbz4XNJ1Qnc…","instanceServers":[{"endpoint":
         "wss://push.kucoin.com/endpoint","protocol":"websocket","encrypt":true,"pingInterval":50000,
         "pingTimeout":10000}]}}
        """
        text = token_response or ""
        try:
            answer = json.loads(text)
            code, data = answer.get("code"), answer["data"]
            token, servers = data["token"], data["instanceServers"]
        except PARSE_ERRORS as exc:
            raise MessageError(self.venue, f"bullet-public answer unreadable ({exc!r})", text) from exc
        if code != SUCCESS:
            raise MessageError(self.venue, f"bullet-public refused with code {code!r}", text)
        if not isinstance(servers, list) or not servers or not isinstance(servers[0], dict) \
                or not isinstance(servers[0].get("endpoint"), str) or not isinstance(token, str):
            raise MessageError(self.venue, "bullet-public answer names no server", text)
        server = servers[0]
        self.ping_interval = self._seconds(server.get("pingInterval"))
        self.ping_timeout = self._seconds(server.get("pingTimeout"))
        self.connect_id = self.fixed_connect_id or secrets.token_hex(8)
        endpoint = server["endpoint"]
        separator = "&" if "?" in endpoint else "?"
        return f"{endpoint}{separator}token={quote(token, safe='=')}&connectId={quote(self.connect_id)}"

    @staticmethod
    def _seconds(milliseconds: Any) -> float | None:
        if isinstance(milliseconds, bool) or not isinstance(milliseconds, (int, Decimal)) or milliseconds <= 0:
            return None
        return float(milliseconds) / 1000

    def subscribe_messages(self) -> list[str]:
        """Nothing yet: KuCoin wants the subscribe only after its `welcome` (it goes in the outbox)."""
        return []

    def ping_message(self) -> str:
        """FD: `{"id":"1545910590801","type":"ping"}` every pingInterval; protocol pings don't count."""
        return json.dumps({"id": self._new_id(), "type": "ping"}, separators=(",", ":"))

    def _new_id(self) -> str:
        """A millisecond id, as the docs use; strictly increasing so two requests never share one."""
        self._last_id = max(int(round(self.clock() * 1000)), self._last_id + 1)
        return str(self._last_id)

    def _request_frame(self, kind: str, topic: str) -> str:
        """FD: {"id":"1545910660740","type":"subscribe","topic":"/contractMarket/level2:XBTUSDM",
        "privateChannel":false,"response":true}; the id is sent as a string (acks echo a string)."""
        self._request_id = self._new_id()
        return json.dumps({"id": self._request_id, "type": kind, "topic": topic, "privateChannel": False,
                           "response": True}, separators=(",", ":"))

    def _subscribe(self) -> None:
        self.outbox.append(self._request_frame("subscribe", self.feed.topic))
        self._subscribe_id = self._request_id
        self._subscribed = True
        self.acked = False
        self._silence_deadline = None

    # --- lifecycle --------------------------------------------------------------------------------
    def _start_connection(self) -> None:
        self._subscribed = False         # a subscribe was sent on this connection and not refused
        self._subscribe_id: str | None = None
        self._request_id: str | None = None
        self.acked = False               # the venue confirmed our subscribe
        self._seen_data = False          # a message of our topic arrived since the subscribe
        self._silence_deadline: float | None = None
        self._in_flight_since = None     # an old connection's fetch is not waited for
        self._restart_sync()

    def _restart_sync(self) -> None:
        """Forget the book's sequence and the buffer; a snapshot already requested is still welcome
        (its sequence decides whether it bridges the new buffer)."""
        self._buffer: deque[Buffered] = deque(maxlen=MAX_BUFFERED)
        self._pending: BookSnapshot | None = None
        self.last_sequence = None
        self.book.clear()

    def reset(self) -> None:
        super().reset()
        self._start_connection()
        if not self.level3:
            self.integrity.notes.append(self.mode_note)

    def fault(self, error) -> bool:
        """Resync in place whenever our subscription stands on this connection: a gap, a crossed book,
        a bad snapshot or a garbled frame all call for the same cure, a fresh snapshot bridged to the
        buffered stream, and the sequence numbers prove that nothing is missing after it. WebSocket
        frames arrive whole or not at all, so a garbled frame is the venue's, not the connection's;
        reconnecting would add a token request and a handshake and still need the same snapshot
        (rate-limited to 1/min per IP for level 3). Before the subscribe, or when the venue refused
        it, there is nothing to keep: reconnect (False)."""
        super().fault(error)
        if not self._subscribed:
            return False
        self._restart_sync()
        return True

    def on_timer(self, now: float) -> None:
        """Level 3 acked but silent for 10 s: fall back. The deadline is armed at the first tick after
        the ack, in the timebase of `now` itself, so the shell may pass wall or loop time."""
        if not (self.level3 and self.acked and not self._seen_data):
            return
        if self._silence_deadline is None:
            self._silence_deadline = now + LEVEL3_SILENCE_SECONDS
        elif now >= self._silence_deadline:
            self._fall_back(f"no level3v2 message within {LEVEL3_SILENCE_SECONDS:g} s of the ack",
                            unsubscribe=True)

    # --- frames -----------------------------------------------------------------------------------
    def receive(self, text: str) -> None:
        """One frame: dispatch on `type`, then `topic`, then `subject` (FD "Websocket Feed")."""
        try:
            frame = _load_frame(text)
            kind = frame["type"]
        except PARSE_ERRORS as exc:
            raise MessageError(self.venue, f"not a KuCoin frame ({exc.__class__.__name__})", text) from exc
        if kind == "message":
            self._on_message(frame, text)
        elif kind == "welcome":
            self._on_welcome(frame, text)
        elif kind == "ack":
            self._on_ack(frame)
        elif kind == "pong":
            self.touch()
        elif kind == "error":
            self._on_error(frame, text)
        else:
            log.debug("%s: ignoring a frame of type %r", self.venue, kind)

    def _on_welcome(self, frame: dict, text: str) -> None:
        """FD: `{"id":"hQvf8jkno","type":"welcome"}`, id = our connectId: now we may subscribe."""
        if self.connect_id is not None and str(frame.get("id")) != self.connect_id:
            raise MessageError(self.venue, f"welcome for connectId {frame.get('id')!r}, "
                                           f"ours is {self.connect_id!r}", text)
        self.touch()
        if not self._subscribed:
            self._subscribe()

    def _on_ack(self, frame: dict) -> None:
        """FD: `{"id":"1545910660740","type":"ack"}`; ids compared as strings (the docs mix both)."""
        if self._subscribe_id is not None and str(frame.get("id")) == self._subscribe_id:
            self.acked = True
            log.info("%s: subscribed to %s", self.venue, self.feed.topic)

    def _on_error(self, frame: dict, text: str) -> None:
        """e.g. `{"id":"1","type":"error","code":404,"data":"topic does not exist"}` (ccxt#18889 log).
        An error answering our level-3 subscribe means level 3 is not served: fall back."""
        detail = f"{frame.get('code')} {frame.get('data')}"
        if self._subscribe_id is not None and str(frame.get("id")) == self._subscribe_id:
            if self.level3:
                self._fall_back(f"subscribe refused: {detail}", unsubscribe=False)
                return
            self._subscribed = False  # nothing to resync on: the shell must reconnect
        raise MessageError(self.venue, f"venue error {detail}", text)

    def _on_message(self, frame: dict, text: str) -> None:
        """A data message. Frames of other topics (the fixture's `tickerV2`) are ignored.

        FD "Level 3 V2" (trimmed): {"type":"message","topic":"/contractMarket/level3v2:XBTUSDM",
        "subject":"open","data":{"symbol":"XBTUSDM","sequence":3262786900,"side":"buy","price":"3634.5",
        "size":"10","orderId":"5c0b520032eba53a888fd02x","orderTime":1547697294838004923,"ts":...}}
        """
        if frame.get("topic") != self.feed.topic:
            return
        try:
            subject, data = frame["subject"], frame["data"]
            sequence = integer(data["sequence"])
            hash(subject)
        except PARSE_ERRORS as exc:
            raise MessageError(self.venue, f"message without a subject and an integer data.sequence "
                                           f"({exc.__class__.__name__})", text) from exc
        self._seen_data = True
        self.touch()
        if self.last_sequence is None:
            self._buffer_message((sequence, subject, data, text))
        else:
            self._step(sequence, subject, data, text)

    # --- sequence and sync ------------------------------------------------------------------------
    def _step(self, sequence: int, subject: str, data: dict, text: str) -> None:
        """Apply one message to a synced book: duplicates skipped, a gap refused, crossing refused."""
        last = self.last_sequence
        if sequence <= last:
            self.duplicates += 1
            return
        if sequence != last + 1:
            raise SequenceGap(self.venue, last + 1, sequence)
        self._apply(subject, data, text)
        self.last_sequence = sequence
        self.integrity.messages += 1
        self.integrity.last_sequence = sequence
        self.assert_not_crossed()

    def _buffer_message(self, message: Buffered) -> None:
        buffer = self._buffer
        if buffer:
            last = buffer[-1][0]
            if message[0] <= last:
                self.duplicates += 1
                return
            if message[0] != last + 1:
                raise SequenceGap(self.venue, last + 1, message[0])
        buffer.append(message)
        if self._pending is not None:
            self._try_complete()

    def snapshot_request(self) -> HttpRequest | None:
        """The REST snapshot, once, when messages are buffered and none is requested or waiting.

        altangent/ccxws#207: asked for before the stream starts, a snapshot cannot be bridged."""
        if self.last_sequence is not None or not self._buffer or self._pending is not None:
            return None
        now = self.clock()
        if self._in_flight_since is not None and now - self._in_flight_since < SNAPSHOT_TIMEOUT_SECONDS:
            return None
        if now < self._retry_at:
            return None
        self._in_flight_since = now
        return HttpRequest("GET", f"{self.rest_url}{self.feed.snapshot_path}?symbol={self.symbol}")

    def snapshot_failed(self, status: int, text: str = "") -> None:
        """For the shell: the snapshot request failed with HTTP `status` (0: no answer at all).

        429, 5xx and 0 are retried (after 60 s for 429, the level-3 snapshot's documented limit,
        else 2 s); any other status on the level-3 snapshot means it is not served: fall back to
        level 2. A level-2 snapshot refused is retried after 60 s: there is nothing to fall back to."""
        self._in_flight_since = None
        retryable = status in (0, 429) or status >= 500
        if self.level3 and not retryable:
            self._fall_back(f"level-3 snapshot answered HTTP {status}", unsubscribe=True)
            return
        delay = RETRY_SECONDS if retryable and status != 429 else RATE_LIMITED_RETRY_SECONDS
        self._retry_at = self.clock() + delay
        log.warning("%s: %s snapshot failed (HTTP %s %s): asking again in %g s", self.venue,
                    self.feed.topic, status, text[:80], delay)

    def load_snapshot(self, text: str) -> None:
        """The REST snapshot's answer (or the HTTP error text the shell got instead).

        FD "Full Order Book - Level 3" v2 (trimmed; rows [orderTime, orderId, price, size, ts], unsorted):
        {"code":"200000","data":{"symbol":"XBTUSDM","sequence":100,"bids":[[5567483701231,"dfa123124",
         "123.12312","10",5567483701231]],"asks":[],"ts":1590634672060667000}}
        FD "Get Full Order Book - Level 2": {"code":"200000","data":{"symbol":"XBTUSDM","sequence":100,
         "asks":[["5000.0",1000]],"bids":[["3200.0",800]],"ts":1604643655040584408}}
        """
        self._in_flight_since = None
        try:
            answer = json.loads(text, parse_float=Decimal)
            code = answer.get("code")
        except PARSE_ERRORS:
            code = None
        if code != SUCCESS:
            reason = f"code {code!r}" if code is not None else "no JSON answer"
            if self.level3:
                self._fall_back(f"level-3 snapshot refused ({reason})", unsubscribe=True)
                return
            self._retry_at = self.clock() + RETRY_SECONDS  # the resync must not hammer the endpoint
            raise SnapshotError(self.venue, f"level-2 snapshot refused ({reason}): {text[:80]!r}")
        if self.last_sequence is not None:
            log.debug("%s: a snapshot arrived while the book is live: ignored", self.venue)
            return
        try:
            snapshot = self._parse_snapshot(answer["data"])
        except PARSE_ERRORS as exc:
            raise MessageError(self.venue, f"snapshot of the wrong shape ({exc!r})", text) from exc
        self._pending = snapshot
        self._try_complete()

    def _parse_snapshot(self, data: dict) -> BookSnapshot:
        if data.get("symbol", self.symbol) != self.symbol:
            raise ValueError(f"snapshot for {data.get('symbol')!r}, not {self.symbol!r}")
        sequence = integer(data["sequence"])
        parse = self._level3_rows if self.level3 else self._level2_rows
        return BookSnapshot(sequence, parse(data["bids"], Side.BID) + parse(data["asks"], Side.ASK))

    def _level3_rows(self, rows: list, side: Side) -> list[tuple]:
        """Orders sorted for loading: best price first, then by `ts`, the time the order entered the
        book (CN docs: "sorted by time"; the fixture README). Rows come unsorted. Five elements per the
        docs; four (no orderTime) as kucoin-level3-sdk reads them, which one futures sent is unverified."""
        orders = []
        for row in rows:
            if len(row) == 5:
                _order_time, oid, price, size, entered = row
            elif len(row) == 4:
                oid, price, size, entered = row
            else:
                raise ValueError(f"level-3 snapshot row of {len(row)} elements")
            price, size = decimal(price), decimal(size)
            self._check_level(side, price, size)
            if size:
                orders.append((price, integer(entered), order_id(oid), size))
        orders.sort(key=(lambda o: (-o[0], o[1])) if side is Side.BID else (lambda o: (o[0], o[1])))
        return [(oid, side, price, size) for price, _entered, oid, size in orders]

    def _level2_rows(self, rows: list, side: Side) -> list[tuple]:
        levels = []
        for price, size in rows:
            price, size = decimal(price), decimal(size)
            self._check_level(side, price, size)
            levels.append((side, price, size))
        return levels

    def _try_complete(self) -> None:
        """Load the pending snapshot once the buffer bridges it; drop it when it is too old."""
        snapshot, buffer = self._pending, self._buffer
        if snapshot is None or not buffer:
            return
        first, last = buffer[0][0], buffer[-1][0]
        if snapshot.sequence < first - 1:
            # The docs ask for snapshot >= first; first - 1 bridges too (the snapshot holds everything
            # up to it, the buffer everything after), and a venue that is quiet between the snapshot
            # and the next message produces exactly that case.
            log.info("%s: snapshot %d older than the first buffered message %d: fetching again",
                     self.venue, snapshot.sequence, first)
            self._pending = None
            return
        if last < snapshot.sequence:
            return  # the stream has not reached the snapshot yet: keep buffering
        self._pending = None
        self._load(snapshot)

    def _load(self, snapshot: BookSnapshot) -> None:
        """Replace the book (never merge), then replay what the snapshot does not cover."""
        self.book.clear()
        if self.level3:
            for oid, side, price, size in snapshot.rows:
                if oid in self.book:
                    raise SnapshotError(self.venue, f"order {oid} twice in the snapshot")
                self.book.add(oid, side, price, size)
        else:
            self.book.replace(((p, s) for side, p, s in snapshot.rows if side is Side.BID),
                              ((p, s) for side, p, s in snapshot.rows if side is Side.ASK))
        self.assert_not_crossed()
        self.last_sequence = snapshot.sequence
        self.integrity.since_snapshot(snapshot.sequence)
        replay = [message for message in self._buffer if message[0] > snapshot.sequence]
        self._buffer.clear()
        for message in replay:
            self._step(*message)
        self.go_live()
        log.info("%s: %s snapshot %d loaded, %d buffered messages replayed", self.venue,
                 "level-3" if self.level3 else "level-2", snapshot.sequence, len(replay))

    # --- applying one message ---------------------------------------------------------------------
    def _apply(self, subject: str, data: dict, text: str) -> None:
        apply = self._LEVEL3_SUBJECTS.get(subject) if self.level3 else self._LEVEL2_SUBJECTS.get(subject)
        if apply is None:
            # Unknown subjects on the book topic are undocumented: their effect on the book is unknown,
            # so the book could no longer be vouched for.
            raise MessageError(self.venue, f"unknown subject {subject!r} on {self.feed.topic}", text)
        try:
            apply(self, data)
        except PARSE_ERRORS as exc:
            raise MessageError(self.venue, f"{subject} of the wrong shape ({exc!r})", text) from exc

    def _check_level(self, side: Side | str, price: Decimal, size: Decimal) -> None:
        if price <= 0 or size < 0:
            raise BadLevel(self.venue, side, price, size)

    def _received(self, data: dict) -> None:
        """FD: `received` {"orderId","clientOid",...}: the order reached the engine; the book is the same."""

    def _open(self, data: dict) -> None:
        """FD: `open` {"side":"buy","price":"3634.5","size":"10","orderId":...}: append at its price.
        An empty size (hidden order, spot only) is skipped, as kucoin-level3-sdk does."""
        side, oid = SIDES[data["side"]], order_id(data["orderId"])
        price, size = decimal(data["price"]), decimal(data["size"])
        self._check_level(side, price, size)
        if not size:
            return
        if oid in self.book:
            raise ValueError(f"open for order {oid}, already on the book")
        self.book.add(oid, side, price, size)

    def _update(self, data: dict) -> None:
        """FD: `update` {"orderId":...,"size":"100"}: the order's new size; it keeps its place."""
        order = self.book.order(order_id(data["orderId"]))
        size = decimal(data["size"])
        if order is None:
            return
        if size < 0:
            raise BadLevel(self.venue, order.side, order.price, size)
        self.book.set_size(order.order_id, size)

    def _match(self, data: dict) -> None:
        """FD: `match` {"side":"buy" (taker),"price":"3634","size":"10" (filled),"makerOrderId",...}
        plus `remainSize` (the maker's size left; kucoin-level3-sdk, spot docs). Without it the maker
        loses the filled size. The taker was never on the book."""
        maker = self.book.order(order_id(data["makerOrderId"]))
        filled = decimal(data["size"])
        remain = data.get("remainSize")
        if maker is None:
            return
        size = decimal(remain) if remain is not None else maker.size - filled
        if size < 0:
            raise BadLevel(self.venue, maker.side, maker.price, size)
        self.book.set_size(maker.order_id, size)

    def _done(self, data: dict) -> None:
        """FD: `done` {"reason":"filled"|"canceled","orderId":...}: off the book; unknown ids (takers,
        rejected post-only orders) are a no-op."""
        self.book.remove(order_id(data["orderId"]))

    def _change(self, data: dict) -> None:
        """Level 2, ccxt sample: {"sequence":1668015155477,"change":"0.514,buy,64874","timestamp":...}:
        "price,side,size", the size absolute in contracts, 0 deletes the level."""
        price, side, size = data["change"].split(",")
        side, price, size = SIDES[side], decimal(price), decimal(size)
        self._check_level(side, price, size)
        self.book.apply(side, price, size)

    _LEVEL3_SUBJECTS = {"received": _received, "open": _open, "update": _update, "match": _match,
                        "done": _done}
    _LEVEL2_SUBJECTS = {"level2": _change}

    # --- what readers call ------------------------------------------------------------------------
    def levels(self, side: Side) -> Iterator[Level]:
        """Best first, sizes in BTC. Lazy: each level is converted when it is read."""
        return map(self._in_btc, self.book.levels(side))

    def best(self, side: Side) -> Level | None:
        """The first of `levels(side)`, converted alone (readers ask for it after every message)."""
        level = self.book.best(side)
        return None if level is None else self._in_btc(level)

    def _in_btc(self, level: Level) -> Level:
        """(price, contracts) -> (price, BTC): contracts * contract_value / price, 8 decimals, half-even."""
        price, size = level
        return price, (size * self.contract_value / price).quantize(BTC_QUANTUM, ROUND_HALF_EVEN)
