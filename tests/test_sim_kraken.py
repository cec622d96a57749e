"""The Kraken simulator: its wire protocol read raw over a WebSocket on 127.0.0.1, its REST AssetPairs,
and our real client (registry, shell, processor) against it through `tests/simrun.py`: two pairs on one
connection followed exactly, and every fault the simulator supports injected, detected, resynced, and
the client's books equal to the simulator's own books afterwards."""
from __future__ import annotations

import asyncio
import contextlib
import json
from decimal import Decimal
from typing import AsyncIterator

import pytest
from websockets.asyncio.client import connect

import data_manager.sim.kraken as sim_kraken
from data_manager.book import Side
from data_manager.client import http
from data_manager.feed import FeedState, HttpRequest
from data_manager.sim.clock import FIXED_START, SimClock
from data_manager.sim.kraken import PAIRS, KrakenSim, book_checksum
from data_manager.sim.market import Market
from data_manager.sim.server import FaultPlan, SimVenueSettings
from data_manager.symbols import Symbol
from data_manager.venues.kraken import VENUE, KrakenProcessor, KrakenSettings
from tests.driver import Driver, FakeClock
from tests.simrun import sim_feed

SEED = 11
RECV_TIMEOUT = 5.0
MAX_SIZE = 16 * 2**20
TWO_PAIRS = {"BTC/USD": "BTC-USD", "ETH/USD": "ETH-USD"}


def make_sim(*faults: FaultPlan, rate: float = 50, levels: int = 200) -> KrakenSim:
    return KrakenSim(Market(SEED), SEED, SimVenueSettings(rate=rate, levels=levels, faults=faults), TWO_PAIRS,
                     SimClock(FIXED_START))


async def recv(ws) -> str:
    return await asyncio.wait_for(ws.recv(), RECV_TIMEOUT)


@contextlib.asynccontextmanager
async def raw_session(sim: KrakenSim) -> AsyncIterator[tuple[object, list[str]]]:
    """A started simulator and one raw WebSocket to it: (ws, frames so far, starting with the status)."""
    await sim.start()
    try:
        async with connect(sim.ws_url, max_size=MAX_SIZE) as ws:
            yield ws, [await recv(ws)]
    finally:
        await sim.close()


async def until_answer(ws, method: str, req_id: int, frames: list[str]) -> dict:
    """Read (keeping every frame) until the answer to our request `req_id`."""
    while True:
        text = await recv(ws)
        frames.append(text)
        message = json.loads(text)
        if message.get("method") == method and message.get("req_id") == req_id:
            return message


# --- the simulator on its own ----------------------------------------------------------------------
def test_supported_faults_are_the_registered_ones_and_the_others_are_refused_with_a_reason():
    assert set(KrakenSim.supported_faults) == set(VENUE.sim_faults)
    for kind in ("gap", "slow-snapshot"):
        with pytest.raises(ValueError, match="kraken simulator cannot inject"):
            make_sim(FaultPlan(kind))


