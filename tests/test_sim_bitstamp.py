"""The Bitstamp simulator on its own (its wire protocol and REST, as the real venue writes them), then our
real client against it through the shell (registry, DataManager, FeedConnection): every supported fault
injected, detected and resynced, and the client's book equal to the venue's, level by level and queue by
queue."""
from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from decimal import Decimal

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from data_manager.book import Side
from data_manager.feed import FeedState
from data_manager.sim.bitstamp import BitstampSim
from data_manager.sim.clock import FIXED_START, SimClock
from data_manager.sim.market import Market
from data_manager.sim.server import FaultPlan, SimVenueSettings
from data_manager.venues.bitstamp import VENUE
from tests.simrun import sim_feed

D = Decimal
PAIRS = ("BTC-USD", "ETH-USD")


def _sim(**kwargs) -> BitstampSim:
    return BitstampSim(Market(7), 7, SimVenueSettings(rate=50, levels=60), {"btcusd": "BTC-USD", "ethusd": "ETH-USD"},
                       SimClock(FIXED_START), **kwargs)


def _get(url: str) -> tuple[int, object]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


async def _recv(ws, timeout: float = 2.0) -> dict:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


# --- the simulator on its own ---------------------------------------------------------------------------
def test_supported_faults_are_the_registered_ones_and_others_are_refused():
    assert set(BitstampSim.supported_faults) == set(VENUE.sim_faults)
    with pytest.raises(ValueError, match="cannot inject 'checksum'"):
        BitstampSim(Market(7), 7, SimVenueSettings(faults=(FaultPlan("checksum"),)))


def test_wire_protocol_acks_errors_heartbeat_and_chained_frames_in_the_real_shape():
    async def scenario():
        sim = _sim()
        await sim.start()
        try:
            async with connect(sim.ws_url) as ws:
                await ws.send('{"event":"bts:subscribe","data":{"channel":"live_orders_xrpusd"}}')
                unknown = await _recv(ws)
                await ws.send('{"event":"bts:subscribe","data":{"channel":"live_orders_BTCUSD"}}')
                cased = await _recv(ws)
                await ws.send("not json")
                garbled = await _recv(ws)
                await ws.send('{"event":"bts:ping"}')
                ping = await _recv(ws)
                await ws.send('{"event":"bts:heartbeat"}')
                heartbeat = await _recv(ws)
                await ws.send('{"event":"bts:subscribe","data":{"channel":"live_orders_btcusd"}}')
                frames = [await _recv(ws) for _ in range(60)]
                await ws.send("x" * 600)
                with pytest.raises(ConnectionClosed) as closed:
                    while True:
                        await _recv(ws)
            return unknown, cased, garbled, ping, heartbeat, frames, closed.value.rcvd.code
        finally:
            await sim.close()

    unknown, cased, garbled, ping, heartbeat, frames, code = asyncio.run(scenario())
    assert unknown == {"event": "bts:subscription_succeeded", "channel": "live_orders_xrpusd", "data": {}}
    assert cased["data"]["message"] == "Invalid channel provided." and garbled["data"]["message"] == \
        "Incorrect JSON format." and ping["data"]["message"] == "Bad subscription string."
    assert heartbeat == {"event": "bts:heartbeat", "channel": "", "data": {"status": "success"}}
    assert frames[0] == {"event": "bts:subscription_succeeded", "channel": "live_orders_btcusd", "data": {}}
    events = frames[1:]
    assert {e["channel"] for e in events} == {"live_orders_btcusd"}   # never the unknown pair's
    assert {e["event"] for e in events} <= {"order_created", "order_changed", "order_deleted"}
    for previous, event in zip(events, events[1:]):
        assert event["pre_event_id"] == previous["event_id"]
    for event in events:
        data = event["data"]
        stamp = int(data["microtimestamp"])
        assert stamp % 1000 == 0 and int(event["event_id"].replace("-", "")[:16], 16) == stamp
        assert abs(stamp / 1e6 - FIXED_START) < 60 and abs(int(data["datetime"]) - stamp / 1e6) <= 0.5
        assert str(data["id"]) == data["id_str"] and D(str(data["amount"])) == D(data["amount_str"])
        assert D(str(data["price"])) == D(data["price_str"]) and event["order_source"] == "orderbook"
        assert len(data["amount_str"].split(".")[1]) == 8 and data["order_type"] in (0, 1)
    assert code == 1009


