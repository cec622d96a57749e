"""Coinbase Advanced Trade WebSocket `level2` (+ `heartbeats`): a sans-I/O processor for several products
on one connection.

Protocol facts (docs.cdp.coinbase.com, Advanced Trade "WebSocket Channels" and "WebSocket Overview";
shared/venues.md section 2, venues-2026.md section 4):
- one channel per subscribe message, with every product in `product_ids`; messages arrive as
  `channel: "l2_data"` (not "level2"), each event naming its `product_id`, so a frame is parsed once and
  routed to its product's book;
- `events[].type` is `snapshot` (a product's whole book, one frame) or `update`; sides are `bid` /
  `offer`; `new_quantity` is the new absolute size and "0" deletes the level;
- `sequence_num` is, as far as anyone has observed, one counter per connection across every channel and
  product: a skipped or repeated number means a frame was lost or replayed, whatever it carried, and no
  book of the connection can be vouched for. Whether it is per product instead is UNVERIFIED
  (venues-2026.md open question 7); `sequence_scope: product` checks it per (channel, product) instead;
- quiet subscriptions are closed after 60-90 s unless `heartbeats` is subscribed too (one a second);
- there is no checksum: the sequence and the crossed-book check are the only integrity evidence.
- public channels need no JWT; with a CDP API key in the environment every subscribe is signed
  (`coinbase_jwt`), on every connection (a JWT lives 2 minutes).

On any fault the base class drops every book and the shell reconnects: the fresh connection restarts the
sequence and brings new snapshots, which replace (never merge into) the books.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from data_manager.book import Level, Side
from data_manager.errors import FeedError, MessageError, SequenceGap
from data_manager.feed import FeedBook, FeedProcessor, FeedSettings, Send
from data_manager.parse import decode_object, fast_level, level, require
from data_manager.registry import ConnectLimits, VenueSpec
from data_manager.symbols import Symbol
from data_manager.venues import coinbase_jwt

log = logging.getLogger(__name__)

NAME = "coinbase"
URL = "wss://advanced-trade-ws.coinbase.com"
CHANNELS = ("level2", "heartbeats")
SNAPSHOT, UPDATE = "snapshot", "update"
BID_TEXT, ASK_TEXT = "bid", "offer"   # "offer", not "ask" (cryptofeed matched "ask": a bug)
QUOTES = frozenset({"USD", "USDC", "USDT", "EUR", "GBP", "BTC", "ETH", "DAI"})
SCOPES = ("connection", "product")
EARLY_FRAMES = 10             # a sequence broken this soon after connecting hints at per-product numbering
EARLY_GAPS_BEFORE_HINT = 3
_MISSING = object()
_BID, _ASK = Side.BID, Side.ASK


@dataclass(frozen=True)
class CoinbaseSettings(FeedSettings):
    url: str = field(default=URL, metadata={"schemes": ("ws://", "wss://")})
    max_age: float = field(default=5.0, metadata={"minimum": 0.5, "maximum": 3600})
    sequence_scope: str = field(default="connection", metadata={"choices": SCOPES})
    """"connection" (observed: one counter over every frame) or "product" (UNVERIFIED alternative)."""


class CoinbaseProcessor(FeedProcessor):
    """Every configured product's L2 book from one Advanced Trade connection."""

    venue = NAME

    def __init__(self, settings: CoinbaseSettings, symbols: Sequence[tuple[Symbol, str]],
                 clock: Callable[[], float] = time.time,
                 credentials: coinbase_jwt.Credentials = coinbase_jwt.NONE) -> None:
        super().__init__(settings, symbols, clock)
        self._per_connection = settings.sequence_scope == "connection"
        self._signer = credentials.signer
        self._next_sequence: int | None = None        # connection scope: the number the next frame must carry
        self._first_sequence = 0                      # connection scope: this connection's first number
        self._early_gaps = 0                          # connections in a row whose sequence broke at once
        self._next_by_stream: dict[tuple[str, str], int] = {}   # product scope: per (channel, product)
        self._synced: dict[str, FeedBook] = {}        # products whose snapshot arrived on this connection
        if credentials.problem is not None:
            self._say(credentials.problem)

    # --- the lifecycle hooks --------------------------------------------------------------------
    def on_reset(self) -> None:
        if self._next_sequence is not None and self._next_sequence - self._first_sequence >= EARLY_FRAMES:
            self._early_gaps = 0  # the last connection got well past its first frames
        self._next_sequence = None
        self._next_by_stream.clear()
        self._synced.clear()

    def resync_in_place(self, error: FeedError) -> bool:
        """Never: the base drops the books and reconnects. Their snapshots are forgotten here at once, so
        that no later update of this connection can rebuild a partial book."""
        self._synced.clear()
        return False

    def on_connected(self) -> None:
        for message in self.subscribe_messages():
            self.emit(Send(message))

    def subscribe_messages(self) -> list[str]:
        """One subscribe per channel (Advanced Trade takes one `channel` a message), all products in it:
        {"type":"subscribe","product_ids":["BTC-USD","ETH-USD"],"channel":"level2"}

        `heartbeats` needs no product per the docs; sending them anyway is accepted (ccxt PR#22892).
        With a key, each message carries its own fresh `jwt` (it expires after 2 minutes)."""
        products = list(self.books)
        messages = []
        for channel in CHANNELS:
            message: dict[str, Any] = {"type": "subscribe", "product_ids": products, "channel": channel}
            if self._signer is not None:
                message["jwt"] = self._signer.token()
            messages.append(json.dumps(message, separators=(",", ":")))
        return messages

    def on_frame(self, text: str) -> None:
        message = decode_object(NAME, text)
        if self._per_connection and self._fast_update(message, text):
            return
        self._full_frame(message, text)

    # --- the hot path -----------------------------------------------------------------------------
    def _fast_update(self, message: dict[str, Any], text: str) -> bool:
        """The common frame in one pass: the next number, one `update` event for a product whose snapshot
        is in. Anything else (or anything unusual in it) returns False before state changes, and the
        full path decides; a bad level raises here, as it would there."""
        sequence = message.get("sequence_num")
        if type(sequence) is not int or sequence != self._next_sequence or message.get("channel") != "l2_data":
            return False
        events = message.get("events")
        if type(events) is not list or len(events) != 1:
            return False
        event = events[0]
        if type(event) is not dict or event.get("type") != UPDATE:
            return False
        product = event.get("product_id")
        feed = self._synced.get(product) if type(product) is str else None
        rows = event.get("updates")
        if feed is None or type(rows) is not list:
            return False
        bids, asks = self._levels(rows, text)
        self._next_sequence = sequence + 1
        feed.book.update(bids, asks)
        feed.health.integrity.last_sequence = sequence
        self.touch(feed)
        self.applied(feed)
        return True

    def _levels(self, rows: list[Any], text: str) -> tuple[list[Level], list[Level]]:
        """Every row of one event as (price, size) per side, the sent order kept (the last change of a
        price wins). Row (trimmed, "Level2 Channel"):
        {"side":"offer","event_time":"2024-10-08T09:10:35.171517Z","price_level":"62394.77","new_quantity":"0"}"""
        bids: list[Level] = []
        asks: list[Level] = []
        for row in rows:
            if type(row) is not dict:
                raise MessageError(NAME, "an update is not an object", text)
            side = row.get("side")
            target = bids if side == BID_TEXT else asks if side == ASK_TEXT else None
            if target is None:
                raise MessageError(NAME, f"unknown side {side!r}", text)
            price_text, size_text = row.get("price_level", _MISSING), row.get("new_quantity", _MISSING)
            parsed = fast_level(price_text, size_text)
            if parsed is None:
                parsed = self._slow_level(side, price_text, size_text, text)
            target.append(parsed)
        return bids, asks

    @staticmethod
    def _slow_level(side: str, price_text: Any, size_text: Any, text: str) -> Level:
        if price_text is _MISSING:
            raise MessageError(NAME, "an update has no 'price_level'", text)
        if size_text is _MISSING:
            raise MessageError(NAME, "an update has no 'new_quantity'", text)
        return level(NAME, _BID if side == BID_TEXT else _ASK, price_text, size_text, text)

    # --- every other frame, checked in full -----------------------------------------------------
    def _full_frame(self, message: dict[str, Any], text: str) -> None:
        if message.get("type") == "error":
            self._venue_error(message, text)
        channel = require(NAME, message, "channel", str, text)
        sequence = require(NAME, message, "sequence_num", int, text)
        events = require(NAME, message, "events", list, text)
        if channel == "l2_data":
            parsed = self._l2_events(events, text)
            self._check_sequence(channel, _stream_product(events), sequence)
            self._apply(parsed, sequence)
        elif channel == "heartbeats":
            self._check_sequence(channel, "", sequence)
            self._on_heartbeat(sequence)
        elif channel == "subscriptions":
            self._check_sequence(channel, "", sequence)
            self._on_subscriptions(events)
        else:
            self._check_sequence(channel, _stream_product(events), sequence)
            log.debug("%s: ignoring channel %r", NAME, channel)

    def _check_sequence(self, channel: str, product: str, sequence: int) -> None:
        """The first frame of a connection (of a stream, per product) sets the base; after it every frame
        must carry last + 1. A repeated or older number is as much a fault as a skipped one: it is
        reported as a gap naming the number expected, so the log says where the stream went wrong."""
        if self._per_connection:
            expected = self._next_sequence
            if expected is None:
                self._first_sequence = sequence
            self._next_sequence = sequence + 1
        else:
            stream = (channel, product)
            expected = self._next_by_stream.get(stream)
            self._next_by_stream[stream] = sequence + 1
        if expected is not None and sequence != expected:
            if self._per_connection and expected - self._first_sequence < EARLY_FRAMES:
                self._early_gap()
            raise SequenceGap(NAME, expected, sequence)

    def _early_gap(self) -> None:
        """Per-product numbering (UNVERIFIED, venues-2026.md open question 7) would break the connection
        check within the first frames of every connection (at the first heartbeat after a snapshot):
        after `EARLY_GAPS_BEFORE_HINT` such connections in a row the user is told what to change, once."""
        self._early_gaps += 1
        if self._early_gaps == EARLY_GAPS_BEFORE_HINT:
            self._say(f"coinbase: {self._early_gaps} connections in a row broke sequence_num within "
                      f"{EARLY_FRAMES} frames; it may count per product: try sequence_scope: product")

    def _l2_events(self, events: list[Any], text: str) -> list[tuple[FeedBook, str, list[Level], list[Level]]]:
        """Parse and validate every event of our products before any book is touched.

        Real update (trimmed; "Level2 Channel", docs.cdp.coinbase.com/coinbase-app/advanced-trade-apis/
        websocket/websocket-channels#level2-channel):
        {"channel":"l2_data","client_id":"","timestamp":"2024-10-08T09:10:36.120390407Z","sequence_num":14,
         "events":[{"type":"update","product_id":"BTC-USD","updates":[
           {"side":"bid","event_time":"2024-10-08T09:10:35.171517Z","price_level":"62317.89","new_quantity":"0.032355"},
           {"side":"offer","event_time":"2024-10-08T09:10:35.171517Z","price_level":"62394.77","new_quantity":"0"}]}]}
        A snapshot is the same with "type":"snapshot" and every level in `updates`; events of products not
        on this connection only count towards the sequence."""
        parsed = []
        snapshots: set[str] = set()
        for event in events:
            if type(event) is not dict:
                raise MessageError(NAME, "an event is not an object", text)
            product = require(NAME, event, "product_id", str, text)
            kind = require(NAME, event, "type", str, text)
            if kind != SNAPSHOT and kind != UPDATE:
                raise MessageError(NAME, f"unknown l2_data event type {kind!r}", text)
            rows = require(NAME, event, "updates", list, text)
            feed = self.books.get(product)
            if feed is None:
                continue
            if kind == SNAPSHOT:
                snapshots.add(product)
            elif product not in snapshots and product not in self._synced:
                raise MessageError(NAME, f"update for {product} before its snapshot", text)
            parsed.append((feed, kind, *self._levels(rows, text)))
        return parsed

    def _apply(self, parsed: list[tuple[FeedBook, str, list[Level], list[Level]]], sequence: int) -> None:
        """Every event into its book, in the order sent; then each changed book is counted, checked and
        announced once for the frame."""
        changed: dict[str, FeedBook] = {}
        for feed, kind, bids, asks in parsed:
            if kind == SNAPSHOT:
                feed.book.replace(bids, asks)
                self._synced[feed.native] = feed
                self.go_live(feed, sequence)
                log.info("%s: snapshot loaded at sequence %d: %d bids, %d asks", feed.key, sequence,
                         feed.book.depth(_BID), feed.book.depth(_ASK))
            else:
                feed.book.update(bids, asks)
            changed[feed.native] = feed
        for feed in changed.values():
            feed.health.integrity.last_sequence = sequence
            self.touch(feed)
            self.applied(feed)

    def _on_heartbeat(self, sequence: int) -> None:
        """Proof of life once a second, even when the books are quiet ("Heartbeats Channel"). Real:
        {"channel":"heartbeats","client_id":"","timestamp":"2023-10-23T14:43:13.362842145Z","sequence_num":150,
         "events":[{"current_time":"2023-10-23 14:43:13.362521689 +0000 UTC m=+425760.164580852",
                    "heartbeat_counter":14191}]}
        Its `sequence_num` was already checked, which is what catches a lost frame; `heartbeat_counter` is
        an int in the docs and a string in a ccxt sample, so it is not read."""
        for feed in self._synced.values():
            feed.health.integrity.last_sequence = sequence
        self.touch_all()

    def _on_subscriptions(self, events: list[Any]) -> None:
        """The venue's list of what this connection is subscribed to ("Subscribe"):
        {"channel":"subscriptions","client_id":"","timestamp":"2021-04-17T16:43:37.061845Z","sequence_num":0,
         "events":[{"subscriptions":{"level2":["BTC-USD"],"heartbeats":["heartbeats"]}}]}
        A product missing from it will bring no snapshot: the base's no-book watchdog reconnects."""
        log.info("%s: subscriptions %s", NAME, events)

    def _venue_error(self, message: dict[str, Any], text: str) -> None:
        """{"type":"error","message":"too many L2 streams requested in a single session"} (Coinbase.Net#19).
        An error that speaks of authentication while we sign means the key is refused: the next
        connection subscribes without it (the public channels need none), and the user is told."""
        reason = message.get("message")
        if self._signer is not None and isinstance(reason, str) and _about_auth(reason):
            self._signer = None
            self._say(f"coinbase: the venue refused the API key ({reason[:80]}): subscribing unauthenticated")
        raise MessageError(NAME, f"venue error: {reason!r}", text)

    def _say(self, line: str) -> None:
        """A one-line problem the user must see: logged once and shown beside every book."""
        log.warning("%s", line)
        for feed in self.books.values():
            feed.notes = feed.notes + (line,)


