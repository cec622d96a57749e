"""Kraken Spot WebSocket v2 `book` channel: an L2 book kept exact by Kraken's CRC32 checksum.

Protocol facts (venues.md section 1; docs.kraken.com "Spot WebSocket v2 / book" and the
"book checksum v2" guide):

- One subscribe per symbol and depth (10, 25, 100, 500 or 1000). The first book frame is a
  `snapshot`, then `update`s; both carry a `checksum` of the top 10 levels of each side.
- Kraken never sends a delete for a level pushed out of the subscribed depth by a better one, so the
  book is truncated to the depth after every update, before the checksum is computed.
- Prices and quantities arrive as JSON numbers. The checksum is defined on the pair's fixed-decimal
  strings (`price_precision` / `qty_precision`), so numbers are parsed as `Decimal` and re-formatted
  with the precision; the number's own text is not enough (trailing zeros may be missing).
- There are no sequence numbers: the checksum is the only integrity check. On a mismatch the book is
  dropped and the shell reconnects (a fresh snapshot).

The precision defaults come from the constructor (BTC/USD: 1 and 8). The processor also subscribes to
the `instrument` channel, a single reference-data snapshot per connection, and takes our pair's
precision from it, so a precision change at Kraken cannot silently break every checksum.
"""
from __future__ import annotations

import json
import logging
import time
import zlib
from decimal import Decimal
from itertools import islice
from typing import Any, Callable

from data_manager.book import L2Book, Level, Side
from data_manager.errors import BadLevel, ChecksumMismatch, FeedError, MessageError
from data_manager.venues.base import VenueProcessor

log = logging.getLogger(__name__)

VALID_DEPTHS = (10, 25, 100, 500, 1000)
"""Depths the v2 `book` channel accepts (docs: "depth: One of 10, 25, 100, 500, 1000")."""

CHECKSUM_LEVELS = 10
"""The checksum covers the 10 best levels of each side, whatever the subscribed depth."""

BOOK_REQ_ID = 1
INSTRUMENT_REQ_ID = 2
FIRST_PING_REQ_ID = 100

_FRAGMENT_CACHE_LIMIT = 1000
"""Cached checksum fragments per side before the cache is rebuilt from the current top 10."""

_DECODER = json.JSONDecoder(parse_float=Decimal)
"""Exact prices (`Decimal`); integers stay `int`, so `checksum` compares as an int. Built once:
`json.loads(text, parse_float=...)` would build a new decoder for every frame."""