def test_rest_order_book_groups_edge_cache_nonce_and_pairs_info():
    async def scenario():
        sim = _sim(edge_cache_seconds=30.0)
        await sim.start()
        try:
            base = f"{sim.rest_url}/api/v2"
            level3 = await asyncio.to_thread(_get, f"{base}/order_book/btcusd/?group=2")
            level2 = await asyncio.to_thread(_get, f"{base}/order_book/btcusd/")
            await asyncio.sleep(0.3)   # the flow moves on
            cached = await asyncio.to_thread(_get, f"{base}/order_book/btcusd/?group=2")
            fresh = await asyncio.to_thread(_get, f"{base}/order_book/btcusd/?group=2&_=1")
            pairs = await asyncio.to_thread(_get, f"{base}/trading-pairs-info/")
            missing = await asyncio.to_thread(_get, f"{base}/order_book/dogeusd/?group=2")
            sim.refuse_nonce = True
            refused = await asyncio.to_thread(_get, f"{base}/order_book/btcusd/?group=2&_=2")
            return level3, level2, cached, fresh, pairs, missing, refused, sim.true_orders("btcusd")
        finally:
            await sim.close()

    level3, level2, cached, fresh, pairs, missing, refused, _ = asyncio.run(scenario())
    (status, book), (_, aggregated) = level3, level2
    assert status == 200 and set(book) == {"timestamp", "microtimestamp", "bids", "asks"}
    assert book["timestamp"] == book["microtimestamp"][:-6]
    rows = book["bids"]
    assert all(len(row) == 3 and all(isinstance(v, str) for v in row) for row in rows + book["asks"])
    prices = [D(p) for p, _, _ in rows]
    assert prices == sorted(prices, reverse=True) and len(set(prices)) < len(prices)
    for (p1, _, id1), (p2, _, id2) in zip(rows, rows[1:]):
        assert p1 != p2 or int(id1) < int(id2)   # queue order within a price: ascending order id
    assert len(aggregated["bids"][0]) == 2 and D(aggregated["bids"][0][1]) == sum(
        D(a) for p, a, _ in rows if p == rows[0][0])
    assert cached[1]["microtimestamp"] == book["microtimestamp"] < fresh[1]["microtimestamp"]
    status, info = pairs
    assert status == 200 and {p["url_symbol"] for p in info} == {"btcusd", "ethusd"}
    assert info[0] | {"description": ""} == {
        "name": "BTC/USD", "url_symbol": "btcusd", "base_decimals": 8, "counter_decimals": 2,
        "instant_order_counter_decimals": 2, "minimum_order": "10.00 USD", "trading": "Enabled",
        "instant_and_market_orders": "Enabled", "description": ""}
    assert missing[0] == 404 and refused[0] == 400 and refused[1]["code"] == "400.018"


# --- through the real shell -----------------------------------------------------------------------------
def _client_orders(run, symbol: str) -> dict[str, dict[Decimal, list[tuple[str, Decimal]]]]:
    book = run.feed_book(symbol).book
    book.check()
    return {side.value: {price: [(o.order_id, o.size) for o in book.orders_at(side, price)]
                         for price, _ in book.levels(side)} for side in Side}


async def _synced_order_by_order(run, symbols=("BTC-USD",)) -> None:
    await run.synced(symbols=symbols)
    for symbol in symbols:
        assert _client_orders(run, symbol) == run.sim.true_orders(run.native[symbol])
        assert not run.feed_book(symbol).book.crossed()


