"""The service under load: depletion queries at a fixed rate while the server ingests the simulator's flow.

    python3 -m bench.serve [--seconds 30] [--qps 1000] [--rate 1500] [--venues kraken,coinbase,gemini]
                           [--query "action=sell&size=15"] [--json] [--skip-load] [--skip-snapshot]

Three processes on this machine, as a deployment would have them: the simulator (`main.py simulate`,
its venues stepping `--rate` times a second each, every symbol they list), the server (`main.py serve
--source live` pointed at the simulator by a config file: the live code path), and this load generator.
The generator is open-loop: request i is sent at start + i / qps whatever the answers before it did,
each on its own connection (websockets' HTTP closes after every response), and its latency is from
the scheduled send to the last byte, so a server that falls behind shows it. Reported: p50 / p99 /
p99.9 / max latency, the rate achieved, the ingest rate (messages per second counted by the server's
own `/v1/health` checks), whether every book stayed live without a resync, and the server's memory.

Part two measures a 50,000-level-per-side snapshot (issue 14 part 4): how long it holds the loop
through the real Coinbase processor, where that time goes, and a sliced prototype (each array element
decoded on its own, yielding to the loop every 5 ms) that bounds the stall. It is never a timed test.
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Iterator

from bench.common import REPO, emit, machine, table

SNAPSHOT_LEVELS = 50_000
SLICE_SECONDS = 0.005


# --- processes --------------------------------------------------------------------------------------
def start(args: list[str], pattern: str, timeout: float = 30.0) -> tuple[subprocess.Popen, list[str]]:
    """Start `main.py args` and read its output (stdout and stderr) until a line matches `pattern`;
    returns its lines. The rest of its output is drained by a thread, so it never blocks on a pipe."""
    process = subprocess.Popen([sys.executable, "main.py", *args], cwd=REPO, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if re.search(pattern, line):
            threading.Thread(target=process.stdout.read, daemon=True).start()
            return process, lines
    process.kill()
    raise RuntimeError(f"main.py {' '.join(args)} never said {pattern!r}: {lines}")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()


def sim_config(venues: list[str], rate: float) -> str:
    blocks = "".join(f"    {name}: {{rate: {rate:g}}}\n" for name in venues)
    return f"simulator:\n  venues:\n{blocks}"


def pointing_config(lines: list[str]) -> str:
    """The simulator's 'venue  url=...  rest_url=...' lines as a config that points each venue at it
    (the URL keys its settings have)."""
    from dataclasses import fields

    from data_manager.registry import venue

    out = ["venues:"]
    for line in lines:
        name, *pairs = line.split()
        known = {f.name for f in fields(venue(name).settings)}
        settings = dict(pair.split("=", 1) for pair in pairs if "=" in pair)
        out.append(f"  {name}:")
        out += [f"    {key}: {value}" for key, value in settings.items() if key.endswith("url") and key in known]
    return "\n".join(out) + "\n"


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/PID/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# --- HTTP, bare ---------------------------------------------------------------------------------------
async def get(host: str, port: int, target: str) -> tuple[int, bytes]:
    """One HTTP/1.1 GET on a new connection, read to the close (the server closes after answering)."""
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(f"GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode())
    data = await reader.read()
    writer.close()
    status = int(data[9:12]) if data.startswith(b"HTTP/1.1 ") else 0
    return status, data.partition(b"\r\n\r\n")[2]


async def health(host: str, port: int) -> dict:
    return json.loads((await get(host, port, "/v1/health"))[1])


async def load(host: str, port: int, target: str, qps: float, seconds: float) -> dict[str, Any]:
    """Open-loop: request i at start + i/qps; latency from its scheduled time to its last byte."""
    loop = asyncio.get_running_loop()
    count = int(qps * seconds)
    latencies: list[float] = []
    errors: dict[str, int] = {}
    start = loop.time() + 0.1

    async def one(at: float) -> None:
        await asyncio.sleep(max(0.0, at - loop.time()))
        try:
            status, _ = await get(host, port, target)
        except OSError as exc:
            errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
            return
        if status != 200:
            errors[str(status)] = errors.get(str(status), 0) + 1
        latencies.append(loop.time() - at)

    await asyncio.gather(*(one(start + i / qps) for i in range(count)))
    elapsed = loop.time() - start
    latencies.sort()
    return {"requests": count, "answered": len(latencies), "errors": errors, "achieved_qps": len(latencies) / elapsed,
            **{name: percentile(latencies, q) * 1000 for name, q in
               (("p50_ms", 0.5), ("p99_ms", 0.99), ("p999_ms", 0.999), ("max_ms", 1.0))}}


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(q * len(values)))]


def messages(doc: dict) -> dict[str, int]:
    return {f"{f['venue']} {f['symbol']}": f["checks"]["messages"] for f in doc["feeds"]}


async def measure_load(args: argparse.Namespace) -> dict[str, Any]:
    venues = args.venues.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        rates = Path(tmp, "rates.yml")
        rates.write_text(sim_config(venues, args.rate))
        simulator, lines = start(["simulate", "--venues", args.venues, "--config", str(rates)], r"^serving ")
        try:
            pointed = Path(tmp, "pointed.yml")
            pointed.write_text(pointing_config([line for line in lines if "url=" in line]))
            server, said = start(["serve", "--source", "live", "--venues", args.venues, "--config", str(pointed),
                                  "--port", "0"], r"^serving ")
            try:
                host, port = re.search(r"http://([0-9.]+):(\d+)", said[-1]).groups()
                return await _under_load(host, int(port), server.pid, args)
            finally:
                stop(server)
        finally:
            stop(simulator)


async def _under_load(host: str, port: int, pid: int, args: argparse.Namespace) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while (doc := await health(host, port))["live"] < doc["feeds_total"]:
        if loop.time() > deadline:
            raise RuntimeError(f"not every feed went live: {[(f['venue'], f['state']) for f in doc['feeds']]}")
        await asyncio.sleep(0.2)
    await asyncio.sleep(2)  # past the first snapshots
    idle = await load(host, port, f"/v1/depletion?{args.query}", 50, 4)
    connects = await load(host, port, "/v1/nothing", 200, 3)  # a 404: the cost of a connection and a route
    before, t0, rss0, cpu0 = await health(host, port), time.monotonic(), rss_mib(pid), cpu_seconds(pid)
    loaded = await load(host, port, f"/v1/depletion?{args.query}", args.qps, args.seconds)
    after, t1, cpu1 = await health(host, port), time.monotonic(), cpu_seconds(pid)
    rate = sum(messages(after).values()) - sum(messages(before).values())
    resyncs = sum(f["resyncs"] for f in after["feeds"]) - sum(f["resyncs"] for f in before["feeds"])
    return {"idle": idle, "connect_404": connects, "loaded": loaded, "ingest_msgs_per_s": rate / (t1 - t0),
            "feeds": len(after["feeds"]), "live_after": after["live"], "resyncs_during": resyncs,
            "rss_mib_before": rss0, "rss_mib_after": rss_mib(pid), "seconds": args.seconds,
            "server_cpu_pct": (cpu1 - cpu0) / (t1 - t0) * 100,
            "server_handling": after["http"]["routes"].get("depletion")}


# --- part two: a 50k-level snapshot ------------------------------------------------------------------
def coinbase_snapshot(levels: int) -> str:
    """A Coinbase Advanced Trade level2 snapshot frame with `levels` per side (about 11 MB at 50k)."""
    rng = random.Random(1)
    rows = [{"side": side, "event_time": "2024-10-08T09:10:35.171517Z",
             "price_level": f"{(60000 - i * 0.01) if side == 'bid' else (60000.01 + i * 0.01):.2f}",
             "new_quantity": f"{rng.uniform(0.0001, 2):.8f}"} for side in ("bid", "offer") for i in range(levels)]
    return json.dumps({"channel": "l2_data", "client_id": "", "timestamp": "2024-10-08T09:10:36.120390407Z",
                       "sequence_num": 1, "events": [{"type": "snapshot", "product_id": "BTC-USD", "updates": rows}]},
                      separators=(",", ":"))


def best_of(call, rounds: int = 3) -> float:
    best = float("inf")
    for _ in range(rounds):
        gc.collect()
        started = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - started)
    return best * 1000


_SPACE = re.compile(r"[ \t\n\r]*")


def array_items(text: str, start: int) -> Iterator[Any]:
    """Each element of the JSON array whose '[' is at `start`, decoded one by one with the shared
    decoder (`raw_decode` at an offset): the prototype's way of cutting a giant frame into slices."""
    from data_manager.parse import DECODER

    decode, space = DECODER.raw_decode, _SPACE.match
    index = space(text, start + 1).end()
    if text[index] == "]":
        return
    while True:
        value, index = decode(text, index)
        yield value
        index = space(text, index).end()
        if text[index] == "]":
            return
        index = space(text, index + 1).end()


