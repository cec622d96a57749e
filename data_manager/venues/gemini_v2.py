"""Gemini market data v2 `l2` (archived, still served in 2026): a sans-I/O processor, `protocol: v2`.

Protocol (developer.gemini.com/websocket/archived/v2.md; shared/venues.md section 3, with the 2026
corrections of shared/venues-2026.md section 1.7):
- one connection, one subscribe for every symbol, in upper case only (lower case or unknown is
  answered `{"reason":"NoValidTradingPairs","result":"error"}`);
- the first `l2_updates` of a symbol after subscribing is its whole book, and it is the frame that carries
  `trades` and `auction_events` (ccxt PR#29218; live probe 2026-09-15: 68 trades and `auction_events`);
  every later `l2_updates` carries only `changes`, rows [side "buy"/"sell", price, absolute quantity],
  "0" deleting the level;
- `trade` and auction frames share the subscription; a `heartbeat` every 5 s (timestamp in ms);
- no sequence numbers and no checksum: a lost message cannot be detected. The only safety nets are a whole
  book on every (re)connect, replaced and never merged (ccxt#29210 kept "ghost" levels), and the
  crossed-book check.

Issue 9, defect 1: after a fault the old processor took the next ordinary update for a whole book. Here a
book becomes live only from a frame marked as a whole book; an update for a symbol with no book on this
connection is a fault, and the base ignores every frame of a connection that is closing.

Native names are the registry's lower-case `btcusd` (the WebSocket API's spelling, see gemini.py); this
processor writes and routes them in upper case, as v2 requires.
"""
from __future__ import annotations

import json
import logging
import time
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Callable, Sequence

from data_manager.book import Side
from data_manager.errors import MessageError, excerpt
from data_manager.feed import Connect, FeedBook, FeedProcessor, Send
from data_manager.parse import decode_object, fast_level, level, require
from data_manager.symbols import Symbol

if TYPE_CHECKING:
    from data_manager.venues.gemini import GeminiSettings

log = logging.getLogger(__name__)

NAME = "gemini"
NOTE = "Gemini market data v2 (archived; no sequence numbers: a lost message cannot be detected)"
Level = tuple[Decimal, Decimal]


def subscribe_message(wire_symbols: Sequence[str]) -> str:
    """{"type":"subscribe","subscriptions":[{"name":"l2","symbols":["BTCUSD","ETHUSD"]}]}"""
    return json.dumps({"type": "subscribe", "subscriptions": [{"name": "l2", "symbols": list(wire_symbols)}]},
                      separators=(",", ":"))


class GeminiV2Processor(FeedProcessor):
    """Every configured symbol's L2 book from one v2 connection; frames are routed by `symbol`."""

    venue = NAME

    def __init__(self, settings: "GeminiSettings", symbols: Sequence[tuple[Symbol, str]],
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(settings, symbols, clock)
        self._by_wire: dict[str, FeedBook] = {native.upper(): feed for native, feed in self.books.items()}
        self._booked: set[str] = set()   # wire symbols whose whole book arrived on this connection
        for feed in self.books.values():
            feed.notes = (NOTE,)

    # --- lifecycle hooks ------------------------------------------------------------------------
    def on_begin(self) -> None:
        self.emit(Connect(self.settings.v2_url))

    def on_reset(self) -> None:
        self._booked.clear()

    def on_connected(self) -> None:
        self.emit(Send(subscribe_message(list(self._by_wire))))

    def on_frame(self, text: str) -> None:
        message = decode_object(NAME, text)
        kind = message.get("type")
        if kind == "l2_updates":
            self._on_l2_updates(message, text)
        elif kind == "heartbeat":
            self.touch_all()   # {"timestamp":1789456747150,"type":"heartbeat"}: the connection is alive
        elif kind == "trade":
            self._on_trade(message)
        elif kind == "error" or message.get("result") == "error":
            raise MessageError(NAME, f"venue error: {said(message.get('reason'))}: "
                                     f"{said(message.get('message'))}", text)
        elif type(kind) is not str:
            require(NAME, message, "type", str, text)  # raises, naming what is wrong
        else:
            log.debug("%s: ignoring message type %r", NAME, kind)  # auction_open, auction_indicative...

    # --- messages -------------------------------------------------------------------------------
    def _on_l2_updates(self, message: dict[str, Any], text: str) -> None:
        """A whole book (it carries `trades` and `auction_events`) or changes to the book.

        "Level 2 Data" of Market Data v2. Whole book (ccxt comment, BTCUSD 2022-06-15, trimmed):
        {"type":"l2_updates","symbol":"BTCUSD",
         "changes":[["buy","22252.37","0.02"],["sell","22269.15","0.1"]],
         "trades":[{"type":"trade","symbol":"BTCUSD","event_id":122258166738,"timestamp":1655330221424,
                    "price":"22269.14","quantity":"0.00004473","side":"buy"}],
         "auction_events":[]}
        later: {"type":"l2_updates","symbol":"BTCUSD","changes":[["sell","9160.20","0.1921229751"]]}
        """
        symbol = message.get("symbol")
        feed = self._by_wire.get(symbol) if type(symbol) is str else None
        if feed is None:
            if type(symbol) is not str:
                require(NAME, message, "symbol", str, text)  # raises
            return  # a symbol we did not subscribe to
        rows = message.get("changes")
        if type(rows) is not list:
            require(NAME, message, "changes", list, text)  # raises
        bids, asks = _changes(rows, text)
        if "trades" in message and "auction_events" in message:
            feed.book.replace(bids, asks)
            self._booked.add(symbol)
            self.go_live(feed)
            log.info("%s %s: whole book: %d bids, %d asks", NAME, symbol,
                     feed.book.depth(Side.BID), feed.book.depth(Side.ASK))
        elif symbol in self._booked:
            feed.book.update(bids, asks)
        else:
            raise MessageError(NAME, f"{symbol} l2_updates before its whole book", text)
        self.applied(feed)
        self.touch(feed)

    def _on_trade(self, message: dict[str, Any]) -> None:
        """{"type":"trade","symbol":"BTCUSD","event_id":3575573053,"timestamp":151231241,
        "price":"9004.21000000","quantity":"0.09110000","side":"buy"}: no book change, but proof of life."""
        symbol = message.get("symbol")
        feed = self._by_wire.get(symbol) if type(symbol) is str else None
        if feed is not None:
            self.touch(feed)


def _changes(rows: list[Any], text: str) -> tuple[list[Level], list[Level]]:
    """The rows of one frame, checked and split by side, in the order sent (a price may repeat: the last
    wins), e.g. "changes":[["buy","22252.37","0.02"],["sell","22269.15","0.1"]]."""
    bids: list[Level] = []
    asks: list[Level] = []
    for row in rows:
        if type(row) is not list or len(row) != 3:
            raise MessageError(NAME, "a change is not [side, price, quantity]", text)
        side, price_text, size_text = row
        if side == "buy":
            bids.append(fast_level(price_text, size_text) or level(NAME, "bid", price_text, size_text, text))
        elif side == "sell":
            asks.append(fast_level(price_text, size_text) or level(NAME, "ask", price_text, size_text, text))
        else:
            raise MessageError(NAME, f"unknown side {said(side)}", text)
    return bids, asks


def said(value: Any) -> str:
    """A value the venue sent, bounded for an error message."""
    return excerpt(repr(value), 80)
