"""The snapshot bridge: a book from a REST snapshot plus the stream of deltas, with nothing lost between.

Every venue whose stream carries no snapshot of its own (KuMEX, Bitstamp) needs the same steps, and
each is easy to get subtly wrong, so they are written once (altangent/ccxws#207, cryptofeed#1082):

    IDLE --delta--> BUFFERING --fetch_due()--> FETCHING --snapshot--> SYNCED
                        ^                         |
                        +----- too old / failed --+   (refetch, after `retry_at` if it failed)

1. Buffer the deltas as they arrive, each with its stream position (a sequence number, or a
   microtimestamp: any integer that never decreases).
2. Once something is buffered, ask for the snapshot (never before: a snapshot older than the stream's
   first delta cannot be bridged).
3. A snapshot older than the buffer (its position < first buffered - `slack`) is refetched: `slack` is 1
   for gap-free sequences (a snapshot at first - 1 holds everything before it), 0 for timestamps.
4. Otherwise: the caller loads it, then replays the buffered deltas after its position, in order.
   Deltas that arrive later at or below that position are the caller's to drop (`covered`).

The bridge holds positions and opaque deltas only; parsing and applying stay with the venue.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import Enum
from typing import Any, Generic, TypeVar

D = TypeVar("D")

MAX_BUFFERED = 200_000
"""Deltas kept while waiting for a snapshot; the oldest go first (a later snapshot still bridges)."""
FETCH_TIMEOUT_SECONDS = 30.0
"""A fetch with no answer for this long is forgotten, so a new one can be asked for."""


class BridgeState(str, Enum):
    IDLE = "idle"            # nothing buffered yet
    BUFFERING = "buffering"  # deltas buffered; a snapshot is due (at `retry_at` after a failure)
    FETCHING = "fetching"    # a snapshot request is under way
    SYNCED = "synced"        # the snapshot was loaded; the caller applies deltas directly


@dataclass(frozen=True)
class Bridged(Generic[D]):
    """A snapshot that bridges the buffer: load `snapshot`, then apply `replay` in order."""

    position: int
    snapshot: Any
    replay: list[D]


class SnapshotBridge(Generic[D]):
    def __init__(self, slack: int, max_buffered: int = MAX_BUFFERED) -> None:
        self.slack = slack
        self.state = BridgeState.IDLE
        self._buffer: deque[tuple[int, D]] = deque(maxlen=max_buffered)
        self._retry_at = 0.0
        self._fetch_started = 0.0
        self.position: int | None = None     # the loaded snapshot's position, once SYNCED
        self.refetches = 0

    def restart(self) -> None:
        """Forget the buffer and any snapshot: the stream starts over (a fault, a new connection)."""
        self.state = BridgeState.IDLE
        self._buffer.clear()
        self.position = None

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def last_buffered(self) -> int | None:
        return self._buffer[-1][0] if self._buffer else None

    def buffer(self, position: int, delta: D) -> None:
        """Keep a delta until a snapshot bridges it (only before SYNCED)."""
        if self.state is BridgeState.SYNCED:
            raise RuntimeError("the bridge is synced: apply deltas directly")
        self._buffer.append((position, delta))
        if self.state is BridgeState.IDLE:
            self.state = BridgeState.BUFFERING

    def fetch_due(self, now: float) -> bool:
        """True once when a snapshot request should start now (the state becomes FETCHING)."""
        if self.state is BridgeState.FETCHING and now - self._fetch_started > FETCH_TIMEOUT_SECONDS:
            self.state = BridgeState.BUFFERING
        if self.state is not BridgeState.BUFFERING or now < self._retry_at:
            return False
        self.state = BridgeState.FETCHING
        self._fetch_started = now
        return True

    def failed(self, now: float, retry_after: float) -> None:
        """The request failed: ask again after `retry_after` seconds."""
        if self.state is BridgeState.FETCHING:
            self.state = BridgeState.BUFFERING
            self._retry_at = now + retry_after

    def snapshot(self, position: int, snapshot: Any) -> Bridged[D] | None:
        """A snapshot at `position` arrived: the bridge to load, or None (too old: refetch is due)."""
        if self.state is not BridgeState.FETCHING:
            return None  # a leftover answer from before a restart
        if not self._buffer or position < self._buffer[0][0] - self.slack:
            self.state = BridgeState.BUFFERING if self._buffer else BridgeState.IDLE
            self.refetches += 1
            return None
        replay = [delta for at, delta in self._buffer if at > position]
        self._buffer.clear()
        self.state = BridgeState.SYNCED
        self.position = position
        return Bridged(position, snapshot, replay)

    def covered(self, position: int) -> bool:
        """A delta at `position` that the loaded snapshot already holds."""
        return self.position is not None and position <= self.position
