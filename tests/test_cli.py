"""The product as a user runs it: `python3 main.py ...` as a subprocess, offline, against the simulator.

Numbers here come from the simulator's books, so they are checked by their relations (net = notional
- fee, the split never worse than one venue after fees, the JSON schema), never by fixed values: the
hand-worked values are in test_answer.py."""
import json
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal as D
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
VALIDATOR = jsonschema.Draft202012Validator(json.loads((ROOT / "l2_manager" / "schema.json").read_text()))
SPOT = {"kraken", "gemini", "coinbase", "bitstamp"}


def run(*args: str, timeout: float = 60, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "main.py", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def valid(doc) -> dict:
    errors = [f"{list(e.absolute_path)}: {e.message[:160]}" for e in VALIDATOR.iter_errors(doc)]
    assert errors == []
    return doc


@pytest.fixture(scope="module")
def sell_json():
    result = run("sell", "2.5", "--source", "sim", "--json", "--limit-bps", "5")
    assert result.returncode == 0, result.stderr
    return valid(json.loads(result.stdout))


def test_a_sim_answer_is_valid_schema_1_and_consistent(sell_json):
    doc = sell_json
    assert (doc["schema"], doc["kind"], doc["command"], doc["side"], doc["merge"]) == (1, "answer", "sell", "bid", "spot")
    assert {v["venue"] for v in doc["venues"]} == SPOT | {"kumex"}
    part = doc["orders"][0]
    merged = part["merged"]
    assert set(merged["venues"]) == SPOT and not merged["includes_perpetual"]
    for walk in part["venues"]:
        # each figure is rounded to 8 decimals on its own: they agree to the last digit, give or take one
        assert abs(D(walk["net"]) - (D(walk["notional"]) - D(walk["fee"]))) <= D("0.00000001"), walk["venue"]
        if walk["venue"] in SPOT:
            assert D(merged["net"]) >= D(walk["net"]), f"the split after fees is never worse than {walk['venue']}"
    assert sum(D(a["size"]) for a in merged["allocation"]) == D("2.5")
    assert {lvl["venue"] for lvl in merged["levels"]} <= SPOT
    kumex = next(w for w in part["venues"] if w["venue"] == "kumex")
    assert kumex["perpetual"]["position"] == "short" and int(kumex["perpetual"]["contracts"]) > 0
    assert doc["limit"]["merged"]["reference"] == "spot_mid"


def test_the_text_answer_puts_the_headline_first():
    result = run("sell", "15", "--source", "sim", "--levels", "3")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("SELL 15 BTC \u00b7 bids \u00b7 5/5 venues live \u00b7 merge spot \u00b7 source sim")
    assert lines[2].split() == ["venue", "filled", "net", "VWAP", "bps", "vs", "mid", "fee", "%", "levels", "state"]
    assert [line.split()[0] for line in lines[3:9]] == ["kraken", "gemini", "coinbase", "bitstamp", "merged", "kumex*"]
    out = result.stdout
    assert out.index("cheapest split after fees") < out.index("kraken \u00b7 L2 \u00b7 spot \u00b7 live")
    assert "saving vs the best single venue" in out and result.stderr == ""
    assert max(len(line) for line in lines) <= 80


def test_brief_ladder_and_levels_0():
    result = run("sell", "1", "5", "100000usd", "--source", "sim", "--brief")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("SELL 1 BTC, 5 BTC, 100000 USD")
    assert "per-venue trees" not in result.stdout and "\u2514\u2500\u2500" not in result.stdout
    zero = run("sell", "1", "--source", "sim", "--levels", "0")
    assert "consumed (rows hidden: --levels 0)" in zero.stdout and "size taken" not in zero.stdout


def test_an_order_sized_in_dollars_receives_that_amount_after_fees():
    result = run("sell", "--quote", "100000", "--source", "sim", "--json", "--fee", "kraken=0.25%")
    assert result.returncode == 0, result.stderr
    doc = valid(json.loads(result.stdout))
    kraken = next(v for v in doc["venues"] if v["venue"] == "kraken")
    assert (kraken["fee"], kraken["fee_source"]) == ("0.00250000", "--fee")
    part = doc["orders"][0]
    assert (part["requested"], part["unit"], part["in_quote"]) == ("100000.00000000", "USD", True)
    for walk in part["venues"] + [part["merged"]]:
        assert D(0) <= D("100000") - D(walk["net"]) < D("0.01"), walk["venue"]


def test_a_shortfall_exits_5():
    result = run("buy", "1000000", "--source", "sim", "--brief")
    assert result.returncode == 5, result.stderr
    assert "SHORTFALL merged:" in result.stdout


def test_a_one_shot_run_with_a_fault_waits_for_it_and_shows_it():
    result = run("sell", "1", "--source", "sim", "--json", "--sim-fault", "kraken:checksum@20")
    assert result.returncode == 0, result.stderr
    kraken = next(v for v in valid(json.loads(result.stdout))["venues"] if v["venue"] == "kraken")
    assert kraken["state"] == "live" and kraken["resyncs"] >= 1 and kraken["last_fault"]["kind"] == "checksum"


def test_a_venue_not_live_in_time_is_excluded_with_what_happened():
    """KuMEX's snapshot is answered 1.5 s late; the answer is due after 0.8 s."""
    result = run("sell", "1", "--source", "sim", "--json", "--max-wait", "0.8", "--merge", "all",
                 "--sim-fault", "kumex:slow-snapshot@1")
    assert result.returncode == 3, result.stderr
    doc = valid(json.loads(result.stdout))
    kumex = next(v for v in doc["venues"] if v["venue"] == "kumex")
    assert (kumex["state"], kumex["in_merge"]) == ("syncing", False)
    assert kumex["reason"].endswith("never live")
    assert set(doc["orders"][0]["merged"]["venues"]) == SPOT


def test_depth_per_venue_and_merged():
    result = run("depth", "--source", "sim", "--json", "--bands", "0.1,1")
    assert result.returncode == 0, result.stderr
    doc = valid(json.loads(result.stdout))
    assert doc["bands_pct"] == ["0.10", "1.00"] and doc["merged"]["reference"] == "spot_mid"
    for row in doc["depth"]:
        assert D(row["bid"][0]["size"]) <= D(row["bid"][1]["size"]), row["venue"]
    text = run("depth", "--source", "sim")
    assert text.returncode == 0 and "BTC resting on the bids within x % of mid" in text.stdout


def test_queue_position_on_the_order_level_venue():
    answer = json.loads(run("sell", "0.00000001", "--source", "sim", "--json", "--venues", "bitstamp").stdout)
    best_bid = next(v for v in answer["venues"])["best_bid"]
    result = run("queue", "buy", best_bid, "0.1", "--venue", "bitstamp", "--source", "sim", "--sample", "1", "--json")
    assert result.returncode == 0, result.stderr
    doc = valid(json.loads(result.stdout))
    assert doc["venue"]["book"] == "L3" and doc["order"]["price"] == best_bid
    assert doc["estimate"]["method"]
    text = run("queue", "sell", "999999", "0.1", "--venue", "bitstamp", "--source", "sim", "--sample", "0.5")
    assert text.returncode == 0 and "ahead at this price" in text.stdout


@pytest.mark.parametrize("args, message", [
    (("sell", "0"), "error: argument SIZE: size must be a positive number, got '0'"),
    (("sell", "--", "-1"), "error: argument SIZE: size must be a positive number, got '-1'"),
    (("sell", "abc"), "error: argument SIZE: size must be a number, optionally with a unit"),
    (("sell", "nan"), "error: argument SIZE: size must be a number, optionally with a unit"),
    (("sell", "1xyz"), "error: argument SIZE: 1xyz: the unit must be BTC or USD for BTC-USD"),
    (("sell", "1.000000001"), "error: argument SIZE: size 1.000000001 is finer than 0.00000001"),
    (("sell", "1", "--levels", "-3"), "error: argument --levels: expected a whole number from 0 to 100000"),
    (("sell", "1", "--venues", ","), "error: --venues: expected venue names separated by commas"),
    (("sell", "1", "--fee", "binance=1%"), "error: --fee: 'binance' is not one of the venues asked"),
    (("sell", "1", "--fee", "kraken=50%"), "error: argument --fee: a fee must be between 0 and 10 %"),
    (("sell", "1", "--merge", "perp"), "error: argument --merge: invalid choice: 'perp'"),
    (("sell", "1", "--limit-bps", "0"), "error: argument --limit-bps: basis points must be above 0 and at most 10,000"),
    (("sell", "1", "--seed", "3"), "error: --seed and --sim-fault work only with --source sim"),
    (("sell", *["1"] * 21), "error: at most 20 sizes in a ladder, got 21"),
    (("depth", "--bands", "0"), "error: argument --bands: a band (percent of mid) must be above 0 and at most 50"),
    (("queue", "buy", "1", "1"), "error: the following arguments are required: --venue"),
    (("queue", "buy", "1", "1", "--venue", "nope", "--source", "sim"), "error: --venue: 'nope' is not an enabled venue"),
    (("sell", "1", "--sim-fault", "kraken:boom", "--source", "sim"), "error: --sim-fault: the kraken simulator cannot"),
])
def test_bad_input_is_one_line_and_exit_2(args, message):
    result = run(*args)
    assert result.returncode == 2, result.stderr
    assert result.stdout == "" and result.stderr.startswith(message)
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_an_ascii_terminal_gets_ascii_and_no_traceback():
    result = run("sell", "1", "--source", "sim", "--levels", "2", env={"PYTHONIOENCODING": "ascii"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.isascii() and " | bids | 5/5 venues live" in result.stdout


def test_unreachable_venues_end_within_max_wait_with_the_address(tmp_path):
    data = {"venues": {name: {"url": "ws://127.0.0.1:9/"} for name in ("kraken", "gemini", "coinbase", "bitstamp")}}
    data["venues"]["kumex"] = {"url": "ws://127.0.0.1:9/", "rest_url": "http://127.0.0.1:9"}
    data["venues"]["bitstamp"]["rest_url"] = "http://127.0.0.1:9"
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump(data))
    started = time.monotonic()
    result = run("sell", "1", "--config", str(path), "--max-wait", "2")
    assert time.monotonic() - started < 8
    assert result.returncode == 4
    lines = result.stderr.splitlines()
    assert [line.split(":")[0] for line in lines[:5]] == ["kraken", "gemini", "coinbase", "kumex", "bitstamp"]
    assert all("127.0.0.1:9" in line for line in lines[:5] if not line.startswith("kumex")), lines
    assert all(line.endswith("never live") for line in lines[:5]), lines
    assert lines[-1].startswith("hint: no venue could be reached") and "Traceback" not in result.stderr


def watch(args, frames: int, stop=signal.SIGINT, marker=("SELL", '{"schema"')):
    """Run --watch into a pipe, read until `frames` frames arrived, then signal it."""
    process = subprocess.Popen([sys.executable, "main.py", *args], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    seen = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and sum(1 for line in seen if line.startswith(marker)) < frames:
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line)
    process.send_signal(stop)
    _, err = process.communicate(timeout=15)
    return process.returncode, seen, err


def test_watch_into_a_pipe_writes_every_redraw_and_ctrl_c_exits_130():
    code, lines, err = watch(["sell", "1", "--source", "sim", "--watch", "0.2", "--brief"], 3)
    assert sum(1 for line in lines if line.startswith("SELL 1 BTC")) == 3
    assert code == 130 and "Traceback" not in err


def test_watch_with_json_is_json_lines_and_sigterm_exits_143():
    code, lines, err = watch(["sell", "1", "--source", "sim", "--watch", "0.2", "--json"], 2, signal.SIGTERM)
    docs = [valid(json.loads(line)) for line in lines]
    assert len(docs) == 2 and docs[1]["at_ms"] > docs[0]["at_ms"]
    assert code == 143 and "Traceback" not in err


def test_progress_goes_to_a_terminal_stderr_and_is_gone_before_the_answer():
    pty = pytest.importorskip("pty")
    master, slave = pty.openpty()
    process = subprocess.Popen([sys.executable, "main.py", "sell", "1", "--source", "sim", "--brief"], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=slave, text=True)
    os.close(slave)
    out, _ = process.communicate(timeout=60)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    progress = b"".join(chunks).decode("utf-8", "replace")
    assert process.returncode == 0
    assert "waiting for the books" in progress and "connecting" in progress
    assert out.startswith("SELL 1 BTC") and "waiting" not in out


def test_a_pipe_gets_no_progress():
    result = run("sell", "1", "--source", "sim", "--brief")
    assert result.returncode == 0 and result.stderr == ""


@pytest.mark.parametrize("args", [("sell", "15", "--source", "sim", "--json"),
                                  ("sell", "1", "--source", "sim", "--watch", "0.2", "--json")])
def test_a_reader_that_leaves_early_ends_the_output_quietly(args):
    """`btc-depth ... | head -1`."""
    process = subprocess.Popen([sys.executable, "main.py", *args], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    assert process.stdout.readline()
    process.stdout.close()
    _, err = process.communicate(timeout=30)
    assert process.returncode == 0 and "Traceback" not in err and "BrokenPipe" not in err
