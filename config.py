"""config.yml -> frozen dataclasses, validated once at start-up.

The built-in `config.yml` beside this file holds every default. A user file (`--config`, else
`BTC_DEPTH_CONFIG`) overrides only the keys it sets. Every problem is a `ConfigError` naming the file and
the key path, e.g. `my.yml: venues.kraken.depth: expected one of 10, 25, 100, 500, 1000, got 30`.
Unknown keys are errors too (a typo must not silently fall back to a default). Nothing is read at
import time.

Venue blocks are validated generically from each venue's settings dataclass (its registry entry): the
field's type (bool, int, float, str, Decimal, tuple of str) and its metadata (`choices`, `minimum`,
`maximum`, `schemes`). This module names no venue.
"""
from __future__ import annotations

import dataclasses
import math
import os
import re
import typing
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Mapping

import yaml

from data_manager.errors import ConfigError
from data_manager.feed import FeedSettings
from data_manager.registry import VenueSpec, venues as registered_venues
from data_manager.sim.server import FaultPlan, SimVenueSettings
from data_manager.symbols import Symbol

BUILTIN = Path(__file__).resolve().parent / "config.yml"
MAX_SIM_LEVELS = 100_000
_MISSING = object()


@dataclass(frozen=True)
class VenueConfig:
    name: str
    spec: VenueSpec
    settings: FeedSettings

    @property
    def enabled(self) -> bool:
        return self.settings.enabled


@dataclass(frozen=True)
class SimulatorConfig:
    seed: int
    mids: dict[str, Decimal]
    venues: dict[str, SimVenueSettings]


@dataclass(frozen=True)
class Config:
    path: str
    venues: dict[str, VenueConfig]
    simulator: SimulatorConfig
    logging: dict[str, Any] = field(default_factory=dict)
    redis: dict[str, Any] = field(default_factory=dict)   # read by `serve` (l2_manager/service)

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

    def value(self, name: str, kind: Any, default: Any = _MISSING, meta: Mapping[str, Any] | None = None) -> Any:
        """One value of type `kind`, checked against `meta` (choices, minimum, maximum, schemes)."""
        raw = self.raw(name, default)
        if raw is default and default is not _MISSING:
            return raw
        meta = meta or {}
        value = self._typed(name, kind, raw)
        if "choices" in meta and value not in meta["choices"]:
            raise self.fail(name, f"expected one of {', '.join(map(str, meta['choices']))}, got {_show(raw)}")
        if "minimum" in meta and value < meta["minimum"]:
            raise self.fail(name, f"expected at least {meta['minimum']}, got {_show(raw)}")
        if "maximum" in meta and value > meta["maximum"]:
            raise self.fail(name, f"expected at most {meta['maximum']}, got {_show(raw)}")
        if "schemes" in meta and not value.startswith(tuple(meta["schemes"])):
            raise self.fail(name, f"expected a URL starting with {' or '.join(meta['schemes'])}, got {raw!r}")
        return value

    def _typed(self, name: str, kind: Any, raw: Any) -> Any:
        if kind is bool:
            if isinstance(raw, bool):
                return raw
        elif kind is int:
            if isinstance(raw, int) and not isinstance(raw, bool):
                return raw
        elif kind is float:
            if isinstance(raw, (int, float)) and not isinstance(raw, bool) and math.isfinite(raw):
                return float(raw)
            raise self.fail(name, f"expected a finite number, got {_show(raw)}")
        elif kind is str:
            if isinstance(raw, str):
                return raw
        elif kind is Decimal:
            return self._decimal(name, raw)
        elif typing.get_origin(kind) is tuple:
            items = raw if isinstance(raw, list) else None
            if items is not None and all(isinstance(item, str) for item in items):
                return tuple(items)
            raise self.fail(name, f"expected a list of strings, got {_show(raw)}")
        else:
            raise TypeError(f"config.py cannot read a setting of type {kind!r} ({self.key(name)})")
        raise self.fail(name, f"expected {kind.__name__}, got {_show(raw)}")

    def _decimal(self, name: str, raw: Any) -> Decimal:
        text = str(raw).strip() if isinstance(raw, (int, float, str)) and not isinstance(raw, bool) else None
        percent = text is not None and text.endswith("%")
        try:
            number = Decimal(text[:-1] if percent else text) if text else None
        except InvalidOperation:
            number = None
        if number is None or not number.is_finite():
            raise self.fail(name, f"expected a number, got {_show(raw)}")
        return number / 100 if percent else number

    def section(self, name: str, default: Any = _MISSING) -> "_Section":
        return _Section(self.path, self.key(name), self.raw(name, default))

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.used, key=str)
        if unknown:
            raise self.fail(str(unknown[0]), "unknown key")


def _show(value: Any) -> str:
    return "nothing" if value is None else repr(value)


