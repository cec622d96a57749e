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
from bisect import bisect_left
from decimal import Decimal
from itertools import islice
from typing import Any, Callable

from data_manager.book import L2Book, Level, Side
from data_manager.errors import BadLevel, ChecksumMismatch, FeedError, MessageError
from data_manager.venues.base import VenueProcessor
from data_manager.venues.l2common import decode_json

log = logging.getLogger(__name__)

VALID_DEPTHS = (10, 25, 100, 500, 1000)
"""Depths the v2 `book` channel accepts (docs: "depth: One of 10, 25, 100, 500, 1000")."""

CHECKSUM_LEVELS = 10
"""The checksum covers the 10 best levels of each side, whatever the subscribed depth."""

BOOK_REQ_ID = 1
INSTRUMENT_REQ_ID = 2
FIRST_PING_REQ_ID = 100

_ZERO = Decimal(0)
_BID, _ASK = Side.BID, Side.ASK  # read per message: an Enum member read from its class is slow (3.11)

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
        self._verify_checksums = verify_checksums
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
        message = decode_json(self.venue, _DECODER, text)
        if type(message) is not dict:
            raise MessageError(self.venue, "frame is not a JSON object", text)
        channel = message.get("channel")
        if channel == "book":  # nearly every frame: skip the dispatch table
            self._on_book(message, text)
            return
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
            checksum = entry.get("checksum")
            if self._verify_checksums and type(checksum) is not int:
                raise MessageError(self.venue, "book entry without an integer checksum", text)
            bids = self._parse_levels(_BID, entry.get("bids"), text)
            asks = self._parse_levels(_ASK, entry.get("asks"), text)
            if kind == "update":
                self._apply_update(bids, asks, checksum, text)
            else:
                self._load_snapshot(bids, asks, checksum)

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
    def _parse_levels(self, side: Side, rows: Any, text: str) -> list[Level]:
        """[{"price":62802.5,"qty":0.02987767}, ...] -> [(Decimal, Decimal)]; qty 0 deletes.

        A missing side means no change on that side (Kraken writes "bids":[] but tolerate both)."""
        if type(rows) is not list:
            if rows is None:
                return []
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
            if price <= _ZERO or qty < _ZERO:
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
        verify = self._verify_checksums
        if verify:
            self._top.changed(bids, asks)
        self.book.update(bids, asks, self.depth)
        self.integrity.messages += 1
        if verify:
            self._verify(checksum)
        self.assert_not_crossed()

    def _forget_book(self) -> None:
        self._synced = False
        self._top.forget()

    # --- checksum ---------------------------------------------------------------------------
    @property
    def verify_checksums(self) -> bool:
        """Off only for benchmarks that measure its cost (the checksum is the feed's only integrity
        check). While off, the checksum's top levels are not kept; turning it on reads them afresh."""
        return self._verify_checksums

    @verify_checksums.setter
    def verify_checksums(self, on: bool) -> None:
        self._verify_checksums = on
        self._top.forget()

    def _verify(self, expected: int | None) -> None:
        if not self._verify_checksums:
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

    Instead of reading and formatting the 10 best levels of each side for every message, each side's
    10 fragments are kept in step with the book (`_SideTop`): `changed()` is told every level a message
    sets or deletes, before the book applies them, and edits only the fragments that change; levels
    deeper than the 10th cost one bisect. What a deletion frees at the bottom is read from the book
    afterwards, in `checksum()`.
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

    def changed(self, bids: list[Level], asks: list[Level]) -> None:
        """One message's levels (qty 0 deletes), in the order sent, before the book applies them."""
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

    def changed(self, levels: list[Level], fragment: Callable[[Decimal, Decimal], str]) -> None:
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
    """Fixed decimals, no '.', no leading zeros: 0.001 (".8f") -> "100000", 45285.2 (".1f") -> "452852"."""
    return format(value, spec).replace(".", "").lstrip("0")


__all__ = ["CHECKSUM_LEVELS", "VALID_DEPTHS", "ChecksumTop", "KrakenProcessor"]