def test_wire_protocol_one_ack_per_pair_compact_answers_clock_stamps_and_deletes_first():
    async def scenario():
        async with raw_session(make_sim()) as (ws, frames):
            await ws.send('{"method":"subscribe","params":{"channel":"book","symbol":'
                          '["BTC/USD","ETH/USD","XYZ/USD"],"depth":25},"req_id":1}')
            while sum('"type":"update"' in f for f in frames) < 40:
                frames.append(await recv(ws))
            await ws.send('{"method":"ping","req_id":7}')
            return frames, await until_answer(ws, "pong", 7, frames)

    frames, pong = asyncio.run(scenario())
    status = json.loads(frames[0])
    assert status["channel"] == "status" and status["data"][0]["system"] == "online"
    assert all(", " not in f and '": ' not in f for f in frames if not f.startswith('{"channel":"book"')), \
        "answers are compact JSON, as Kraken writes them"
    acks = [json.loads(f) for f in frames if f.startswith('{"method":"subscribe"')]
    assert [(a.get("result", {}).get("symbol") or a["symbol"], a["success"], a["req_id"]) for a in acks] == [
        ("BTC/USD", True, 1), ("ETH/USD", True, 1), ("XYZ/USD", False, 1)]
    assert acks[0]["result"] == {"channel": "book", "depth": 25, "snapshot": True, "symbol": "BTC/USD"}
    assert "not supported" in acks[2]["error"]

    books = [json.loads(f, parse_float=Decimal) for f in frames if f.startswith('{"channel":"book"')]
    snapshots = [b for b in books if b["type"] == "snapshot"]
    assert [s["data"][0]["symbol"] for s in snapshots] == ["BTC/USD", "ETH/USD"]
    assert {b["data"][0]["symbol"] for b in books if b["type"] == "update"} == {"BTC/USD", "ETH/USD"}
    for book in books:
        entry = book["data"][0]
        assert entry["timestamp"].startswith("2026-12-01T") and entry["timestamp"].endswith("Z")
        for side in ("bids", "asks"):
            sizes = [row["qty"] for row in entry[side]]
            assert sizes == sorted(sizes, key=bool), "every delete of a side before its insertions"
    first = snapshots[0]["data"][0]
    assert len(first["bids"]) == len(first["asks"]) == 25
    levels = {side: [(r["price"], r["qty"]) for r in first[side]] for side in ("bids", "asks")}
    assert first["checksum"] == book_checksum(PAIRS["BTC/USD"], levels["bids"], levels["asks"])
    eth = next(s for s in snapshots if s["data"][0]["symbol"] == "ETH/USD")["data"][0]
    assert all(len(str(row["price"]).split(".")[1]) == 2 for row in eth["bids"]), "ETH/USD: 2 decimals"
    assert pong["time_in"].startswith("2026-12-01T") and pong["time_out"] >= pong["time_in"]


def test_heartbeats_while_subscribed_and_none_after_the_last_unsubscribe(monkeypatch):
    monkeypatch.setattr(sim_kraken, "HEARTBEAT_SECONDS", 0.05)

    async def scenario():
        sim = make_sim(rate=0)  # no flow: after the snapshot only heartbeats
        async with raw_session(sim) as (ws, frames):
            await ws.send('{"method":"subscribe","params":{"channel":"book","symbol":["BTC/USD","ETH/USD"],'
                          '"depth":10},"req_id":1}')
            while frames[-1] != '{"channel":"heartbeat"}':
                frames.append(await recv(ws))
            await ws.send('{"method":"unsubscribe","params":{"channel":"book","symbol":["BTC/USD","ETH/USD"],'
                          '"depth":10},"req_id":2}')
            await until_answer(ws, "unsubscribe", 2, frames)
            second = await recv(ws)  # the other pair's answer
            session = next(iter(sim.sessions))
            quiet = (session.subscribed, set(session.state["channels"]))
            await asyncio.sleep(0.3)  # six heartbeat intervals: none may come now
            await ws.send('{"method":"ping","req_id":3}')
            return second, quiet, await recv(ws)

    second, quiet, after = asyncio.run(scenario())
    assert json.loads(second)["result"]["symbol"] == "ETH/USD"
    assert quiet == (False, set())
    assert json.loads(after)["method"] == "pong"


def test_invalid_depth_gets_an_error_ack():
    async def scenario():
        async with raw_session(make_sim(rate=0)) as (ws, _):
            await ws.send('{"method":"subscribe","params":{"channel":"book","symbol":["BTC/USD"],'
                          '"depth":30},"req_id":1}')
            return json.loads(await recv(ws))

    ack = asyncio.run(scenario())
    assert ack["success"] is False and ack["req_id"] == 1 and "depth" in ack["error"]
    client = Driver(KrakenProcessor(KrakenSettings(), [(Symbol.parse("BTC-USD"), "BTC/USD")], FakeClock()))
    client.connect()
    client.feed(json.dumps(ack))
    assert client.reconnects and "subscription refused" in client.reconnects[0]


def test_rest_asset_pairs_in_krakens_own_shape():
    async def scenario():
        sim = make_sim(rate=0)
        await sim.start()
        try:
            both = await http(HttpRequest("GET", f"{sim.rest_url}/0/public/AssetPairs?pair=XBTUSD,ETH/USD"))
            unknown = await http(HttpRequest("GET", f"{sim.rest_url}/0/public/AssetPairs?pair=NOPE"))
            return both, unknown
        finally:
            await sim.close()

    (status, body), (_, unknown) = asyncio.run(scenario())
    assert status == 200
    answer = json.loads(body)
    assert answer["error"] == [] and set(answer["result"]) == {"XXBTZUSD", "XETHZUSD"}
    btc = answer["result"]["XXBTZUSD"]
    assert (btc["altname"], btc["wsname"], btc["base"], btc["quote"]) == ("XBTUSD", "XBT/USD", "XXBT", "ZUSD")
    assert (btc["pair_decimals"], btc["lot_decimals"], btc["tick_size"]) == (1, 8, "0.1")
    assert answer["result"]["XETHZUSD"]["pair_decimals"] == 2
    assert json.loads(unknown) == {"error": ["EQuery:Unknown asset pair"]}


