"""`main.py check DIR`: the offline data-quality check, a separate process that reads only the files.

It does not check anything by itself: it replays every recorded connection through the very processor
that reads the venue live, which already verifies what the venue promises (sequence numbers, checksums,
event chains, crossed books, snapshot bridges). What it adds is what only a recording can show: gaps in
time between frames longer than the venue's `max_age`, the faults the live run saw compared with the
ones the replay sees (frame by frame), and damage to the files themselves.

A recording "holds a fault" (exit 1) when the replay or the live run saw one, a silence was longer than
`max_age`, a line in the middle of a file is unreadable, or the replay hit a bug of ours. A last line cut
short by a crash is said, not counted: it is what a crash leaves behind.
"""
from __future__ import annotations

import collections
import time
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from data_manager.feed import Action, BookChanged, FeedKey, FeedSettings
from data_manager.registry import VenueSpec
from data_manager.symbols import Symbol
from data_manager.wire.records import Recording, Warn
from data_manager.wire.replay import FaultSeen, ReplayConnection, build, replay_all


@dataclass
class ConnectionCheck:
    """One recorded connection, replayed: its books, its faults (replayed and live), its gaps."""

    connection: ReplayConnection
    applied: collections.Counter = field(default_factory=collections.Counter)   # frames that changed each book

    @property
    def stats(self):
        return self.connection.stats

    def matched(self) -> list[FaultSeen]:
        """Replayed faults the live run saw too, at the same frame, on the same book, of the same kind."""
        return _unpaired(self.stats.replay_faults, self.stats.live_faults, keep_paired=True)

    def live_only(self) -> list[FaultSeen]:
        """Faults the live run saw that the replay does not see again."""
        return _unpaired(self.stats.live_faults, self.stats.replay_faults, keep_paired=False)

    @property
    def faulty(self) -> bool:
        stats, report = self.stats, self.connection.report
        return bool(stats.replay_faults or stats.live_faults or stats.gaps or report.damaged
                    or self.connection.crashed is not None)


def _unpaired(faults: Sequence[FaultSeen], others: Sequence[FaultSeen], keep_paired: bool) -> list[FaultSeen]:
    """Those of `faults` that have (keep_paired) or have not a counterpart in `others`, one for one."""
    left = collections.Counter(_fault_key(f) for f in others)
    out = []
    for fault in faults:
        paired = left[_fault_key(fault)] > 0
        if paired:
            left[_fault_key(fault)] -= 1
        if paired is keep_paired:
            out.append(fault)
    return out


def _fault_key(fault: FaultSeen) -> tuple[int, str, str]:
    return fault.frame, fault.symbol, fault.kind


def check_recordings(recordings: Sequence[Recording], specs: Mapping[str, VenueSpec],
                     configured: Mapping[str, FeedSettings], foreign_symbols: Sequence[Symbol],
                     warn: Warn) -> list[ConnectionCheck]:
    checks = []
    for recording in recordings:
        check = ConnectionCheck(build(recording, specs, configured, foreign_symbols, warn=warn))
        check.connection.listener = _counter(check.applied)
        checks.append(check)
    replay_all([c.connection for c in checks], warn=warn)
    return checks


def _counter(applied: collections.Counter):
    def count(action: Action) -> None:
        if type(action) is BookChanged:
            applied[action.key] += 1
    return count


# --- the report --------------------------------------------------------------------------------------
def render(checks: Sequence[ConnectionCheck]) -> str:
    """A table per venue (each of its connections), then one verdict line."""
    lines: list[str] = []
    by_venue: dict[str, list[ConnectionCheck]] = {}
    for check in checks:
        by_venue.setdefault(check.connection.spec.name, []).append(check)
    for venue, venue_checks in by_venue.items():
        for check in venue_checks:
            lines += _connection_lines(check)
            lines.append("")
    faulty = [c for c in checks if c.faulty]
    lines.append(f"verdict: {len(faulty)} of {len(checks)} recorded connections hold a fault" if faulty
                 else f"verdict: clean ({len(checks)} recorded connection{'s' if len(checks) != 1 else ''})")
    return "\n".join(lines)


