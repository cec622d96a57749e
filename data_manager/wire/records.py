"""The record format, and reading recordings back (ours, the shared captures, bare frame files).

One JSON Lines file per venue and connection (`DIR/<venue>-<connection>-<part>.jsonl`, e.g.
`kraken-0-0001.jsonl`; `connection` is the data manager's connection index for that venue: 0, and 1, 2...
for a venue that opens one connection per symbol). A file never grows past the rotation size: the next
part starts with a copy of the `meta` record, so every file describes itself. One record a line, flushed
as it is written, in the shape of `../shared/captures/*.jsonl`:

    {"ts": <unix seconds, float>, "dir": <direction>, "conn": <socket number>, "data": <text>, ...}

    dir      data                       added fields
    -------  -------------------------  -------------------------------------------------------------
    meta     ""                         format (1), venue, connection, part, symbols [[unified, native]],
                                        settings {field: value} (the venue's settings, Decimals as text),
                                        started (ISO time); always the first record of a file
    open     the URL connected to       -
    out      a frame we sent            - (values of "jwt"/"signature"/... keys are redacted)
    in       a frame received, as sent  -
    http     the answer's body          method, url, tag (the processor's name for the request), status
                                        (0: no answer; the body then says why), request (body sent, if any)
    health   the book's new state       symbol, fault ("<kind>: <detail>", when this change came with a
                                        fault): what the live processor decided, so a replay can be
                                        compared with it frame by frame
    closed   why the socket closed      -
    end      why the recording stopped  - (absent after a crash: the file just ends)

`conn` numbers the sockets of one file: 1 for the first, 2 after the first reconnect. Records written
while no socket is open (a token request before connecting) carry the number of the next socket.

Reading accepts three shapes: our files (they start with `meta`), the shared captures' `*.jsonl`
(`ts`/`dir`/`data` records, no `meta`: venue and symbols are said by the caller), and bare frame files
(`*.ndjson`: one received frame a line, no time). A last line cut short by a crash is skipped with a
warning; an unreadable line elsewhere is skipped and counted as damage.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import typing
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

FORMAT = 1
META, OPEN, OUT, IN, HTTP, HEALTH, CLOSED, END = "meta", "open", "out", "in", "http", "health", "closed", "end"
DIRECTIONS = frozenset({META, OPEN, OUT, IN, HTTP, HEALTH, CLOSED, END})
SUFFIXES = (".jsonl", ".ndjson")
_NAMED = re.compile(r"^(?P<venue>[a-z][a-z0-9_]*)=(?P<path>.+)$")

Warn = Callable[[str], None]


class RecordingError(Exception):
    """A recording that cannot be read at all (no such file, no venue known for it): one line."""


def file_name(venue: str, index: int, part: int) -> str:
    return f"{venue}-{index}-{part:04d}.jsonl"


def encode(record: Mapping[str, Any]) -> str:
    """One line of JSON Lines (UTF-8 kept as is; the frame text is escaped by JSON, so no raw newline)."""
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"


# --- settings in the meta record --------------------------------------------------------------------
def settings_to_json(settings: Any) -> dict[str, Any]:
    """A venue's frozen settings dataclass as JSON values (Decimal as text, tuples as lists)."""
    values = {}
    for item in dataclasses.fields(settings):
        value = getattr(settings, item.name)
        values[item.name] = str(value) if isinstance(value, Decimal) else list(value) if isinstance(value, tuple) else value
    return values


def settings_from_json(cls: type, values: Mapping[str, Any], base: Any = None) -> tuple[Any, list[str]]:
    """`cls` built from recorded values on top of `base` (or the defaults); and the recorded keys that
    `cls` no longer has (a setting removed since the recording), to be said, not silently dropped."""
    hints = typing.get_type_hints(cls)
    names = {item.name for item in dataclasses.fields(cls)}
    chosen = {}
    for name, value in values.items():
        if name not in names:
            continue
        kind = hints[name]
        if kind is Decimal:
            try:
                value = Decimal(str(value))
            except InvalidOperation:
                raise RecordingError(f"recorded setting {name}={value!r} is not a number") from None
        elif typing.get_origin(kind) is tuple and isinstance(value, list):
            value = tuple(value)
        chosen[name] = value
    built = dataclasses.replace(base, **chosen) if base is not None else cls(**chosen)
    return built, sorted(set(values) - names)


# --- one record --------------------------------------------------------------------------------------
class Record:
    """One line read back. `where` is "file:line", for messages a person follows to the line."""

    __slots__ = ("ts", "dir", "data", "conn", "fields", "where")

    def __init__(self, ts: float | None, direction: str, data: str, conn: int | None,
                 fields: Mapping[str, Any], where: str) -> None:
        self.ts = ts
        self.dir = direction
        self.data = data
        self.conn = conn
        self.fields = fields
        self.where = where

    def __repr__(self) -> str:
        return f"Record({self.dir} {self.where})"


@dataclass(frozen=True)
class Recording:
    """Everything recorded on one connection: its files in order, and what it carried.

    `symbols` and `settings` come from the `meta` record; a foreign capture has neither (the caller
    says which symbols it holds, and its venue's configured settings are used)."""

    venue: str
    index: int
    paths: tuple[Path, ...]
    symbols: tuple[tuple[str, str], ...] = ()
    settings: Mapping[str, Any] | None = None
    framed: bool = True          # ts/dir/data records; False: bare frames, one a line, no time

    @property
    def name(self) -> str:
        first = self.paths[0].name
        return first if len(self.paths) == 1 else f"{first} (+{len(self.paths) - 1} parts)"

    @property
    def foreign(self) -> bool:
        return self.settings is None