# --- our client through the real shell ---------------------------------------------------------------
def checked_enough(run, symbols=("BTC-USD", "ETH-USD"), count: int = 20):
    return lambda: all(run.health(s).integrity.checksums_verified >= count for s in symbols)


def test_the_client_follows_two_pairs_on_one_connection_exactly():
    async def scenario():
        async with sim_feed("kraken", symbols=("BTC-USD", "ETH-USD"), settings={"depth": 25}) as run:
            await run.ready()
            await run.until(checked_enough(run), "20 verified checksums per pair")
            await run.synced()
            assert run.sim.connections == 1 and len(run.manager.processors) == 1
            assert run.processor.precision("ETH/USD") == (2, 8)   # not the BTC/USD:BTNL decoy row
            assert run.processor.precision("BTC/USD") == (1, 8)
            for symbol in ("BTC-USD", "ETH-USD"):
                health = run.health(symbol)
                assert health.state is FeedState.LIVE and health.last_fault is None
                assert health.integrity.messages == health.integrity.checksums_verified  # every frame checked
                assert run.views[symbol].depth(Side.BID) == run.views[symbol].depth(Side.ASK) == 25

    asyncio.run(scenario())


def test_a_quiet_full_depth_book_is_kept_live_by_heartbeats():
    async def scenario():
        async with sim_feed("kraken", rate=0, levels=1000, settings={"max_age": 3.0}) as run:
            await run.ready()
            health = run.health("BTC-USD")
            snapshot_time = health.last_data
            await run.until(lambda: health.last_data != snapshot_time, "a heartbeat")
            assert health.state is FeedState.LIVE and health.integrity.checksums_verified == 1
            await run.synced()
            for side in Side:
                assert len(run.client_levels("BTC-USD", side)) == 1000

    asyncio.run(scenario())


FAULTS = {  # fault -> (the kind the client records, extra client settings)
    "checksum": ("checksum", {}),
    "drop": ("checksum", {}),
    "crossed": ("crossed", {}),
    "garbage": ("malformed", {}),
    "disconnect": ("disconnect", {}),
    "silence": ("stale", {"max_age": 1.0}),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_each_fault_is_injected_detected_resynced_and_the_books_are_exact_again(fault):
    recorded, settings = FAULTS[fault]

    async def scenario():
        async with sim_feed("kraken", symbols=("BTC-USD", "ETH-USD"), faults=(f"{fault}@8",),
                            settings={"depth": 100, **settings}) as run:
            await run.until(lambda: run.health("BTC-USD").last_fault is not None, f"the {fault} fault seen")
            assert [kind for kind, connection, _ in run.sim.injected] == [fault]
            assert run.sim.injected[0][1] == 1
            for symbol in ("BTC-USD", "ETH-USD"):  # one connection: every pair resyncs
                assert run.health(symbol).last_fault.kind == recorded
            await run.until(lambda: run.sim.connections >= 2, "a new connection")
            await run.ready()
            await run.until(checked_enough(run, count=5), "5 verified checksums per pair")
            await run.synced()
            for symbol in ("BTC-USD", "ETH-USD"):
                assert run.health(symbol).resyncs == 1 and run.health(symbol).state is FeedState.LIVE

    asyncio.run(scenario())


def test_a_duplicated_update_is_harmless_and_the_book_stays_exact():
    async def scenario():
        async with sim_feed("kraken", faults=("duplicate@8",), settings={"depth": 10}) as run:
            await run.until(lambda: run.sim.injected, "the duplicate injected")
            await run.until(checked_enough(run, ("BTC-USD",), 30), "30 verified checksums")
            await run.synced()
            assert run.sim.injected[0][:2] == ("duplicate", 1)
            assert run.health("BTC-USD").last_fault is None and run.sim.connections == 1

    asyncio.run(scenario())
