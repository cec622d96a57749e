"""The built-in exchange simulator: every enabled venue's server on 127.0.0.1, one common seeded market.

`--source sim` starts it in-process, then points the very same client code at it: only the URLs change.
"""
from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Mapping

from data_manager.sim.market import Market
from data_manager.sim.server import SimVenue, SimVenueSettings

log = logging.getLogger(__name__)

SIM_CLASSES = {
    "kraken": "data_manager.sim.kraken:KrakenSim",
    "gemini": "data_manager.sim.gemini:GeminiSim",
    "coinbase": "data_manager.sim.coinbase:CoinbaseSim",
    "kumex": "data_manager.sim.kumex:KumexSim",
}


@dataclass(frozen=True)
class Endpoint:
    ws_url: str
    rest_url: str | None = None


def sim_class(venue: str) -> type[SimVenue]:
    module, name = SIM_CLASSES[venue].split(":")
    return getattr(importlib.import_module(module), name)


class Simulator:
    """Starts and stops the simulated venues; tells the client where each one listens."""

    def __init__(self, seed: int, mid: Decimal, settings: Mapping[str, SimVenueSettings], venues: list[str]) -> None:
        self.market = Market(seed, mid)
        self.venues: dict[str, SimVenue] = {
            name: sim_class(name)(self.market, seed, settings.get(name, SimVenueSettings())) for name in venues
        }

    async def start(self) -> None:
        for venue in self.venues.values():
            await venue.start()

    async def close(self) -> None:
        for venue in self.venues.values():
            await venue.close()

    def endpoint(self, name: str) -> Endpoint:
        venue = self.venues[name]
        return Endpoint(venue.ws_url, getattr(venue, "rest_url", None))

    async def __aenter__(self) -> "Simulator":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