def _stream_product(events: list[Any]) -> str:
    """The product a frame is numbered under when sequences are per product (UNVERIFIED scope): its first
    event's; heartbeats and subscriptions have none."""
    first = events[0] if events else None
    product = first.get("product_id") if type(first) is dict else None
    return product if type(product) is str else ""


def _about_auth(reason: str) -> bool:
    lowered = reason.lower()
    return "auth" in lowered or "jwt" in lowered


def native_symbol(symbol: Symbol) -> str:
    """Coinbase writes products as we do (BTC-USD); only quotes it lists are accepted."""
    if symbol.quote not in QUOTES:
        raise ValueError(f"coinbase: no {symbol.name} market known (quotes: {', '.join(sorted(QUOTES))})")
    return symbol.name


def make_processor(settings: CoinbaseSettings, symbols: Sequence[tuple[Symbol, str]],
                   clock: Callable[[], float] = time.time) -> CoinbaseProcessor:
    """The registry's factory: credentials come from the environment (COINBASE_API_KEY / _SECRET), never
    from config.yml."""
    return CoinbaseProcessor(settings, symbols, clock, credentials=coinbase_jwt.from_environment(clock=clock))


VENUE = VenueSpec(
    name=NAME,
    title="Coinbase Advanced Trade, WebSocket level2 + heartbeats (L2, sequence_num per connection, no checksum)",
    settings=CoinbaseSettings,
    processor=make_processor,
    native_symbol=native_symbol,
    instrument="spot",
    multiplexed=True,
    simulator="data_manager.sim.coinbase:CoinbaseSim",
    sim_faults={
        "gap": "one sequence_num is skipped",
        "drop": "a frame is lost after its sequence_num was used",
        "duplicate": "a step's frames are sent twice (repeated sequence_num)",
        "disconnect": "the socket is closed",
        "silence": "nothing more is sent (no data, no heartbeats), the socket stays open",
        "crossed": "an extra update bids at the best ask (on the wire only)",
        "garbage": "a frame that is not JSON",
    },
    limits=ConnectLimits(
        min_interval=0.25, attempts=30, per_seconds=60.0,
        source="Coinbase App docs (WebSocket overview, rate limits): 8 connections/s/IP and 8 unauthenticated "
               "messages/s/IP; Coinbase Business docs say 750 connections/s (venues-2026.md section 4: use "
               "8/s). Two subscribe messages per connection: at most 4 connections/s; 30 a minute is our own "
               "storm guard, not a documented limit."),
)
