"""Gemini spot: the WebSocket API `{symbol}@depth@100ms` (default), or the archived market data v2 `l2`.

WebSocket API (`wss://ws.gemini.com`; AsyncAPI spec gemini/developer-platform specs/asyncapi/websocket.yaml
v0.10.7; developer.gemini.com/websocket/streams; shared/venues-2026.md section 1, whose section 1.5 this
implements exactly):
- connect with `?snapshot=-1` (always forced here: a top-N snapshot followed by full-depth diffs would
  leave a book that is wrong below level N); subscribe `{"id":1,"method":"subscribe","params":
  ["btcusd@depth@100ms"]}`; one bad stream name rejects the whole request;
- the first `depthUpdate` of a symbol after subscribing is its whole book (absolute levels; it has no
  marker, and it may arrive BEFORE the ack `{"id":1,"status":200}`, so it is never waited for);
- every later frame is a diff with update ids `U` (first) and `u` (last); consecutive frames overlap by
  one id (next `U` == previous `u`), so: `u <= last` is stale and dropped, `U > last` is a gap (the strict
  rule of the TypeScript SDK; the Go SDK allows `U == last + 1`), else apply and `last = u`;
- a gap is resynced by reconnecting (whether unsubscribe + subscribe resends a snapshot is unverified);
- diff levels are unsorted, a side may be `[]`, qty "0" deletes; prices are zero-padded strings, so
  levels are keyed by Decimal value; ids of all symbols share one counter (continuity is per symbol);
- no JSON heartbeat: the app `ping` method (`{"id":7,"method":"ping"}` -> `{"id":7,"status":200}`) every
  20 s, or every max_age / 2 if that is shorter, so that an idle but healthy book never looks stale.

Market data v2 is in `gemini_v2.py`; `make_processor` picks one from `settings.protocol`.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable, Sequence
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from data_manager.book import Side
from data_manager.errors import MessageError, SequenceGap
from data_manager.feed import Connect, FeedBook, FeedProcessor, FeedSettings, Send
from data_manager.parse import decode_object, fast_level, integer, level, require
from data_manager.registry import ConnectLimits, VenueSpec
from data_manager.symbols import Symbol
from data_manager.venues.gemini_v2 import NAME, GeminiV2Processor, said

log = logging.getLogger(__name__)

NEW_API_URL = "wss://ws.gemini.com?snapshot=-1"
V2_URL = "wss://api.gemini.com/v2/marketdata"
PROTOCOLS = ("new", "v2")
WS_SCHEMES = ("ws://", "wss://")
STREAM = "depth@100ms"
PING_SECONDS = 20.0
NOTE = "Gemini WebSocket API, depth@100ms with update ids (U/u checked)"
Level = tuple[Decimal, Decimal]
_MAX_ID_DIGITS = 18

QUOTES = frozenset({"USD", "EUR", "GBP", "SGD", "BTC", "ETH", "LTC", "BCH", "DAI", "GUSD", "USDT"})
BASES = frozenset({
    "BTC", "ETH", "LTC", "BCH", "ZEC", "LINK", "BAT", "FIL", "GRT", "ANKR", "ALCX", "SOL", "DOGE", "AVAX",
    "DOT", "UNI", "AAVE", "XRP", "SHIB", "PEPE", "MATIC", "POL", "ADA", "XTZ", "COMP", "MKR", "SNX", "CRV",
    "SUSHI", "YFI", "1INCH", "ENJ", "MANA", "SAND", "AXS", "APE", "ATOM", "NEAR", "OP", "ARB", "USDC",
    "DAI", "GUSD", "STORJ", "LRC", "OXT", "BONK", "WIF", "HNT", "INJ", "RNDR", "RENDER", "LDO", "IMX",
})
"""Gemini spot assets this client knows (UNVERIFIED as complete: `GET /v1/symbols` is the authority)."""


@dataclass(frozen=True)
class GeminiSettings(FeedSettings):
    """`venues.gemini` in config.yml.

    Two URLs rather than one whose default depends on `protocol`: a frozen dataclass that config.py
    validates field by field cannot give one field a default that depends on another, and with both
    keys, switching protocol is one line (and the simulator points both at itself)."""

    url: str = field(default=NEW_API_URL, metadata={"schemes": WS_SCHEMES})
    protocol: str = field(default="new", metadata={"choices": PROTOCOLS})
    v2_url: str = field(default=V2_URL, metadata={"schemes": WS_SCHEMES})


def native_symbol(symbol: Symbol) -> str:
    """BTC-USD -> "btcusd": the WebSocket API's stream spelling (v2 upper-cases it itself)."""
    if symbol.base not in BASES or symbol.quote not in QUOTES or symbol.base == symbol.quote:
        raise ValueError(f"gemini: no {symbol} spot market known to this client "
                         f"(quotes: {', '.join(sorted(QUOTES))})")
    return f"{symbol.base}{symbol.quote}".lower()


