"""The feed contract: every venue is a closed, sans-I/O state machine (inputs in, actions out).

The model is websockets' `Protocol` and h11's `Connection`. A processor owns one connection's protocol
and the lifecycle of every book that connection carries. The asyncio shell (`client.py`) only performs
what the processor asks for and reports what happened:

    inputs  (shell -> processor)          actions (processor -> shell), drained after every input
    ----------------------------          -------------------------------------------------------
    begin()              a new attempt    Connect(url)            open a WebSocket to url
    connection_made()    socket is open   Send(text)              send one frame
    receive(text)        one frame        Fetch(request, tag)     perform HTTP, answer http_response(tag, ...)
    tick(now)            ~4 times a s     Reconnect(reason)       close the socket; begin() again after backoff
    http_response(tag, status, body)      BookChanged(key)        a book changed (for subscribers)
    connection_lost(reason)               HealthChanged(key, state)
    close()              shutting down

Nothing else crosses the boundary: the shell reads no processor attribute and writes none. A venue
fault (a `FeedError` raised while reading the venue's text) is caught here, recorded on every book of
the connection, logged once, and becomes an action: `Reconnect`, or an in-place resync that the venue
implements (`resync_in_place`). Any other exception is our own bug and propagates unchanged: it is never
relabelled as bad venue data.

States, per book, change only through `Health.to` and the one table `TRANSITIONS`:

    connecting -> syncing -> live <-> stale
         ^           |        |        |
         |           v        v        v
         +------- closing <- resyncing (a fault; in place, or until the reconnect brings a book)

`closing`: the connection is being closed (after a fault, or at shut-down); frames that still arrive
from it are ignored, so an old connection's leftovers can never build a new book.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum
from typing import Any, Callable, ClassVar, Iterator, Sequence

from data_manager.book import L2Book, L3Book, Level, Side
from data_manager.errors import ConnectionLost, CrossedBook, FeedError, NoBook, SnapshotError, StaleFeed
from data_manager.symbols import Symbol

log = logging.getLogger(__name__)

TICK_SECONDS = 0.25
"""How often the shell calls `tick`: pings, watchdogs and silence deadlines are decided there."""
NO_BOOK_SECONDS = 30.0
"""Connected this long without ever a live book: the subscription never delivers; reconnect."""


class FeedState(str, Enum):
    CONNECTING = "connecting"   # no connection yet, or waiting to reconnect
    SYNCING = "syncing"         # connected, no whole book yet
    LIVE = "live"               # a whole book we can vouch for
    STALE = "stale"             # live, but no data and no heartbeat for longer than max_age
    RESYNCING = "resyncing"     # a fault: the book was dropped and is being rebuilt
    CLOSING = "closing"         # the connection is being closed; its frames are ignored


_S = FeedState
_STALE = FeedState.STALE  # read per message: an Enum member read from its class is slow (3.11)
TRANSITIONS: dict[FeedState, frozenset[FeedState]] = {
    _S.CONNECTING: frozenset({_S.SYNCING, _S.CLOSING}),
    _S.SYNCING: frozenset({_S.LIVE, _S.RESYNCING, _S.CLOSING}),
    _S.LIVE: frozenset({_S.STALE, _S.RESYNCING, _S.CLOSING}),
    _S.STALE: frozenset({_S.LIVE, _S.RESYNCING, _S.CLOSING}),
    _S.RESYNCING: frozenset({_S.LIVE, _S.CLOSING}),
    _S.CLOSING: frozenset({_S.CONNECTING, _S.RESYNCING}),
}
"""Every allowed change of state. `Health.to` refuses anything else: that would be our bug."""


class InvalidTransition(RuntimeError):
    """A processor tried a state change the table does not allow: a bug of ours, never a venue fault."""


# --- actions ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class HttpRequest:
    method: str
    url: str
    body: bytes | None = None


@dataclass(frozen=True)
class Connect:
    url: str


@dataclass(frozen=True)
class Send:
    text: str


@dataclass(frozen=True)
class Fetch:
    request: HttpRequest
    tag: str


@dataclass(frozen=True)
class Reconnect:
    reason: str


@dataclass(frozen=True)
class BookChanged:
    key: "FeedKey"


@dataclass(frozen=True)
class HealthChanged:
    key: "FeedKey"
    state: FeedState


@dataclass(frozen=True)
class OrderEvent:
    """One level-3 order event as the venue published it, for subscribers that follow orders
    (a Redis channel, `track`). `kind` is the venue's own word (received/open/match/update/done on
    KuMEX; order_created/order_changed/order_deleted on Bitstamp)."""

    key: "FeedKey"
    kind: str
    order_id: str
    side: str | None = None
    price: Decimal | None = None
    size: Decimal | None = None         # the order's remaining size after the event, when known
    filled: Decimal | None = None       # what this event filled, when known
    client_oid: str | None = None
    at: float | None = None             # the venue's event time, epoch seconds, when it has one


Action = Connect | Send | Fetch | Reconnect | BookChanged | HealthChanged | OrderEvent


# --- per book ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FeedKey:
    venue: str
    symbol: str          # the unified BASE-QUOTE name, e.g. "BTC-USD"

    def __str__(self) -> str:
        return f"{self.venue} {self.symbol}"


@dataclass(frozen=True)
class Fault:
    kind: str
    detail: str
    at: float            # epoch seconds


@dataclass
class Integrity:
    """Evidence the user sees next to each book: what was checked since the last whole book."""

    snapshots: int = 0
    messages: int = 0
    checksums_verified: int = 0
    first_sequence: int | None = None
    last_sequence: int | None = None

    def since_snapshot(self, sequence: int | None = None) -> None:
        self.snapshots += 1
        self.messages = 0
        self.checksums_verified = 0
        self.first_sequence = self.last_sequence = sequence


class Health:
    """One book's state and the evidence behind it. The only place a `FeedState` is assigned."""

    __slots__ = ("key", "state", "resyncs", "last_fault", "integrity", "last_data", "live_since",
                 "last_live", "faulted", "_emit")

    def __init__(self, key: FeedKey, emit: Callable[[Action], None]) -> None:
        self.key = key
        self.state = FeedState.CONNECTING
        self.resyncs = 0
        self.last_fault: Fault | None = None
        self.integrity = Integrity()
        self.last_data: float | None = None   # newest data or heartbeat (epoch s)
        self.live_since: float | None = None  # when the book last became live, on this connection
        self.last_live: float | None = None   # the last moment the book was known live
        self.faulted = False                  # a fault since the book was last live
        self._emit = emit

    def to(self, state: FeedState, now: float) -> None:
        if state is self.state:
            return
        if state not in TRANSITIONS[self.state]:
            raise InvalidTransition(f"{self.key}: {self.state.value} -> {state.value}")
        if self.state is FeedState.LIVE or self.state is FeedState.STALE:
            self.last_live = now
        self.state = state
        if state is FeedState.LIVE:
            self.faulted = False
            if self.live_since is None:
                self.live_since = now
        log.debug("%s: %s", self.key, state.value)
        self._emit(HealthChanged(self.key, state))

    def age(self, now: float) -> float | None:
        return None if self.last_data is None else max(0.0, now - self.last_data)


