"""Kraken Spot WebSocket v2 `book` channel: L2 books kept exact by Kraken's CRC32 checksum.

Protocol facts (venues.md section 1; venues-2026.md section 3; docs.kraken.com "Spot WebSocket v2 /
book", "instrument", "ping", and the guide "book checksum v2"):

- One connection carries every configured pair: one subscribe lists them all
  (`"symbol":["BTC/USD","ETH/USD"]`), Kraken acknowledges each pair separately, then sends each pair's
  `snapshot` and its `update`s; every book frame names its pair in `data[].symbol`, and each frame is
  parsed once and routed to that pair's book.
- Depth 10, 25, 100, 500 or 1000. Kraken never sends a delete for a level pushed out of the subscribed
  depth by a better one, so each book is truncated to the depth after every frame (after the whole
  frame: the checksum is defined on the book after all of its levels).
- Prices and quantities are JSON numbers. The checksum is defined on the pair's fixed-decimal strings
  (`price_precision` / `qty_precision`), so numbers are parsed as `Decimal` and formatted again with the
  precision: the number's own text is not enough (trailing zeros may be missing).
- There are no sequence numbers: the checksum is the only integrity check. A mismatch on any pair is a
  fault of the connection; the shell reconnects and every pair gets a fresh snapshot.
- Precision is per pair. It comes from the `instrument` channel (reference data: one snapshot per
  connection, updates when a pair changes), matched on the exact symbol (2026: `BTC/USD:BTNL` rows
  exist for US margin pairs). Until every pair's precision is known the book subscription waits for
  the instrument snapshot (at most `INSTRUMENT_WAIT_SECONDS`); precision learned once survives
  reconnects, so later connections subscribe at once. The configured precision is the fallback.

Every number is bounds-checked (`parse.checked` / `parse.level`) before it reaches a book or a format:
a frame holding `1e999999999` is refused, never formatted into gigabytes.
"""
from __future__ import annotations

import json
import logging
import time
import zlib
from bisect import bisect_left
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import islice
from typing import Any, Callable, Iterable, Sequence

from data_manager import parse
from data_manager.book import L2Book, Level, Side
from data_manager.errors import ChecksumMismatch, MessageError, excerpt
from data_manager.feed import FeedBook, FeedProcessor, FeedSettings, Send
from data_manager.registry import ConnectLimits, VenueSpec
from data_manager.symbols import Symbol

log = logging.getLogger(__name__)

VENUE_NAME = "kraken"
VALID_DEPTHS = (10, 25, 100, 500, 1000)
"""Depths the v2 `book` channel accepts (docs: "depth: One of 10, 25, 100, 500, 1000")."""
CHECKSUM_LEVELS = 10
"""The checksum covers the 10 best levels of each side, whatever the subscribed depth."""
MAX_PRECISION = parse.MAX_DECIMALS
"""A precision is a number of decimals to format with: bounded, so a hostile instrument row cannot
make every checksum format allocate a huge string."""
INSTRUMENT_WAIT_SECONDS = 5.0
"""How long the book subscription waits for the instrument snapshot before using the configured
precision (the snapshot usually lands within one round trip)."""

BOOK_REQ_ID = 1
INSTRUMENT_REQ_ID = 2
FIRST_PING_REQ_ID = 100

_BID, _ASK = Side.BID, Side.ASK  # read per message: an Enum member read from its class is slow (3.11)
_checked, _level = parse.checked, parse.level


def _dump(message: dict[str, Any]) -> str:
    """Compact JSON, as Kraken writes it."""
    return json.dumps(message, separators=(",", ":"))


def _shown(value: Any) -> str:
    """A venue-supplied value in an error message, bounded."""
    return excerpt(value, 80) if type(value) is str else type(value).__name__


