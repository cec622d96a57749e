"""The wire as a tool: record -> replay -> the same books and answer, for every venue; recordings cut
short; `check` on clean and broken recordings; every shared capture we speak replayed; a recording and
a capture served over real sockets to our own client.

Sessions run the real shell against the real simulators on 127.0.0.1. Barriers, never sleeps: a
recording ends only once every simulator is paused and the client's books equal the simulator's own
(`SimRun.synced`), so the files hold exactly what built the books that are compared.
"""
from __future__ import annotations

import asyncio
import dataclasses
import json
from decimal import Decimal
from pathlib import Path
from typing import Any, Mapping, Sequence

import pytest

from config import load_config
from data_manager.book import Side
from data_manager.feed import FeedState
from data_manager.manager import DataManager, FeedPlan
from data_manager.registry import venue, venues
from data_manager.session import WireOptions, open_session
from data_manager.sim.clock import FIXED_START, SimClock
from data_manager.sim.market import Market
from data_manager.sim.server import SimVenueSettings
from data_manager.sim.simulator import load_class
from data_manager.symbols import Symbol
from data_manager.wire import records
from data_manager.wire.check import check_recordings, render
from data_manager.wire.record import Recorder
from data_manager.wire.replay import book_state, build, replay_all
from data_manager.wire.serve_recording import RecordingVenue, client_overrides
from tests.driver import Driver, FakeClock
from tests.simrun import FAST_BACKOFF, FAST_LIMITS, SimRun, fault_plan

CAPTURES = Path(__file__).resolve().parents[2] / "shared" / "captures"
ALL = ("bitstamp", "coinbase", "gemini", "kraken", "kumex")
BTC = (Symbol("BTC", "USD"),)
SEED = 7
DEADLINE = 20.0
MIN_MESSAGES = 60                        # frames applied since the last whole book before the barrier
SETTINGS = {"kumex": {"level3": True}}   # KuMEX upgrades to level 3: orders and queues are compared too


# --- a recorded simulator session -------------------------------------------------------------------
@dataclasses.dataclass
class Recorded:
    directory: Path
    live: dict[Any, dict]          # FeedKey -> book_state at the moment the recording ended
    answers: Any                   # the sell answer built from the live books at that moment
    injected: dict[str, list]      # what each simulator really injected
    summary: dict[str, Any]


def _answer(views) -> Any:
    from l2_manager.answer import build_answer
    from l2_manager.depletion import Action

    return build_answer(Action.SELL, [Decimal("1.5")], list(views), "test", now=FIXED_START).answers


async def record_sims(directory: Path, names: Sequence[str] = ALL, faults: Mapping[str, Sequence[str]] = {},
                      symbols: Sequence[Symbol] = BTC) -> Recorded:
    """Every simulator in `names`, our client recording them all into `directory`; stopped at a
    barrier (faults injected and recovered, simulators paused, books equal to the simulators')."""
    sims, plans = {}, []
    for name in names:
        spec = venue(name)
        sim_settings = SimVenueSettings(rate=60, levels=150, faults=tuple(fault_plan(f) for f in faults.get(name, ())))
        sim = load_class(spec.simulator)(Market(SEED), SEED, sim_settings,
                                         {spec.native_symbol(s): s.name for s in symbols}, SimClock(FIXED_START))
        await sim.start()
        sims[name] = sim
        values = {**SETTINGS.get(name, {}), **sim.client_overrides()}
        names_ = {f.name for f in dataclasses.fields(spec.settings)}
        settings = spec.settings(**{k: v for k, v in values.items() if k in names_})
        plans.append(FeedPlan(dataclasses.replace(spec, limits=FAST_LIMITS), settings, tuple(symbols)))
    recorder = Recorder(directory, plans)
    recorder.open()
    manager = DataManager(plans, backoff=FAST_BACKOFF, tap=recorder.tap)
    recorder.watch(manager)
    manager.start()
    try:
        runs = {name: SimRun(name, sim, manager, symbols) for name, sim in sims.items()}
        for name, run in runs.items():
            wanted = len(faults.get(name, ()))
            await run.until(lambda: len(run.sim.injected) >= wanted and all(
                v.live and v.health(0).resyncs >= (1 if wanted else 0) and (name != "kumex" or v.book_kind == "L3")
                and v.health(0).messages >= MIN_MESSAGES for v in run.views.values()), "live, with data", DEADLINE)
        for run in runs.values():
            await run.synced(DEADLINE)
        live = {key: book_state(view) for key, view in manager.views.items()}
        answers = _answer(manager.views.values())
        injected = {name: list(sim.injected) for name, sim in sims.items()}
    finally:
        await manager.stop()
        recorder.close("test barrier")
        for sim in sims.values():
            await sim.close()
    summary = {name: dataclasses.replace(tally) for name, tally in recorder.tallies.items()}
    return Recorded(directory, live, answers, injected, summary)


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Recorded:
    return asyncio.run(record_sims(tmp_path_factory.mktemp("clean")))