def sliced_snapshot(text: str):
    """A generator doing what the processor does with a snapshot, yielding every SLICE_SECONDS; its
    value is the two book sides, ready for an O(1) swap into the book."""
    from data_manager.book import SortedLevels
    from data_manager.parse import fast_level

    bids, asks = [], []
    deadline = time.perf_counter() + SLICE_SECONDS
    start = text.index('"updates":[') + len('"updates":')
    for count, row in enumerate(array_items(text, start), 1):
        (bids if row["side"] == "bid" else asks).append(fast_level(row["price_level"], row["new_quantity"]))
        if not count & 255 and time.perf_counter() > deadline:
            yield
            deadline = time.perf_counter() + SLICE_SECONDS
    yield
    built = SortedLevels(bids)
    yield
    return built, SortedLevels(asks)


async def worst_gap(work) -> tuple[float, float]:
    """(total ms, the longest the loop went without running another task, ms) while `work` runs."""
    gaps: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0.01)
    started = time.perf_counter()
    await work()
    total = time.perf_counter() - started
    done.set()
    await task
    return total * 1000, max(gaps) * 1000


def measure_snapshot() -> dict[str, float]:
    from data_manager.book import L2Book
    from data_manager.parse import decode_object, fast_level
    from data_manager.registry import venue
    from data_manager.symbols import Symbol
    from tests.driver import Driver, FakeClock

    text = coinbase_snapshot(SNAPSHOT_LEVELS)
    message = decode_object("coinbase", text)
    rows = message["events"][0]["updates"]
    levels = [fast_level(r["price_level"], r["new_quantity"]) for r in rows]
    spec = venue("coinbase")

    def processor():
        made = spec.processor(spec.settings(), [(Symbol("BTC", "USD"), "BTC-USD")], FakeClock())
        Driver(made).connect()
        return made

    fresh = processor()

    async def on_loop():
        fresh.receive(text)

    async def sliced():
        work = sliced_snapshot(text)
        try:
            while True:
                next(work)
                await asyncio.sleep(0)
        except StopIteration:
            pass

    book = L2Book()
    parts = {"frame_mb": len(text) / 1e6,
             "decode_ms": best_of(lambda: decode_object("coinbase", text)),
             "levels_ms": best_of(lambda: [fast_level(r["price_level"], r["new_quantity"]) for r in rows]),
             "replace_ms": best_of(lambda: book.replace(levels[:SNAPSHOT_LEVELS], levels[SNAPSHOT_LEVELS:]))}
    parts["processor_total_ms"], parts["processor_worst_gap_ms"] = asyncio.run(worst_gap(on_loop))
    parts["sliced_total_ms"], parts["sliced_worst_gap_ms"] = asyncio.run(worst_gap(sliced))
    return parts


