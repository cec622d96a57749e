"""The product as a user runs it: `python3 main.py ...` as a subprocess, offline, against the simulator."""
import json
import subprocess
import sys
import time
from decimal import Decimal as D
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "main.py", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def _vwap(levels) -> D:
    notional = sum(D(lvl["price"]) * D(lvl["size"]) for lvl in levels)
    return notional / sum(D(lvl["size"]) for lvl in levels)


@pytest.fixture(scope="module")
def buy_json():
    started = time.monotonic()
    result = run("buy", "2.5", "--source", "sim", "--json")
    return result, time.monotonic() - started


def test_sim_json_answer_is_consistent(buy_json):
    result, seconds = buy_json
    assert result.returncode == 0, result.stderr
    assert seconds < 10
    doc = json.loads(result.stdout)
    assert (doc["action"], doc["size"], doc["side"], doc["source"]) == ("buy", "2.5", "ask", "sim")
    assert set(doc["venues"]) == {"kraken", "gemini", "coinbase", "kumex"}
    merged_vwap = D(doc["merged"]["vwap"])
    for name, venue in doc["venues"].items():
        assert venue["state"] == "live" and venue["included"], name
        assert D(venue["filled"]) == D("2.5")
        assert D(venue["vwap"]) == _vwap(venue["levels"]), name
        prices = [D(lvl["price"]) for lvl in venue["levels"]]
        assert prices == sorted(prices), f"{name}: a buy walks the asks upwards"
        assert merged_vwap <= D(venue["vwap"]), f"merged is never worse than {name} alone"
    merged = doc["merged"]
    assert D(merged["vwap"]) == _vwap(merged["levels"])
    assert sum(D(size) for size in merged["allocation"].values()) == D("2.5")
    for venue, size in merged["allocation"].items():
        assert D(size) == sum(D(lvl["size"]) for lvl in merged["levels"] if lvl["venue"] == venue)
    assert "perpetual" in " ".join(doc["venues"]["kumex"]["notes"])


def test_sim_text_answer_shows_every_tree():
    result = run("sell", "15", "--source", "sim")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("SELL 15 BTC · consumes bids · 4/4 venues live · source sim")
    for header in ("kraken · L2 · live", "gemini · L2 · live", "coinbase · L2 · live", "kumex · L3 · live",
                   "merged book · 4 live venues: kraken, gemini, coinbase, kumex",
                   "allocation of the merged order"):
        assert header in out
    assert "filled 15.00000000 of 15 BTC" in out
    assert result.stderr == ""


@pytest.mark.parametrize("args, message", [
    (("sell", "0"), "error: argument size: size must be a positive number of BTC, got '0'"),
    (("sell", "-1"), "error: argument size: size must be a positive number of BTC, got '-1'"),
    (("sell", "abc"), "error: argument size: size must be a number of BTC, got 'abc'"),
    (("sell", "nan"), "error: argument size: size must be a positive number of BTC, got 'nan'"),
    (("hold", "3"), "error: argument action: invalid choice: 'hold'"),
    (("sell", "1", "--source", "nope"), "error: argument --source: invalid choice: 'nope'"),
    (("sell", "1", "--config", "/nonexistent.yml"), "error: /nonexistent.yml: cannot read the config file"),
    (("sell", "1", "--sim-fault", "kraken:boom"), "error: --sim-fault: unknown fault 'boom'"),
    (("sell", "1", "--venues", "binance"), "error: --venues: 'binance' is not an enabled venue"),
    ((), "error: the following arguments are required: action, size"),
])
def test_bad_input_is_one_line_and_exit_2(args, message):
    result = run(*args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith(message)
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_a_bad_config_key_is_named(tmp_path):
    data = yaml.safe_load((ROOT / "config.yml").read_text())
    data["venues"]["kraken"]["depth"] = 30
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump(data))
    result = run("sell", "1", "--config", str(path))
    assert result.returncode == 2
    assert result.stderr == f"error: {path}: venues.kraken.depth: expected one of 10, 25, 100, 500, 1000, got 30\n"


def test_unreachable_venues_end_within_max_wait_with_a_hint(tmp_path):
    """Live mode on a machine without the venues: every venue points at a closed local port."""
    data = yaml.safe_load((ROOT / "config.yml").read_text())
    for venue in data["venues"].values():
        venue["url"] = "ws://127.0.0.1:9/"
    data["venues"]["kumex"]["rest_url"] = "http://127.0.0.1:9"
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump(data))
    started = time.monotonic()
    result = run("sell", "15", "--config", str(path), "--max-wait", "2")
    assert time.monotonic() - started < 8
    assert result.returncode == 4
    lines = result.stderr.splitlines()
    assert [line.split(":")[0] for line in lines[:4]] == ["kraken", "gemini", "coinbase", "kumex"]
    assert all("not live after 2 s: cannot reach 127.0.0.1:9" in line for line in lines[:4]), lines
    assert lines[4].startswith("hint: no venue could be reached") and "--source sim" in lines[4]
    assert "Traceback" not in result.stderr


def test_a_venue_not_live_in_time_is_excluded_and_the_exit_code_says_so():
    """KuMEX's snapshot is answered 1.5 s late; the answer is due after 0.8 s: 3 venues, exit 3."""
    result = run("sell", "1", "--source", "sim", "--json", "--max-wait", "0.8",
                 "--sim-fault", "kumex:slow-snapshot@1")
    assert result.returncode == 3, result.stderr
    doc = json.loads(result.stdout)
    kumex = doc["venues"]["kumex"]
    assert (kumex["state"], kumex["included"], kumex["reason"]) == ("syncing", False, "book is syncing")
    assert doc["merged"]["venues"] == ["kraken", "gemini", "coinbase"]
    assert {lvl["venue"] for lvl in doc["merged"]["levels"]} <= {"kraken", "gemini", "coinbase"}
    assert D(doc["merged"]["filled"]) == D(1)