# --- settings ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class KrakenSettings(FeedSettings):
    """`venues.kraken` in config.yml. Defaults are the live venue's."""

    url: str = field(default="wss://ws.kraken.com/v2", metadata={"schemes": ("ws://", "wss://")})
    depth: int = field(default=1000, metadata={"choices": VALID_DEPTHS})
    price_precision: int = field(default=1, metadata={"minimum": 0, "maximum": MAX_PRECISION})
    qty_precision: int = field(default=8, metadata={"minimum": 0, "maximum": MAX_PRECISION})
    """Fallback checksum precision (BTC/USD's 1 and 8), for a pair the instrument channel does not give."""


# --- the processor ------------------------------------------------------------------------------------
class _Pair:
    """One pair on the connection: its book, its checksum state, and whether it holds a snapshot."""

    __slots__ = ("feed", "top", "synced", "learned", "note")

    def __init__(self, feed: FeedBook, top: "ChecksumTop") -> None:
        self.feed = feed
        self.top = top
        self.synced = False      # a snapshot was loaded on this connection
        self.learned = False     # precision taken from the instrument channel (survives reconnects)
        self.note = ""           # what the user should know about this pair's precision


_Entry = tuple[_Pair, list[Level], list[Level], int]
"""One validated `data[]` item: (its pair, bids, asks, checksum)."""


