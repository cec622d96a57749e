"""Replay: recordings fed through the very same processors, by a shell that reads files, not sockets.

`ReplayConnection` plays the part of `client.FeedConnection` for one processor, record by record:

    record   what the replay shell does (what the live shell did at that moment)
    -------  -----------------------------------------------------------------------------------------
    open     `begin()` if this attempt has not begun, then `connection_made()` (the processor should
             have asked to Connect; a different URL is counted, not refused)
    in       `receive(text)`
    http     `http_response(tag, status, body)` for the Fetch the processor asked for: matched on the
             recorded tag, else on method and URL; an answer nobody asked for is counted and skipped
    out      compared with what the processor asked to Send (matched or counted as different)
    health   the live processor's decision: kept for the comparison (a fault, at frame N)
    closed   `connection_lost(reason)` with the recorded reason
    Reconnect from the processor: its socket "closes" (leftover frames still arrive and are ignored by
             the processor, as live) until the recorded `closed`

Time is the recording's: the processor's clock reads the timestamp of the record being played, and
`tick(now)` runs at the moments where the live run left a trace of a timer (before each `out`, `http`
while connected, and `health` record), so a stale or no-book verdict, a ping or a snapshot retry
happens where it happened live; no tick is made up between records. A replay is deterministic: the same
files give the same books, faults and answer. Bare frame files have no time: the clock stands still
and no tick runs.

Each fault is counted the way the recorder counts the live ones (a health change with a new fault), so
`live_faults` and `replay_faults` can be compared frame by frame.
"""
from __future__ import annotations

import asyncio
import collections
import dataclasses
import heapq
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence
from urllib.parse import urlsplit

from data_manager.book import Side
from data_manager.feed import (Action, BookChanged, BookView, Connect, Fetch, FeedKey, FeedProcessor, FeedSettings,
                               FeedState, HealthChanged, HttpRequest, OrderEvent, Reconnect, Send)
from data_manager.registry import VenueSpec
from data_manager.symbols import Symbol
from data_manager.wire import records
from data_manager.wire.records import (CLOSED, END, HEALTH, HTTP, IN, META, OPEN, OUT, ReadReport, Record,
                                       Recording, RecordingError, Warn)

log = logging.getLogger(__name__)

YIELD_EVERY = 500
"""As fast as possible still lets the event loop breathe (Ctrl-C, subscribers) every this many records."""


class ReplayClock:
    """The processor's clock during a replay: the time of the record being played."""

    __slots__ = ("now",)

    def __init__(self, start: float = 0.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


@dataclass(frozen=True)
class FaultSeen:
    frame: int           # frames received on this connection before the fault was decided
    symbol: str
    kind: str
    detail: str
    where: str           # "file:line" of the record the fault came with
    ts: float | None

    @property
    def text(self) -> str:
        return f"{self.kind}: {self.detail}"


@dataclass
class Gap:
    seconds: float
    where: str           # the first frame after the silence


@dataclass
class ReplayStats:
    """What one connection's replay saw. Counts of differences from the recording are evidence (the
    processor behaves differently today), never errors in themselves."""

    records: int = 0
    frames: int = 0
    bytes: int = 0
    opens: int = 0
    http_answered: int = 0
    http_unasked: int = 0            # answers recorded that this processor never asked for
    sends_matched: int = 0
    sends_differ: int = 0            # recorded `out`s the processor did not send the same way
    url_differs: int = 0
    frames_unconnected: int = 0      # `in` records while this processor had no open socket
    first_ts: float | None = None
    last_ts: float | None = None
    ended: str | None = None         # the recording's `end` reason; None if it just stops (a crash)
    live_faults: list[FaultSeen] = field(default_factory=list)
    replay_faults: list[FaultSeen] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)   # silences longer than the venue's max_age
    largest_gap: Gap | None = None
    notes: list[str] = field(default_factory=list)


