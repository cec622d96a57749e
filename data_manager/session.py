"""A running set of feeds for one symbol, live or against the built-in simulator: what every command needs.

    async with open_session(config, venues, symbol, source="sim") as session:
        await session.wait_ready(10)
        session.views        # {FeedKey: BookView}
        session.reasons(10)  # {FeedKey: why it is not live}, in the shell's words

`source="sim"` starts the simulator first and points each venue's settings at it (only the keys the
simulator names in `client_overrides()` change): the very same client code runs either way.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, fields, replace
from typing import AsyncIterator, Callable, Sequence

from config import Config, VenueConfig
from data_manager.symbols import Symbol


class SessionError(Exception):
    """A session that cannot start as asked (no simulator mid for the symbol, a refused fault): one line."""


@dataclass
class Session:
    manager: object            # data_manager.manager.DataManager (imported lazily: start-up time)
    simulator: object | None   # data_manager.sim.simulator.Simulator
    source: str

    @property
    def views(self):
        return self.manager.views

    async def wait_ready(self, timeout: float, wait_for_faults: bool = True) -> None:
        until = self._faults_done() if (self.simulator is not None and wait_for_faults) else None
        await self.manager.wait_ready(timeout, until=until)

    def reasons(self, waited: float) -> dict:
        reasons = {}
        for key, view in self.manager.views.items():
            error = self.manager.last_error(key)
            if not view.live and error:
                reasons[key] = error if self.manager.crashed(key) else f"not live after {waited:g} s: {error}"
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
async def open_session(config: Config, venues: Sequence[VenueConfig], symbol: Symbol,
                       source: str = "live") -> AsyncIterator[Session]:
    from data_manager.manager import DataManager, FeedPlan

    simulator = None
    if source == "sim":
        simulator, venues = await _start_simulator(config, venues, symbol)
    try:
        manager = DataManager([FeedPlan(v.spec, v.settings, (symbol,)) for v in venues])
        manager.start()
        try:
            yield Session(manager, simulator, source)
        finally:
            await manager.stop()
    finally:
        if simulator is not None:
            await simulator.close()


async def _start_simulator(config: Config, venues: Sequence[VenueConfig], symbol: Symbol):
    from data_manager.sim.simulator import SimPlan, Simulator

    if symbol.name not in config.simulator.mids:
        raise SessionError(f"the simulator has no mid for {symbol.name} (add it under simulator.mids)")
    plans = {v.name: SimPlan(v.spec.simulator, {v.spec.native_symbol(symbol): symbol.name}) for v in venues}
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
