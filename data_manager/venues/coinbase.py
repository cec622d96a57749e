"""Coinbase Advanced Trade WebSocket `level2` (+ `heartbeats`): a sans-I/O processor.

Protocol facts (docs.cdp.coinbase.com, Advanced Trade WebSocket channels; shared/venues.md section 2):
- subscribe to channel `level2`, but the messages arrive as `channel: "l2_data"`;
- `events[].type` is `snapshot` (the whole book, one frame) or `update`; sides are `bid` / `offer`;
  `new_quantity` is the new absolute size and "0" deletes the level;
- `sequence_num` is one counter per connection across every channel and product, so a skipped number
  means a frame was lost, whatever it carried: the book can no longer be vouched for;
- quiet subscriptions are closed after 60-90 s unless `heartbeats` is subscribed too;
- there is no checksum, so the sequence and a crossed-book check are the only integrity evidence.

On any fault the base class drops the book and the shell reconnects: the fresh connection restarts the
sequence and brings a new snapshot, which replaces (never merges into) the book.
"""
from __future__ import annotations

import json
import logging
import time
from typing import Any, Callable

from data_manager.book import Side
from data_manager.errors import FeedError, MessageError, SequenceGap
from data_manager.venues.base import VenueProcessor
from data_manager.venues.l2common import ChangeSet, load_frame, require

log = logging.getLogger(__name__)

VENUE = "coinbase"
SIDES = {"bid": Side.BID, "offer": Side.ASK}  # "offer", not "ask" (cryptofeed matched "ask": a bug)
CHANNELS = ("level2", "heartbeats")
SNAPSHOT, UPDATE = "snapshot", "update"
_MISSING = object()


