"""Gemini market data v2 `l2`: a sans-I/O processor.

Protocol facts (docs.gemini.com, "Market Data Version 2", now marked archived; shared/venues.md
section 3):
- one subscription `l2` streams `l2_updates`, `trade` and auction messages for the symbol, plus
  `heartbeat`s; unknown types are harmless and ignored (knowm/XChange PR#3875);
- the first `l2_updates` after subscribing is the whole book, carrying `trades` and `auction_events`;
  later ones carry `changes` as [side, price, absolute quantity], "0" deleting the level;
- there is no sequence number and no checksum: the only safety nets are replacing the book on every
  (re)subscribe (never merging: ccxt#29210 kept "ghost" levels that way) and the crossed-book check.
"""
from __future__ import annotations

import json
import logging
import time
from typing import Any, Callable

from data_manager.book import Side
from data_manager.errors import FeedError, MessageError
from data_manager.venues.base import VenueProcessor
from data_manager.venues.l2common import ChangeSet, load_frame, require

log = logging.getLogger(__name__)

VENUE = "gemini"
SIDES = {"buy": Side.BID, "sell": Side.ASK}
ALIVE_TYPES = ("trade", "heartbeat")  # no book change, but the feed is alive


class GeminiProcessor(VenueProcessor):
    """One symbol's L2 book from a v2 market data connection (other symbols' frames are ignored)."""

    venue = VENUE

    def __init__(self, symbol: str = "BTCUSD", clock: Callable[[], float] = time.time) -> None:
        super().__init__(symbol, clock)
        self._has_book = False

    # --- what the shell calls ---------------------------------------------------------------
    def subscribe_messages(self) -> list[str]:
        """{"type":"subscribe","subscriptions":[{"name":"l2","symbols":["BTCUSD"]}]} (trades come too)."""
        return [json.dumps({"type": "subscribe", "subscriptions": [{"name": "l2", "symbols": [self.symbol]}]})]

    def reset(self) -> None:
        super().reset()
        self._has_book = False

    def fault(self, error: FeedError) -> bool:
        self._has_book = False  # whatever comes next must be a whole book again
        return super().fault(error)

    def receive(self, text: str) -> None:
        message = load_frame(VENUE, text)
        kind = message.get("type")
        if message.get("result") == "error" or kind == "error":
            raise MessageError(VENUE, f"venue error: {message.get('reason')!r}: {message.get('message')!r}", text)
        if type(kind) is not str:
            require(VENUE, message, "type", str, text)  # raises, naming what is wrong
        if kind == "l2_updates":
            self._on_l2_updates(message, text)
        elif kind in ALIVE_TYPES:
            self.touch()
        else:
            log.debug("%s: ignoring message type %r", VENUE, kind)

    # --- messages -----------------------------------------------------------------------------
    def _on_l2_updates(self, message: dict[str, Any], text: str) -> None:
        """The whole book (first after subscribing, or marked by `trades` + `auction_events`) or changes.

        Implements "Level 2 Data" of Market Data v2. Real first message (ccxt comment, trimmed):
        {"type":"l2_updates","symbol":"BTCUSD",
         "changes":[["buy","22252.37","0.02"],["sell","22269.15","0.1"]],
         "trades":[{"type":"trade","symbol":"BTCUSD","event_id":122258166738,"timestamp":1655330221424,
                    "price":"22269.14","quantity":"0.00004473","side":"buy"}],
         "auction_events":[]}
        later: {"type":"l2_updates","symbol":"BTCUSD","changes":[["sell","9160.20","0.1921229751"]]}
        """
        symbol = message.get("symbol")
        if type(symbol) is not str:
            require(VENUE, message, "symbol", str, text)  # raises
        if symbol != self.symbol:
            return
        rows = message.get("changes")
        if type(rows) is not list:
            require(VENUE, message, "changes", list, text)  # raises
        changes = ChangeSet(VENUE, SIDES, text)  # rows: ["buy","22252.37","0.02"]: side, price, new quantity
        changes.extend(rows)
        if not self._has_book or ("trades" in message and "auction_events" in message):
            self._load_book(changes)
        else:
            changes.apply_to(self.book)
        self.integrity.messages += 1
        self.assert_not_crossed()
        self.touch()

    def _load_book(self, changes: ChangeSet) -> None:
        changes.replace(self.book)
        self._has_book = True
        self.go_live()
        self.integrity.since_snapshot()
        log.info("%s %s: book loaded: %d bids, %d asks", VENUE, self.symbol,
                 self.book.depth(Side.BID), self.book.depth(Side.ASK))
