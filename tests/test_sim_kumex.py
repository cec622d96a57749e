"""The KuMEX simulator: its REST and WebSocket shapes on their own (token, contracts, snapshots, stamps,
both level-3 refusal shapes, the idle close), then our real client through the real shell
(tests/simrun.py): every supported fault injected, detected, rebuilt, and the client's book equal to the
simulator's (level 3: every order, in queue order); a refused or silent level 3 costs nothing, the
level-2 book is live at once. Comparisons happen behind the simulator's pause() barrier, never on a rate."""
from __future__ import annotations

import asyncio
import json
import re
import urllib.error
import urllib.request
from decimal import Decimal as D
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from data_manager.book import L3Book, Side
from data_manager.feed import FeedState
from data_manager.sim.clock import FIXED_START, SimClock
from data_manager.sim.kumex import KumexSim
from data_manager.sim.market import Market
from data_manager.sim.server import FaultPlan, SimVenueSettings
from data_manager.venues.kumex import VENUE
from tests.simrun import sim_feed

SEED = 11
RECV_TIMEOUT = 3.0
SDK_MARKET = Path(__file__).resolve().parents[2] / "shared" / "venues-2026" / "kucoin_universal_sdk_rest_futures_market.json"
QUICK_PINGS = {"ping_interval_ms": 1000, "ping_timeout_ms": 1000}   # a silence is noticed in ~2 s
NOW_MS = int(FIXED_START * 1000)
DAY_MS = 86_400_000


def make_sim(*faults: FaultPlan, rate: float = 50, **kwargs) -> KumexSim:
    return KumexSim(Market(SEED), SEED, SimVenueSettings(rate=rate, levels=100, faults=faults),
                    {"XBTUSDM": "BTC-USD", "ETHUSDM": "ETH-USD"}, SimClock(FIXED_START), **kwargs)


def http(url: str, method: str = "GET") -> tuple[int, str]:
    request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


async def get(url: str, method: str = "GET") -> tuple[int, str]:
    return await asyncio.to_thread(http, url, method)


async def recv(ws) -> dict:
    return json.loads(await asyncio.wait_for(ws.recv(), RECV_TIMEOUT))


async def open_socket(sim: KumexSim, connect_id: str = "test-connect"):
    status, body = await get(sim.rest_url + "/api/v1/bullet-public", "POST")
    token = json.loads(body)["data"]["token"]
    ws = await connect(f"{sim.ws_url}?token={token}&connectId={connect_id}")
    assert await recv(ws) == {"id": connect_id, "type": "welcome"}
    return ws


async def subscribe(ws, ident: str, topic: str) -> None:
    await ws.send(json.dumps({"id": ident, "type": "subscribe", "topic": topic, "privateChannel": False,
                              "response": True}))


async def frames_until(ws, condition, limit: int = 400) -> list[dict]:
    frames = []
    for _ in range(limit):
        frames.append(await recv(ws))
        if condition(frames[-1]):
            return frames
    raise AssertionError(f"not seen in {limit} frames: {frames[-3:]}")


def with_sim(sim: KumexSim, scenario) -> None:
    async def main():
        await sim.start()
        try:
            await scenario(sim)
        finally:
            await sim.close()
    asyncio.run(main())


# --- the simulator on its own --------------------------------------------------------------------
def test_supported_faults_are_the_registry_s_and_others_are_refused_up_front():
    assert set(KumexSim.supported_faults) == set(VENUE.sim_faults)
    with pytest.raises(ValueError, match="cannot inject 'checksum'"):
        make_sim(FaultPlan("checksum"))
    with pytest.raises(ValueError, match="no contract XBTUSDTM"):
        KumexSim(Market(SEED), SEED, SimVenueSettings(), {"XBTUSDTM": "BTC-USDT"})


