"""Venues register themselves: each module in `data_manager/venues/` declares one `VENUE = VenueSpec(...)`.

`main.py`, `config.py`, the shell and the simulator orchestration name no venue: they ask the registry.
Adding a venue takes its venue module, its simulator module and a block in `config.yml`.
"""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from functools import cache
from typing import Callable, Mapping, Sequence

from data_manager.feed import FeedProcessor, FeedSettings
from data_manager.symbols import Symbol


@dataclass(frozen=True)
class ConnectLimits:
    """A venue's documented connection etiquette, enforced by the shell on every (re)connect."""

    min_interval: float = 1.0          # seconds between two connection attempts, at least
    attempts: int = 30                 # at most this many attempts ...
    per_seconds: float = 60.0          # ... in any window of this many seconds
    immediate_retry: bool = True       # after a long healthy session, retry at once (if the window allows)
    source: str = ""                   # where the numbers come from (docs, or UNVERIFIED)


@dataclass(frozen=True)
class VenueSpec:
    name: str
    title: str                                    # "Kraken spot, WebSocket v2 book (L2, CRC32)"
    settings: type[FeedSettings]
    processor: Callable[..., FeedProcessor]       # (settings, [(Symbol, native)], clock) -> one connection
    native_symbol: Callable[[Symbol], str]        # unified BASE-QUOTE -> the venue's own name
    instrument: str = "spot"                      # "spot" or "perpetual"
    multiplexed: bool = True                      # one connection carries every configured symbol
    simulator: str = ""                           # "module:Class" of its simulator (imported lazily)
    sim_faults: Mapping[str, str] = field(default_factory=dict)   # kind -> what the simulator does
    limits: ConnectLimits = ConnectLimits()
    notes: Callable[[FeedSettings, Symbol], tuple[str, ...]] | None = None   # said beside every answer

    def connections(self, settings: FeedSettings, symbols: Sequence[Symbol]) -> list[list[tuple[Symbol, str]]]:
        """How the configured symbols are spread over connections."""
        pairs = [(symbol, self.native_symbol(symbol)) for symbol in symbols]
        return [pairs] if self.multiplexed else [[pair] for pair in pairs]


@cache
def venues() -> Mapping[str, VenueSpec]:
    """Every venue module's `VENUE`, by name, in module order."""
    import data_manager.venues as package

    found: dict[str, VenueSpec] = {}
    for module in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if module.name.startswith("_"):
            continue
        spec = getattr(importlib.import_module(f"{package.__name__}.{module.name}"), "VENUE", None)
        if isinstance(spec, VenueSpec):
            found[spec.name] = spec
    return found


def venue(name: str) -> VenueSpec:
    return venues()[name]
