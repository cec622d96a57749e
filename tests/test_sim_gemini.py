"""The Gemini simulator: its wire (raw WebSocket and HTTP clients), then our real client through the shell
(`tests/simrun.py`) for every fault it supports on the WebSocket API, and market data v2."""
import asyncio
import json
import urllib.error
import urllib.request
from decimal import Decimal

import pytest
from websockets.asyncio.client import connect

from data_manager.sim.clock import FIXED_START, SimClock
from data_manager.sim.gemini import GeminiSim
from data_manager.sim.market import Market
from data_manager.sim.server import FaultPlan, SimVenueSettings
from data_manager.venues.gemini import VENUE
from tests.simrun import sim_feed

SEED = 11
SYMBOLS = {"btcusd": "BTC-USD", "ethusd": "ETH-USD"}
RECV_TIMEOUT = 5.0


def simulator(rate: float = 50.0, levels: int = 50, faults=(), **kwargs) -> GeminiSim:
    return GeminiSim(Market(SEED), SEED, SimVenueSettings(rate=rate, levels=levels, faults=tuple(faults)),
                     SYMBOLS, SimClock(FIXED_START), **kwargs)


async def exchange(url: str, requests: list, count: int) -> list[dict]:
    """Send `requests`, then read `count` frames."""
    async with connect(url, max_size=None) as ws:
        for request in requests:
            await ws.send(json.dumps(request))
        return [json.loads(await asyncio.wait_for(ws.recv(), RECV_TIMEOUT)) for _ in range(count)]


def run_with(sim: GeminiSim, scenario):
    async def main():
        await sim.start()
        try:
            return await scenario(sim)
        finally:
            await sim.close()
    return asyncio.run(main())


def wire_levels(rows: list[list[str]]) -> list[tuple[Decimal, Decimal]]:
    return [(Decimal(price), Decimal(size)) for price, size in rows]


# --- what the simulator declares ------------------------------------------------------------------

def test_supported_faults_are_exactly_the_venue_specs():
    assert set(GeminiSim.supported_faults) == set(VENUE.sim_faults)


@pytest.mark.parametrize("kind", ["checksum", "slow-snapshot"])
def test_faults_gemini_cannot_carry_are_refused_up_front(kind):
    with pytest.raises(ValueError, match=f"cannot inject '{kind}'"):
        simulator(faults=[FaultPlan(kind)])


def test_client_overrides_point_both_protocols_at_the_simulator():
    async def scenario(sim):
        overrides = sim.client_overrides()
        assert overrides == {"url": f"ws://127.0.0.1:{sim.port}/?snapshot=-1",
                             "v2_url": f"ws://127.0.0.1:{sim.port}/v2/marketdata",
                             "rest_url": sim.rest_url}   # the symbols REST (the processor reads none)
    run_with(simulator(), scenario)


# --- the WebSocket API on the wire ----------------------------------------------------------------

def test_whole_books_come_before_the_ack_sorted_with_equal_ids_and_ns_stamps():
    async def scenario(sim):
        frames = await exchange(sim.api_url, [{"id": 1, "method": "subscribe",
                                               "params": ["btcusd@depth@100ms", "ETHUSD@depth"]}], 3)
        assert [frame.get("s") for frame in frames] == ["btcusd", "ethusd", None]
        assert frames[2] == {"id": 1, "status": 200}
        for frame, native in zip(frames, SYMBOLS):
            assert frame["e"] == "depthUpdate" and frame["U"] == frame["u"] == sim.api.last_id[native]
            assert 0 <= frame["E"] - int(FIXED_START * 1e9) < 3600 * 10**9
            assert wire_levels(frame["b"]) == sim.true_book(native)["bid"]
            assert wire_levels(frame["a"]) == sim.true_book(native)["ask"]
            assert all(len(size.partition(".")[2]) == 8 for _, size in frame["b"] + frame["a"])
        assert frames[1]["u"] > frames[0]["u"]  # one id counter for every symbol
    run_with(simulator(rate=0), scenario)


def test_diffs_overlap_by_one_id_repeat_old_frames_and_come_unsorted_with_empty_sides():
    async def scenario(sim):
        frames = await exchange(sim.api_url, [{"id": 1, "method": "subscribe",
                                               "params": ["btcusd@depth@100ms", "ethusd@depth@100ms"]}], 150)
        last: dict[str, int] = {}
        repeats = unsorted = empty = 0
        for frame in frames:
            if "e" not in frame:
                continue
            native, first, newest = frame["s"], frame["U"], frame["u"]
            if native not in last:
                assert first == newest
            elif newest <= last[native]:
                repeats += 1
                continue
            else:
                assert first == last[native]  # never a gap
            last[native] = newest
            bids = [Decimal(p) for p, _ in frame["b"]]
            unsorted += bids != sorted(bids, reverse=True)
            empty += not frame["b"] or not frame["a"]
        assert repeats and unsorted and empty and set(last) == set(SYMBOLS)
    run_with(simulator(repeat_rate=0.3), scenario)


def test_requests_the_api_refuses_and_the_ones_it_answers():
    async def scenario(sim):
        frames = await exchange(sim.api_url, [
            {"id": 4, "method": "subscribe", "params": ["btcusd@depth@100ms", "nosuchperp@depth@100ms"]},
            {"id": 11, "method": "bogus"},
            {"id": 100, "method": "ping"},
            {"id": 6, "method": "list_subscriptions"},
        ], 4)
        assert frames == [
            {"id": 4, "status": 400, "error": {"code": -1013, "msg": "Invalid stream name: nosuchperp@depth@100ms"}},
            {"id": 11, "status": 400, "error": {"code": -1020, "msg": "Unsupported operation"}},
            {"id": 100, "status": 200},
            {"id": 6, "status": 200, "result": []},  # the bad stream rejected the whole subscribe
        ]
    run_with(simulator(rate=0), scenario)


