"""One venue's simulator and our real client (registry, shell, processor) wired together, for tests.

    async with sim_feed("kraken", faults=("checksum@5",)) as run:
        await run.ready()            # every book live
        await run.synced()           # barrier: pause the simulator, wait until the client's book equals
                                     # the simulator's own book exactly
        run.sim, run.manager, run.views, run.processor, run.health("BTC-USD")

Waits are on conditions (live, books equal, a fault seen) under a generous deadline, never on a rate.
"""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from decimal import Decimal
from typing import Any, AsyncIterator, Callable, Mapping, Sequence

from data_manager.book import Side
from data_manager.client import Backoff
from data_manager.feed import FeedKey, FeedProcessor
from data_manager.manager import DataManager, FeedPlan
from data_manager.registry import ConnectLimits, venue
from data_manager.sim.clock import FIXED_START, SimClock
from data_manager.sim.server import FaultPlan, SimVenue, SimVenueSettings
from data_manager.sim.simulator import load_class
from data_manager.symbols import Symbol

FAST_LIMITS = ConnectLimits(min_interval=0.05, attempts=1000, per_seconds=1.0, source="tests")
FAST_BACKOFF = Backoff(base=0.05, cap=0.2)
DEADLINE = 15.0


def fault_plan(text: str) -> FaultPlan:
    """"gap@5" -> FaultPlan("gap", 5); "gap@5#2" on connection 2."""
    kind, _, rest = text.partition("@")
    after, _, connection = rest.partition("#")
    return FaultPlan(kind, int(after or 3), int(connection or 1))


class SimRun:
    def __init__(self, name: str, sim: SimVenue, manager: DataManager, symbols: Sequence[Symbol]) -> None:
        self.name = name
        self.sim = sim
        self.manager = manager
        self.symbols = list(symbols)
        self.keys = [FeedKey(name, s.name) for s in symbols]
        self.views = {key.symbol: manager.views[key] for key in self.keys}
        self.native = {s.name: venue(name).native_symbol(s) for s in symbols}

    @property
    def processor(self) -> FeedProcessor:
        return self.manager.processors[0]

    def feed_book(self, symbol: str = "BTC-USD"):
        native = self.native[symbol]
        for processor in self.manager.processors:
            if native in processor.books:
                return processor.books[native]
        raise KeyError(symbol)

    def health(self, symbol: str = "BTC-USD"):
        return self.feed_book(symbol).health

    async def until(self, condition: Callable[[], bool], what: str, timeout: float = DEADLINE) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not condition():
            if loop.time() > deadline:
                raise AssertionError(f"{self.name}: timed out waiting for {what}")
            await asyncio.sleep(0.01)

    async def ready(self, timeout: float = DEADLINE) -> None:
        await self.until(lambda: all(v.live for v in self.views.values()), "every book live", timeout)

    def client_levels(self, symbol: str, side: Side) -> list[tuple[Decimal, Decimal]]:
        """The client's book in the venue's own units (what the simulator's true book is in)."""
        return list(self.views[symbol].native_levels(side))

    def true_levels(self, symbol: str, side: Side) -> list[tuple[Decimal, Decimal]]:
        book = self.sim.true_book(self.native[symbol])
        return [tuple(level) for level in book[side.value]]

    def books_equal(self, symbol: str = "BTC-USD") -> bool:
        return self.views[symbol].live and all(
            self.client_levels(symbol, side) == self.true_levels(symbol, side) for side in Side)

    async def synced(self, timeout: float = DEADLINE, symbols: Sequence[str] | None = None) -> None:
        """Pause the simulator (a barrier: no step half-sent), then wait until the client holds exactly
        the simulator's book. The flow stays paused; `resume()` lets it go on."""
        await self.sim.pause()
        for symbol in symbols or self.views:
            await self.until(lambda: self.books_equal(symbol), f"{symbol} book equal to the simulator's", timeout)

    def resume(self) -> None:
        self.sim.resume()


@contextlib.asynccontextmanager
async def sim_feed(name: str, symbols: Sequence[str] = ("BTC-USD",), faults: Sequence[str] = (),
                   sim_kwargs: Mapping[str, Any] | None = None, settings: Mapping[str, Any] | None = None,
                   rate: float = 50.0, levels: int = 200, seed: int = 7,
                   mids: Mapping[str, Decimal] | None = None) -> AsyncIterator[SimRun]:
    """Start `name`'s simulator and our client for `symbols`; stop both at the end."""
    spec = venue(name)
    unified = [Symbol.parse(s) for s in symbols]
    native = {spec.native_symbol(s): s.name for s in unified}
    sim_settings = SimVenueSettings(rate=rate, levels=levels, faults=tuple(fault_plan(f) for f in faults))
    sim = load_class(spec.simulator)(_market(seed, mids), seed, sim_settings, native, SimClock(FIXED_START),
                                     **dict(sim_kwargs or {}))
    await sim.start()
    try:
        values = {**dict(settings or {}), **sim.client_overrides()}
        fields = {f.name for f in dataclasses.fields(spec.settings)}
        feed_settings = spec.settings(**{k: v for k, v in values.items() if k in fields})
        plan = FeedPlan(dataclasses.replace(spec, limits=FAST_LIMITS), feed_settings, tuple(unified))
        manager = DataManager([plan], backoff=FAST_BACKOFF)
        manager.start()
        try:
            yield SimRun(name, sim, manager, unified)
        finally:
            await manager.stop()
    finally:
        await sim.close()


def _market(seed: int, mids: Mapping[str, Decimal] | None):
    from data_manager.sim.market import Market

    return Market(seed, mids)