@pytest.fixture(scope="module")
def faulty(tmp_path_factory) -> Recorded:
    faults = {"kraken": ("checksum@8",), "coinbase": ("gap@8",), "bitstamp": ("gap@8",), "kumex": ("gap@8",)}
    return asyncio.run(record_sims(tmp_path_factory.mktemp("faulty"), ("bitstamp", "coinbase", "kraken", "kumex"), faults))


def replayed(directory: Path | str, *, names: Sequence[str] = ALL, at: float | None = None,
             symbols: Sequence[Symbol] = BTC) -> tuple[dict, Any]:
    """Replay through a real session (`--source replay DIR`): book states and the same sell answer."""
    config = load_config()

    async def scenario():
        chosen = [config.venues[name] for name in names]
        async with open_session(config, chosen, symbols, "replay",
                                wire=WireOptions(replay=(str(directory),), at=at)) as session:
            await session.wait_ready(10)
            return ({key: book_state(view) for key, view in session.views.items()},
                    _answer(session.views.values()))

    return asyncio.run(scenario())


# --- round trip ------------------------------------------------------------------------------------
def test_every_venue_replays_to_the_books_and_answer_of_the_moment_the_recording_ended(clean):
    books, answers = replayed(clean.directory)
    assert set(books) == set(clean.live) and {k.venue for k in books} == set(ALL)
    for key, state in clean.live.items():
        assert state["state"] == "live" and state["bid"] and state["ask"], key
        assert books[key] == state, key          # every level; for L3 every order, in queue order
    assert books[next(k for k in books if k.venue == "bitstamp")]["kind"] == "L3"
    assert books[next(k for k in books if k.venue == "kumex")]["kind"] == "L3"
    assert answers == clean.answers


def test_the_files_are_jsonl_in_the_captures_shape_one_per_venue_and_connection(clean):
    files = sorted(p.name for p in clean.directory.iterdir())
    assert files == [f"{name}-0-0001.jsonl" for name in ALL]
    lines = [json.loads(line) for line in (clean.directory / "kumex-0-0001.jsonl").read_text().splitlines()]
    meta = lines[0]
    assert (meta["dir"], meta["venue"], meta["connection"], meta["part"], meta["symbols"]) == \
        ("meta", "kumex", 0, 1, [["BTC-USD", "XBTUSDM"]])
    assert meta["settings"]["level3"] is True
    assert [r["dir"] for r in lines[1:3]] == ["http", "open"]     # the token, then the socket it names
    assert lines[1]["tag"] and lines[1]["method"] == "POST" and lines[1]["status"] == 200
    assert lines[-1]["dir"] == "end" and lines[-1]["data"] == "test barrier"
    assert all(isinstance(r["ts"], float) and isinstance(r["data"], str) and r["conn"] == 1 for r in lines)
    frames = sum(1 for r in lines if r["dir"] == "in")
    assert clean.summary["kumex"].frames == frames and clean.summary["kumex"].reconnects == 0


def test_a_recording_cut_mid_line_still_replays_what_it_holds(clean, tmp_path):
    source = clean.directory / "coinbase-0-0001.jsonl"
    text = source.read_text()
    cut_at = text.rindex("\n", 0, text.rindex('"dir":"in"')) + 1    # the start of the last frame's line
    whole = tmp_path / "whole"
    whole.mkdir()
    (whole / source.name).write_text(text[:cut_at])
    cut = tmp_path / "cut"
    cut.mkdir()
    (cut / source.name).write_text(text[:cut_at] + text[cut_at: cut_at + 60])   # a crash mid-write
    warnings: list[str] = []
    recording = records.discover([str(cut)], list(venues()))[0]
    connection = build(recording, venues(), {}, (), warn=warnings.append)
    replay_all([connection], warn=warnings.append)
    assert connection.report.truncated == [f"{source.name}:{text[:cut_at].count(chr(10)) + 1}"]
    assert len(warnings) == 1 and "cut short" in warnings[0]
    books, _ = replayed(cut, names=("coinbase",))
    assert books == replayed(whole, names=("coinbase",))[0]
    assert all(state["state"] == "live" and state["bid"] for state in books.values())


