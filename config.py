"""config.yml -> frozen dataclasses, validated once at start-up.

Every problem is reported as a `ConfigError` naming the file and the key path, e.g.
`config.yml: venues.kraken.depth: expected one of 10, 25, 100, 500, 1000, got 30`. Unknown keys are
errors too (a typo must not silently fall back to a default). Nothing is read at import time.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml

from data_manager.errors import ConfigError
from data_manager.sim.server import FAULT_KINDS, FaultPlan, SimVenueSettings

VENUES = ("kraken", "gemini", "coinbase", "kumex")
KRAKEN_DEPTHS = (10, 25, 100, 500, 1000)
_MISSING = object()


@dataclass(frozen=True)
class VenueConfig:
    name: str
    enabled: bool
    url: str
    symbol: str
    max_age: float                     # seconds without data or heartbeat before the book is stale
    sizes: str = "BTC"                 # the unit the venue quotes sizes in
    depth: int | None = None           # kraken: subscribed depth
    price_precision: int | None = None  # kraken: decimals of price in the checksum
    qty_precision: int | None = None   # kraken: decimals of qty in the checksum
    rest_url: str | None = None        # kumex: token and snapshot endpoints
    level3: bool = True                # kumex: try level 3 first
    contract_value: Decimal = Decimal(1)  # kumex: USD per contract (inverse XBTUSDM: 1)


@dataclass(frozen=True)
class SimulatorConfig:
    seed: int
    mid: Decimal
    venues: dict[str, SimVenueSettings]


@dataclass(frozen=True)
class Config:
    path: str
    venues: dict[str, VenueConfig]
    simulator: SimulatorConfig
    logging: dict[str, Any] = field(default_factory=dict)

    @property
    def enabled(self) -> list[VenueConfig]:
        return [v for v in self.venues.values() if v.enabled]


class _Section:
    """Reads one mapping of the YAML, remembering which keys were used so unknown ones are errors."""

    def __init__(self, path: str, prefix: str, data: Any) -> None:
        if not isinstance(data, dict):
            raise ConfigError(path, prefix, f"expected a mapping, got {_show(data)}")
        self.path, self.prefix, self.data, self.used = path, prefix, data, set()

    def key(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def fail(self, name: str, problem: str) -> ConfigError:
        return ConfigError(self.path, self.key(name), problem)

    def raw(self, name: str, default: Any = _MISSING) -> Any:
        self.used.add(name)
        if name not in self.data:
            if default is _MISSING:
                raise self.fail(name, "missing")
            return default
        return self.data[name]

    def typed(self, name: str, kind: type, default: Any = _MISSING, minimum: float | None = None) -> Any:
        value = self.raw(name, default)
        if value is default and default is not _MISSING:
            return value
        ok = isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            ok, value = True, float(value)
        if not ok:
            raise self.fail(name, f"expected {kind.__name__}, got {_show(value)}")
        if minimum is not None and value < minimum:
            raise self.fail(name, f"expected at least {minimum}, got {_show(value)}")
        return value

    def decimal(self, name: str, default: Any = _MISSING, positive: bool = False) -> Decimal:
        value = self.raw(name, default)
        try:
            number = Decimal(str(value)) if not isinstance(value, bool) else None
        except InvalidOperation:
            number = None
        if number is None or not number.is_finite() or (positive and number <= 0):
            raise self.fail(name, f"expected a {'positive ' if positive else ''}number, got {_show(value)}")
        return number

    def choice(self, name: str, choices: tuple, default: Any = _MISSING) -> Any:
        value = self.raw(name, default)
        if value not in choices or isinstance(value, bool):
            raise self.fail(name, f"expected one of {', '.join(map(str, choices))}, got {_show(value)}")
        return value

    def section(self, name: str, default: Any = _MISSING) -> "_Section":
        return _Section(self.path, self.key(name), self.raw(name, default))

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.used, key=str)
        if unknown:
            raise self.fail(str(unknown[0]), "unknown key")


def _show(value: Any) -> str:
    return "nothing" if value is None else repr(value)


def load_config(path: str | Path) -> Config:
    """Read and validate the configuration file; raise ConfigError naming the key path."""
    path = str(path)
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError(path, "", f"cannot read the config file ({exc.strerror})") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(path, "", f"not valid YAML{where}") from exc
    root = _Section(path, "", data)
    venues_section = root.section("venues")
    venues = {name: _venue(venues_section.section(name), name) for name in VENUES if name in venues_section.data}
    venues_section.done()
    simulator = _simulator(root.section("simulator"))
    logging_config = root.raw("logging", {})
    if not isinstance(logging_config, dict):
        raise root.fail("logging", "expected a logging.config.dictConfig mapping")
    root.done()
    if not any(v.enabled for v in venues.values()):
        raise ConfigError(path, "venues", "no venue is enabled")
    return Config(path, venues, simulator, logging_config)


def _venue(section: _Section, name: str) -> VenueConfig:
    common = dict(
        name=name,
        enabled=section.typed("enabled", bool, True),
        url=_url(section, "url", ("ws://", "wss://")),
        symbol=section.typed("symbol", str),
        max_age=section.typed("max_age", float, 10.0, minimum=0.5),
    )
    if name == "kumex":
        extra = dict(
            sizes=section.choice("sizes", ("contracts",), "contracts"),
            rest_url=_url(section, "rest_url", ("http://", "https://")),
            level3=section.typed("level3", bool, True),
            contract_value=section.decimal("contract_value", Decimal(1), positive=True),
        )
    elif name == "kraken":
        extra = dict(
            sizes=section.choice("sizes", ("BTC",), "BTC"),
            depth=section.choice("depth", KRAKEN_DEPTHS, 10),
            price_precision=section.typed("price_precision", int, 1, minimum=0),
            qty_precision=section.typed("qty_precision", int, 8, minimum=0),
        )
    else:
        extra = dict(sizes=section.choice("sizes", ("BTC",), "BTC"))
    section.done()
    return VenueConfig(**common, **extra)


def _url(section: _Section, name: str, schemes: tuple[str, ...]) -> str:
    value = section.typed(name, str)
    if not value.startswith(schemes):
        raise section.fail(name, f"expected a URL starting with {' or '.join(schemes)}, got {value!r}")
    return value


def _simulator(section: _Section) -> SimulatorConfig:
    seed = section.typed("seed", int, 7)
    mid = section.decimal("mid", Decimal(60000), positive=True)
    faults: dict[str, list[FaultPlan]] = {}
    for index, text in enumerate(section.raw("faults", []) or []):
        try:
            venue, plan = parse_fault(str(text))
        except ValueError as exc:
            raise section.fail(f"faults[{index}]", str(exc)) from exc
        faults.setdefault(venue, []).append(plan)
    venues_section = section.section("venues", {})
    venues = {}
    for name in VENUES:
        vs = venues_section.section(name, {})
        venues[name] = SimVenueSettings(
            rate=vs.typed("rate", float, 20.0, minimum=0),
            levels=vs.typed("levels", int, 300, minimum=200),
            basis_bps=vs.decimal("basis_bps", Decimal(0)),
            faults=tuple(faults.get(name, ())),
        )
        vs.done()
    venues_section.done()
    section.done()
    return SimulatorConfig(seed, mid, venues)


_FAULT = re.compile(r"^(?P<venue>[a-z]+):(?P<kind>[a-z-]+)(?:@(?P<after>\d+))?$")


def parse_fault(text: str) -> tuple[str, FaultPlan]:
    """`VENUE:KIND[@N]`: break VENUE's feed with KIND after its N-th data message (default 3)."""
    match = _FAULT.match(text.strip())
    if not match:
        raise ValueError(f"expected VENUE:KIND[@N], got {text!r}")
    venue, kind = match["venue"], match["kind"]
    if venue not in VENUES:
        raise ValueError(f"unknown venue {venue!r} in {text!r} (expected one of {', '.join(VENUES)})")
    if kind not in FAULT_KINDS:
        raise ValueError(f"unknown fault {kind!r} in {text!r} (expected one of {', '.join(FAULT_KINDS)})")
    after = int(match["after"]) if match["after"] else 3
    if after < 1:
        raise ValueError(f"@N must be at least 1 in {text!r}")
    return venue, FaultPlan(kind, after)
