"""config.yml is validated once; every problem names its key path."""
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from config import load_config, parse_fault
from data_manager.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def _write(tmp_path, mutate) -> Path:
    data = yaml.safe_load((ROOT / "config.yml").read_text())
    mutate(data)
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_the_shipped_config_loads():
    config = load_config(ROOT / "config.yml")
    assert [v.name for v in config.enabled] == ["kraken", "gemini", "coinbase", "kumex"]
    assert config.venues["kraken"].depth == 1000
    assert config.venues["kumex"].contract_value == Decimal(1) and config.venues["kumex"].sizes == "contracts"
    assert config.simulator.venues["kumex"].basis_bps == Decimal(1)


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["venues"]["kraken"].update(depth=30),
     "venues.kraken.depth: expected one of 10, 25, 100, 500, 1000, got 30"),
    (lambda d: d["venues"]["gemini"].update(enabeld=True), "venues.gemini.enabeld: unknown key"),
    (lambda d: d["venues"]["coinbase"].update(url="http://x"),
     "venues.coinbase.url: expected a URL starting with ws:// or wss://, got 'http://x'"),
    (lambda d: d["venues"]["coinbase"].pop("symbol"), "venues.coinbase.symbol: missing"),
    (lambda d: d["venues"]["kumex"].update(contract_value=0), "venues.kumex.contract_value: expected a positive number, got 0"),
    (lambda d: d["simulator"]["venues"]["kraken"].update(levels=10),
     "simulator.venues.kraken.levels: expected at least 200, got 10"),
    (lambda d: d["simulator"].update(faults=["kraken:nonsense"]), "simulator.faults[0]: unknown fault 'nonsense'"),
    (lambda d: d["venues"]["kraken"].update(enabled="yes"), "venues.kraken.enabled: expected bool, got 'yes'"),
    (lambda d: [v.update(enabled=False) for v in d["venues"].values()], "venues: no venue is enabled"),
])
def test_a_bad_key_is_named_by_its_path(tmp_path, mutate, message):
    path = _write(tmp_path, mutate)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: {message}")


def test_a_missing_file_and_broken_yaml_are_one_line(tmp_path):
    with pytest.raises(ConfigError, match="cannot read the config file"):
        load_config(tmp_path / "nope.yml")
    broken = tmp_path / "broken.yml"
    broken.write_text("venues: [\n")
    with pytest.raises(ConfigError, match="not valid YAML at line"):
        load_config(broken)


def test_fault_syntax():
    venue, plan = parse_fault("kumex:slow-snapshot@7")
    assert (venue, plan.kind, plan.after, plan.connection) == ("kumex", "slow-snapshot", 7, 1)
    assert parse_fault("gemini:crossed")[1].after == 3
    with pytest.raises(ValueError, match="unknown venue"):
        parse_fault("binance:gap")