class ReplayConnection:
    """One processor, fed from one connection's recording (see the module docstring)."""

    def __init__(self, recording: Recording, spec: VenueSpec, settings: FeedSettings,
                 symbols: Sequence[tuple[Symbol, str]], listener: Callable[[Action], None] | None = None) -> None:
        self.recording = recording
        self.spec = spec
        self.settings = settings
        self.symbols = list(symbols)
        self.clock = ReplayClock(records.bare_clock_start(recording) if not recording.framed else 0.0)
        self.processor: FeedProcessor = spec.processor(settings, self.symbols, self.clock)
        self.listener = listener
        self.stats = ReplayStats()
        self.report = ReadReport()
        self.crashed: BaseException | None = None
        self._by_key = {feed.key: feed for feed in self.processor.books.values()}
        self._resyncs = {key: 0 for key in self._by_key}
        self._begun = False
        self._open = False
        self._closing = False
        self._url: str | None = None
        self._pending: dict[str, HttpRequest] = {}
        self._sends: collections.deque[str] = collections.deque()
        self._last_frame_ts: float | None = None
        self._handlers: dict[str, Callable[[Record], None]] = {
            IN: self._on_in, OPEN: self._on_open, OUT: self._on_out, HTTP: self._on_http,
            HEALTH: self._on_health, CLOSED: self._on_closed, END: self._on_end, META: lambda record: None,
        }

    @property
    def name(self) -> str:
        return f"{self.spec.name}#{self.recording.index}"

    def records(self, warn: Warn) -> Iterator[Record]:
        return records.read(self.recording, self.report, warn)

    # --- playing one record ---------------------------------------------------------------------
    def play(self, record: Record) -> None:
        stats = self.stats
        stats.records += 1
        if record.ts is not None:
            self.clock.now = record.ts
            if stats.first_ts is None:
                stats.first_ts = record.ts
            stats.last_ts = record.ts
        self._handlers[record.dir](record)
        self._run()

    def _on_in(self, record: Record) -> None:
        stats = self.stats
        if not self._open:
            if self.recording.framed or not self._open_bare():
                stats.frames_unconnected += 1
                return
        stats.frames += 1
        stats.bytes += len(record.data)
        self._gap(record)
        self.processor.receive(record.data)

    def _gap(self, record: Record) -> None:
        if record.ts is None:
            return
        previous, self._last_frame_ts = self._last_frame_ts, record.ts
        if previous is None:
            return
        gap = record.ts - previous
        stats = self.stats
        if stats.largest_gap is None or gap > stats.largest_gap.seconds:
            stats.largest_gap = Gap(gap, record.where)
        if gap > self.settings.max_age:
            stats.gaps.append(Gap(gap, record.where))

    def _open_bare(self) -> bool:
        """A bare frame file has no `open`: connect at its first frame, if the processor connects
        without asking anything first (a token request cannot be answered from bare frames)."""
        if not self._begun:
            self._begin()
        if self._url is None:
            if not self.stats.notes:
                self.stats.notes.append("the processor asks for HTTP before connecting; bare frames cannot answer it")
            return False
        self._connect()
        return True

    def _on_open(self, record: Record) -> None:
        if self._open:  # two opens without a close between them: the live process died in between
            self._lose("the recording reopens without a close")
        if not self._begun:
            self._begin()
        if self._url is None:
            self.stats.notes.append(f"{record.where}: the recording connects where the processor asked for nothing")
        elif _without_query(self._url) != _without_query(record.data):
            self.stats.url_differs += 1
        self._last_frame_ts = None
        self._connect()

    def _connect(self) -> None:
        self.stats.opens += 1
        self._open, self._closing, self._url = True, False, None
        self.processor.connection_made()

    def _on_out(self, record: Record) -> None:
        self._tick()
        sends, stats = self._sends, self.stats
        if sends and sends[0] == record.data:
            sends.popleft()
            stats.sends_matched += 1
        elif record.data in sends:
            sends.remove(record.data)
            stats.sends_matched += 1
        else:
            stats.sends_differ += 1

    def _on_http(self, record: Record) -> None:
        if not self._open and not self._begun:
            self._begin()
        self._tick()
        fields = record.fields
        tag = fields.get("tag")
        if tag not in self._pending:
            method, url = fields.get("method"), fields.get("url")
            tag = next((t for t, r in self._pending.items() if r.method == method and r.url == url), None)
        if tag is None:
            self.stats.http_unasked += 1
            return
        del self._pending[tag]
        status = fields.get("status")
        self.stats.http_answered += 1
        self.processor.http_response(tag, status if type(status) is int else 0, record.data)

    def _on_health(self, record: Record) -> None:
        self._tick()
        fault = record.fields.get("fault")
        if isinstance(fault, str):
            kind, _, detail = fault.partition(": ")
            self.stats.live_faults.append(FaultSeen(self.stats.frames, str(record.fields.get("symbol", "")), kind,
                                                    detail, record.where, record.ts))

    def _on_closed(self, record: Record) -> None:
        if self._open:
            self._lose(record.data)

    def _on_end(self, record: Record) -> None:
        self.stats.ended = record.data

    def _tick(self) -> None:
        if self._open and self.recording.framed:
            self.processor.tick(self.clock.now)

    # --- what the live shell does ---------------------------------------------------------------
    def _begin(self) -> None:
        self._begun = True
        self._url = None
        self.processor.begin()
        self._run()

    def _lose(self, reason: str) -> None:
        self.stats.sends_differ += len(self._sends)
        self._sends.clear()
        self._pending.clear()
        self._open = self._closing = self._begun = False
        self.processor.connection_lost(reason)
        self._run()

    def _run(self) -> None:
        processor = self.processor
        while True:
            actions = processor.actions()
            if not actions:
                return
            for action in actions:
                self._execute(action)

    def _execute(self, action: Action) -> None:
        kind = type(action)
        if kind is BookChanged or kind is OrderEvent:
            if self.listener is not None:
                self.listener(action)
        elif kind is HealthChanged:
            self._health_changed(action)
        elif kind is Send:
            if self._open and not self._closing and self.recording.framed:   # bare frames recorded no send
                self._sends.append(action.text)
        elif kind is Fetch:
            self._pending[action.tag] = action.request
        elif kind is Connect:
            self._url = action.url
        elif kind is Reconnect:
            if self._open:
                self._closing = True
            elif self._begun:   # the attempt failed before a socket opened (a refused token)
                self._pending.clear()
                self._begun = False
                self.processor.connection_lost(action.reason)
        else:
            raise TypeError(f"unknown action {action!r}")

    def _health_changed(self, action: HealthChanged) -> None:
        """A fault is counted as the recorder counts it live: a health change with a new fault."""
        health = self._by_key[action.key].health
        if health.resyncs > self._resyncs[action.key] and health.last_fault is not None:
            fault = health.last_fault
            self.stats.replay_faults.append(FaultSeen(self.stats.frames, action.key.symbol, fault.kind, fault.detail,
                                                      "", self.clock.now))
        self._resyncs[action.key] = health.resyncs
        if self.listener is not None:
            self.listener(action)

    def finish(self) -> None:
        """The recording is over (or the replay stops at `--at`): sends never matched are differences."""
        self.stats.sends_differ += len(self._sends)
        self._sends.clear()