def test_at_replays_up_to_that_moment(clean, tmp_path):
    source = clean.directory / "kraken-0-0001.jsonl"
    lines = source.read_text().splitlines(keepends=True)
    frames = [i for i, line in enumerate(lines) if '"dir":"in"' in line]
    middle = frames[len(frames) // 2]
    at = json.loads(lines[middle])["ts"]
    head = tmp_path / "head"
    head.mkdir()
    (head / source.name).write_text("".join(line for line in lines if json.loads(line)["ts"] <= at))
    books, _ = replayed(clean.directory, names=("kraken",), at=at)
    assert books == replayed(head, names=("kraken",))[0]
    assert books != {k: v for k, v in clean.live.items() if k.venue == "kraken"}


# --- faults: seen again, at the same frame; check -----------------------------------------------------
def test_each_fault_the_live_run_saw_is_seen_again_at_the_same_frame(faulty):
    checks = check_recordings(records.discover([str(faulty.directory)], list(venues())), venues(), {}, (), print)
    by_venue = {c.connection.spec.name: c for c in checks}
    kinds = {"kraken": "checksum", "coinbase": "gap", "bitstamp": "gap", "kumex": "gap"}
    for name, kind in kinds.items():
        check = by_venue[name]
        assert faulty.injected[name], name
        assert [f.kind for f in check.stats.live_faults] == [kind], name
        assert check.matched() == check.stats.replay_faults and check.live_only() == [], name
        assert check.faulty
    books, _ = replayed(faulty.directory, names=tuple(kinds))
    for key, state in faulty.live.items():
        assert books[key] == state, key


def test_check_passes_a_clean_recording(clean):
    checks = check_recordings(records.discover([str(clean.directory)], list(venues())), venues(), {}, (), print)
    assert not any(c.faulty for c in checks)
    text = render(checks)
    assert text.endswith("verdict: clean (5 recorded connections)")
    assert "checksums*" in text and "none over max_age" in text


def _edited(source: Path, target: Path, edit) -> Path:
    """A copy of a recording with one `in` frame changed by `edit(frame) -> frame or None (drop)`."""
    target.mkdir()
    for path in source.iterdir():
        lines = path.read_text().splitlines(keepends=True)
        out, done = [], False
        for line in lines:
            record = json.loads(line)
            if not done and record["dir"] == "in":
                changed = edit(path.name, record["data"])
                if changed is not record["data"]:
                    done = True
                    if changed is None:
                        continue
                    line = records.encode({**record, "data": changed})
            out.append(line)
        (target / path.name).write_text("".join(out))
    return target


def _dropping_one_near_the_end(directory: Path, name: str, marker: str):
    """An edit that drops the 20th-last frame of `name` holding `marker` (well after every sync)."""
    path = directory / f"{name}-0-0001.jsonl"
    total = sum(1 for line in path.read_text().splitlines() if '"dir":"in"' in line and marker in json.loads(line)["data"])
    seen = [0]

    def edit(file: str, data: str):
        if file != path.name or marker not in data:
            return data
        seen[0] += 1
        return None if seen[0] == total - 20 else data

    return edit


@pytest.mark.parametrize("name, marker, kind", [
    ("coinbase", '"type":"update"', "gap"),          # a frame dropped: sequence_num jumps
    ("bitstamp", '"order_', "gap"),                   # an order event dropped: the event chain breaks
    ("kumex", "/contractMarket/level3v2", "gap"),     # a level-3 message dropped: sequence +1 broken
])
def test_check_finds_a_frame_taken_out_of_a_recording(clean, tmp_path, name, marker, kind):
    broken = _edited(clean.directory, tmp_path / "broken", _dropping_one_near_the_end(clean.directory, name, marker))
    checks = check_recordings(records.discover([str(broken)], list(venues())), venues(), {}, (), print)
    faulty = [c for c in checks if c.faulty]
    assert [c.connection.spec.name for c in faulty] == [name]
    assert [f.kind for f in faulty[0].stats.replay_faults] == [kind]
    assert faulty[0].stats.live_faults == []     # the live run never saw it: the file was changed


def test_check_finds_a_checksum_that_does_not_match(clean, tmp_path):
    counter = [0]

    def edit(file: str, data: str):
        if not file.startswith("kraken") or '"type":"update"' not in data:
            return data
        counter[0] += 1
        if counter[0] != 20:
            return data
        message = json.loads(data)
        message["data"][0]["checksum"] = (message["data"][0]["checksum"] + 1) % 2**32
        return json.dumps(message, separators=(",", ":"))

    broken = _edited(clean.directory, tmp_path / "broken", edit)
    checks = check_recordings(records.discover([str(broken)], list(venues())), venues(), {}, (), print)
    kraken = next(c for c in checks if c.connection.spec.name == "kraken")
    assert [f.kind for f in kraken.stats.replay_faults] == ["checksum"]
    assert [c.connection.spec.name for c in checks if c.faulty] == ["kraken"]


def test_check_is_a_separate_process_with_an_exit_code(clean, faulty, tmp_path):
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    env = {"BTC_DEPTH_LOG_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    ok = subprocess.run([sys.executable, "main.py", "check", str(clean.directory)], cwd=root, env=env,
                        capture_output=True, text=True, timeout=60)
    bad = subprocess.run([sys.executable, "main.py", "check", str(faulty.directory)], cwd=root, env=env,
                         capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and ok.stdout.rstrip().endswith("verdict: clean (5 recorded connections)"), ok.stderr
    assert bad.returncode == 1 and "verdict: 4 of 4 recorded connections hold a fault" in bad.stdout
    assert "(live: the same frame)" in bad.stdout
    assert bad.stderr == ""


# --- the shared captures ---------------------------------------------------------------------------
def _driver_books(spec_name: str, settings, path: Path, symbols: Sequence[Symbol]) -> dict[str, dict]:
    """The capture fed straight into the processor by the test driver (the reference)."""
    spec = venue(spec_name)
    clock = FakeClock()
    processor = spec.processor(settings, [(s, spec.native_symbol(s)) for s in symbols], clock)
    driver = Driver(processor, clock=clock)
    driver.connect()
    for line in path.read_text().splitlines():
        if line.strip():
            record = json.loads(line)
            if isinstance(record, dict) and record.get("dir") in ("open", "out"):
                continue
            driver.feed(record["data"] if isinstance(record, dict) and record.get("dir") == "in" else line)
    return {feed.native: {side: list(feed.book.levels(side)) for side in Side} for feed in processor.books.values()}


CAPTURE_CASES = [
    ("kraken", "kraken_v2_book_BTC-USD_d10_2026-08-16_head.ndjson", ("BTC-USD",), {"depth": 10}),
    ("kraken", "kraken_v2_book_MINA-GBP_d25_2026-08-16.ndjson", ("MINA-GBP",), {"depth": 25, "price_precision": 4}),
    ("kraken", "kraken_v2_book_depth1000_2021-04-17.ndjson", ("BTC-CHF", "ETH-CHF", "XMR-USD"), {}),
    ("coinbase", "coinbase_advanced_level2_2021-04-17.ndjson", ("SKL-USD", "BAND-GBP", "YFI-BTC"), {}),
    ("gemini", "gemini_v2_l2_2021-06-24.jsonl", ("BTC-GBP", "ETH-EUR"), {"protocol": "v2"}),
]


@pytest.mark.parametrize("name, file, symbols, settings", CAPTURE_CASES, ids=[c[1] for c in CAPTURE_CASES])
def test_every_shared_capture_we_speak_replays_through_the_replay_shell(name, file, symbols, settings):
    spec = venue(name)
    chosen = spec.settings(**settings)
    unified = [Symbol.parse(s) for s in symbols]
    recording = records.discover([str(CAPTURES / file)], list(venues()))[0]
    connection = build(recording, venues(), {name: chosen}, unified)
    replay_all([connection])
    reference = _driver_books(name, chosen, CAPTURES / file, unified)
    assert connection.crashed is None and connection.stats.replay_faults == []
    for native, feed in connection.processor.books.items():
        assert feed.health.state is FeedState.LIVE, native
        got = {side: list(feed.book.levels(side)) for side in Side}
        assert got == reference[native] and got[Side.BID], native


def test_kraken_v1_and_coinbase_legacy_are_not_our_protocol_and_say_so():
    """We speak Kraken v2 and Coinbase Advanced Trade: the v1 / legacy captures build no book, and the
    replay says why (a fault per frame it cannot read), rather than inventing one."""
    for file, name, symbol in (("kraken_v1_book_depth1000_2021-04-17.jsonl", "kraken", "BTC-CHF"),
                               ("coinbase_exchange_level2_2021-04-17.jsonl", "coinbase", "SKL-USD")):
        recording = records.discover([f"{name}={CAPTURES / file}"], list(venues()))[0]
        connection = build(recording, venues(), {}, [Symbol.parse(symbol)])
        replay_all([connection])
        feed = next(iter(connection.processor.books.values()))
        assert feed.health.state is not FeedState.LIVE and not list(feed.book.levels(Side.BID))


# --- served over the wire --------------------------------------------------------------------------
async def _client_against(server: RecordingVenue, name: str, settings: dict, symbols: Sequence[Symbol],
                          expected: dict[str, dict]) -> dict[str, dict]:
    """Our own client (shell, processor) pointed at `server`, until its books equal `expected`."""
    spec = venue(name)
    overrides = client_overrides(spec.settings, server.ws_url, server.rest_url)
    plan = FeedPlan(dataclasses.replace(spec, limits=FAST_LIMITS), spec.settings(**{**settings, **overrides}),
                    tuple(symbols))
    manager = DataManager([plan], backoff=FAST_BACKOFF)
    manager.start()
    try:
        await asyncio.wait_for(server.sent_all.wait(), DEADLINE)
        run = SimRun(name, server, manager, symbols)

        def books() -> dict[str, dict]:
            return {p.books[n].native: {side: list(p.books[n].book.levels(side)) for side in Side}
                    for p in manager.processors for n in p.books}

        await run.until(lambda: books() == expected, "the served capture's book", DEADLINE)
        return books()
    finally:
        await manager.stop()


@pytest.mark.parametrize("name, file, symbols, settings", CAPTURE_CASES[:1] + CAPTURE_CASES[3:4],
                         ids=["kraken", "coinbase"])
def test_a_shared_capture_served_over_the_wire_rebuilds_the_books_of_its_direct_replay(name, file, symbols, settings):
    unified = [Symbol.parse(s) for s in symbols]
    recording = records.discover([str(CAPTURES / file)], list(venues()))[0]
    direct = build(recording, venues(), {name: venue(name).settings(**settings)}, unified)
    replay_all([direct])
    expected = {n: {side: list(f.book.levels(side)) for side in Side} for n, f in direct.processor.books.items()}

    async def scenario():
        server = RecordingVenue(name, [recording], speed=None)
        await server.start()
        try:
            return await _client_against(server, name, settings, unified, expected)
        finally:
            await server.close()

    assert asyncio.run(scenario()) == expected


def test_our_own_recording_served_over_the_wire_rebuilds_the_same_book(clean):
    """KuMEX: the token over HTTP (its endpoint rewritten to the server), the REST snapshots, the
    level-3 stream; our client ends with the book of the moment the recording ended."""
    recording = next(r for r in records.discover([str(clean.directory)], list(venues())) if r.venue == "kumex")
    direct = build(recording, venues(), {}, ())
    replay_all([direct])
    expected = {n: {side: list(f.book.levels(side)) for side in Side} for n, f in direct.processor.books.items()}

    async def scenario():
        server = RecordingVenue("kumex", [recording], speed=None)
        await server.start()
        try:
            return await _client_against(server, "kumex", SETTINGS["kumex"], BTC, expected)
        finally:
            await server.close()

    assert asyncio.run(scenario()) == expected


# --- recording never stops the books -------------------------------------------------------------------
def test_a_directory_that_holds_a_recording_is_refused(clean, tmp_path):
    from data_manager.wire.record import RecorderError

    with pytest.raises(RecorderError, match="already holds a recording"):
        Recorder(clean.directory, []).open()
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(RecorderError, match="cannot record into"):
        Recorder(blocker / "sub", []).open()


def test_secrets_in_what_we_send_are_never_written():
    from data_manager.wire.record import redact

    text = '{"type":"subscribe","product_ids":["BTC-USD"],"channel":"level2","jwt":"eyJhbGciOi.secret"}'
    assert json.loads(redact(text)) == {"type": "subscribe", "product_ids": ["BTC-USD"], "channel": "level2",
                                        "jwt": "<redacted>"}
    assert redact('{"method":"ping"}') == '{"method":"ping"}'
