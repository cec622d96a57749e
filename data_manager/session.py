"""A running set of feeds for one symbol: live, against the built-in simulator, or replayed from a
recording. What every command needs.

    async with open_session(config, venues, symbol, source="sim") as session:
        await session.wait_ready(10)
        session.views        # {FeedKey: BookView}
        session.reasons(10)  # {FeedKey: why it is not live}, in the shell's words
        session.clock()      # now: the wall clock, or the replay's time

`source="sim"` starts the simulator first and points each venue's settings at it (only the keys the
simulator names in `client_overrides()` change): the very same client code runs either way.
`source="replay"` feeds recorded files through the very same processors (`data_manager.wire.replay`).
`--record DIR` (`WireOptions.record`) writes everything the connections see into DIR as they run.

`args.source` is a `Source`: the string "live", "sim" or "replay" (what the commands compare and show),
carrying the wire options parsed beside it (`--source replay DIR...`, `--speed`, `--at`, `--record`), so
that a command passes them on by passing `args.source`.
"""
from __future__ import annotations

import contextlib
import sys
import time
from dataclasses import dataclass, fields, replace
from typing import AsyncIterator, Callable, Sequence

from config import Config, VenueConfig
from data_manager.symbols import Symbol


class SessionError(Exception):
    """A session that cannot start as asked (no simulator mid for the symbol, a refused fault, no
    recording of the symbol): one line."""


@dataclass(frozen=True)
class WireOptions:
    replay: tuple[str, ...] = ()      # directories or files (VENUE=FILE for a foreign capture)
    speed: float | None = None        # None: as fast as possible; 1: the recorded pace
    at: float | None = None           # replay up to this moment (epoch seconds); None: to the end
    record: str | None = None         # record every connection into this directory
    rotate_bytes: int | None = None   # a recorded file's size limit (default: the recorder's)


class Source(str):
    """"live", "sim" or "replay", with the wire options given beside it on the command line."""

    wire: WireOptions

    def __new__(cls, kind: str, wire: WireOptions = WireOptions()) -> "Source":
        source = super().__new__(cls, kind)
        source.wire = wire
        return source


def wire_options(source: str) -> WireOptions:
    return source.wire if isinstance(source, Source) else WireOptions()


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@dataclass
class Session:
    manager: object            # DataManager, or wire.replay.ReplayManager (imported lazily: start-up time)
    simulator: object | None   # data_manager.sim.simulator.Simulator
    source: str
    recorder: object | None = None   # data_manager.wire.record.Recorder while recording

    @property
    def views(self):
        return self.manager.views

    def clock(self) -> float:
        """Now, for ages in an answer: the replay's time when replaying, else the wall clock."""
        return self.manager.clock() if self.source == "replay" else time.time()

    async def wait_ready(self, timeout: float, wait_for_faults: bool = True) -> None:
        until = self._faults_done() if (self.simulator is not None and wait_for_faults) else None
        await self.manager.wait_ready(timeout, until=until)

    def reasons(self, waited: float) -> dict:
        reasons = {}
        for key, view in self.manager.views.items():
            error = self.manager.last_error(key)
            if not view.live and error:
                replayed = self.source == "replay"
                reasons[key] = error if (replayed or self.manager.crashed(key)) else f"not live after {waited:g} s: {error}"
        return reasons

    def _faults_done(self) -> Callable[[], bool] | None:
        """With scheduled simulator faults, ready means: every fault fired and its venue recovered."""
        planned = {name: len(sim.settings.faults) for name, sim in self.simulator.venues.items()
                   if sim.settings.faults}
        if not planned:
            return None

        def done() -> bool:
            for name, count in planned.items():
                if len(self.simulator.venues[name].injected) < count:
                    return False
                views = [view for key, view in self.manager.views.items() if key.venue == name]
                if not all(view.live and view.health(0).resyncs >= 1 for view in views):
                    return False
            return True

        return done


@contextlib.asynccontextmanager
async def open_session(config: Config, venues: Sequence[VenueConfig], symbol: Symbol | Sequence[Symbol],
                       source: str = "live", *, wire: WireOptions | None = None,
                       say: Callable[[str], None] = _say, announce: bool = True) -> AsyncIterator[Session]:
    """`symbol`: one symbol, or several (each venue runs those of them it lists). `wire`: the wire
    options (default: those `source` carries). `announce`: say in one line what was recorded."""
    wire = wire if wire is not None else wire_options(source)
    if source != "replay" and (wire.speed is not None or wire.at is not None):
        raise SessionError("--speed and --at work only with --source replay")
    if source == "replay" and wire.record:
        raise SessionError("--record records live or simulated connections, not a replay (copy the files)")
    symbols = (symbol,) if isinstance(symbol, Symbol) else tuple(symbol)
    if source == "replay":
        manager = _replay_manager(config, venues, symbols, wire, say)
        manager.start()
        try:
            yield Session(manager, None, source)
        finally:
            await manager.stop()
        return
    async with _fed(config, venues, symbols, source, wire, say, announce) as session:
        yield session