# --- finding recordings ------------------------------------------------------------------------------
def discover(sources: Sequence[str], known_venues: Sequence[str]) -> list[Recording]:
    """Directories (every *.jsonl / *.ndjson in them) and files, each optionally `VENUE=PATH`.

    Our files are grouped by (venue, connection) and their parts put in order. A foreign file is one
    recording of its own; its venue comes from `VENUE=` or from its name (`kraken_v2_book_...`)."""
    ours: dict[tuple[str, int], list[tuple[int, Path, dict]]] = {}
    foreign: list[tuple[str, Path, bool]] = []
    for source in sources:
        match = _NAMED.match(source)
        named, path = (match["venue"], Path(match["path"])) if match else ("", Path(source).expanduser())
        if named and named not in known_venues:
            raise RecordingError(f"{source}: unknown venue {named!r} (venues: {', '.join(known_venues)})")
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix in SUFFIXES and p.is_file())
            if not files:
                raise RecordingError(f"{path}: no recording here (no *.jsonl or *.ndjson file)")
        elif path.is_file():
            files = [path]
        else:
            raise RecordingError(f"{path}: no such file or directory")
        for file in files:
            first = _first_record(file)
            if first is not None and first.get("dir") == META:
                key = (str(first.get("venue")), int(first.get("connection", 0)))
                ours.setdefault(key, []).append((int(first.get("part", 1)), file, first))
            else:
                venue = named or _venue_from_name(file.name, known_venues)
                foreign.append((venue, file, first is not None))
    found = []
    for (venue, index), parts in sorted(ours.items()):
        parts.sort(key=lambda part: part[0])
        meta = parts[0][2]
        symbols = tuple((str(unified), str(native)) for unified, native in meta.get("symbols", ()))
        found.append(Recording(venue, index, tuple(p for _, p, _ in parts), symbols, meta.get("settings") or {}))
    used = {(r.venue, r.index) for r in found}
    for venue, file, framed in foreign:
        index = 0
        while (venue, index) in used:
            index += 1
        used.add((venue, index))
        found.append(Recording(venue, index, (file,), framed=framed))
    return found


def _venue_from_name(name: str, known: Sequence[str]) -> str:
    token = re.split(r"[_.\-]", name.lower(), maxsplit=1)[0]
    if token not in known:
        raise RecordingError(f"{name}: cannot tell which venue recorded it; name it VENUE={name} "
                             f"(venues: {', '.join(known)})")
    return token


def _first_record(path: Path) -> dict | None:
    """The first line as a record object, or None when the file holds bare frames (or nothing)."""
    try:
        with path.open(encoding="utf-8", errors="replace") as file:
            for line in file:
                if line.strip():
                    break
            else:
                return None
    except OSError as exc:
        raise RecordingError(f"{path}: cannot read it ({exc.strerror})") from None
    try:
        value = json.loads(line)
    except ValueError:
        return None
    if isinstance(value, dict) and value.get("dir") in DIRECTIONS and isinstance(value.get("data"), str):
        return value
    return None


# --- reading records ---------------------------------------------------------------------------------
@dataclass
class ReadReport:
    """What reading found wrong with the files themselves (not with the venue's data)."""

    truncated: list[str] = dataclasses.field(default_factory=list)   # "file:line" of a cut last line
    damaged: list[str] = dataclasses.field(default_factory=list)     # "file:line" of unreadable lines


def read(recording: Recording, report: ReadReport, warn: Warn) -> Iterator[Record]:
    """Every record of `recording`, in order, across its parts."""
    for path in recording.paths:
        if recording.framed:
            yield from _framed(path, report, warn)
        else:
            yield from _bare(path, report, warn)


def _lines(path: Path) -> Iterator[tuple[int, str, bool]]:
    """(line number, text without its newline, whether it ended with a newline)."""
    try:
        with path.open(encoding="utf-8", errors="replace", newline="") as file:
            for number, line in enumerate(file, 1):
                whole = line.endswith("\n")
                yield number, line.rstrip("\r\n") if whole else line, whole
    except OSError as exc:
        raise RecordingError(f"{path}: cannot read it ({exc.strerror})") from None


def _cut(path: Path, number: int, text: str, report: ReadReport, warn: Warn) -> None:
    where = f"{path.name}:{number}"
    report.truncated.append(where)
    warn(f"{where}: the last line is cut short ({len(text)} characters, no newline): skipped")


def _framed(path: Path, report: ReadReport, warn: Warn) -> Iterator[Record]:
    for number, text, whole in _lines(path):
        if not text.strip():
            continue
        try:
            value = json.loads(text)
        except ValueError:
            value = None
        if not isinstance(value, dict) or not isinstance(value.get("data"), str) or value.get("dir") not in DIRECTIONS:
            if not whole:
                _cut(path, number, text, report, warn)
            else:
                where = f"{path.name}:{number}"
                report.damaged.append(where)
                warn(f"{where}: not a record: skipped")
            continue
        ts = value.get("ts")
        conn = value.get("conn")
        yield Record(float(ts) if isinstance(ts, (int, float)) and not isinstance(ts, bool) else None,
                     value["dir"], value["data"], conn if type(conn) is int else None, value,
                     f"{path.name}:{number}")


def _bare(path: Path, report: ReadReport, warn: Warn) -> Iterator[Record]:
    """One frame a line. A last line without its newline is kept only if it is whole JSON (many files
    simply lack the final newline); otherwise it was cut short."""
    for number, text, whole in _lines(path):
        if not text.strip():
            continue
        if not whole:
            try:
                json.loads(text)
            except ValueError:
                _cut(path, number, text, report, warn)
                continue
        yield Record(None, IN, text, None, {}, f"{path.name}:{number}")


def bare_clock_start(recording: Recording) -> float:
    """Bare frames carry no time: their replay clock stands still at the file's modification time."""
    return os.stat(recording.paths[0]).st_mtime