def test_two_pairs_through_the_shell_equal_the_venue_order_by_order():
    async def scenario():
        async with sim_feed("bitstamp", symbols=PAIRS) as run:
            await run.ready()
            await run.until(lambda: all(p.stats(n).aggressors > 3 for p in run.manager.processors for n in p.books),
                            "aggressive orders on both pairs")
            await _synced_order_by_order(run, PAIRS)
            assert run.sim.connections == 2 and len(run.manager.processors) == 2   # one connection a pair
            for symbol in PAIRS:
                assert run.health(symbol).resyncs == 0 and run.views[symbol].book_kind == "L3"
    asyncio.run(scenario())


FAULT_SEEN_AS = {"gap": "gap", "drop": "gap", "disconnect": "disconnect", "silence": "stale",
                 "garbage": "malformed", "crossed": "crossed", "request-reconnect": "request-reconnect"}
TOLERATED = ("duplicate", "slow-snapshot")


def test_every_supported_fault_has_its_shell_test():
    assert set(FAULT_SEEN_AS) | set(TOLERATED) == set(BitstampSim.supported_faults)


@pytest.mark.parametrize("kind", sorted(FAULT_SEEN_AS))
def test_each_fault_through_the_shell_is_injected_detected_and_reseeded(kind):
    settings = {"max_age": 1.0} if kind == "silence" else {"aggressor_grace": 0.3} if kind == "crossed" else {}

    async def scenario():
        async with sim_feed("bitstamp", faults=(f"{kind}@5",), settings=settings) as run:
            await run.until(lambda: run.health().last_fault is not None, f"{kind} to be noticed")
            await run.ready()
            await _synced_order_by_order(run)
            assert run.sim.injected == [(kind, 1, 5)]
            health = run.health()
            assert health.last_fault.kind == FAULT_SEEN_AS[kind], health.last_fault
            assert health.resyncs == 1 and health.state is FeedState.LIVE
            assert run.sim.connections == 2 and run.processor.stats("btcusd").snapshots == 2  # a fresh seed
    asyncio.run(scenario())


def test_duplicated_events_through_the_shell_are_skipped_without_a_reseed():
    async def scenario():
        async with sim_feed("bitstamp", faults=("duplicate@5",)) as run:
            await run.until(lambda: run.sim.injected and run.processor.stats("btcusd").duplicates > 0,
                            "the duplicate to be seen")
            await _synced_order_by_order(run)
            assert run.health().resyncs == 0 and run.sim.connections == 1
    asyncio.run(scenario())


def test_a_slow_snapshot_is_bridged_over_the_events_buffered_meanwhile():
    async def scenario():
        async with sim_feed("bitstamp", faults=("slow-snapshot@1",)) as run:
            await run.ready()
            await _synced_order_by_order(run)
            stats = run.processor.stats("btcusd")
            assert run.sim.injected == [("slow-snapshot", 1, 1)] and run.health().resyncs == 0
            assert stats.snapshots == 1 and stats.replayed > 20   # 1.5 s of events waited for it
    asyncio.run(scenario())


def test_an_edge_cached_snapshot_older_than_the_stream_is_fetched_again():
    """No cache-buster: after a reseed the edge still holds the copy fetched for the first connection,
    older than the new connection's first event, so the client asks again until the copy is fresh."""
    async def scenario():
        async with sim_feed("bitstamp", faults=("gap@5",), settings={"cache_buster": False},
                            sim_kwargs={"edge_cache_seconds": 1.0}) as run:
            await run.until(lambda: run.processor.stats("btcusd").snapshots == 2, "the reseed")
            await _synced_order_by_order(run)
            stats = run.processor.stats("btcusd")
            assert stats.refetches >= 1 and all("_" not in r.query for r in run.sim.snapshot_requests)
    asyncio.run(scenario())


def test_a_refused_cache_buster_is_dropped_and_the_book_still_comes():
    async def scenario():
        async with sim_feed("bitstamp", sim_kwargs={"refuse_nonce": True}) as run:
            await run.ready()
            await _synced_order_by_order(run)
            assert [("_" in r.query) for r in run.sim.snapshot_requests] == [False]
    asyncio.run(scenario())