# --- report ---------------------------------------------------------------------------------------------
def report(result: dict[str, Any]) -> str:
    out = [f"machine: {result['machine']}"]
    load_result = result.get("load")
    if load_result:
        rows = [[name, f"{r['answered']}/{r['requests']}", r["achieved_qps"], r["p50_ms"], r["p99_ms"], r["p999_ms"],
                 r["max_ms"], json.dumps(r["errors"]) if r["errors"] else "-"]
                for name, r in (("depletion, idle (50/s)", load_result["idle"]),
                                ("404, connection cost (200/s)", load_result["connect_404"]),
                                ("depletion under load", load_result["loaded"]))]
        out.append(table(["queries", "answered", "q/s", "p50 ms", "p99 ms", "p99.9 ms", "max ms", "errors"], rows))
        out.append(f"ingest during the load: {load_result['ingest_msgs_per_s']:,.0f} msgs/s over {load_result['feeds']} "
                   f"feeds; live after: {load_result['live_after']}/{load_result['feeds']}; resyncs during: "
                   f"{load_result['resyncs_during']}; server RSS {load_result['rss_mib_before']:.0f} -> "
                   f"{load_result['rss_mib_after']:.0f} MiB over {load_result['seconds']:g} s; server CPU "
                   f"{load_result['server_cpu_pct']:.0f} % of one core; one depletion answer holds its loop "
                   f"{load_result['server_handling']['mean_ms']:.2f} ms on average "
                   f"(worst {load_result['server_handling']['max_ms']:.1f} ms)")
    snap = result.get("snapshot")
    if snap:
        out.append(table(["50k levels per side (Coinbase frame, %.1f MB)" % snap["frame_mb"], "ms"], [
            ["decode_object (one json call)", snap["decode_ms"]],
            ["fast_level x 100k", snap["levels_ms"]],
            ["L2Book.replace", snap["replace_ms"]],
            ["processor.receive, total = loop held", snap["processor_total_ms"]],
            ["  its worst loop gap", snap["processor_worst_gap_ms"]],
            ["sliced prototype, total", snap["sliced_total_ms"]],
            ["  its worst loop gap", snap["sliced_worst_gap_ms"]]]))
    return "\n\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m bench.serve", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the loaded run (default 30)")
    parser.add_argument("--qps", type=float, default=1000.0, help="depletion queries per second (default 1000)")
    parser.add_argument("--rate", type=float, default=1500.0, help="simulator steps per second per venue")
    parser.add_argument("--venues", default="kraken,coinbase,gemini")
    parser.add_argument("--query", default="action=sell&size=15")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--skip-load", action="store_true")
    parser.add_argument("--skip-snapshot", action="store_true")
    args = parser.parse_args(argv)
    result: dict[str, Any] = {"machine": machine()}
    if not args.skip_load:
        result["load"] = asyncio.run(measure_load(args))
    if not args.skip_snapshot:
        result["snapshot"] = measure_snapshot()
    emit(args.json, result, report(result))
    return 0


if __name__ == "__main__":
    os.chdir(REPO)
    sys.exit(main())