def test_rest_answers_in_the_venue_s_own_shapes():
    async def scenario(sim: KumexSim):
        status, body = await get(sim.rest_url + "/api/v1/bullet-public", "POST")
        server = json.loads(body)["data"]["instanceServers"][0]
        assert status == 200 and server["endpoint"] == sim.ws_url
        assert (server["pingInterval"], server["pingTimeout"]) == (18000, 10000)

        status, body = await get(sim.rest_url + "/api/v1/contracts/XBTUSDM")
        contract = json.loads(body, parse_float=D)["data"]
        schema = json.loads(SDK_MARKET.read_text())["paths"]["/api/v1/contracts/{symbol}"]["get"]
        data_schema = schema["responses"]["200"]["content"]["application/json"]["schema"]["properties"]["data"]
        assert set(data_schema["required"]) <= set(contract) <= set(data_schema["properties"])
        assert (contract["multiplier"], contract["isInverse"], contract["tickSize"], contract["lotSize"]) == (
            -1, True, D("0.1"), 1)
        assert (contract["baseCurrency"], contract["settleCurrency"], contract["type"]) == ("XBT", "XBT", "FFWCSX")
        assert '"maxPrice":1000000.0' in body and re.search(r'"markPrice":6\d{4}\.\d{1,2}[,}]', body)
        assert type(contract["openInterest"]) is str and contract["expireDate"] is None

        status, body = await get(sim.rest_url + "/api/v1/contracts/active")
        assert [c["symbol"] for c in json.loads(body)["data"]] == ["XBTUSDM", "ETHUSDM"]

        status, body = await get(sim.rest_url + "/api/v1/level2/snapshot?symbol=XBTUSDM")
        data = json.loads(body, parse_float=D)["data"]
        assert list(data) == ["sequence", "symbol", "bids", "asks", "ts"] and data["symbol"] == "XBTUSDM"
        assert all(type(p) in (int, D) and type(s) is int for p, s in data["bids"] + data["asks"])
        assert data["bids"][0][0] > data["bids"][1][0] and data["asks"][0][0] < data["asks"][1][0]
        assert abs(data["ts"] // 1_000_000 - NOW_MS) < DAY_MS

        status, body = await get(sim.rest_url + "/api/v2/level3/snapshot?symbol=ETHUSDM")
        rows = json.loads(body)["data"]["bids"]
        assert all(len(row) == 5 and type(row[1]) is str and type(row[2]) is str for row in rows)

        assert json.loads((await get(sim.rest_url + "/api/v1/level2/snapshot?symbol=NOPE"))[1]) == {
            "msg": "Invalid symbol.", "code": "200003"}
    with_sim(make_sim(rate=0), scenario)


def test_level3_not_served_is_a_404_snapshot_and_a_refused_subscribe():
    async def scenario(sim: KumexSim):
        status, body = await get(sim.rest_url + "/api/v2/level3/snapshot?symbol=XBTUSDM")
        assert status == 404 and json.loads(body)["code"] == "404"
        ws = await open_socket(sim)
        await subscribe(ws, "s3", "/contractMarket/level3v2:XBTUSDM")
        assert await recv(ws) == {"id": "s3", "type": "error", "code": 404, "data": "topic does not exist"}
        await ws.close()
    with_sim(make_sim(rate=0, level3=False), scenario)


def test_frames_carry_the_sim_clock_s_now_and_the_documented_relations():
    async def scenario(sim: KumexSim):
        ws = await open_socket(sim)
        await subscribe(ws, "s2", "/contractMarket/level2:XBTUSDM")
        await subscribe(ws, "s3", "/contractMarket/level3v2:XBTUSDM")
        await subscribe(ws, "bad", "/contractMarket/level2Depth20:XBTUSDM")
        await subscribe(ws, "nosym", "/contractMarket/level2:NOPEUSDM")
        await ws.send('{"id":"p1","type":"ping"}')
        frames = await frames_until(ws, lambda f: f.get("type") == "pong")
        answers = [f for f in frames if f.get("type") != "message"]
        assert {"id": "s2", "type": "ack"} in answers and {"id": "s3", "type": "ack"} in answers
        assert {"id": "bad", "type": "error", "code": 404, "data": "topic does not exist"} in answers
        assert {"id": "nosym", "type": "ack"} in answers          # acked, then nothing (as on the wire)
        assert answers[-1]["id"] == "p1" and abs(answers[-1]["timestamp"] // 1000 - NOW_MS) < DAY_MS
        frames += await frames_until(ws, lambda f: f.get("subject") == "level2")
        frames += await frames_until(ws, lambda f: f.get("topic", "").startswith("/contractMarket/level3v2"))
        level2 = [f for f in frames if f.get("subject") == "level2"]
        level3 = [f for f in frames if f.get("topic", "").startswith("/contractMarket/level3v2")]
        for frame in level2:
            data = frame["data"]
            assert frame["sn"] == data["sequence"] and data["timestamp"] > data["sequence"]
            assert abs(data["timestamp"] - NOW_MS) < DAY_MS and not data["change"].split(",")[0].endswith(".0")
        for frame in level3:
            assert abs(frame["data"]["ts"] // 1_000_000 - NOW_MS) < DAY_MS
        assert all(f["topic"].endswith(":XBTUSDM") for f in level2 + level3)
        await ws.close()
    with_sim(make_sim(), scenario)


@pytest.mark.parametrize("echo", ["request", "connectId"])
def test_both_level3_refusal_shapes(echo):
    async def scenario(sim: KumexSim):
        ws = await open_socket(sim, "cid-1")
        await subscribe(ws, "s3", "/contractMarket/level3v2:XBTUSDM")
        assert await recv(ws) == {"id": "s3" if echo == "request" else "cid-1", "type": "error", "code": 404,
                                  "data": "topic does not exist"}
        assert sim.injected == [("l3-refused", 1, 0)]
        await ws.close()
        ws = await open_socket(sim, "cid-2")                   # the fault was for connection 1 only
        await subscribe(ws, "s3", "/contractMarket/level3v2:XBTUSDM")
        assert await recv(ws) == {"id": "s3", "type": "ack"}
        await ws.close()
    with_sim(make_sim(FaultPlan("l3-refused"), refusal_echo=echo), scenario)


def test_a_silent_level3_is_acked_and_never_sends():
    async def scenario(sim: KumexSim):
        ws = await open_socket(sim)
        await subscribe(ws, "s3", "/contractMarket/level3v2:XBTUSDM")
        await subscribe(ws, "s2", "/contractMarket/level2:XBTUSDM")
        frames = await frames_until(ws, lambda f: f.get("subject") == "level2")
        frames += [await recv(ws) for _ in range(30)]
        assert {"id": "s3", "type": "ack"} in frames and sim.injected == [("l3-silent", 1, 0)]
        assert not any("level3v2" in f.get("topic", "") for f in frames)
        await ws.close()
    with_sim(make_sim(FaultPlan("l3-silent")), scenario)


def test_the_venue_closes_a_connection_that_sends_nothing():
    async def scenario(sim: KumexSim):
        ws = await open_socket(sim)
        assert await recv(ws) == {"type": "error", "code": 400, "data": "ping timeout"}
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), RECV_TIMEOUT)
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1000, "Bye")
    with_sim(make_sim(rate=0, idle_close=0.3), scenario)