def _without_query(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


# --- building connections from recordings -----------------------------------------------------------
def build(recording: Recording, specs: Mapping[str, VenueSpec], configured: Mapping[str, FeedSettings],
          foreign_symbols: Sequence[Symbol], listener: Callable[[Action], None] | None = None,
          warn: Warn = log.warning) -> ReplayConnection:
    """The processor this recording was made with: its venue, its recorded settings (a foreign capture:
    the configured ones) and its symbols (a foreign capture: `foreign_symbols`)."""
    spec = specs.get(recording.venue)
    if spec is None:
        raise RecordingError(f"{recording.name}: recorded by {recording.venue!r}, which this version does not know")
    base = configured.get(recording.venue) or spec.settings()
    if recording.foreign:
        settings = base
        if not foreign_symbols:
            raise RecordingError(f"{recording.name}: a capture without our meta record: say which symbols it holds")
        wanted = list(foreign_symbols) if spec.multiplexed else list(foreign_symbols)[:1]
        symbols = [(symbol, spec.native_symbol(symbol)) for symbol in wanted]
    else:
        settings, dropped = records.settings_from_json(spec.settings, recording.settings, spec.settings())
        if dropped:
            warn(f"{recording.name}: recorded settings no longer known, ignored: {', '.join(dropped)}")
        symbols = [(Symbol.parse(unified), native) for unified, native in recording.symbols]
    connection = ReplayConnection(recording, spec, settings, symbols, listener)
    if recording.foreign:
        own = [f for f in dataclasses.fields(settings) if f.name not in {g.name for g in dataclasses.fields(FeedSettings)}
               and not f.metadata.get("schemes")]
        connection.stats.notes.append("no meta record: read with the configured settings"
                                      + (f" ({', '.join(f'{f.name}={getattr(settings, f.name)}' for f in own)})" if own else ""))
    return connection


def merged(connections: Sequence[ReplayConnection], warn: Warn) -> Iterator[tuple[ReplayConnection, Record]]:
    """Every connection's records in time order (each file's own order kept; bare files have no time
    and come at the start)."""
    def keyed(connection: ReplayConnection) -> Iterator[tuple[float, ReplayConnection, Record]]:
        for record in connection.records(warn):
            yield (record.ts if record.ts is not None else float("-inf")), connection, record

    for _, connection, record in heapq.merge(*(keyed(c) for c in connections), key=lambda item: item[0]):
        yield connection, record


def replay_all(connections: Sequence[ReplayConnection], at: float | None = None, warn: Warn = log.warning) -> None:
    """Play every record (up to `at`, epoch seconds), synchronously: for `check` and tests."""
    for connection, record in merged(connections, warn):
        if at is not None and record.ts is not None and record.ts > at:
            break
        play_guarded(connection, record)
    for connection in connections:
        connection.finish()


def play_guarded(connection: ReplayConnection, record: Record) -> None:
    """A processor's exception is our own bug: that connection stops (said, with its traceback in the
    log), the others go on, as the live shell does."""
    if connection.crashed is not None:
        return
    try:
        connection.play(record)
    except Exception as exc:  # our bug, not the venue's: stop this connection only, and say so
        connection.crashed = exc
        log.exception("%s: internal error at %s; this replay is stopped", connection.name, record.where)


# --- the manager a session uses -----------------------------------------------------------------------
class ReplayManager:
    """What `DataManager` offers a session (views, readiness, change events), fed from recordings.

    `speed`: None plays as fast as possible; 1 at the recorded pace, 2 twice as fast. `at`: stop there
    (epoch seconds). Readiness is the end of the replay: the answer is the one as of the end (or `at`)."""

    def __init__(self, connections: Sequence[ReplayConnection], wanted: Iterable[FeedKey] | None = None,
                 speed: float | None = None, at: float | None = None, warn: Warn = log.warning) -> None:
        self.connections = list(connections)
        self.processors = [c.processor for c in self.connections]
        self.speed = speed
        self.at = at
        self.warn = warn
        self.views: dict[FeedKey, BookView] = {}
        self._connection_of: dict[FeedKey, ReplayConnection] = {}
        self._subscribers: list[Callable[[Action], None]] = []
        self._done = asyncio.Event()
        self._task: asyncio.Task | None = None
        self.error: BaseException | None = None
        wanted = set(wanted) if wanted is not None else None
        for connection in self.connections:
            connection.listener = self._on_action
            for symbol, native in connection.symbols:
                feed = connection.processor.books[native]
                if wanted is None or feed.key in wanted:
                    notes = connection.spec.notes(connection.settings, symbol) if connection.spec.notes else ()
                    self.views[feed.key] = BookView(feed, connection.spec.instrument, symbol, notes)
                    self._connection_of[feed.key] = connection

    def start(self) -> None:
        self._task = asyncio.create_task(self._play(), name="replay")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _play(self) -> None:
        loop = asyncio.get_running_loop()
        started, first = loop.time(), None
        try:
            for count, (connection, record) in enumerate(merged(self.connections, self.warn)):
                if record.ts is not None:
                    if self.at is not None and record.ts > self.at:
                        break
                    if self.speed:
                        first = record.ts if first is None else first
                        delay = started + (record.ts - first) / self.speed - loop.time()
                        if delay > 0:
                            await asyncio.sleep(delay)
                if not self.speed and count % YIELD_EVERY == 0:
                    await asyncio.sleep(0)
                play_guarded(connection, record)
            for connection in self.connections:
                connection.finish()
        except RecordingError as exc:
            self.error = exc
        finally:
            self._done.set()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def clock(self) -> float:
        """The replay's now: the time of the last record played (for ages in the answer)."""
        times = [c.clock.now for c in self.connections if c.recording.framed]
        return max(times) if times else max((c.clock.now for c in self.connections), default=0.0)

    def _on_action(self, action: Action) -> None:
        for subscriber in self._subscribers:
            subscriber(action)

    def subscribe(self, subscriber: Callable[[Action], None]) -> Callable[[], None]:
        self._subscribers.append(subscriber)
        return lambda: self._subscribers.remove(subscriber)

    async def wait_ready(self, timeout: float, keys: Sequence[FeedKey] | None = None,
                         until: Callable[[], bool] | None = None) -> dict[FeedKey, bool]:
        """Until the replay reaches its end (or `at`): the recording's time, not `timeout`, decides."""
        await self._done.wait()
        if self.error is not None:
            raise self.error
        return {key: view.live for key, view in self.views.items()}

    def crashed(self, key: FeedKey) -> bool:
        return self._connection_of[key].crashed is not None

    def failed(self, key: FeedKey) -> bool:
        return self.done and not self.views[key].live

    def last_error(self, key: FeedKey) -> str | None:
        view, connection = self.views[key], self._connection_of[key]
        if connection.crashed is not None:
            return f"internal error: {type(connection.crashed).__name__}: {connection.crashed} (see the log)"
        if view.live:
            return None
        report = view.health(self.clock())
        moment = "its end" if self.at is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.at))
        why = (f"last fault {report.last_fault.kind}: {report.last_fault.detail}" if report.last_fault
               else "no record before then" if connection.stats.records == 0 else "no whole book yet")
        return f"{view.state.value} as of {moment} in {connection.recording.name} ({why})"

    def states(self) -> Mapping[FeedKey, FeedState]:
        return {key: view.state for key, view in self.views.items()}


def book_state(view: BookView) -> dict[str, Any]:
    """A book as plain values, for comparing two runs: levels best first in the venue's own units
    and, for a level-3 book, every level's orders in queue order."""
    state: dict[str, Any] = {"state": view.state.value, "kind": view.book_kind}
    for side in Side:
        levels = list(view.native_levels(side))
        state[side.value] = levels
        if view.book_kind == "L3":
            state[f"{side.value}_orders"] = [[(o.order_id, o.size) for o in view.orders_at(side, price)]
                                             for price, _ in levels]
    return state