class KrakenProcessor(FeedProcessor):
    """One Kraken v2 connection: every configured pair's `book`, checksum verified on every frame."""

    venue = VENUE_NAME
    book_kind = "L2"
    ping_interval = 30.0
    """App-level ping (docs "ping"). Heartbeats already prove the feed alive; the ping proves our
    requests are still answered, and keeps the connection from the ~1 min idle close (venues-2026 §3)."""

    def __init__(self, settings: KrakenSettings, symbols: Sequence[tuple[Symbol, str]],
                 clock: Callable[[], float] = time.time) -> None:
        if settings.depth not in VALID_DEPTHS:
            raise ValueError(f"kraken depth must be one of {VALID_DEPTHS}, got {settings.depth!r}")
        for precision in (settings.price_precision, settings.qty_precision):
            if type(precision) is not int or not 0 <= precision <= MAX_PRECISION:
                raise ValueError(f"kraken precision must be an integer 0..{MAX_PRECISION}, got {precision!r}")
        super().__init__(settings, symbols, clock)
        self.depth = settings.depth
        self._pairs = {native: _Pair(feed, ChecksumTop(settings.price_precision, settings.qty_precision))
                       for native, feed in self.books.items()}
        self._next_ping_id = FIRST_PING_REQ_ID
        self._book_requested = False
        self._instrument_deadline: float | None = None
        self._system = "online"
        self._channels: dict[str, Callable[[dict, str], None]] = {
            "heartbeat": self._on_heartbeat,
            "status": self._on_status,
            "instrument": self._on_instrument,
        }

    # --- lifecycle hooks ---------------------------------------------------------------------------
    def on_reset(self) -> None:
        """A new connection: no pair holds a snapshot. Precision is reference data and is kept."""
        for pair in self._pairs.values():
            pair.synced = False
            pair.top.forget()
        self._book_requested = False
        self._instrument_deadline = None

    def on_connected(self) -> None:
        """Instrument first; the book as soon as every pair's precision is known.

        Docs "instrument" request: {"method":"subscribe","params":{"channel":"instrument","snapshot":true},"req_id":2}
        """
        self.emit(Send(_dump({"method": "subscribe", "params": {"channel": "instrument", "snapshot": True},
                              "req_id": INSTRUMENT_REQ_ID})))
        if all(pair.learned for pair in self._pairs.values()):
            self._subscribe_book()
        else:
            self._instrument_deadline = self.clock() + INSTRUMENT_WAIT_SECONDS

    def on_tick(self, now: float) -> None:
        if self._instrument_deadline is not None and now >= self._instrument_deadline:
            log.warning("kraken: no instrument snapshot within %g s: subscribing the book with the "
                        "precision known so far", INSTRUMENT_WAIT_SECONDS)
            self._fallback_precision("no instrument data in time")
            self._subscribe_book()

    def ping_message(self) -> str:
        """Docs "ping": {"method":"ping","req_id":101} -> {"method":"pong","req_id":101,...}."""
        self._next_ping_id += 1
        return _dump({"method": "ping", "req_id": self._next_ping_id})

    def _subscribe_book(self) -> None:
        """Docs "book" subscribe, every pair in one request (Kraken acknowledges each pair):
        {"method":"subscribe","params":{"channel":"book","symbol":["BTC/USD","ETH/USD"],"depth":1000,"snapshot":true},"req_id":1}
        """
        self._instrument_deadline = None
        if self._book_requested:
            return
        self._book_requested = True
        self.emit(Send(_dump({"method": "subscribe",
                              "params": {"channel": "book", "symbol": list(self._pairs), "depth": self.depth,
                                         "snapshot": True},
                              "req_id": BOOK_REQ_ID})))

    # --- frames -------------------------------------------------------------------------------------
    def on_frame(self, text: str) -> None:
        """Dispatch on `channel` (data) or `method` (answers to our requests)."""
        message = parse.decode_object(self.venue, text)
        channel = message.get("channel")
        if channel == "book":  # nearly every frame: skip the dispatch table
            self._on_book(message, text)
        elif channel is None:
            self._on_answer(message, text)
        elif type(channel) is str:
            handler = self._channels.get(channel)
            if handler is not None:
                handler(message, text)
            elif log.isEnabledFor(logging.DEBUG):
                log.debug("kraken: ignoring channel %r", excerpt(channel, 40))
        else:
            raise MessageError(self.venue, f"channel is a {type(channel).__name__}, not a string", text)

    def _on_book(self, message: dict, text: str) -> None:
        """Docs "book" snapshot/update, routed by `data[].symbol`. Real update (2026 capture, trimmed):

        {"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[],
         "asks":[{"price":62806.6,"qty":0.00000000},{"price":62808.0,"qty":0.79607759}],
         "checksum":265834348,"timestamp":"2026-08-16T23:37:05.376419Z"}]}

        `data` holds one entry ("the first and only item"); several are accepted, all validated
        before any is applied.
        """
        kind = message.get("type")
        if kind == "update":
            snapshot = False
        elif kind == "snapshot":
            snapshot = True
        else:
            raise MessageError(self.venue, f"book frame type {_shown(kind)} is neither snapshot nor update", text)
        data = message.get("data")
        if type(data) is not list or not data:
            raise MessageError(self.venue, "book frame without a data list", text)
        if len(data) == 1:
            entry = self._parse_entry(data[0], snapshot, text)
            if entry is not None:
                self._apply(*entry, snapshot)
            return
        entries = [self._parse_entry(item, snapshot, text) for item in data]
        for entry in entries:
            if entry is not None:
                self._apply(*entry, snapshot)

    def _parse_entry(self, entry: Any, snapshot: bool, text: str) -> _Entry | None:
        """One `data[]` item, validated: (pair, bids, asks, checksum); None for a pair not ours."""
        if type(entry) is not dict:
            raise MessageError(self.venue, "book data entry is not an object", text)
        symbol = entry.get("symbol")
        if type(symbol) is not str:
            raise MessageError(self.venue, "book data entry without a symbol", text)
        pair = self._pairs.get(symbol)
        if pair is None:
            if log.isEnabledFor(logging.DEBUG):
                log.debug("kraken: ignoring book data of %r (not subscribed)", excerpt(symbol, 40))
            return None
        checksum = entry.get("checksum")
        if type(checksum) is not int or not 0 <= checksum <= 0xFFFFFFFF:
            raise MessageError(self.venue, "book entry without a 32-bit unsigned checksum", text)
        if not snapshot and not pair.synced:
            raise MessageError(self.venue, f"{symbol} book update before a snapshot", text)
        return pair, _levels("bid", entry.get("bids"), text), _levels("ask", entry.get("asks"), text), checksum

    def _apply(self, pair: _Pair, bids: list[Level], asks: list[Level], checksum: int, snapshot: bool) -> None:
        """A snapshot replaces the book (never merged: no ghost levels); an update applies every level in
        order (a price may appear twice), then truncates. Then the checksum, then the crossed check."""
        feed = pair.feed
        if snapshot:
            feed.book.replace(bids, asks)
            feed.book.truncate(self.depth)
            pair.top.forget()
            verified = self.verify_checksum(pair, (), (), checksum)
            pair.synced = True
            self.go_live(feed)
            log.info("kraken: %s snapshot loaded (%d bids, %d asks)", feed.native,
                     feed.book.depth(_BID), feed.book.depth(_ASK))
        else:
            feed.book.update(bids, asks, self.depth)
            verified = self.verify_checksum(pair, bids, asks, checksum)
            self.touch(feed)
        if verified:
            feed.health.integrity.checksums_verified += 1
        self.applied(feed)

    def verify_checksum(self, pair: _Pair, bids: Iterable[Level], asks: Iterable[Level], expected: int) -> bool:
        """Check the book (this frame's `bids`/`asks` already applied) against Kraken's checksum: True
        when verified, `ChecksumMismatch` when not.

        The one switch for benchmarks that measure the checksum's cost: a subclass that returns False
        here skips both the checksum and the bookkeeping of its top levels (production never does:
        the checksum is the feed's only integrity check)."""
        top = pair.top
        top.changed(bids, asks)
        computed = top.checksum(pair.feed.book)
        if computed != expected:
            raise ChecksumMismatch(self.venue, expected, computed)
        return True

    def _on_heartbeat(self, message: dict, text: str) -> None:
        """Docs "heartbeat": {"channel":"heartbeat"}, about once a second when nothing else is sent."""
        self.touch_all()

    def _on_status(self, message: dict, text: str) -> None:
        """Docs "status", on connect and on a system change (real frame, trimmed):

        {"channel":"status","type":"update","data":[{"version":"2.0.0","system":"online",
         "api_version":"v2","connection_id":17843232920108168701}]}
        """
        data = message.get("data")
        if type(data) is not list:
            raise MessageError(self.venue, "status frame without a data list", text)
        for entry in data:
            system = entry.get("system") if type(entry) is dict else None
            if type(system) is str and system != self._system:
                self._system = excerpt(system, 40)
                if system != "online":
                    log.warning("kraken: system status %s", self._system)
                self._refresh_notes()

    def _on_instrument(self, message: dict, text: str) -> None:
        """Docs "instrument": each pair's precision, for its checksum strings (converted capture, trimmed):

        {"channel":"instrument","type":"snapshot","data":{"assets":[],"pairs":[{"symbol":"WAVES/EUR",
         "base":"WAVES","quote":"EUR","status":"online","price_precision":6,"qty_precision":8,
         "price_increment":0.000001,"qty_increment":0.00000001},...]}}

        The snapshot lists every pair; an `update` carries the pairs that changed. A pair missing from
        the snapshot keeps the configured precision, and the user is told.
        """
        data = message.get("data")
        rows = data.get("pairs") if type(data) is dict else None
        if type(rows) is not list:
            raise MessageError(self.venue, "instrument frame without a pairs list", text)
        for row in rows:
            symbol = row.get("symbol") if type(row) is dict else None
            pair = self._pairs.get(symbol) if type(symbol) is str else None
            if pair is not None:
                self._set_precision(pair, row.get("price_precision"), row.get("qty_precision"), text)
        if message.get("type") == "snapshot":
            self._fallback_precision("not listed by the instrument channel")
            self._subscribe_book()

    def _on_answer(self, message: dict, text: str) -> None:
        """Answers to our requests (docs "ping", "subscribe"): subscribe acks (one per pair), pong, an error.

        {"method":"pong","req_id":101,"time_in":"2023-09-24T14:10:23.799685Z","time_out":"2023-09-24T14:10:23.799703Z"}
        {"error":"Exceeded msg rate","success":false,"time_in":"...","time_out":"..."}
        """
        method = message.get("method")
        if method == "subscribe":
            self._on_subscribe_ack(message, text)
        elif method == "pong":
            self.touch_all()
        elif type(method) is str:
            log.debug("kraken: %s answered", excerpt(method, 40))
        elif method is not None:
            raise MessageError(self.venue, f"method is a {type(method).__name__}, not a string", text)
        elif message.get("success") is False:
            raise MessageError(self.venue, f"request refused: {_shown(message.get('error'))}", text)
        else:
            raise MessageError(self.venue, "frame has neither channel nor method", text)

    def _on_subscribe_ack(self, message: dict, text: str) -> None:
        """Docs "subscribe" acknowledgement, one per pair; a refused book is fatal, a refused instrument
        channel is not (the configured precision is used, and said):

        {"method":"subscribe","result":{"channel":"book","depth":10,"snapshot":true,"symbol":"BTC/USD"},
         "success":true,"time_in":"2023-10-06T17:35:55.219022Z","time_out":"2023-10-06T17:35:55.219067Z"}
        """
        if message.get("success") is not False:
            result = message.get("result")
            if type(result) is dict and result.get("channel") == "book":
                log.info("kraken: subscribed to book %s depth %s", _shown(result.get("symbol")),
                         _shown(result.get("depth")))
            return
        error = _shown(message.get("error"))
        if message.get("req_id") == INSTRUMENT_REQ_ID:
            log.warning("kraken: instrument channel refused (%s)", error)
            self._fallback_precision(f"instrument channel refused ({error})")
            self._subscribe_book()
            return
        symbol = message.get("symbol")
        which = f" of {excerpt(symbol, 40)}" if type(symbol) is str else ""
        raise MessageError(self.venue, f"subscription{which} refused: {error}", text)

    # --- precision and notes -----------------------------------------------------------------------
    def _set_precision(self, pair: _Pair, price_precision: Any, qty_precision: Any, text: str) -> None:
        for value in (price_precision, qty_precision):
            if type(value) is not int or not 0 <= value <= MAX_PRECISION:
                raise MessageError(self.venue, f"{pair.feed.native} precision {_shown(value)} is not an "
                                               f"integer 0..{MAX_PRECISION}", text)
        pair.learned = True
        pair.note = ""
        top = pair.top
        if (price_precision, qty_precision) != (top.price_precision, top.qty_precision):
            log.info("kraken: %s precision %d/%d from the instrument channel",
                     pair.feed.native, price_precision, qty_precision)
            pair.top = ChecksumTop(price_precision, qty_precision)  # refills from the book when next asked
        self._refresh_notes()

    def _fallback_precision(self, why: str) -> None:
        """Pairs whose precision is still unknown keep the configured one, and the user is told."""
        for pair in self._pairs.values():
            if not pair.learned:
                top = pair.top
                pair.note = f"checksum precision {top.price_precision}/{top.qty_precision} assumed: {why}"
        self._refresh_notes()

    def _refresh_notes(self) -> None:
        system = "" if self._system == "online" else f"Kraken system status: {self._system}"
        for pair in self._pairs.values():
            pair.feed.notes = tuple(note for note in (pair.note, system) if note)

    # --- for tests and reports -------------------------------------------------------------------------
    def precision(self, native: str) -> tuple[int, int]:
        top = self._pairs[native].top
        return top.price_precision, top.qty_precision

    def checksum(self, native: str) -> int:
        """One book's checksum computed afresh (the frames use the kept top levels)."""
        pair = self._pairs[native]
        pair.top.forget()
        return pair.top.checksum(pair.feed.book)


