"""What every venue processor is: a sans-I/O object that turns a venue's text frames into book changes.

A processor never touches a socket or the event loop (the websockets/h11 way). The asyncio shell in
`data_manager/client.py` asks it what to send (`subscribe_messages`, `ping_message`), hands it every
frame (`receive`), and performs the HTTP requests it asks for (`token_request`, `snapshot_request`),
handing the answers back (`connect_url`, `load_snapshot`). Everything a processor does can therefore be
tested by feeding it text.

The base class owns what is the same for every venue: the book state machine, fault records, the
integrity counters shown to the user, and the "is this book usable" question.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from enum import Enum
from typing import Callable, ClassVar, Iterator

from data_manager.book import L2Book, L3Book, Level, Side
from data_manager.errors import CrossedBook, FeedError

log = logging.getLogger(__name__)


class BookState(str, Enum):
    CONNECTING = "connecting"   # no connection yet, or reconnecting
    SYNCING = "syncing"         # connected, waiting for the first full book
    LIVE = "live"               # a book we can vouch for
    STALE = "stale"             # no data and no heartbeat for longer than max_age
    RESYNCING = "resyncing"     # a fault was detected; the book is discarded until a fresh snapshot


@dataclass(frozen=True)
class HttpRequest:
    """An HTTP request the shell performs for the processor (KuMEX token and snapshot)."""

    method: str
    url: str
    body: bytes | None = None


@dataclass(frozen=True)
class Fault:
    kind: str
    detail: str
    at: float


@dataclass
class Integrity:
    """Evidence the user sees next to each book: what was checked since the last snapshot."""

    snapshots: int = 0
    messages: int = 0
    checksums_verified: int = 0
    first_sequence: int | None = None
    last_sequence: int | None = None
    notes: list[str] = field(default_factory=list)

    def since_snapshot(self, sequence: int | None = None) -> None:
        self.snapshots += 1
        self.checksums_verified = 0
        self.first_sequence = self.last_sequence = sequence


class VenueProcessor:
    """Base of the four venue processors. Subclasses implement `subscribe_messages` and `receive`."""

    venue: ClassVar[str] = ""
    book_kind: ClassVar[str] = "L2"
    size_unit: ClassVar[str] = "BTC"

    def __init__(self, symbol: str, clock: Callable[[], float] = time.time) -> None:
        self.symbol = symbol
        self.clock = clock
        self.book: L2Book | L3Book = L3Book() if self.book_kind == "L3" else L2Book()
        self.state = BookState.CONNECTING
        self.resyncs = 0
        self.last_fault: Fault | None = None
        self.last_data: float | None = None
        self.integrity = Integrity()
        self.mode_note = ""  # e.g. "L2 (level 3 unavailable)": said in the output, never silent
        self.outbox: list[str] = []  # frames the processor wants sent now (after a welcome, a resync)

    # --- what the shell calls ---------------------------------------------------------------
    def subscribe_messages(self) -> list[str]:
        raise NotImplementedError

    def receive(self, text: str) -> None:
        """Parse one frame, check it, apply it. Raises FeedError when the book can't be trusted."""
        raise NotImplementedError

    def reset(self) -> None:
        """A new connection starts: the old book is discarded (never merged into the new one)."""
        self.book.clear()
        self.outbox = []
        self.state = BookState.SYNCING
        self.integrity = Integrity()

    def fault(self, error: FeedError) -> bool:
        """Record a fault and drop the book. True if the processor resyncs on the same connection."""
        self.last_fault = Fault(error.kind, error.detail(), self.clock())
        self.resyncs += 1
        self.book.clear()
        self.state = BookState.RESYNCING
        log.warning("%s: %s: %s: resyncing", self.venue, error.kind, error.detail())
        return False

    def take_outbox(self) -> list[str]:
        """Frames to send on the socket now; the shell drains this after every `receive`."""
        frames, self.outbox = self.outbox, []
        return frames

    def on_timer(self, now: float) -> None:
        """Called by the shell about once a second: time-based decisions (e.g. a silent topic)."""

    def token_request(self) -> HttpRequest | None:
        """A request to make before connecting (KuMEX bullet token); None for most venues."""
        return None

    def connect_url(self, url: str, token_response: str | None = None) -> str:
        return url

    def snapshot_request(self) -> HttpRequest | None:
        """A REST snapshot the processor needs now (KuMEX), or None."""
        return None

    def load_snapshot(self, text: str) -> None:
        raise NotImplementedError(f"{self.venue} takes its snapshot from the stream")

    def snapshot_failed(self, status: int, text: str = "") -> None:
        """The snapshot request got HTTP `status` (0: no answer); the processor decides what next."""

    ping_interval: float | None = None

    def ping_message(self) -> str | None:
        return None

    # --- what readers call ------------------------------------------------------------------
    @property
    def live(self) -> bool:
        return self.state is BookState.LIVE

    def levels(self, side: Side) -> Iterator[Level]:
        """Best first, sizes in BTC (subclasses with other units convert here, lazily)."""
        return self.book.levels(side)

    def best(self, side: Side) -> Level | None:
        """The first of `levels(side)`: straight from the book (which keeps it at hand) unless a
        subclass converts its levels."""
        if type(self).levels is VenueProcessor.levels:
            return self.book.best(side)
        return next(self.levels(side), None)

    def age(self, now: float | None = None) -> float | None:
        """Seconds since the newest book data or heartbeat."""
        if self.last_data is None:
            return None
        return (self.clock() if now is None else now) - self.last_data

    def check_age(self, now: float, max_age: float) -> bool:
        """The stale-data watchdog, separate from socket liveness: True when the book just went stale."""
        age = self.age(now)
        if self.state is BookState.LIVE and age is not None and age > max_age:
            self.state = BookState.STALE
            log.warning("%s: stale: no data or heartbeat for %.1f s (max_age %.1f s)", self.venue, age, max_age)
            return True
        return False

    # --- helpers for subclasses -------------------------------------------------------------
    def touch(self) -> None:
        """Data or a heartbeat arrived: the feed is alive."""
        self.last_data = self.clock()
        if self.state is BookState.STALE:
            self.state = BookState.LIVE

    def go_live(self) -> None:
        self.state = BookState.LIVE

    def assert_not_crossed(self) -> None:
        if self.book.crossed():
            bid, ask = self.book.best(Side.BID), self.book.best(Side.ASK)
            raise CrossedBook(self.venue, bid[0], ask[0])