class FeedBook:
    """One (venue, symbol) book and its health, owned by the processor of its connection."""

    __slots__ = ("key", "native", "book", "health", "notes", "book_kind", "convert", "changed_action")

    def __init__(self, key: FeedKey, native: str, book: L2Book | L3Book, health: Health) -> None:
        self.key = key
        self.native = native                   # the venue's own name of the symbol
        self.book = book
        self.health = health
        self.notes: tuple[str, ...] = ()       # e.g. "L2 (level 3 unavailable)": said, never silent
        self.book_kind = "L3" if isinstance(book, L3Book) else "L2"
        self.convert: Callable[[Level], Level] | None = None  # venue units -> base units, per level
        self.changed_action = BookChanged(key)  # built once: appended after every applied frame


# --- settings shared by every venue ------------------------------------------------------------
@dataclass(frozen=True)
class FeedSettings:
    """What every venue's configuration block has; a venue subclasses it with its own keys.

    `config.py` validates every field generically from its annotation and metadata: `choices`,
    `minimum`, `schemes` (for URLs)."""

    url: str = field(default="", metadata={"schemes": ("ws://", "wss://")})
    enabled: bool = True
    symbols: tuple[str, ...] = ("BTC-USD",)
    max_age: float = field(default=10.0, metadata={"minimum": 0.5, "maximum": 3600})
    taker_fee: Decimal = field(default=Decimal(0), metadata={"minimum": Decimal(0), "maximum": Decimal("0.1")})
    """A fraction of the notional (config takes "0.40%" or 0.004): what a market order pays."""
    min_order: Decimal = field(default=Decimal(0), metadata={"minimum": Decimal(0)})
    """The venue's smallest order, in base units (0: none known)."""
    size_increment: Decimal = field(default=Decimal(0), metadata={"minimum": Decimal(0)})
    """Order sizes must be a multiple of this, in base units (0: none known)."""