def _levels(side: str, rows: Any, text: str) -> list[Level]:
    """[{"price":62802.5,"qty":0.02987767}, ...] -> checked (Decimal, Decimal) levels; qty 0 deletes.

    `side` is "bid" or "ask". A missing side means no change on it (Kraken writes "bids":[], but
    tolerate both). Non-integers are Decimals from the decoder and JSON integers (the converted capture
    writes 2600 and a delete's "qty":0) become Decimals too; either way `parse.checked` bounds them.
    Anything else (a string, a wrong type) goes through `parse.level`, which converts or refuses it."""
    if type(rows) is not list:
        if rows is None:
            return []
        raise MessageError(VENUE_NAME, f"{side}s is not a list", text)
    levels = []
    append = levels.append
    for row in rows:
        if type(row) is not dict:
            raise MessageError(VENUE_NAME, f"{side} level is not an object", text)
        price = row.get("price")
        qty = row.get("qty")
        if type(price) is int:  # never a bool: type(True) is bool
            price = Decimal(price)
        if type(qty) is int:
            qty = Decimal(qty)
        if type(price) is Decimal and type(qty) is Decimal:
            append(_checked(VENUE_NAME, side, price, qty, text))
        else:
            append(_level(VENUE_NAME, side, price, qty, text))
    return levels


