"""The wire commands as a user runs them (subprocesses on 127.0.0.1): `record` and its summary, a
replayed answer, `--record` that cannot write (the books go on), `simulate` serving our own client
through fixed ports until SIGINT; and the recorder's file rotation, on a toy venue."""
from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import resource
import queue
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urlsplit

from data_manager.book import Side
from data_manager.feed import FeedSettings
from data_manager.manager import DataManager, FeedPlan
from data_manager.registry import VenueSpec, venue
from data_manager.symbols import Symbol
from data_manager.wire import records
from data_manager.wire.record import Recorder
from data_manager.wire.replay import build, replay_all
from tests.simrun import FAST_BACKOFF, FAST_LIMITS
from tests.toy import BOOK, Toy, toy

ROOT = Path(__file__).resolve().parents[1]
DEADLINE = 30.0


def main_py(*args: str, tmp: Path, timeout: float = 60, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "BTC_DEPTH_LOG_DIR": str(tmp)}
    return subprocess.run([sys.executable, "main.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout, **kwargs)


def test_record_then_answer_from_the_replay(tmp_path):
    directory = tmp_path / "rec"
    recorded = main_py("record", str(directory), "--source", "sim", "--venues", "kraken,bitstamp",
                       "--symbol", "BTC-USD", "--seconds", "1.5", tmp=tmp_path)
    assert recorded.returncode == 0, recorded.stderr
    lines = recorded.stdout.splitlines()
    assert lines[0].startswith("recorded ") and f"into {directory} (2 files)" in lines[0]
    assert lines[1].split() == ["venue", "frames", "bytes", "reconnects", "faults"]
    rows = {line.split()[0]: line.split() for line in lines[2:]}
    assert set(rows) == {"kraken", "bitstamp"}
    assert all(int(row[1].replace(",", "")) > 0 and row[3:] == ["0", "0"] for row in rows.values())
    assert recorded.stderr.startswith("recording kraken, bitstamp (BTC-USD, sim) into")

    answer = main_py("sell", "1", "--source", "replay", str(directory), "--venues", "kraken,bitstamp", "--json",
                     tmp=tmp_path)
    assert answer.returncode == 0, answer.stderr
    document = json.loads(answer.stdout)
    assert document["source"] == "replay"

    again = main_py("record", str(directory), "--source", "sim", "--seconds", "1", tmp=tmp_path)
    assert again.returncode == 2 and "already holds a recording" in again.stderr


def _limit_file_size() -> None:
    """In the child: files may not grow past 20 kB (EFBIG, as a full disk would refuse the write)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))


def test_a_recording_that_cannot_be_written_says_so_once_and_the_books_keep_running(tmp_path):
    full = main_py("sell", "1", "--source", "sim", "--venues", "kraken", "--json", "--record", str(tmp_path / "rec"),
                   tmp=tmp_path, preexec_fn=_limit_file_size)
    assert full.returncode == 0, full.stderr
    assert json.loads(full.stdout)["source"] == "sim"
    warnings = [line for line in full.stderr.splitlines() if line]
    assert len(warnings) == 1 and warnings[0].startswith("warning: recording stopped (cannot write ") \
        and "File too large" in warnings[0] and warnings[0].endswith("the books keep running")

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    nowhere = main_py("sell", "1", "--source", "sim", "--venues", "kraken", "--json", "--record", str(blocker / "rec"),
                      tmp=tmp_path)
    assert nowhere.returncode == 0 and json.loads(nowhere.stdout)["source"] == "sim"
    assert nowhere.stderr.strip().splitlines() == [
        f"warning: not recording: cannot record into {blocker / 'rec'}: Not a directory; the books run without it"]


def _free_ports(count: int) -> int:
    """A base port with `count` free ports after it (checked now; the simulator binds them next)."""
    for base in range(20_000, 60_000, 97):
        sockets = []
        try:
            for port in range(base, base + count):
                sockets.append(socket.socket())
                sockets[-1].bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError("no free ports")


def _lines_of(process: subprocess.Popen) -> queue.Queue:
    """The process's stdout lines as they come (a reader thread: a line is a barrier, never a sleep)."""
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()
    return lines


def test_simulate_serves_our_client_on_fixed_ports_and_stops_cleanly_on_sigint(tmp_path):
    base = _free_ports(6)
    env = {**os.environ, "BTC_DEPTH_LOG_DIR": str(tmp_path)}
    command = [sys.executable, "main.py", "simulate", "--venues", "kraken,kumex", "--port-base", str(base),
               "--symbol", "BTC-USD", "--seed", "3"]
    with subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as process:
        try:
            printed = _lines_of(process)
            lines = [printed.get(timeout=DEADLINE) for _ in range(2)]   # the barrier: one line per venue
            urls = {line.split()[0]: dict(item.split("=", 1) for item in line.split()[1:]) for line in lines}
            assert urls["kraken"]["url"] == f"ws://127.0.0.1:{base}/v2" and urls["kraken"]["symbols"] == "BTC/USD"
            assert urls["kumex"]["symbols"] == "XBTUSDM" and urls["kumex"]["rest_url"].startswith("http://")
            ports = {urlsplit(url).port for venue_urls in urls.values() for key, url in venue_urls.items()
                     if key != "symbols"}
            assert ports == set(range(base, base + len(ports)))    # fixed ports, one per server, from P on
            books = asyncio.run(_our_client(urls))
            assert all(live and best is not None for live, best in books.values()), books
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=DEADLINE) == 0
            assert process.stderr.read().strip() == "serving 2 venue(s) on 127.0.0.1 until Ctrl-C"
        finally:
            if process.poll() is None:
                process.kill()


async def _our_client(urls: dict[str, dict[str, str]]) -> dict:
    """Our client (shell, processors) pointed at the printed URLs: {venue: (live, best bid)}."""
    plans = []
    for name in ("kraken", "kumex"):
        spec = venue(name)
        known = {f.name for f in dataclasses.fields(spec.settings)}
        settings = spec.settings(**{k: v for k, v in urls[name].items() if k in known})
        plans.append(FeedPlan(dataclasses.replace(spec, limits=FAST_LIMITS), settings, (Symbol("BTC", "USD"),)))
    manager = DataManager(plans, backoff=FAST_BACKOFF)
    manager.start()
    try:
        ready = await manager.wait_ready(DEADLINE)
        return {key.venue: (live, manager.views[key].best(Side.BID)) for key, live in ready.items()}
    finally:
        await manager.stop()


# --- the recorder's files, on a toy venue --------------------------------------------------------------
TOY = VenueSpec(name="toy", title="toy", settings=FeedSettings, processor=Toy, native_symbol=lambda s: s.name)


def test_files_rotate_by_size_each_part_describes_itself_and_replays_as_one(tmp_path):
    plan = FeedPlan(TOY, FeedSettings(url="ws://toy"), (Symbol("BTC", "USD"),))
    clock = iter(1_796_083_200.0 + i / 10 for i in range(10_000))
    recorder = Recorder(tmp_path, [plan], rotate_bytes=700, clock=lambda: next(clock))
    recorder.open()
    tap = recorder.tap("toy", 0)
    reference = toy()
    reference.connect()
    tap.opened("ws://toy")
    for text in reference.sent:
        tap.sent(text)
    frames = [BOOK] + [f'{{"bid":["{100 - i % 5}","{i + 1}"]}}' for i in range(40)]
    for frame in frames:
        tap.received(frame)
        reference.feed(frame)
    recorder.close("done")

    parts = sorted(tmp_path.glob("toy-0-*.jsonl"))
    assert len(parts) > 3
    for part in parts:
        lines = part.read_text().splitlines()
        assert part.stat().st_size <= 700 or len(lines) == 2
        meta = json.loads(lines[0])
        assert meta["dir"] == "meta" and meta["part"] == int(part.stem.rsplit("-", 1)[1])
    found = records.discover([str(tmp_path)], ["toy"])
    assert len(found) == 1 and found[0].paths == tuple(parts)
    connection = build(found[0], {"toy": TOY}, {}, ())
    replay_all([connection])
    assert connection.stats.frames == len(frames) and connection.stats.sends_matched == 1
    assert [list(connection.processor.books["BTC-USD"].book.levels(side)) for side in Side] == \
        [reference.levels(side) for side in Side]
    assert recorder.tallies["toy"].frames == len(frames)
