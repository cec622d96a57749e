"""Recording a session: every frame, send and HTTP answer of every connection, as it happens.

    recorder = Recorder(directory, plans)     # the FeedPlans the data manager runs
    recorder.open()                           # RecorderError (one line) when DIR cannot be used
    manager = DataManager(plans, tap=recorder.tap)
    recorder.watch(manager)                   # health changes and faults go into the files too
    ...
    recorder.close("stopped")                 # `end` records; recorder.summary() per venue

Each record is written with one unbuffered `write` (one system call, no buffer in this process), so a
crash or SIGKILL loses at most the record being written: the kernel already holds the rest. (A power
loss may lose more: nothing is fsync'ed, which would cost a disk flush per frame.)

Recording never stops the books. The first failed write (disk full, directory gone) is said once, on
stderr, and recording stops; the tap then does nothing and the session goes on.
"""
from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Callable, Sequence

from data_manager.feed import Action, FeedKey, HealthChanged, HttpRequest
from data_manager.manager import DataManager, FeedPlan
from data_manager.wire import records
from data_manager.wire.records import CLOSED, END, HEALTH, HTTP, IN, META, OPEN, OUT

log = logging.getLogger(__name__)

ROTATE_BYTES = 64 * 2**20
"""A file is closed and the next part begun before it would pass this size."""
REDACTED_KEYS = ("jwt", "signature", "passphrase", "api_key", "apikey", "secret")
"""Values of these keys in frames we send are never written (Coinbase signs subscribes with a JWT)."""


class RecorderError(Exception):
    """The directory cannot hold a recording: one line."""


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@dataclass
class VenueTally:
    """What one venue's connections recorded: the summary line at the end."""

    frames: int = 0
    bytes: int = 0
    opens: int = 0
    connections: int = 0
    faults: list[str] = field(default_factory=list)   # "<kind>: <detail>", in order

    @property
    def reconnects(self) -> int:
        return max(0, self.opens - self.connections)


class Recorder:
    """Writes one JSON Lines file per venue and connection into `directory` (see `records.py`)."""

    def __init__(self, directory: str | Path, plans: Sequence[FeedPlan], rotate_bytes: int = ROTATE_BYTES,
                 say: Callable[[str], None] = _say, clock: Callable[[], float] = time.time) -> None:
        self.directory = Path(directory)
        self.rotate_bytes = rotate_bytes
        self.say = say
        self.clock = clock
        self.failed: str | None = None       # why recording stopped early (said once)
        self.tallies: dict[str, VenueTally] = {}
        self.taps: list[ConnectionRecorder] = []
        self._plans = {plan.spec.name: plan for plan in plans}
        self._by_key: dict[FeedKey, ConnectionRecorder] = {}
        self._resyncs: dict[FeedKey, int] = {}
        self._manager: DataManager | None = None
        self._started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(clock()))

    def open(self) -> None:
        """Make sure the directory exists, is writable, and holds no earlier recording (never mixed)."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            held = sorted(p.name for p in self.directory.iterdir() if p.suffix in records.SUFFIXES)
            probe = self.directory / ".write-test"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise RecorderError(f"cannot record into {self.directory}: {exc.strerror or exc}") from None
        if held:
            raise RecorderError(f"{self.directory} already holds a recording ({held[0]}...): "
                                "choose a new or empty directory")

    # --- the tap factory (DataManager calls it once per connection) -------------------------------
    def tap(self, venue: str, index: int) -> "ConnectionRecorder":
        plan = self._plans[venue]
        symbols = plan.spec.connections(plan.settings, plan.symbols)[index]
        meta = {"format": records.FORMAT, "venue": venue, "connection": index,
                "symbols": [[symbol.name, native] for symbol, native in symbols],
                "settings": records.settings_to_json(plan.settings), "started": self._started}
        tally = self.tallies.setdefault(venue, VenueTally())
        tally.connections += 1
        connection = ConnectionRecorder(self, venue, index, meta, tally)
        self.taps.append(connection)
        for symbol, _ in symbols:
            self._by_key[FeedKey(venue, symbol.name)] = connection
        return connection

    def watch(self, manager: DataManager) -> None:
        """Health changes (and the faults behind them) are written into the connection's file."""
        self._manager = manager
        manager.subscribe(self._on_action)

    def _on_action(self, action: Action) -> None:
        if type(action) is not HealthChanged or self.failed is not None:
            return
        connection = self._by_key.get(action.key)
        if connection is None or self._manager is None:
            return
        report = self._manager.views[action.key].health(self.clock())
        fault = None
        if report.resyncs > self._resyncs.get(action.key, 0) and report.last_fault is not None:
            fault = f"{report.last_fault.kind}: {report.last_fault.detail}"
            if report.last_fault != connection.last_fault:   # one fault of a connection, on each of its books
                connection.last_fault = report.last_fault
                connection.tally.faults.append(fault)
        self._resyncs[action.key] = report.resyncs
        connection.health(action.key.symbol, action.state.value, fault)

    def close(self, reason: str = "stopped") -> None:
        for connection in self.taps:
            connection.finish(reason)

    # --- failing once ----------------------------------------------------------------------------
    def fail(self, path: Path, exc: OSError) -> None:
        if self.failed is not None:
            return
        frames = sum(t.frames for t in self.tallies.values())
        self.failed = f"cannot write {path}: {exc.strerror or exc}"
        self.say(f"warning: recording stopped ({self.failed}); {frames} frames were recorded; "
                 "the books keep running")
        log.warning("recording stopped: %s", self.failed)
        for connection in self.taps:
            connection.abandon()

    def total_frames(self) -> int:
        return sum(t.frames for t in self.tallies.values())

    def total_bytes(self) -> int:
        return sum(t.bytes for t in self.tallies.values())