# --- the checksum --------------------------------------------------------------------------------------
class ChecksumTop:
    """Kraken's book checksum (docs guide "book checksum v2"), kept cheap for a busy feed.

    CRC32 of the 10 best asks (ascending) then the 10 best bids (descending), each level written as
    its price and qty with the pair's fixed decimals, '.' and leading zeros removed.

    Instead of reading and formatting the 10 best levels of each side for every message, each side's
    10 fragments are kept in step with the book (`_SideTop`): `changed()` is told every level a message
    sets or deletes and edits only the fragments that change; levels deeper than the 10th cost one
    bisect. What a deletion frees at the bottom is read from the book in `checksum()`. `changed()`
    reads only the levels given, never the book, so it may run before or after the book applies them
    (truncation to a depth of 10 or more never touches the top 10).
    """

    __slots__ = ("price_precision", "qty_precision", "_price_format", "_qty_format", "_bids", "_asks")

    def __init__(self, price_precision: int, qty_precision: int) -> None:
        self.price_precision = price_precision
        self.qty_precision = qty_precision
        self._price_format = f".{price_precision}f"
        self._qty_format = f".{qty_precision}f"
        self._bids = _SideTop(bids=True)
        self._asks = _SideTop(bids=False)

    def forget(self) -> None:
        """The book was replaced or cleared: nothing kept describes it any more."""
        self._bids.clear()
        self._asks.clear()

    def changed(self, bids: Iterable[Level], asks: Iterable[Level]) -> None:
        """One message's levels (qty 0 deletes), in the order sent."""
        if bids:
            self._bids.changed(bids, self._fragment)
        if asks:
            self._asks.changed(asks, self._fragment)

    def checksum(self, book: L2Book) -> int:
        asks = self._asks
        if asks.text is None:
            asks.refill(book, _ASK, self._fragment)
            asks.crc = zlib.crc32(asks.text)
        bids = self._bids
        if bids.text is None:
            bids.refill(book, _BID, self._fragment)
        return zlib.crc32(bids.text, asks.crc)

    def _fragment(self, price: Decimal, qty: Decimal) -> str:
        return _digits(price, self._price_format) + _digits(qty, self._qty_format)