def test_the_crossed_frames_are_stamped_now():
    async def scenario(sim: KumexSim):
        ws = await open_socket(sim)
        await subscribe(ws, "s2", "/contractMarket/level2:XBTUSDM")
        await subscribe(ws, "s3", "/contractMarket/level3v2:XBTUSDM")
        frames = await frames_until(ws, lambda f: f.get("data", {}).get("orderId", "").find("ffffff") == 8)
        crossing = frames[-1]["data"]
        assert crossing["price"] == str(sim.engine().price(sim.engine().best_tick("ask")))
        assert abs(crossing["orderTime"] // 1_000_000 - NOW_MS) < DAY_MS and crossing["ts"] == crossing["orderTime"]
        await ws.close()
    with_sim(make_sim(FaultPlan("crossed", after=3)), scenario)


# --- our client through the real shell -----------------------------------------------------------
def orders(book: L3Book) -> dict[str, list]:
    return {side.value: [(price, [(o.order_id, o.size) for o in book.orders_at(side, price)])
                         for price, _ in book.levels(side)] for side in Side}


async def exact(run, level3: bool, symbol: str = "BTC-USD") -> None:
    """Barrier, then the client's book is the simulator's; level 3: every order in queue order too."""
    if level3:
        await run.until(lambda: run.views[symbol].book_kind == "L3", "the level-3 book in use")
    await run.synced()
    feed = run.feed_book(symbol)
    if level3:
        assert orders(feed.book) == run.sim.true_orders(run.native[symbol])
    feed.book.check()


SEEN_AS = {"gap": "gap", "drop": "gap", "disconnect": "disconnect", "silence": "disconnect", "crossed": "crossed",
           "garbage": "malformed"}
HARMLESS = ("duplicate", "slow-snapshot")
LEVEL3_FAULTS = ("l3-refused", "l3-silent")


def test_every_supported_fault_has_a_shell_test():
    assert set(SEEN_AS) | set(HARMLESS) | set(LEVEL3_FAULTS) == set(KumexSim.supported_faults)


@pytest.mark.parametrize("level3", [False, True], ids=["L2", "L3"])
@pytest.mark.parametrize("kind", sorted(SEEN_AS))
def test_each_fault_is_injected_detected_rebuilt_and_the_book_is_exact_again(kind, level3):
    async def scenario():
        async with sim_feed("kumex", faults=(f"{kind}@5",), settings={"level3": level3},
                            sim_kwargs=QUICK_PINGS if kind == "silence" else {}) as run:
            await run.until(lambda: run.health().last_fault is not None, f"{kind} to be noticed")
            assert run.sim.injected == [(kind, 1, 5)]
            health = run.health()
            assert health.last_fault.kind == SEEN_AS[kind], health.last_fault
            await run.ready()
            await exact(run, level3)
            assert health.resyncs == 1 and health.state is FeedState.LIVE
            reconnected = SEEN_AS[kind] == "disconnect"
            assert run.sim.connections == (2 if reconnected else 1)   # the others are rebuilt in place
    asyncio.run(scenario())


@pytest.mark.parametrize("kind", HARMLESS)
def test_duplicates_and_a_slow_snapshot_leave_the_book_exact_without_a_fault(kind):
    async def scenario():
        async with sim_feed("kumex", faults=(f"{kind}@3",), settings={"level3": True}) as run:
            await run.until(lambda: run.sim.injected, f"{kind} injected")
            await run.ready()
            await exact(run, level3=True)
            assert run.health().last_fault is None and run.sim.connections == 1
            assert run.sim.injected[0][:2] == (kind, 1)
    asyncio.run(scenario())


@pytest.mark.parametrize("kind, kwargs", [("l3-refused", {}), ("l3-refused", {"refusal_echo": "connectId"}),
                                          ("l3-silent", {})], ids=["refused-id", "refused-connectId", "silent"])
def test_without_level3_the_level2_book_is_live_well_within_10_s(kind, kwargs):
    async def scenario():
        async with sim_feed("kumex", faults=(kind,), settings={"level3": True}, sim_kwargs=kwargs) as run:
            await run.ready(timeout=5)
            await run.until(lambda: run.sim.injected, f"{kind} injected")
            view = run.views["BTC-USD"]
            await run.synced()
            assert view.book_kind == "L2" and run.health().last_fault is None and run.sim.connections == 1
            if kind == "l3-refused":
                await run.until(lambda: view.notes[0].startswith("L2 (level 3 unavailable: subscribe refused"),
                                "the refusal said in the notes")
            else:
                assert view.notes[0] == "L2 (level 3 not in sync yet)"   # 15 s: the sans-I/O test covers it
    asyncio.run(scenario())


def test_level3_in_use_through_the_shell_holds_every_order_in_queue_order():
    async def scenario():
        async with sim_feed("kumex", settings={"level3": True}) as run:
            await run.ready()
            start = run.sim.engine().sequence
            await run.until(lambda: run.sim.engine().sequence > start + 200, "200 level-3 events")
            await exact(run, level3=True)
            view = run.views["BTC-USD"]
            assert view.notes[0] == "L3" and view.instrument == "perpetual"
            bid, btc = view.best(Side.BID), next(view.native_levels(Side.BID))
            assert bid[1] == (btc[1] / bid[0]).quantize(D("1E-8"))
            assert run.health().state is FeedState.LIVE and run.health().resyncs == 0
    asyncio.run(scenario())


def test_two_contracts_two_connections_each_book_exact():
    async def scenario():
        async with sim_feed("kumex", symbols=("BTC-USD", "ETH-USD")) as run:
            await run.ready()
            await run.synced()
            assert run.sim.connections == 2 and len(run.manager.processors) == 2
            assert run.views["ETH-USD"].best(Side.BID)[0] < 4000 < run.views["BTC-USD"].best(Side.BID)[0]
    asyncio.run(scenario())


def test_orders_entered_from_outside_are_steps_of_the_documented_lifecycle():
    sim = make_sim(rate=0)
    engine = sim.engine()
    ask = engine.best_tick("ask")
    step = engine.place("buy", ask, 1, client_oid="mine-1")       # crosses: received, match..., done filled
    assert [e.subject for e in step.events][:2] == ["received", "match"]
    assert step.events[0].data["clientOid"] == "mine-1" and step.changes
    resting = engine.place("sell", ask + 100, 7)
    order_id = resting.events[0].data["orderId"]
    assert [e.subject for e in resting.events] == ["received", "open"] and order_id in engine.orders
    assert [e.subject for e in engine.cancel(order_id).events] == ["done"] and order_id not in engine.orders
    sequences = [e.data["sequence"] for s in (step, resting) for e in s.events]
    assert sequences == list(range(sequences[0], sequences[0] + len(sequences)))