# --- the processor ------------------------------------------------------------------------------
class FeedProcessor:
    """Base of every venue processor: the lifecycle that is the same everywhere.

    A subclass implements the venue's protocol in four hooks, each turning venue text into book
    changes through the `FeedBook`s it was given, and raising a `FeedError` for anything the venue
    got wrong: `on_begin` (default: connect to the configured URL), `on_connected` (subscribe),
    `on_frame(text)` and, for venues with REST calls, `on_http(tag, status, body)`.
    """

    venue: ClassVar[str] = ""
    book_kind: ClassVar[str] = "L2"
    ping_interval: float | None = None   # seconds between application pings (None: the venue needs none)
    no_book_after: float = NO_BOOK_SECONDS

    def __init__(self, settings: FeedSettings, symbols: Sequence[tuple[Symbol, str]],
                 clock: Callable[[], float] = time.time) -> None:
        """`symbols`: (unified symbol, the venue's own name for it) for every book on this connection."""
        self.settings = settings
        self.clock = clock
        self._actions: list[Action] = []
        self.books: dict[str, FeedBook] = {}      # by the venue's native symbol
        for symbol, native in symbols:
            key = FeedKey(self.venue, symbol.name)
            self.books[native] = FeedBook(key, native, self.new_book(), Health(key, self._actions.append))
        self._connected_at: float | None = None
        self._next_ping: float | None = None
        self._closing_reason: str | None = None

    # --- what subclasses may override ----------------------------------------------------------
    def new_book(self) -> L2Book | L3Book:
        return L3Book() if self.book_kind == "L3" else L2Book()

    def on_begin(self) -> None:
        self.emit(Connect(self.settings.url))

    def on_connected(self) -> None:
        """Subscribe (`self.emit(Send(...))`)."""

    def on_frame(self, text: str) -> None:
        raise NotImplementedError

    def on_http(self, tag: str, status: int, body: str) -> None:
        raise NotImplementedError(f"{self.venue} makes no HTTP requests")

    def on_tick(self, now: float) -> None:
        """Time-based venue decisions (a silent subscription, a snapshot retry)."""

    def ping_message(self) -> str | None:
        return None

    def resync_in_place(self, error: FeedError) -> bool:
        """After `error`, can the books be rebuilt on this connection (a fresh REST snapshot)? If so,
        start that here and return True; False (the default) reconnects."""
        return False

    def on_reset(self) -> None:
        """A new connection starts: forget per-connection protocol state (sequences, buffers)."""

    # --- inputs (the shell calls these, then drains `actions()`) --------------------------------
    def actions(self) -> list[Action]:
        actions = self._actions
        if not actions:
            return []
        drained = actions.copy()
        actions.clear()  # the same list stays bound to every Health's emit
        return drained

    def begin(self) -> None:
        """A new connection attempt (the shell backs off between attempts)."""
        self._closing_reason = None
        self.on_begin()

    def connection_made(self) -> None:
        now = self.clock()
        self._connected_at = now
        self._next_ping = None if self.ping_interval is None else now + self.ping_interval
        for feed in self.books.values():
            feed.book.clear()
            feed.health.integrity = Integrity()
            feed.health.live_since = None
            if feed.health.state is FeedState.CONNECTING:
                feed.health.to(FeedState.SYNCING, now)
        self.on_reset()
        self.on_connected()

    def receive(self, text: str) -> None:
        if self._closing_reason is not None or self._connected_at is None:
            return  # the connection is closing (or gone): its leftovers never touch a book
        try:
            self.on_frame(text)
        except FeedError as error:
            self.fault(error)

    def http_response(self, tag: str, status: int, body: str) -> None:
        if self._closing_reason is not None:
            return
        try:
            self.on_http(tag, status, body)
        except FeedError as error:
            self.fault(error)

    def tick(self, now: float) -> None:
        if self._closing_reason is not None:
            return
        try:
            self.on_tick(now)
            self._watchdogs(now)
        except FeedError as error:
            self.fault(error)
            return
        if self._next_ping is not None and now >= self._next_ping:
            self._next_ping = now + self.ping_interval
            message = self.ping_message()
            if message is not None:
                self.emit(Send(message))

    def connection_lost(self, reason: str) -> None:
        """The socket closed (or never opened). Not our choice: that is a fault of its own."""
        now = self.clock()
        if self._closing_reason is None:
            if self._connected_at is None:
                return  # the attempt failed before a socket opened: nothing was lost
            self._record(ConnectionLost(self.venue, reason), now)
        for feed in self.books.values():
            health = feed.health
            if health.state is not FeedState.CLOSING:
                health.to(FeedState.CLOSING, now)
            health.to(FeedState.RESYNCING if health.faulted else FeedState.CONNECTING, now)
            feed.book.clear()
        self._connected_at = None
        self._closing_reason = None

    def close(self) -> None:
        """Shut-down: whatever arrives from now on is ignored."""
        self._close("shutting down")

    # --- for subclasses -------------------------------------------------------------------------
    def emit(self, action: Action) -> None:
        self._actions.append(action)

    def go_live(self, feed: FeedBook, sequence: int | None = None) -> None:
        """The book now holds a whole book (a snapshot, or a bridged REST snapshot).

        A whole book of a listed market has both sides: a one-sided "book" is refused as a fault (it is
        what a diff taken for a snapshot looks like), so it can never be reported live."""
        book = feed.book
        if not book.depth(Side.BID) or not book.depth(Side.ASK):
            raise SnapshotError(self.venue, f"{feed.key.symbol}: a whole book with "
                                            f"{book.depth(Side.BID)} bids and {book.depth(Side.ASK)} asks")
        feed.health.integrity.since_snapshot(sequence)
        feed.health.last_data = self.clock()
        feed.health.to(FeedState.LIVE, feed.health.last_data)

    def touch(self, feed: FeedBook) -> None:
        """Data or a heartbeat arrived for this book: it is alive."""
        health = feed.health
        now = health.last_data = self.clock()
        if health.state is _STALE:
            health.to(FeedState.LIVE, now)

    def touch_all(self) -> None:
        """A connection-wide proof of life (a pong, a connection heartbeat)."""
        for feed in self.books.values():
            self.touch(feed)

    def applied(self, feed: FeedBook) -> None:
        """One frame's changes are in the book: count it, check it, tell subscribers."""
        feed.health.integrity.messages += 1
        if feed.book.crossed():
            bid, ask = feed.book.best(Side.BID), feed.book.best(Side.ASK)
            raise CrossedBook(self.venue, bid[0], ask[0])
        self._actions.append(feed.changed_action)

    def fault(self, error: FeedError) -> None:
        """Record a venue fault on every book of the connection, then resync in place or reconnect."""
        now = self.clock()
        self._record(error, now)
        log.warning("%s: %s: %s: resyncing", self.venue, error.kind, error.detail())
        for feed in self.books.values():
            feed.book.clear()
            if feed.health.state is not FeedState.RESYNCING:
                feed.health.to(FeedState.RESYNCING, now)
        if not self.resync_in_place(error):
            self._close(f"{error.kind}: {error.detail()}")

    # --- internals ------------------------------------------------------------------------------
    def _record(self, error: FeedError, now: float) -> None:
        fault = Fault(error.kind, error.detail(), now)
        for feed in self.books.values():
            feed.health.last_fault = fault
            feed.health.resyncs += 1
            feed.health.faulted = True

    def _close(self, reason: str) -> None:
        if self._closing_reason is not None:
            return
        self._closing_reason = reason
        now = self.clock()
        for feed in self.books.values():
            if feed.health.state is not FeedState.CLOSING:
                feed.health.to(FeedState.CLOSING, now)
        self.emit(Reconnect(reason))

    def _watchdogs(self, now: float) -> None:
        """Stale after max_age without data (the socket alone proves nothing); reconnect after twice
        that; and no usable book long after connecting (a subscription that never delivers)."""
        max_age = self.settings.max_age
        for feed in self.books.values():
            health = feed.health
            age = health.age(now)
            if health.state is FeedState.LIVE and age is not None and age > max_age:
                log.warning("%s: stale: no data or heartbeat for %.1f s (max_age %g s)", feed.key, age, max_age)
                health.to(FeedState.STALE, now)
            elif health.state is FeedState.STALE and age is not None and age > 2 * max_age:
                raise StaleFeed(self.venue, age, max_age)
        if self._connected_at is not None and now - self._connected_at > self.no_book_after:
            if any(feed.health.live_since is None for feed in self.books.values()):
                raise NoBook(self.venue, now - self._connected_at)