class _SideTop:
    """One side's best levels, at most 10, best first: their prices as ascending sort keys (a bid's is
    -price, so bisect works on both sides) and their checksum fragments.

    Invariant between messages: `keys` are exactly the book's best len(keys) levels. A change better
    than the last kept key is applied here (a new level pushes the 11th out); one beyond it is not kept
    and needs no action unless fewer than 10 are kept, when `refill` reads what follows from the book.
    `text` is the joined fragments, None when they changed; `crc` its CRC32 (used for the asks, which
    come first, so a bids-only change does not hash the asks again).
    """

    __slots__ = ("bids", "keys", "fragments", "text", "crc")

    def __init__(self, bids: bool) -> None:
        self.bids = bids
        self.keys: list[Decimal] = []
        self.fragments: list[str] = []
        self.text: bytes | None = None
        self.crc = 0

    def clear(self) -> None:
        self.keys.clear()
        self.fragments.clear()
        self.text = None

    def changed(self, levels: Iterable[Level], fragment: Callable[[Decimal, Decimal], str]) -> None:
        keys, fragments = self.keys, self.fragments
        for price, qty in levels:
            key = -price if self.bids else price
            i = bisect_left(keys, key)
            if i == len(keys):  # beyond what is kept
                if i < CHECKSUM_LEVELS:
                    self.text = None  # the side is short: the book may now hold more in its top 10
                continue
            if keys[i] == key:
                if qty:
                    fragments[i] = fragment(price, qty)
                else:
                    del keys[i], fragments[i]
            elif qty:
                keys.insert(i, key)
                fragments.insert(i, fragment(price, qty))
                if len(keys) > CHECKSUM_LEVELS:
                    del keys[CHECKSUM_LEVELS:], fragments[CHECKSUM_LEVELS:]
            else:
                continue  # deleting a level that is not there
            self.text = None

    def refill(self, book: L2Book, side: Side, fragment: Callable[[Decimal, Decimal], str]) -> None:
        """Top up to 10 from the book (changes applied) and join the fragments into `text`."""
        keys, fragments = self.keys, self.fragments
        if len(keys) < CHECKSUM_LEVELS:
            for price, qty in islice(book.levels(side), len(keys), CHECKSUM_LEVELS):
                keys.append(-price if self.bids else price)
                fragments.append(fragment(price, qty))
        self.text = "".join(fragments).encode("ascii")