@contextlib.asynccontextmanager
async def _fed(config: Config, venues: Sequence[VenueConfig], symbols: tuple[Symbol, ...], source: str,
               wire: WireOptions, say: Callable[[str], None], announce: bool) -> AsyncIterator[Session]:
    from data_manager.manager import DataManager, FeedPlan

    simulator = None
    if source == "sim":
        simulator, venues = await _start_simulator(config, venues, symbols)
    try:
        plans = [FeedPlan(v.spec, v.settings, _listed(v, symbols)) for v in venues]
        recorder = _recorder(wire, plans, say) if wire.record else None
        manager = DataManager(plans, tap=recorder.tap if recorder is not None else None)
        if recorder is not None:
            recorder.watch(manager)
        manager.start()
        try:
            yield Session(manager, simulator, source, recorder)
        finally:
            await manager.stop()
            if recorder is not None:
                recorder.close("the session ended")
                if announce and recorder.failed is None:
                    say(f"recorded {recorder.total_frames()} frames ({recorder.total_bytes():,} bytes) "
                        f"into {recorder.directory}")
    finally:
        if simulator is not None:
            await simulator.close()


def _listed(venue: VenueConfig, symbols: tuple[Symbol, ...]) -> tuple[Symbol, ...]:
    """The symbols this venue runs: those it lists (a caller asking one symbol already chose venues
    that list it; one that lists none of several is the caller's to leave out)."""
    listed = tuple(s for s in symbols if s.name in venue.settings.symbols)
    return listed or symbols


def _recorder(wire: WireOptions, plans, say: Callable[[str], None]):
    """A recorder for DIR, or None (said in one line) when DIR cannot be used: the books run anyway."""
    from data_manager.wire.record import ROTATE_BYTES, Recorder, RecorderError

    recorder = Recorder(wire.record, plans, wire.rotate_bytes or ROTATE_BYTES, say=say)
    try:
        recorder.open()
    except RecorderError as exc:
        say(f"warning: not recording: {exc}; the books run without it")
        return None
    return recorder


def _replay_manager(config: Config, venues: Sequence[VenueConfig], symbols: tuple[Symbol, ...],
                    wire: WireOptions, say: Callable[[str], None]):
    from data_manager.feed import FeedKey
    from data_manager.registry import venues as registered
    from data_manager.wire.records import RecordingError, discover
    from data_manager.wire.replay import ReplayManager, build

    if not wire.replay:
        raise SessionError("--source replay needs the recording: --source replay DIR (or FILE...)")
    specs = registered()
    names = {v.name for v in venues}
    configured = {v.name: v.settings for v in config.venues.values()}
    wanted = {s.name for s in symbols}
    warn = lambda line: say(f"warning: {line}")
    try:
        recordings = [r for r in discover(wire.replay, list(specs)) if r.venue in names]
        connections = [build(r, specs, configured, symbols, warn=warn) for r in recordings]
    except (RecordingError, ValueError) as exc:
        raise SessionError(str(exc)) from None
    connections = [c for c in connections if any(s.name in wanted for s, _ in c.symbols)]
    if not connections:
        raise SessionError(f"{', '.join(wire.replay)}: no recording of {', '.join(sorted(wanted))} "
                           f"on {', '.join(sorted(names))}")
    keys = [FeedKey(c.spec.name, s.name) for c in connections for s, _ in c.symbols if s.name in wanted]
    return ReplayManager(connections, keys, wire.speed, wire.at, warn)


async def _start_simulator(config: Config, venues: Sequence[VenueConfig], symbols: tuple[Symbol, ...]):
    from data_manager.sim.simulator import SimPlan, Simulator

    for symbol in symbols:
        if symbol.name not in config.simulator.mids:
            raise SessionError(f"the simulator has no mid for {symbol.name} (add it under simulator.mids)")
    plans = {v.name: SimPlan(v.spec.simulator, {v.spec.native_symbol(s): s.name for s in _listed(v, symbols)})
             for v in venues}
    try:
        simulator = Simulator(config.simulator.seed, config.simulator.mids, config.simulator.venues, plans)
    except ValueError as exc:  # a fault the simulator refuses (the registry should have caught it first)
        raise SessionError(str(exc)) from None
    await simulator.start()
    pointed = []
    for v in venues:
        names = {f.name for f in fields(v.spec.settings)}
        overrides = {k: value for k, value in simulator.client_overrides(v.name).items() if k in names}
        pointed.append(replace(v, settings=replace(v.settings, **overrides)))
    return simulator, pointed