def full_book_url(url: str) -> str:
    """`url` with `snapshot=-1` in its query (replacing any other value): the first frame must be the
    whole book, never none (0) or the top N."""
    parts = urlsplit(url)
    query = [(key, value) for key, value in parse_qsl(parts.query, keep_blank_values=True) if key != "snapshot"]
    return urlunsplit(parts._replace(query=urlencode(query + [("snapshot", "-1")])))


def _dump(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"))


class GeminiProcessor(FeedProcessor):
    """Every configured symbol's L2 book from one WebSocket API connection, routed by `s`."""

    venue = NAME

    def __init__(self, settings: GeminiSettings, symbols: Sequence[tuple[Symbol, str]],
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(settings, symbols, clock)
        self.ping_interval = min(PING_SECONDS, settings.max_age / 2)
        self._url = full_book_url(settings.url)
        self._last: dict[str, int] = {}   # native -> `u` of the last frame applied; absent: awaiting the book
        self._next_id = 1                  # request ids, increasing over the processor's life
        self._subscribe_id = 0
        for feed in self.books.values():
            feed.notes = (NOTE,)

    # --- lifecycle hooks ------------------------------------------------------------------------
    def on_begin(self) -> None:
        self.emit(Connect(self._url))

    def on_reset(self) -> None:
        self._last.clear()  # a new connection: every symbol's next depthUpdate is its whole book

    def on_connected(self) -> None:
        """{"id":1,"method":"subscribe","params":["btcusd@depth@100ms","ethusd@depth@100ms"]}"""
        self._subscribe_id = self._take_id()
        streams = [f"{native}@{STREAM}" for native in self.books]
        self.emit(Send(_dump({"id": self._subscribe_id, "method": "subscribe", "params": streams})))

    def ping_message(self) -> str:
        """{"id":100,"method":"ping"}, answered {"id":100,"status":200}."""
        return _dump({"id": self._take_id(), "method": "ping"})

    def on_frame(self, text: str) -> None:
        message = decode_object(NAME, text)
        if message.get("e") == "depthUpdate":
            self._on_depth(message, text)
        elif "id" in message or "status" in message:
            self._on_reply(message, text)
        else:
            log.debug("%s: ignoring a frame that is neither depthUpdate nor a reply", NAME)

    # --- messages -------------------------------------------------------------------------------
    def _on_depth(self, message: dict[str, Any], text: str) -> None:
        """The symbol's whole book (its first frame on this connection) or a diff (AsyncAPI DepthUpdate).

        Whole book (live probe 2026-09-15, trimmed):
        {"e":"depthUpdate","E":1789456740173524809,"s":"avaxgusdperp","U":1764527605191349,
         "u":1764527605191349,"b":[["7.487000","140.40000"],["7.479000","570.50000"]],
         "a":[["7.503000","142.60000"],["7.510000","547.50000"]]}
        diff (developer.gemini.com/websocket/streams, L2 Differential Depth):
        {"e":"depthUpdate","E":1751508260659505382,"s":"btcusd","U":12345677,"u":12345678,
         "b":[["45000.50","1.25000000"],["45000.25","0.00000000"]],"a":[["45001.00","0.75000000"]]}
        """
        symbol = message.get("s")
        feed = self.books.get(symbol) if type(symbol) is str else None
        if feed is None:
            if type(symbol) is not str:
                require(NAME, message, "s", str, text)  # raises
            feed = self.books.get(symbol.lower())       # compare case-insensitively (the Go SDK upper-cases)
            if feed is None:
                return  # a symbol we did not subscribe to
        first, last = message.get("U"), message.get("u")
        if type(first) is not int or type(last) is not int or not 0 <= first <= last:
            first, last = _update_ids(message, text)
        native = feed.native
        previous = self._last.get(native)
        if previous is None:
            self._load(feed, message, first, last, text)
            return
        if last <= previous:
            self.touch(feed)  # already applied (the stream overlaps): nothing new, but alive
            return
        if first > previous:
            raise SequenceGap(NAME, previous, first)
        bids = _levels(message, "b", "bid", text)
        asks = _levels(message, "a", "ask", text)
        feed.book.update(bids, asks)
        self._last[native] = last
        feed.health.integrity.last_sequence = last
        self.applied(feed)
        self.touch(feed)

    def _load(self, feed: FeedBook, message: dict[str, Any], first: int, last: int, text: str) -> None:
        """The whole book: replaces whatever the book held (nothing, on a fresh connection)."""
        bids = _levels(message, "b", "bid", text)
        asks = _levels(message, "a", "ask", text)
        if first != last:  # the TS SDK refuses this; the spec only says "U..u is the range covered"
            log.debug("%s %s: whole book with U %d != u %d", NAME, feed.native, first, last)
        feed.book.replace(bids, asks)
        self._last[feed.native] = last
        self.go_live(feed, last)
        self.applied(feed)
        log.info("%s %s: whole book at update %d: %d bids, %d asks", NAME, feed.native, last,
                 feed.book.depth(Side.BID), feed.book.depth(Side.ASK))

    def _on_reply(self, message: dict[str, Any], text: str) -> None:
        """A reply to one of our requests: {"id":1,"status":200}, or a refusal:
        {"id":4,"status":400,"error":{"code":-1013,"msg":"Invalid stream name: nosuchperp@depth@100ms"}}"""
        status = message.get("status")
        request = self._request_name(message.get("id"))
        if status == 200 and type(status) is int:
            if request == "subscribe":
                log.info("%s: subscribed to %d streams", NAME, len(self.books))
            self.touch_all()  # a reply on this connection: everything before it was delivered
            return
        error = message.get("error")
        code, reason = (error.get("code"), error.get("msg")) if type(error) is dict else (None, None)
        if request == "ping":
            log.warning("%s: ping refused: status %s, code %s: %s", NAME, said(status), said(code), said(reason))
            return  # the book is not affected; the stale watchdog still guards it
        raise MessageError(NAME, f"{request} refused: status {said(status)}, code {said(code)}: {said(reason)}",
                           text)

    # --- helpers --------------------------------------------------------------------------------
    def _take_id(self) -> int:
        request_id = self._next_id
        self._next_id += 1
        return request_id

    def _request_name(self, request_id: Any) -> str:
        """Which of our requests a reply answers; its `id` may come back as a number or a string."""
        if type(request_id) is str and request_id.isdigit() and len(request_id) <= _MAX_ID_DIGITS:
            request_id = int(request_id)
        if type(request_id) is int:
            if request_id == self._subscribe_id:
                return "subscribe"
            if 0 < request_id < self._next_id:
                return "ping"
        return f"request {said(request_id)}"


def _update_ids(message: dict[str, Any], text: str) -> tuple[int, int]:
    """`U` and `u` (int64, "U":12345677,"u":12345678) when the fast path did not find two ordered integers:
    read them (a decimal string is tolerated), or say what is wrong."""
    first = integer(NAME, require(NAME, message, "U", (int, str), text), "U", text)
    last = integer(NAME, require(NAME, message, "u", (int, str), text), "u", text)
    if not 0 <= first <= last:
        raise MessageError(NAME, f"update ids U {first} and u {last} out of order", text)
    return first, last


def _levels(message: dict[str, Any], key: str, side: str, text: str) -> list[Level]:
    """One side's rows, checked, in the order sent (diffs are not sorted): PriceLevel of the AsyncAPI spec,
    `[price, quantity]` decimal strings, e.g. "b":[["45000.50","1.25000000"],["45000.25","0.00000000"]]."""
    rows = message.get(key)
    if type(rows) is not list:
        require(NAME, message, key, list, text)  # raises
    levels: list[Level] = []
    for row in rows:
        if type(row) is not list or len(row) != 2:
            raise MessageError(NAME, f"a {side} level is not [price, quantity]", text)
        price_text, size_text = row
        levels.append(fast_level(price_text, size_text) or level(NAME, side, price_text, size_text, text))
    return levels


def make_processor(settings: GeminiSettings, symbols: Sequence[tuple[Symbol, str]],
                   clock: Callable[[], float] = time.time) -> FeedProcessor:
    """One connection's processor for the protocol the settings select."""
    if settings.protocol == "v2":
        return GeminiV2Processor(settings, symbols, clock)
    return GeminiProcessor(settings, symbols, clock)


SIM_FAULTS = {
    "gap": "WebSocket API: one frame's U skips ahead of the previous u (v2 has no ids: not injected there)",
    "drop": "WebSocket API: one step's frames are never sent; the next U shows it (v2: not injected)",
    "duplicate": "one step's frames are sent twice (WebSocket API: u <= last, dropped; v2: absolute sizes)",
    "disconnect": "the server closes the socket",
    "silence": "no more data, replies or heartbeats; the socket stays open",
    "crossed": "one extra update bids at the best ask (on the wire only)",
    "garbage": "one frame that is not JSON",
}

VENUE = VenueSpec(
    name=NAME,
    title="Gemini spot, WebSocket API depth@100ms (L2, update ids U/u); archived market data v2 l2 selectable",
    settings=GeminiSettings,
    processor=make_processor,
    native_symbol=native_symbol,
    instrument="spot",
    multiplexed=True,
    simulator="data_manager.sim.gemini:GeminiSim",
    sim_faults=SIM_FAULTS,
    limits=ConnectLimits(min_interval=1.0, attempts=300, per_seconds=300.0,
                         source="conninfo CONNECTION_ATTEMPTS 300 / 5 min (shared/venues-2026.md 1.6, live probe "
                                "2026-09-15); min_interval unpublished; v2 limits UNVERIFIED"),
)