class KrakenProcessor(VenueProcessor):
    """One Kraken v2 `book` subscription: one symbol, one depth, checksum verified on every frame."""

    venue = "kraken"
    book_kind = "L2"
    size_unit = "BTC"
    ping_interval = 30.0
    """App-level ping (docs "ping"): Kraken's heartbeats already prove the feed alive, the ping
    proves that our requests are still answered."""

    def __init__(
        self,
        symbol: str = "BTC/USD",
        depth: int = 10,
        price_precision: int = 1,
        qty_precision: int = 8,
        clock: Callable[[], float] = time.time,
        *,
        verify_checksums: bool = True,
    ) -> None:
        if depth not in VALID_DEPTHS:
            raise ValueError(f"kraken depth must be one of {VALID_DEPTHS}, got {depth!r}")
        super().__init__(symbol, clock)
        self.depth = depth
        self._top = ChecksumTop(price_precision, qty_precision)
        self.verify_checksums = verify_checksums  # off only for benchmarks that measure its cost
        self._synced = False  # a verified snapshot was loaded on this connection
        self._next_ping_id = FIRST_PING_REQ_ID
        self._channels: dict[str, Callable[[dict, str], None]] = {
            "book": self._on_book,
            "heartbeat": self._on_heartbeat,
            "status": self._on_status,
            "instrument": self._on_instrument,
        }

    # --- what the shell calls ---------------------------------------------------------------
    def subscribe_messages(self) -> list[str]:
        """Instrument first (so its precision usually lands before the book snapshot), then the book.

        Docs "book" subscribe request, e.g.
        {"method":"subscribe","params":{"channel":"book","symbol":["BTC/USD"],"depth":10,"snapshot":true},"req_id":1}
        """
        instrument = {"method": "subscribe", "params": {"channel": "instrument", "snapshot": True},
                      "req_id": INSTRUMENT_REQ_ID}
        book = {"method": "subscribe",
                "params": {"channel": "book", "symbol": [self.symbol], "depth": self.depth, "snapshot": True},
                "req_id": BOOK_REQ_ID}
        return [json.dumps(instrument), json.dumps(book)]

    def ping_message(self) -> str:
        """Docs "ping": {"method":"ping","req_id":101} -> {"method":"pong","req_id":101,...}."""
        self._next_ping_id += 1
        return json.dumps({"method": "ping", "req_id": self._next_ping_id})

    def reset(self) -> None:
        """A new connection: drop the book. Precision is reference data and survives reconnects."""
        super().reset()
        self._forget_book()

    def fault(self, error: FeedError) -> bool:
        self._forget_book()
        return super().fault(error)

    def receive(self, text: str) -> None:
        """Dispatch one frame on `channel` (data) or `method` (answers to our requests)."""
        try:
            message = _DECODER.decode(text if type(text) is str else bytes(text).decode("utf-8"))
        except (ValueError, TypeError, RecursionError) as exc:
            raise MessageError(self.venue, f"not JSON ({exc})", text) from exc
        if type(message) is not dict:
            raise MessageError(self.venue, "frame is not a JSON object", text)
        channel = message.get("channel")
        if channel is not None:
            handler = self._channels.get(channel)
            if handler is not None:
                handler(message, text)
            elif log.isEnabledFor(logging.DEBUG):
                log.debug("kraken: ignoring channel %r", channel)
            return
        method = message.get("method")
        if method == "subscribe":
            self._on_subscribe_ack(message, text)
        elif method is not None:
            log.debug("kraken: %s answered", method)  # pong, unsubscribe: nothing to do
        elif message.get("success") is False:
            raise MessageError(self.venue, f"request refused: {message.get('error')!r}", text)
        else:
            raise MessageError(self.venue, "frame has neither channel nor method", text)

    # --- channels ---------------------------------------------------------------------------
    def _on_book(self, message: dict, text: str) -> None:
        """Docs "book" snapshot/update; frames for other symbols are ignored. Real update (trimmed):

        {"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[],
         "asks":[{"price":62806.6,"qty":0.00000000},{"price":62808.0,"qty":0.79607759}],
         "checksum":265834348,"timestamp":"2026-08-16T23:37:05.376419Z"}]}
        """
        self.touch()
        kind = message.get("type")
        data = message.get("data")
        if type(data) is not list or kind not in ("snapshot", "update"):
            raise MessageError(self.venue, "book frame needs type snapshot|update and a data list", text)
        for entry in data:
            if type(entry) is not dict:
                raise MessageError(self.venue, "book data entry is not an object", text)
            if entry.get("symbol") != self.symbol:
                continue
            bids, asks, checksum = self._parse_book_entry(entry, text)
            if kind == "snapshot":
                self._load_snapshot(bids, asks, checksum)
            else:
                self._apply_update(bids, asks, checksum, text)

    def _on_heartbeat(self, message: dict, text: str) -> None:
        """Docs "heartbeat": {"channel":"heartbeat"}, about once a second when nothing else is sent."""
        self.touch()

    def _on_status(self, message: dict, text: str) -> None:
        """Docs "status", sent on connect and on a system change (real frame, trimmed):

        {"channel":"status","type":"update","data":[{"version":"2.0.0","system":"online",
         "api_version":"v2","connection_id":17843232920108168701}]}
        """
        data = message.get("data")
        for entry in data if type(data) is list else ():
            system = entry.get("system") if type(entry) is dict else None
            if system is not None and system != "online":
                log.warning("kraken: system status %s", system)

    def _on_instrument(self, message: dict, text: str) -> None:
        """Docs "instrument": our pair's precision, for the checksum strings (converted capture):

        {"channel":"instrument","type":"snapshot","data":{"assets":[],"pairs":[{"symbol":"BTC/CHF",
         "base":"BTC","quote":"CHF","status":"online","price_precision":1,"qty_precision":8,...}]}}
        """
        data = message.get("data")
        pairs = data.get("pairs") if type(data) is dict else None
        if type(pairs) is not list:
            raise MessageError(self.venue, "instrument frame without a pairs list", text)
        for pair in pairs:
            if type(pair) is dict and pair.get("symbol") == self.symbol:
                self._set_precision(pair.get("price_precision"), pair.get("qty_precision"), text)

    def _on_subscribe_ack(self, message: dict, text: str) -> None:
        """Docs "subscribe" acknowledgement; a refusal of the book is fatal, of the instrument is not.

        {"method":"subscribe","result":{"channel":"book","depth":10,"snapshot":true,"symbol":"BTC/USD"},
         "success":true,"time_in":"2023-10-06T17:35:55.219022Z","time_out":"2023-10-06T17:35:55.219067Z"}
        """
        if message.get("success") is not False:
            result = message.get("result")
            if type(result) is dict and result.get("symbol") == self.symbol:
                log.info("kraken: subscribed to book %s depth %s", self.symbol, result.get("depth"))
            return
        error = message.get("error")
        if message.get("req_id") == INSTRUMENT_REQ_ID:
            note = (f"instrument channel refused ({error}); "
                    f"using precision {self.price_precision}/{self.qty_precision}")
            log.warning("kraken: %s", note)
            self.integrity.notes.append(note)
            return
        raise MessageError(self.venue, f"subscription refused: {error!r}", text)

    # --- parsing ----------------------------------------------------------------------------
    def _parse_book_entry(self, entry: dict, text: str) -> tuple[list[Level], list[Level], int | None]:
        """(bids, asks, checksum) of one book entry, validated before anything touches the book."""
        checksum = entry.get("checksum")
        if self.verify_checksums and type(checksum) is not int:
            raise MessageError(self.venue, "book entry without an integer checksum", text)
        return (self._parse_levels(Side.BID, entry.get("bids"), text),
                self._parse_levels(Side.ASK, entry.get("asks"), text),
                checksum)

    def _parse_levels(self, side: Side, rows: Any, text: str) -> list[Level]:
        """[{"price":62802.5,"qty":0.02987767}, ...] -> [(Decimal, Decimal)]; qty 0 deletes.

        A missing side means no change on that side (Kraken writes "bids":[] but tolerate both)."""
        if rows is None:
            return []
        if type(rows) is not list:
            raise MessageError(self.venue, f"{side.value}s is not a list", text)
        levels = []
        for row in rows:
            if type(row) is not dict:
                raise MessageError(self.venue, f"{side.value} level is not an object", text)
            price = row.get("price")
            qty = row.get("qty")
            if type(price) is not Decimal:
                price = self._number(price, "price", text)
            if type(qty) is not Decimal:
                qty = self._number(qty, "qty", text)
            if price <= 0 or qty < 0:
                raise BadLevel(self.venue, side.value, price, qty)
            levels.append((price, qty))
        return levels

    def _number(self, value: Any, name: str, text: str) -> Decimal:
        """Integers are valid JSON numbers too (the converted capture writes 2600, not 2600.0)."""
        if type(value) is int:
            return Decimal(value)
        raise MessageError(self.venue, f"{name} {value!r} is not a number", text)

    # --- book changes -----------------------------------------------------------------------
    def _load_snapshot(self, bids: list[Level], asks: list[Level], checksum: int | None) -> None:
        """Replace, never merge: a resubscribe must not leave ghost levels."""
        self.book.replace(bids, asks)
        self.book.truncate(self.depth)
        self._top.forget()
        self.integrity.since_snapshot()
        self.integrity.messages += 1
        self._verify(checksum)
        self.assert_not_crossed()
        self._synced = True
        self.go_live()
        log.info("kraken: snapshot of %s loaded (%d bids, %d asks)",
                 self.symbol, self.book.depth(Side.BID), self.book.depth(Side.ASK))

    def _apply_update(self, bids: list[Level], asks: list[Level], checksum: int | None, text: str) -> None:
        """Apply every level in order (a price may appear twice), truncate, then check."""
        if not self._synced:
            raise MessageError(self.venue, "book update before a snapshot", text)
        self._top.touched(Side.BID, bids)
        self._top.touched(Side.ASK, asks)
        book = self.book
        for price, qty in bids:
            book.apply(Side.BID, price, qty)
        for price, qty in asks:
            book.apply(Side.ASK, price, qty)
        book.truncate(self.depth)
        self.integrity.messages += 1
        self._verify(checksum)
        self.assert_not_crossed()

    def _forget_book(self) -> None:
        self._synced = False
        self._top.forget()

    # --- checksum ---------------------------------------------------------------------------
    def _verify(self, expected: int | None) -> None:
        if not self.verify_checksums:
            return
        computed = self._top.checksum(self.book)
        if computed != expected:
            raise ChecksumMismatch(self.venue, expected, computed)
        self.integrity.checksums_verified += 1

    def checksum(self) -> int:
        """The book's checksum computed afresh (for tests and reports; receive() uses the cache)."""
        self._top.forget()
        return self._top.checksum(self.book)

    def _set_precision(self, price_precision: Any, qty_precision: Any, text: str) -> None:
        if type(price_precision) is not int or type(qty_precision) is not int:
            raise MessageError(self.venue, f"{self.symbol} precision is not an integer", text)
        if (price_precision, qty_precision) != (self._top.price_precision, self._top.qty_precision):
            log.info("kraken: %s precision %d/%d from the instrument channel",
                     self.symbol, price_precision, qty_precision)
            self._top = ChecksumTop(price_precision, qty_precision)

    @property
    def price_precision(self) -> int:
        return self._top.price_precision

    @property
    def qty_precision(self) -> int:
        return self._top.qty_precision