def _connection_lines(check: ConnectionCheck) -> list[str]:
    connection, stats, report = check.connection, check.stats, check.connection.report
    span = _span(stats.first_ts, stats.last_ts)
    lines = [f"{connection.spec.name}  {connection.recording.name}: {stats.opens} socket{'s' if stats.opens != 1 else ''}, "
             f"{stats.frames:,} frames ({_size(stats.bytes)}){span}"]
    lines.append(f"  {'book':<10}{'state':<11}{'applied':>9}{'checksums*':>12}  {'sequences*':<35}{'resyncs':>7}")
    for symbol, native in connection.symbols:
        feed = connection.processor.books[native]
        integrity, health = feed.health.integrity, feed.health
        sequences = (f"{integrity.first_sequence}..{integrity.last_sequence}"
                     if integrity.last_sequence is not None else "-")
        lines.append(f"  {symbol.name:<10}{health.state.value:<11}{check.applied[FeedKey(connection.spec.name, symbol.name)]:>9,}"
                     f"{integrity.checksums_verified:>12,}  {sequences:<35}{health.resyncs:>7}")
    lines.append("  * since the last whole book")
    lines += _fault_lines(check)
    lines.append("  time      " + _gap_text(check))
    if report.truncated or report.damaged:
        lines.append(f"  files     {len(report.truncated)} cut last line(s) skipped, {len(report.damaged)} unreadable "
                     f"line(s){': ' + ', '.join(report.damaged[:3]) if report.damaged else ''}")
    differences = _differences(stats)
    if differences:
        lines.append(f"  replay    {differences}")
    if connection.crashed is not None:
        lines.append(f"  internal error: {type(connection.crashed).__name__}: {connection.crashed} (see the log)")
    lines.append(f"  verdict   {'FAULT' if check.faulty else 'clean'}")
    return lines


def _fault_lines(check: ConnectionCheck) -> list[str]:
    stats = check.stats
    if not stats.replay_faults and not stats.live_faults:
        return ["  faults    none"]
    matched = {id(f) for f in check.matched()}
    lines = []
    for fault in stats.replay_faults:
        live = "live: the same frame" if id(fault) in matched else (
            "live: not recorded" if not stats.live_faults else "live: not at this frame")
        lines.append(f"frame {fault.frame:<7,} {fault.symbol:<9} {fault.kind}: {_short(fault.detail)}   ({live})")
    for fault in check.live_only():
        lines.append(f"frame {fault.frame:<7,} {fault.symbol:<9} {fault.kind}: {_short(fault.detail)}   "
                     f"(live only, {fault.where}; not seen again by the replay)")
    return [("  faults    " if i == 0 else "            ") + line for i, line in enumerate(lines)]


def _gap_text(check: ConnectionCheck) -> str:
    stats, max_age = check.stats, check.connection.settings.max_age
    if stats.largest_gap is None:
        return "no time in the records" if not check.connection.recording.framed else "fewer than two frames"
    text = f"largest gap {stats.largest_gap.seconds:.2f} s ({stats.largest_gap.where}); "
    if not stats.gaps:
        return text + f"none over max_age {max_age:g} s"
    worst = max(stats.gaps, key=lambda g: g.seconds)
    return text + f"{len(stats.gaps)} over max_age {max_age:g} s (worst before {worst.where})"


def _differences(stats) -> str:
    parts = []
    if stats.sends_differ:
        parts.append(f"{stats.sends_differ} sends differ from the recorded ones ({stats.sends_matched} match)")
    if stats.http_unasked:
        parts.append(f"{stats.http_unasked} recorded HTTP answers were not asked for")
    if stats.url_differs:
        parts.append(f"{stats.url_differs} connects went to another URL")
    if stats.frames_unconnected:
        parts.append(f"{stats.frames_unconnected} frames arrived while no socket was open")
    parts += stats.notes
    return "; ".join(parts)


def _span(first: float | None, last: float | None) -> str:
    if first is None or last is None:
        return ""
    start = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(first))
    end = time.strftime("%H:%M:%S", time.gmtime(last))
    return f", {start} to {end} UTC ({last - first:,.1f} s)"


def _size(count: int) -> str:
    return f"{count / 2**20:,.1f} MB" if count >= 2**20 else f"{count / 1024:,.1f} kB"


def _short(text: str, limit: int = 90) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