class CoinbaseProcessor(VenueProcessor):
    """One product's L2 book from one Advanced Trade connection (other products' frames only count
    towards the connection's sequence)."""

    venue = VENUE

    def __init__(self, symbol: str = "BTC-USD", clock: Callable[[], float] = time.time) -> None:
        super().__init__(symbol, clock)
        self._last_sequence: int | None = None
        self._has_snapshot = False
        self._handlers: dict[str, Callable[[dict[str, Any], int, str], None]] = {
            "l2_data": self._on_l2_data, "heartbeats": self._on_heartbeat, "subscriptions": self._on_subscriptions}

    # --- what the shell calls ---------------------------------------------------------------
    def subscribe_messages(self) -> list[str]:
        """One subscribe per channel (the AT protocol takes one `channel` per message).

        `heartbeats` needs no product per the docs; sending one anyway is accepted (ccxt PR#22892)."""
        return [json.dumps({"type": "subscribe", "product_ids": [self.symbol], "channel": channel})
                for channel in CHANNELS]

    def reset(self) -> None:
        super().reset()
        self._last_sequence = None
        self._has_snapshot = False

    def fault(self, error: FeedError) -> bool:
        self._has_snapshot = False  # an update after a fault must not rebuild a partial book
        return super().fault(error)

    def receive(self, text: str) -> None:
        message = load_frame(VENUE, text)
        if message.get("type") == "error":
            raise MessageError(VENUE, f"venue error: {message.get('message')!r}", text)
        channel = message.get("channel")
        if type(channel) is not str:
            require(VENUE, message, "channel", str, text)  # raises, naming what is wrong
        sequence = message.get("sequence_num")
        if type(sequence) is not int:
            sequence = require(VENUE, message, "sequence_num", int, text)  # raises, naming what is wrong
        self._check_sequence(sequence)
        handler = self._handlers.get(channel)
        if handler is None:
            log.debug("%s: ignoring channel %r", VENUE, channel)
            return
        handler(message, sequence, text)

    # --- sequence -----------------------------------------------------------------------------
    def _check_sequence(self, sequence: int) -> None:
        """The first frame of a connection sets the base; after it every frame must be last + 1.

        A repeated or older number is as much a fault as a skipped one: it is reported as a gap with
        the number we expected, so the log says exactly where the stream went wrong."""
        expected = None if self._last_sequence is None else self._last_sequence + 1
        if expected is not None and sequence != expected:
            raise SequenceGap(VENUE, expected, sequence)
        self._last_sequence = sequence
        if self.integrity.first_sequence is not None:
            self.integrity.last_sequence = sequence

    # --- channels -----------------------------------------------------------------------------
    def _on_l2_data(self, message: dict[str, Any], sequence: int, text: str) -> None:
        """Snapshot or update events; only those for our product touch the book.

        Implements "Level2 Channel" (docs.cdp.coinbase.com/advanced-trade/docs/ws-channels). Real
        update (trimmed):
        {"channel":"l2_data","client_id":"","timestamp":"2024-10-08T09:10:36.120390407Z","sequence_num":14,
         "events":[{"type":"update","product_id":"BTC-USD","updates":[
           {"side":"bid","event_time":"2024-10-08T09:10:35.171517Z","price_level":"62317.89","new_quantity":"0.032355"},
           {"side":"offer","event_time":"2024-10-08T09:10:35.171517Z","price_level":"62394.77","new_quantity":"0"}]}]}
        """
        ours = self._our_events(message, text)
        if not ours:
            return
        for kind, changes in ours:
            if kind == SNAPSHOT:
                self._load_snapshot(changes, sequence)
            elif not self._has_snapshot:
                raise MessageError(VENUE, f"update for {self.symbol} before its snapshot", text)
            else:
                changes.apply_to(self.book)
        self.integrity.messages += 1
        self.assert_not_crossed()
        self.touch()

    def _our_events(self, message: dict[str, Any], text: str) -> list[tuple[str, ChangeSet]]:
        """Parse and validate every event for our product before the book is touched."""
        ours = []
        for event in require(VENUE, message, "events", list, text):
            if not isinstance(event, dict):
                raise MessageError(VENUE, "an event is not an object", text)
            if require(VENUE, event, "product_id", str, text) != self.symbol:
                continue
            kind = require(VENUE, event, "type", str, text)
            if kind not in (SNAPSHOT, UPDATE):
                raise MessageError(VENUE, f"unknown l2_data event type {kind!r}", text)
            changes = ChangeSet(VENUE, SIDES, text)
            for row in require(VENUE, event, "updates", list, text):
                self._add_update(changes, row, text)
            ours.append((kind, changes))
        return ours

    def _add_update(self, changes: ChangeSet, row: Any, text: str) -> None:
        """{"side":"offer","event_time":"2024-10-08T09:10:35.171517Z","price_level":"62394.77","new_quantity":"0.0170024"}"""
        if type(row) is not dict:
            raise MessageError(VENUE, "an update is not an object", text)
        price = row.get("price_level", _MISSING)
        if price is _MISSING:
            require(VENUE, row, "price_level", object, text)  # raises
        size = row.get("new_quantity", _MISSING)
        if size is _MISSING:
            require(VENUE, row, "new_quantity", object, text)  # raises
        changes.add(row.get("side"), price, size)

    def _load_snapshot(self, changes: ChangeSet, sequence: int) -> None:
        changes.replace(self.book)
        self._has_snapshot = True
        self.go_live()
        self.integrity.since_snapshot(sequence)
        log.info("%s %s: snapshot loaded at sequence %d: %d bids, %d asks", VENUE, self.symbol, sequence,
                 self.book.depth(Side.BID), self.book.depth(Side.ASK))

    def _on_heartbeat(self, message: dict[str, Any], sequence: int, text: str) -> None:
        """Proof of life once a second, even when the book is quiet ("Heartbeats Channel"). Real:
        {"channel":"heartbeats","client_id":"","timestamp":"2023-10-23T14:43:13.362842145Z","sequence_num":150,
         "events":[{"current_time":"2023-10-23 14:43:13.362521689 +0000 UTC m=+425760.164580852","heartbeat_counter":14191}]}
        Its `sequence_num` was already checked, which is what catches a lost frame."""
        self.touch()

    def _on_subscriptions(self, message: dict[str, Any], sequence: int, text: str) -> None:
        """The venue's list of what this connection is subscribed to ("Subscribe" section):
        {"channel":"subscriptions","client_id":"","timestamp":"2021-04-17T16:43:37.061845Z","sequence_num":0,
         "events":[{"subscriptions":{"level2":["BTC-USD"],"heartbeats":["heartbeats"]}}]}"""
        log.info("%s %s: subscriptions %s", VENUE, self.symbol, message.get("events"))