def test_without_the_snapshot_parameter_no_book_is_sent():
    async def scenario(sim):
        url = f"ws://127.0.0.1:{sim.port}/"
        frames = await exchange(url, [{"id": 1, "method": "subscribe", "params": ["btcusd@depth@100ms"]},
                                      {"id": 2, "method": "ping"}], 2)
        assert frames == [{"id": 1, "status": 200}, {"id": 2, "status": 200}]
    run_with(simulator(rate=0), scenario)


def test_v2_whole_book_with_trades_and_upper_case_only():
    async def scenario(sim):
        refused = await exchange(sim.v2_url, [{"type": "subscribe",
                                               "subscriptions": [{"name": "l2", "symbols": ["btcusd"]}]}], 1)
        assert refused == [{"reason": "NoValidTradingPairs", "result": "error"}]
        books = await exchange(sim.v2_url, [{"type": "subscribe",
                                             "subscriptions": [{"name": "l2", "symbols": ["BTCUSD", "ETHUSD"]}]}], 2)
        for book, native in zip(books, SYMBOLS):
            assert book["type"] == "l2_updates" and book["symbol"] == native.upper()
            assert book["auction_events"] == [] and book["trades"][0]["symbol"] == native.upper()
            bids = [(Decimal(p), Decimal(s)) for side, p, s in book["changes"] if side == "buy"]
            assert bids == sim.true_book(native)["bid"]
    run_with(simulator(rate=0), scenario)


def test_rest_symbols_and_details_in_geminis_shape():
    def get(url: str) -> tuple[int, object]:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    async def scenario(sim):
        base = sim.rest_url
        assert await asyncio.to_thread(get, f"{base}/v1/symbols") == (200, ["btcusd", "ethusd"])
        status, details = await asyncio.to_thread(get, f"{base}/v1/symbols/details/BTCUSD")
        assert status == 200 and details == {
            "symbol": "BTCUSD", "base_currency": "BTC", "quote_currency": "USD", "tick_size": 1e-08,
            "quote_increment": 0.01, "min_order_size": "0.00001", "status": "open", "wrap_enabled": False,
            "product_type": "spot", "contract_type": "vanilla", "contract_price_currency": "USD"}
        assert (await asyncio.to_thread(get, f"{base}/v1/symbols/details/ethusd"))[1]["symbol"] == "ETHUSD"
        status, error = await asyncio.to_thread(get, f"{base}/v1/symbols/details/nosuch")
        assert status == 404 and error["result"] == "error"
    run_with(simulator(rate=0), scenario)


# --- our client through the real shell -------------------------------------------------------------

# fault -> the kind the client must record (None: harmless, the book stays exact on the same connection)
NEW_API_FAULTS = {"gap": "gap", "drop": "gap", "crossed": "crossed", "garbage": "malformed",
                  "disconnect": "disconnect", "silence": "stale", "duplicate": None}


def test_every_supported_fault_has_a_shell_case():
    assert set(NEW_API_FAULTS) == set(GeminiSim.supported_faults)


@pytest.mark.parametrize("fault, kind", NEW_API_FAULTS.items())
def test_the_client_detects_each_fault_resyncs_and_ends_on_the_true_book(fault, kind):
    async def scenario():
        settings = {"max_age": 1.0} if fault == "silence" else {}
        async with sim_feed("gemini", faults=(f"{fault}@5",), settings=settings) as run:
            await run.until(lambda: run.sim.steps >= 15 and run.sim.injected, "the fault and later steps")
            if kind is not None:
                await run.until(lambda: run.health().last_fault is not None, "the fault seen")
            await run.ready()
            await run.synced()
            assert run.sim.injected == [(fault, 1, 5)]
            seen = run.health().last_fault
            assert (seen.kind if seen else None) == kind
            assert run.sim.connections == (1 if kind is None else 2)
    asyncio.run(scenario())


def test_two_symbols_with_many_repeated_frames_stay_exact_on_one_connection():
    async def scenario():
        async with sim_feed("gemini", symbols=("BTC-USD", "ETH-USD"), sim_kwargs={"repeat_rate": 0.5}) as run:
            await run.ready()
            await run.until(lambda: run.sim.steps >= 40, "40 steps")
            await run.synced()
            assert run.health("BTC-USD").last_fault is None and run.health("ETH-USD").last_fault is None
            assert run.sim.connections == 1 and len(run.manager.processors) == 1
    asyncio.run(scenario())


def test_v2_through_the_shell_follows_the_book_and_catches_a_crossed_update():
    async def scenario():
        async with sim_feed("gemini", symbols=("BTC-USD", "ETH-USD"), faults=("crossed@5",),
                            settings={"protocol": "v2"}) as run:
            await run.until(lambda: run.health().last_fault is not None, "the fault seen")
            await run.ready()
            await run.until(lambda: run.sim.steps >= 20, "20 steps")
            await run.synced()
            assert run.health().last_fault.kind == "crossed" and run.sim.injected == [("crossed", 1, 5)]
            assert "no sequence numbers" in run.views["BTC-USD"].notes[0]
    asyncio.run(scenario())


def test_v2_sessions_are_not_given_faults_they_cannot_show():
    async def scenario():
        async with sim_feed("gemini", faults=("gap@3", "drop@4"), settings={"protocol": "v2"}) as run:
            await run.ready()
            await run.until(lambda: run.sim.steps >= 10, "10 steps")
            await run.synced()
            assert run.sim.injected == [] and run.health().last_fault is None
    asyncio.run(scenario())