class ChecksumTop:
    """Kraken's book checksum (docs guide "book checksum v2"), kept cheap for a busy feed.

    CRC32 of the 10 best asks (ascending) then the 10 best bids (descending), each level written as
    its price and qty with the pair's fixed decimals, '.' and leading zeros removed.

    Three caches, each exact by construction:
    - each side's string of 10 fragments is kept until an update touches that side's top 10. Only a
      level at or better than the side's 10th can change it: a deeper insert lands below it, a deeper
      delete removes nothing above it, and truncation (depth >= 10) cuts deeper still;
    - a level's fragment is kept per price while the level holds the very same qty object (an
      identity test, so a stale fragment can never be reused);
    - the 10th price of each side, to answer "touched?" without reading the book.
    """

    __slots__ = ("price_precision", "qty_precision", "_parts", "_edge", "_fragments")

    def __init__(self, price_precision: int, qty_precision: int) -> None:
        self.price_precision = price_precision
        self.qty_precision = qty_precision
        self._fragments: dict[Side, dict[Decimal, tuple[Decimal, str]]] = {Side.BID: {}, Side.ASK: {}}
        self._parts: dict[Side, str | None] = {Side.BID: None, Side.ASK: None}
        self._edge: dict[Side, Decimal | None] = {Side.BID: None, Side.ASK: None}

    def forget(self) -> None:
        """The book was replaced or cleared: nothing cached describes it any more."""
        self._parts = {Side.BID: None, Side.ASK: None}
        for cache in self._fragments.values():
            cache.clear()

    def touched(self, side: Side, levels: list[Level]) -> None:
        """Call before applying `levels`: drops the side's string if they can reach its top 10."""
        if not levels or self._parts[side] is None:
            return
        edge = self._edge[side]
        if edge is None:
            self._parts[side] = None
        elif side is Side.BID:
            if any(price >= edge for price, _ in levels):
                self._parts[side] = None
        elif any(price <= edge for price, _ in levels):
            self._parts[side] = None

    def checksum(self, book: L2Book) -> int:
        asks = self._parts[Side.ASK]
        if asks is None:
            asks = self._side_part(book, Side.ASK)
        bids = self._parts[Side.BID]
        if bids is None:
            bids = self._side_part(book, Side.BID)
        return zlib.crc32(bids, zlib.crc32(asks))

    def _side_part(self, book: L2Book, side: Side) -> bytes:
        cache = self._fragments[side]
        if len(cache) > _FRAGMENT_CACHE_LIMIT:
            cache.clear()
        top = list(islice(book.levels(side), CHECKSUM_LEVELS))
        parts = []
        for price, qty in top:
            cached = cache.get(price)
            if cached is None or cached[0] is not qty:
                fragment = _digits(price, self.price_precision) + _digits(qty, self.qty_precision)
                cached = cache[price] = (qty, fragment)
            parts.append(cached[1])
        self._edge[side] = top[-1][0] if len(top) == CHECKSUM_LEVELS else None
        part = self._parts[side] = "".join(parts).encode("ascii")
        return part


def _digits(value: Decimal, precision: int) -> str:
    """Fixed decimals, no '.', no leading zeros: 0.001 (8) -> "100000", 45285.2 (1) -> "452852"."""
    return f"{value:.{precision}f}".replace(".", "").lstrip("0")


__all__ = ["CHECKSUM_LEVELS", "VALID_DEPTHS", "ChecksumTop", "KrakenProcessor"]