# --- what consumers read ------------------------------------------------------------------------
@dataclass(frozen=True)
class HealthReport:
    """A frozen copy of one book's health, for the answer and the service."""

    state: str
    resyncs: int
    last_fault: Fault | None
    messages: int
    checksums_verified: int
    first_sequence: int | None
    last_sequence: int | None
    age: float | None
    last_live: float | None


class BookView:
    """Read-only access to one feed's book, in base units, best first. What `l2_manager` sees.

    It reads the live book (no copy): an answer built without awaiting reads every book at one instant.
    """

    __slots__ = ("_feed", "key", "instrument", "symbol", "extra_notes")

    def __init__(self, feed: FeedBook, instrument: str, symbol: Symbol, extra_notes: tuple[str, ...] = ()) -> None:
        self._feed = feed
        self.key = feed.key
        self.instrument = instrument          # "spot" or "perpetual"
        self.symbol = symbol
        self.extra_notes = extra_notes

    @property
    def venue(self) -> str:
        return self.key.venue

    @property
    def book_kind(self) -> str:
        return self._feed.book_kind

    @property
    def state(self) -> FeedState:
        return self._feed.health.state

    @property
    def live(self) -> bool:
        return self._feed.health.state is FeedState.LIVE

    @property
    def notes(self) -> tuple[str, ...]:
        return self._feed.notes + self.extra_notes

    def levels(self, side: Side) -> Iterator[Level]:
        levels = self._feed.book.levels(side)
        convert = self._feed.convert
        return levels if convert is None else map(convert, levels)

    def best(self, side: Side) -> Level | None:
        level = self._feed.book.best(side)
        convert = self._feed.convert
        return level if level is None or convert is None else convert(level)

    def depth(self, side: Side) -> int:
        return self._feed.book.depth(side)

    def native_levels(self, side: Side) -> Iterator[Level]:
        """In the venue's own units (contracts for an inverse perpetual)."""
        return self._feed.book.levels(side)

    def orders_at(self, side: Side, price: Any) -> list:
        book = self._feed.book
        return book.orders_at(side, price) if isinstance(book, L3Book) else []

    def health(self, now: float) -> HealthReport:
        h = self._feed.health
        i = h.integrity
        return HealthReport(h.state.value, h.resyncs, h.last_fault, i.messages, i.checksums_verified,
                            i.first_sequence, i.last_sequence, h.age(now), h.last_live)
