"""`serve` as a user runs it (`python3 main.py serve` as a subprocess) against the CLI as a user runs it.

The simulator's books stand still here (`rate: 0` for every venue): each process builds the very same
seeded books, so a server's answer and the one-shot CLI's answer are about the same books and must be
the same answer (times and heartbeat counters aside). Also: `--server`'s client prints what the CLI
prints, and the bind/token rules refuse at start-up with one line."""
from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from argparse import Namespace
from pathlib import Path
from typing import Iterator

import pytest

from data_manager.symbols import Symbol
from l2_manager.service.client import ServerError, fetch_answer

ROOT = Path(__file__).resolve().parents[1]
VENUES = "kraken,gemini,coinbase"     # the venues whose simulators go live with a book that stands still
STILL = "simulator:\n  venues:\n" + "".join(f"    {name}: {{rate: 0}}\n" for name in VENUES.split(","))
VARYING = {"at", "at_ms", "age_ms", "last_live", "last_live_ms", "checks"}
"""What differs between two processes holding the same books: clocks, and heartbeat-driven counters."""


def main_command(*args: str) -> list[str]:
    return [sys.executable, "main.py", *args]


@pytest.fixture(scope="module")
def still_config(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("config") / "still.yml"
    path.write_text(STILL)
    return str(path)


@contextlib.contextmanager
def serving(*args: str, env: dict | None = None) -> Iterator[str]:
    """`main.py serve --port 0 ...` until the block ends; yields its URL (from its one line on stdout)."""
    process = subprocess.Popen(main_command("serve", "--port", "0", *args), cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})
    try:
        line = process.stdout.readline()
        match = re.search(r"on (http://127\.0\.0\.1:\d+)", line)
        assert match, f"serve said {line!r}; stderr: {process.stderr.read() if process.poll() is not None else ''}"
        yield match[1]
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return json.loads(answer.read())


def wait_live(url: str, feeds: int) -> dict:
    """Poll /v1/health (the server's own words) until `feeds` feeds are live."""
    for _ in range(300):
        health = get_json(f"{url}/v1/health")
        if health["live"] == feeds:
            return health
        time.sleep(0.05)
    raise AssertionError(f"not every feed went live: {health['feeds']}")


def comparable(document):
    """The answer without what differs between two processes holding the same books."""
    if isinstance(document, dict):
        return {k: comparable(v) for k, v in document.items() if k not in VARYING}
    if isinstance(document, list):
        return [comparable(item) for item in document]
    return document


CLOCK = re.compile(r"\d\d:\d\d:\d\d UTC|age [0-9.]+ (ms|s|min)")


def timeless(text: str) -> str:
    """A rendered answer without its clock and the books' ages (what two processes differ in)."""
    return CLOCK.sub("(time)", text)


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(main_command(*args), cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})


def test_the_http_answer_is_the_cli_answer_for_the_same_books(still_config):
    common = ("--source", "sim", "--venues", VENUES, "--config", still_config)
    with serving("--symbol", "BTC-USD", *common) as url:
        wait_live(url, 3)
        served = get_json(f"{url}/v1/depletion?action=sell&size=15&size=100000usd&limit_bps=5")
        bought = get_json(f"{url}/v1/depletion?action=buy&size=2.5&merge=all")
        depth = get_json(f"{url}/v1/depth?bands=0.1,1")
    sold = cli("sell", "15", "100000usd", "--limit-bps", "5", "--json", *common)
    bought_cli = cli("buy", "2.5", "--merge", "all", "--json", *common)
    depth_cli = cli("depth", "--bands", "0.1,1", "--json", *common)
    assert sold.returncode == served["exit_code"] == 0, sold.stderr
    assert comparable(served) == comparable(json.loads(sold.stdout))
    assert comparable(bought) == comparable(json.loads(bought_cli.stdout))
    assert comparable(depth) == comparable(json.loads(depth_cli.stdout))
    assert served["orders"][0]["merged"]["filled"] == "15.00000000"


def test_the_server_client_prints_what_the_cli_prints(still_config):
    """`fetch_answer` (what `sell --server URL` calls) gets the CLI's own rendering and exit code."""
    common = ("--source", "sim", "--venues", VENUES, "--config", still_config)
    args = Namespace(command="sell", sizes=[("15", "")], symbol=Symbol("BTC", "USD"), quote=False, fee=[],
                     merge="spot", limit_bps=None, orders=False, brief=False, levels=5, json=False, venues=None)
    with serving("--symbol", "BTC-USD", *common) as url:
        wait_live(url, 3)
        os.environ["COLUMNS"] = "100"
        try:
            code, text, to_stderr = asyncio.run(fetch_answer(url, args))
        finally:
            del os.environ["COLUMNS"]
        as_json = asyncio.run(fetch_answer(url, Namespace(**{**vars(args), "json": True})))
        with pytest.raises(ServerError, match="400: size: "):
            asyncio.run(fetch_answer(url, Namespace(**{**vars(args), "sizes": [("0", "")]})))
    printed = cli("sell", "15", "--levels", "5", *common, env={"COLUMNS": "100"})
    assert (code, to_stderr) == (printed.returncode, False)
    assert timeless(text) == timeless(printed.stdout.rstrip("\n"))
    assert as_json[0] == 0 and json.loads(as_json[1])["kind"] == "answer"
    with pytest.raises(ServerError, match="cannot reach it"):
        asyncio.run(fetch_answer("http://127.0.0.1:9", args))


@pytest.mark.parametrize("host, env, words", [
    ("0.0.0.0", {}, "needs a token: set BTC_DEPTH_TOKEN"),
    ("0.0.0.0", {"BTC_DEPTH_TOKEN": "short"}, "at least 16"),
])
def test_serving_beyond_loopback_without_a_token_is_refused_at_start(host, env, words):
    result = cli("serve", "--host", host, "--port", "0", "--source", "sim",
                 env={"BTC_DEPTH_TOKEN": "", **env})
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("error: --host: ") and words in result.stderr