# --- files -------------------------------------------------------------------------------------
def _read_yaml(path: str) -> Any:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(path, "", "not a UTF-8 text file") from None
    except OSError as exc:
        raise ConfigError(path, "", f"cannot read the config file ({exc.strerror})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(path, "", f"not valid YAML{where}") from None
    except RecursionError:
        raise ConfigError(path, "", "nested too deeply") from None


def merged(base: Any, override: Any) -> Any:
    """`override` on top of `base`: mappings merge key by key; anything else replaces."""
    if isinstance(base, dict) and isinstance(override, dict):
        result = dict(base)
        for key, value in override.items():
            result[key] = merged(base.get(key), value) if key in base else value
        return result
    return override


def config_path(cli_path: str | None) -> str | None:
    """`--config`, then `BTC_DEPTH_CONFIG`, then none (the built-in file alone)."""
    return cli_path or os.environ.get("BTC_DEPTH_CONFIG") or None


def load_config(path: str | Path | None = None) -> Config:
    """The built-in configuration with `path` (if any) on top; raise ConfigError naming the key path."""
    data = _read_yaml(str(BUILTIN))
    shown = str(BUILTIN.name)
    if path is not None and Path(path).resolve() != BUILTIN:
        user = _read_yaml(str(path))
        if user is not None and not isinstance(user, dict):
            raise ConfigError(str(path), "", f"expected a mapping at the top, got {_show(user)}")
        data = merged(data, user or {})
        shown = str(path)
    return _config(shown, data)


def _config(path: str, data: Any) -> Config:
    root = _Section(path, "", data)
    specs = registered_venues()
    venues_section = root.section("venues")
    venues = {}
    for name in venues_section.data:
        if name not in specs:
            raise venues_section.fail(str(name), f"unknown venue (known: {', '.join(specs)})")
        venues[name] = VenueConfig(name, specs[name], venue_settings(venues_section.section(name), specs[name]))
    venues_section.done()
    simulator = _simulator(root.section("simulator"), list(venues))
    logging_config = root.raw("logging", {})
    if not isinstance(logging_config, dict):
        raise root.fail("logging", "expected a logging.config.dictConfig mapping")
    redis_config = root.raw("redis", {})
    if not isinstance(redis_config, dict):
        raise root.fail("redis", f"expected a mapping, got {_show(redis_config)}")
    root.done()
    if not any(v.enabled for v in venues.values()):
        raise ConfigError(path, "venues", "no venue is enabled")
    return Config(path, venues, simulator, logging_config, redis_config)


def venue_settings(section: _Section, spec: VenueSpec) -> FeedSettings:
    """A venue's settings dataclass, every field read from its block (or its default)."""
    hints = typing.get_type_hints(spec.settings)
    values = {}
    for item in dataclasses.fields(spec.settings):
        default = item.default if item.default is not dataclasses.MISSING else _MISSING
        values[item.name] = section.value(item.name, hints[item.name], default, item.metadata)
    section.done()
    for text in values.get("symbols", ()):
        try:
            spec.native_symbol(Symbol.parse(text))
        except ValueError as exc:
            raise section.fail("symbols", f"{text!r}: {exc}") from None
    return spec.settings(**values)


def _simulator(section: _Section, venue_names: list[str]) -> SimulatorConfig:
    seed = section.value("seed", int, 7)
    mids_section = section.section("mids", {"BTC-USD": 60000})
    mids = {}
    for name in mids_section.data:
        try:
            Symbol.parse(str(name))
        except ValueError as exc:
            raise mids_section.fail(str(name), str(exc)) from None
        mid = mids_section.value(name, Decimal)
        if mid <= 0:
            raise mids_section.fail(str(name), f"expected a positive price, got {mid}")
        mids[str(name).upper()] = mid
    mids_section.done()
    faults: dict[str, list[FaultPlan]] = {}
    for index, text in enumerate(section.raw("faults", []) or []):
        try:
            venue, plan = parse_fault(str(text))
        except ValueError as exc:
            raise section.fail(f"faults[{index}]", str(exc)) from None
        faults.setdefault(venue, []).append(plan)
    venues_section = section.section("venues", {})
    venues = {}
    for name in venue_names:
        vs = venues_section.section(name, {})
        venues[name] = SimVenueSettings(
            rate=vs.value("rate", float, 20.0, {"minimum": 0, "maximum": 10_000}),
            levels=vs.value("levels", int, 300, {"minimum": 50, "maximum": MAX_SIM_LEVELS}),
            basis_bps=vs.value("basis_bps", Decimal, Decimal(0)),
            faults=tuple(faults.get(name, ())),
        )
        vs.done()
    venues_section.done()
    section.done()
    return SimulatorConfig(seed, mids, venues)


_FAULT = re.compile(r"^(?P<venue>[a-z0-9_]+):(?P<kind>[a-z0-9-]+)(?:@(?P<after>\d{1,9}))?$")


def parse_fault(text: str) -> tuple[str, FaultPlan]:
    """`VENUE:KIND[@N]`: break VENUE's simulated feed with KIND after its N-th data message (default 3).

    Refused up front, naming what is allowed: an unknown venue, or a kind that venue's simulator cannot
    carry (its registry entry lists what it can)."""
    match = _FAULT.match(text.strip())
    if not match:
        raise ValueError(f"expected VENUE:KIND[@N], got {text!r}")
    specs = registered_venues()
    venue, kind = match["venue"], match["kind"]
    if venue not in specs:
        raise ValueError(f"unknown venue {venue!r} in {text!r} (expected one of {', '.join(specs)})")
    supported = specs[venue].sim_faults
    if kind not in supported:
        raise ValueError(f"the {venue} simulator cannot inject {kind!r} (it can: {', '.join(supported)})")
    after = int(match["after"]) if match["after"] else 3
    if after < 1:
        raise ValueError(f"@N must be at least 1 in {text!r}")
    return venue, FaultPlan(kind, after)