def _digits(value: Decimal, spec: str) -> str:
    """Fixed decimals, no '.', no leading zeros: 0.001 (".8f") -> "100000", 45285.2 (".1f") -> "452852".
    Only checked levels get here (`parse.checked`: magnitudes bounded), so the string stays short."""
    return format(value, spec).replace(".", "").lstrip("0")


# --- registration --------------------------------------------------------------------------------------
_V2_NAMES = {"XBT": "BTC", "XDG": "DOGE"}
"""Kraken's legacy asset codes; WebSocket v2 writes the common ones (BTC/USD, not XBT/USD)."""


def native_symbol(symbol: Symbol) -> str:
    """BTC-USD -> "BTC/USD", ETH-USD -> "ETH/USD": v2 names are BASE/QUOTE with common codes."""
    base, quote = _V2_NAMES.get(symbol.base, symbol.base), _V2_NAMES.get(symbol.quote, symbol.quote)
    if base == quote:
        raise ValueError(f"kraken has no market {symbol.name}")
    return f"{base}/{quote}"


def _notes(settings: KrakenSettings, symbol: Symbol) -> tuple[str, ...]:
    return (f"top {settings.depth} levels per side (subscribed depth)",)


VENUE = VenueSpec(
    name=VENUE_NAME,
    title="Kraken spot, WebSocket v2 book (L2, CRC32 checksum of the top 10 levels on every message)",
    settings=KrakenSettings,
    processor=KrakenProcessor,
    native_symbol=native_symbol,
    instrument="spot",
    multiplexed=True,
    simulator="data_manager.sim.kraken:KrakenSim",
    sim_faults={
        "checksum": "an update with a wrong checksum",
        "drop": "an update lost (chosen so that the next checksum must catch it)",
        "duplicate": "an update delivered twice: harmless by design (sizes are absolute), the book stays exact",
        "disconnect": "the server closes the connection",
        "silence": "no data, heartbeat or pong any more, socket kept open",
        "crossed": "a bid at the best ask, with a checksum that agrees, so only the crossed check catches it",
        "garbage": "a frame that is not JSON",
    },
    limits=ConnectLimits(
        min_interval=5.0, attempts=150, per_seconds=600.0, immediate_retry=True,
        source="venues-2026.md §3 [KR-PROF 2026-07-26], UNVERIFIED against docs.kraken.com: Cloudflare "
               "allows ~150 reconnection attempts per rolling 10 minutes per IP; Kraken asks for no faster "
               "than one reconnect every 5 s during maintenance (applied always: maintenance is when "
               "reconnects cluster)"),
    notes=_notes,
)

__all__ = ["CHECKSUM_LEVELS", "VALID_DEPTHS", "VENUE", "ChecksumTop", "KrakenProcessor", "KrakenSettings",
           "native_symbol"]