class ConnectionRecorder:
    """The `WireTap` of one connection: its records, in order, into its own files."""

    def __init__(self, recorder: Recorder, venue: str, index: int, meta: dict[str, Any], tally: VenueTally) -> None:
        self.recorder = recorder
        self.venue = venue
        self.index = index
        self.meta = meta
        self.tally = tally
        self.conn = 1              # the socket open now, or the next one
        self.is_open = False
        self.frames = 0
        self.last_fault: Any = None   # the connection's latest fault, counted once for all its books
        self._part = 0
        self._file: BinaryIO | None = None
        self._path: Path | None = None
        self._size = 0
        self._meta_size = 0        # a part holding only its meta record is never rotated
        self._finished = False

    # --- WireTap ------------------------------------------------------------------------------
    def opened(self, url: str) -> None:
        self.tally.opens += 1
        self.is_open = True
        self._write(OPEN, url)

    def sent(self, text: str) -> None:
        self._write(OUT, redact(text))

    def received(self, text: str) -> None:
        if self._write(IN, text):
            self.frames += 1
            self.tally.frames += 1

    def http(self, request: HttpRequest, tag: str, status: int, body: str) -> None:
        extra: dict[str, Any] = {"method": request.method, "url": request.url, "tag": tag, "status": status}
        if request.body is not None:
            extra["request"] = redact(request.body.decode("utf-8", "replace"))
        self._write(HTTP, body, extra)

    def closed(self, reason: str) -> None:
        self._write(CLOSED, reason)
        self.is_open = False
        self.conn += 1

    # --- beyond the wire ----------------------------------------------------------------------
    def health(self, symbol: str, state: str, fault: str | None) -> None:
        extra: dict[str, Any] = {"symbol": symbol}
        if fault is not None:
            extra["fault"] = fault
        self._write(HEALTH, state, extra)

    def finish(self, reason: str) -> None:
        if self._finished:
            return
        if self._file is not None:
            self._write(END, reason)
        self._finished = True
        self._close_file()

    def abandon(self) -> None:
        self._finished = True
        self._close_file()

    # --- files --------------------------------------------------------------------------------
    def _write(self, direction: str, data: str, extra: dict[str, Any] | None = None) -> bool:
        """Write one record; False when nothing is written (recording stopped, or this write failed)."""
        if self._finished or self.recorder.failed is not None:
            return False
        record = {"ts": self.recorder.clock(), "dir": direction, "conn": self.conn, "data": data}
        if extra:
            record.update(extra)
        line = records.encode(record).encode("utf-8")
        try:
            if self._file is None or (self._size + len(line) > self.recorder.rotate_bytes and self._size > self._meta_size):
                self._next_part(record["ts"])
            self._file.write(line)
        except OSError as exc:
            self.recorder.fail(self._path or self.recorder.directory, exc)
            return False
        self._size += len(line)
        self.tally.bytes += len(line)
        return True

    def _next_part(self, ts: float) -> None:
        self._close_file()
        self._part += 1
        self._path = self.recorder.directory / records.file_name(self.venue, self.index, self._part)
        self._file = open(self._path, "xb", buffering=0)   # never overwrite; unbuffered: one write a record
        meta = records.encode({"ts": ts, "dir": META, "conn": self.conn, "data": "",
                               **self.meta, "part": self._part}).encode("utf-8")
        self._file.write(meta)
        self._size = self._meta_size = len(meta)
        self.tally.bytes += len(meta)

    def _close_file(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            except OSError:
                pass  # unbuffered: nothing is lost by a failing close
            self._file = None


def redact(text: str) -> str:
    """A frame we send, with the values of credential-like keys replaced (they are never written)."""
    lowered = text.lower()
    if not any(f'"{key}"' in lowered for key in REDACTED_KEYS):
        return text
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return json.dumps(_redacted(value), separators=(",", ":"))


def _redacted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: "<redacted>" if k.lower() in REDACTED_KEYS else _redacted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redacted(v) for v in value]
    return value
