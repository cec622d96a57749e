"""config.yml is validated once, generically from each venue's settings; every problem names its key path."""
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from config import load_config, merged, parse_fault
from data_manager.errors import ConfigError
from data_manager.registry import venues

ROOT = Path(__file__).resolve().parents[1]


def _user(tmp_path, text: str) -> Path:
    path = tmp_path / "user.yml"
    path.write_text(text)
    return path


def test_the_built_in_config_loads_every_registered_venue():
    config = load_config()
    assert [v.name for v in config.enabled] == ["kraken", "gemini", "coinbase", "kumex", "bitstamp"]
    assert set(config.venues) == set(venues())
    kraken = config.venues["kraken"].settings
    assert kraken.depth == 1000 and kraken.symbols == ("BTC-USD", "ETH-USD")
    assert kraken.taker_fee == Decimal("0.004")             # "0.40%" in the file
    assert config.venues["kumex"].settings.contract_value == Decimal(1)
    assert config.simulator.venues["kumex"].basis_bps == Decimal(1)
    assert config.simulator.mids == {"BTC-USD": Decimal(60000), "ETH-USD": Decimal(3000)}


def test_a_user_file_overrides_only_the_keys_it_sets(tmp_path):
    config = load_config(_user(tmp_path, "venues:\n  kraken:\n    depth: 25\n"))
    assert config.venues["kraken"].settings.depth == 25
    assert config.venues["kraken"].settings.url == "wss://ws.kraken.com/v2"   # untouched
    assert config.venues["gemini"].enabled and config.logging                  # other sections kept
    assert merged({"a": {"b": 1, "c": 2}}, {"a": {"c": 3}}) == {"a": {"b": 1, "c": 3}}


@pytest.mark.parametrize("text, message", [
    ("venues:\n  kraken:\n    depth: 30\n", "venues.kraken.depth: expected one of 10, 25, 100, 500, 1000, got 30"),
    ("venues:\n  gemini:\n    enabeld: true\n", "venues.gemini.enabeld: unknown key"),
    ("venues:\n  coinbase:\n    url: http://x\n",
     "venues.coinbase.url: expected a URL starting with ws:// or wss://, got 'http://x'"),
    ("venues:\n  binance:\n    url: wss://x\n", "venues.binance: unknown venue"),
    ("venues:\n  kraken:\n    max_age: .nan\n", "venues.kraken.max_age: expected a finite number, got nan"),
    ("venues:\n  kraken:\n    enabled: 'yes'\n", "venues.kraken.enabled: expected bool, got 'yes'"),
    ("venues:\n  kraken:\n    symbols: BTC-USD\n", "venues.kraken.symbols: expected a list of strings"),
    ("venues:\n  kraken:\n    symbols: [BTCUSD]\n", "venues.kraken.symbols: 'BTCUSD'"),
    ("venues:\n  kraken:\n    taker_fee: lots\n", "venues.kraken.taker_fee: expected a number, got 'lots'"),
    ("simulator:\n  venues:\n    kraken:\n      levels: 100000000\n",
     "simulator.venues.kraken.levels: expected at most 100000, got 100000000"),
    ("simulator:\n  faults: ['kraken:nonsense']\n", "simulator.faults[0]: the kraken simulator cannot inject 'nonsense'"),
    ("simulator:\n  mids:\n    BTC-USD: -5\n", "simulator.mids.BTC-USD: expected a positive price"),
    ("venues: [1]\n", "venues: expected a mapping"),
])
def test_a_bad_key_is_named_by_its_path(tmp_path, text, message):
    path = _user(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: {message}")


def test_every_venue_disabled_is_refused(tmp_path):
    text = "venues:\n" + "".join(f"  {name}:\n    enabled: false\n" for name in venues())
    with pytest.raises(ConfigError, match="venues: no venue is enabled"):
        load_config(_user(tmp_path, text))


def test_unreadable_files_are_one_line(tmp_path):
    with pytest.raises(ConfigError, match="cannot read the config file"):
        load_config(tmp_path / "nope.yml")
    with pytest.raises(ConfigError, match="not valid YAML at line"):
        load_config(_user(tmp_path, "venues: [\n"))
    binary = tmp_path / "binary.yml"
    binary.write_bytes(b"\xff\xfe\x00venues")
    with pytest.raises(ConfigError, match="not a UTF-8 text file"):
        load_config(binary)
    with pytest.raises(ConfigError, match="nested too deeply|not valid YAML"):
        load_config(_user(tmp_path, "a: " + "[" * 5000))


def test_fault_syntax_is_checked_against_what_each_simulator_can_carry():
    venue, plan = parse_fault("kumex:gap@7")
    assert (venue, plan.kind, plan.after, plan.connection) == ("kumex", "gap", 7, 1)
    assert parse_fault("coinbase:crossed")[1].after == 3
    with pytest.raises(ValueError, match="unknown venue 'binance'"):
        parse_fault("binance:gap")
    with pytest.raises(ValueError, match=r"the gemini simulator cannot inject 'checksum' \(it can: "):
        parse_fault("gemini:checksum")


def test_the_environment_names_the_config_file(tmp_path):
    path = _user(tmp_path, "venues:\n  kraken:\n    depth: 30\n")
    env = {**os.environ, "BTC_DEPTH_CONFIG": str(path)}
    result = subprocess.run([sys.executable, "main.py", "sell", "1", "--source", "sim"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr == f"error: {path}: venues.kraken.depth: expected one of 10, 25, 100, 500, 1000, got 30\n"
