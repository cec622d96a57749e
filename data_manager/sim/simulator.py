"""The built-in exchange simulator: every requested venue's server on 127.0.0.1, one common seeded market.

`--source sim` starts it in-process, then points the very same client code at it: only the settings in
`client_overrides()` (URLs) change. It names no venue: the caller says which simulator class serves which
venue (the venue registry knows), and which symbols.
"""
from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Mapping

from data_manager.sim.clock import SimClock
from data_manager.sim.market import Market
from data_manager.sim.server import SimVenue, SimVenueSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SimPlan:
    """One venue to serve: its simulator class ("module:Class") and {native symbol: unified symbol}."""

    simulator: str
    symbols: Mapping[str, str]


def load_class(path: str) -> type[SimVenue]:
    module, name = path.split(":")
    return getattr(importlib.import_module(module), name)


class Simulator:
    """Starts and stops the simulated venues; tells the client where each one listens."""

    def __init__(self, seed: int, mids: Mapping[str, Decimal], settings: Mapping[str, SimVenueSettings],
                 plans: Mapping[str, SimPlan], clock: SimClock | None = None) -> None:
        self.market = Market(seed, mids)
        self.clock = clock or SimClock()
        self.venues: dict[str, SimVenue] = {
            name: load_class(plan.simulator)(self.market, seed, settings.get(name, SimVenueSettings()),
                                             plan.symbols, self.clock)
            for name, plan in plans.items()
        }

    async def start(self) -> None:
        for venue in self.venues.values():
            await venue.start()

    async def close(self) -> None:
        for venue in self.venues.values():
            await venue.close()

    def client_overrides(self, name: str) -> dict[str, str]:
        return self.venues[name].client_overrides()

    async def __aenter__(self) -> "Simulator":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
