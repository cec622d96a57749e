"""The Coinbase simulator: its wire format and rules, and our processor against it over a real local
WebSocket (the test plays a minimal shell: it sends what the processor asks and feeds it every frame).

For an exact comparison the flow is paused (`pause()` barrier), then the heartbeats subscription is sent
again: the `subscriptions` frame that answers it was queued after every step taken before the pause, so
when it arrives every step has been applied."""
from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from decimal import Decimal as D

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from data_manager.book import Side
from data_manager.feed import FeedState, Reconnect, Send
from data_manager.sim.clock import FIXED_START, SimClock
from data_manager.sim.coinbase import CoinbaseSim
from data_manager.sim.market import Market
from data_manager.sim.server import FaultPlan, Session, SimVenueSettings
from data_manager.symbols import Symbol
from data_manager.venues import coinbase_jwt
from data_manager.venues.coinbase import VENUE, CoinbaseProcessor, CoinbaseSettings
from tests.simrun import sim_feed

SEED = 11
MAX_FRAME_BYTES = 16 * 2**20
RECV_TIMEOUT = 2.0   # the pump sends every 20 ms: a 2 s silence is a failure, not a slow machine
PRODUCTS = ("BTC-USD", "ETH-USD")


def make_sim(*faults: FaultPlan, levels: int = 300, symbols=PRODUCTS) -> CoinbaseSim:
    settings = SimVenueSettings(rate=50, levels=levels, faults=faults)
    return CoinbaseSim(Market(SEED), SEED, settings, {s: s for s in symbols}, SimClock(FIXED_START))


class Wire:
    """One connection of `processor` to the simulator: what the shell does, in a few lines."""

    def __init__(self, sim: CoinbaseSim, processor: CoinbaseProcessor) -> None:
        self.sim, self.processor = sim, processor
        self.ws: ClientConnection | None = None
        self.reconnects: list[str] = []
        self.frames: list[dict] = []

    async def open(self) -> None:
        self.processor.begin()
        self.processor.actions()
        self.ws = await connect(self.sim.ws_url, max_size=MAX_FRAME_BYTES)
        self.processor.connection_made()
        await self.run()

    async def run(self) -> None:
        for action in self.processor.actions():
            if type(action) is Send:
                await self.ws.send(action.text)
            elif type(action) is Reconnect:
                self.reconnects.append(action.reason)
                await self.ws.close()
                self.processor.connection_lost("closed by us")

    async def receive(self) -> dict:
        text = await asyncio.wait_for(self.ws.recv(), RECV_TIMEOUT)
        self.processor.receive(text)
        await self.run()
        try:
            message = json.loads(text)
        except ValueError:
            message = {"garbage": text}
        self.frames.append(message)
        return message

    async def follow(self, frames: int) -> None:
        for _ in range(frames):
            await self.receive()

    async def until_fault(self, limit: int = 400) -> str:
        for _ in range(limit):
            await self.receive()
            if self.reconnects:
                return self.reconnects[0]
        raise AssertionError("no fault detected")

    async def synced(self) -> None:
        """Pause the flow and read up to the answer of a fresh request (see the module docstring)."""
        await self.sim.pause()
        await self.ws.send(json.dumps({"type": "subscribe", "product_ids": list(PRODUCTS), "channel": "heartbeats"}))
        while (await self.receive()).get("channel") != "subscriptions":
            pass

    async def close(self) -> None:
        await self.ws.close()


def processor(*products: str, credentials=coinbase_jwt.NONE) -> CoinbaseProcessor:
    symbols = [(Symbol.parse(p), p) for p in products or PRODUCTS]
    return CoinbaseProcessor(CoinbaseSettings(), symbols, credentials=credentials)


def client_book(p: CoinbaseProcessor, native: str) -> dict:
    book = p.books[native].book
    return {"bid": list(book.levels(Side.BID)), "ask": list(book.levels(Side.ASK))}


def run(scenario, *faults: FaultPlan, **kwargs):
    async def main():
        sim = make_sim(*faults, **kwargs)
        await sim.start()
        try:
            await scenario(sim)
        finally:
            await sim.close()
    asyncio.run(main())


# --- the registry and the refusals ------------------------------------------------------------

def test_supported_faults_are_the_registry_s():
    assert set(CoinbaseSim.supported_faults) == set(VENUE.sim_faults)
    assert VENUE.simulator == "data_manager.sim.coinbase:CoinbaseSim"


@pytest.mark.parametrize("kind", ["checksum", "slow-snapshot"])
def test_faults_the_protocol_cannot_show_are_refused_up_front(kind):
    with pytest.raises(ValueError, match=f"cannot inject '{kind}'"):
        make_sim(FaultPlan(kind))


# --- our processor against it -----------------------------------------------------------------

def test_every_product_on_one_connection_equals_the_true_book_exactly():
    async def scenario(sim):
        p = processor()
        wire = Wire(sim, p)
        await wire.open()
        await wire.follow(60)
        await wire.synced()
        assert wire.reconnects == [] and sim.steps > 10
        for native in PRODUCTS:
            assert p.books[native].health.state is FeedState.LIVE
            assert client_book(p, native) == sim.true_book(native)
            assert p.books[native].book.depth(Side.BID) >= 300
            p.books[native].book.check()
        assert p.books["BTC-USD"].book.best(Side.BID)[0] > 50_000 > p.books["ETH-USD"].book.best(Side.ASK)[0]
        await wire.close()
    run(scenario)


@pytest.mark.parametrize("kind", ["gap", "drop", "duplicate"])
def test_sequence_faults_are_caught_as_gaps(kind):
    async def scenario(sim):
        p = processor()
        wire = Wire(sim, p)
        await wire.open()
        reason = await wire.until_fault()
        fault = p.books["ETH-USD"].health.last_fault
        assert fault.kind == "gap" and reason == f"gap: {fault.detail}"
        expected, got = (int(n) for n in fault.detail.replace(",", "").split()[2::2])
        assert got == expected + 1 if kind != "duplicate" else got < expected  # a repeat: an older number
        assert sim.injected == [(kind, 1, 5)]
    run(scenario, FaultPlan(kind, after=5))


def test_crossed_is_caught_and_the_next_connection_is_true_again():
    async def scenario(sim):
        p = processor()
        wire = Wire(sim, p)
        await wire.open()
        assert (await wire.until_fault()).startswith("crossed: best bid ")
        wire.reconnects.clear()
        await wire.open()  # connection 2: nothing scripted there
        await wire.follow(30)
        await wire.synced()
        assert [client_book(p, n) for n in PRODUCTS] == [sim.true_book(n) for n in PRODUCTS]
        assert all(p.books[n].health.state is FeedState.LIVE for n in PRODUCTS)
        assert p.books["BTC-USD"].health.resyncs == 1
        await wire.close()
    run(scenario, FaultPlan("crossed", after=5))


def test_garbage_is_malformed():
    async def scenario(sim):
        p = processor("BTC-USD")
        wire = Wire(sim, p)
        await wire.open()
        assert (await wire.until_fault()).startswith("malformed: not JSON")
    run(scenario, FaultPlan("garbage", after=3), symbols=("BTC-USD",))


def test_a_signed_subscribe_reaches_the_venue():
    class Signer:
        def token(self) -> str:
            return "header.claims.signature"

    async def scenario(sim):
        wire = Wire(sim, processor(credentials=coinbase_jwt.Credentials(Signer())))
        await wire.open()
        await wire.follow(5)
        assert [s.state.get("jwt") for s in sim.sessions] == ["header.claims.signature"]
        await wire.close()
    run(scenario)


# --- the wire format --------------------------------------------------------------------------

def test_frames_as_coinbase_writes_them():
    async def scenario(sim):
        sim.heartbeat_seconds = 0.05
        wire = Wire(sim, processor())
        await wire.open()
        await wire.follow(60)
        frames = wire.frames
        assert [f["sequence_num"] for f in frames] == list(range(len(frames)))  # one counter, every channel
        assert all(f["client_id"] == "" and f["timestamp"].startswith("2026-12-01T00:00:")
                   and len(f["timestamp"]) == len("2026-12-01T00:00:00.123456789Z") for f in frames)
        assert [f["channel"] for f in frames[:4]] == ["subscriptions", "l2_data", "l2_data", "subscriptions"]
        assert frames[0]["events"] == [{"subscriptions": {"level2": list(PRODUCTS)}}]
        snapshot = frames[1]["events"][0]
        assert snapshot["type"] == "snapshot" and snapshot["product_id"] == "BTC-USD"
        assert {row["side"] for row in snapshot["updates"]} == {"bid", "offer"}
        assert {row["event_time"] for row in snapshot["updates"]} == {"1970-01-01T00:00:00Z"}  # as documented
        updates = [f for f in frames if f["channel"] == "l2_data" and f["events"][0]["type"] == "update"]
        row = updates[0]["events"][0]["updates"][0]
        assert len(row["event_time"]) == len("2026-12-01T00:00:00.123456Z")
        assert all(r["new_quantity"] == "0" or not r["new_quantity"].endswith("0")
                   for f in updates for r in f["events"][0]["updates"])
        beats = [f["events"][0] for f in frames if f["channel"] == "heartbeats"]
        assert beats and beats[0]["current_time"].startswith("2026-12-01 00:00:")
        assert " +0000 UTC m=+" in beats[0]["current_time"]
        await wire.close()
    run(scenario)


def test_heartbeat_counter_is_one_venue_wide_counter():
    async def scenario(sim):
        sim.heartbeat_seconds = 0.02

        async def counters(ws, count: int) -> list[int]:
            found = []
            while len(found) < count:
                message = json.loads(await asyncio.wait_for(ws.recv(), RECV_TIMEOUT))
                if message["channel"] == "heartbeats":
                    found.append(message["events"][0]["heartbeat_counter"])
            return found

        subscribe = json.dumps({"type": "subscribe", "product_ids": [], "channel": "heartbeats"})
        async with connect(sim.ws_url) as first:
            await first.send(subscribe)
            early = await counters(first, 3)
            async with connect(sim.ws_url) as second:
                await second.send(subscribe)
                later = await counters(second, 3)
        assert early[0] > 1 and early == list(range(early[0], early[0] + 3))
        assert later[0] > early[-1]  # a new connection does not start again at 1
    run(scenario)


def test_a_connection_that_does_not_subscribe_is_closed():
    async def scenario(sim):
        sim.subscribe_deadline = 0.2
        subscribe = json.dumps({"type": "subscribe", "product_ids": [], "channel": "heartbeats"})
        async with connect(sim.ws_url) as idle, connect(sim.ws_url) as subscribed:
            await subscribed.send(subscribe)
            assert json.loads(await asyncio.wait_for(subscribed.recv(), RECV_TIMEOUT))["channel"] == "subscriptions"
            with pytest.raises(ConnectionClosed):
                while True:
                    await asyncio.wait_for(idle.recv(), RECV_TIMEOUT)
            assert idle.close_code == 1000
            await subscribed.send(subscribe)  # still served, long after the deadline
            while json.loads(await asyncio.wait_for(subscribed.recv(), RECV_TIMEOUT))["channel"] != "subscriptions":
                pass
    run(scenario)


def test_requests_it_cannot_serve_are_answered_with_an_error_frame():
    async def scenario(sim):
        async with connect(sim.ws_url) as ws:
            for request in ("not json", '{"type":"subscribe","channel":"level2","product_ids":[["BTC-USD"]]}',
                            '{"type":"subscribe","channel":"level2","product_ids":["DOGE-USD"]}',
                            '{"type":"subscribe","channel":"level3","product_ids":["BTC-USD"]}'):
                await ws.send(request)
                answer = json.loads(await asyncio.wait_for(ws.recv(), RECV_TIMEOUT))
                assert set(answer) == {"type", "message"} and answer["type"] == "error"
    run(scenario)


def test_snapshot_size_follows_the_configured_levels():
    """About 105 bytes a level: levels 20000 gives a 4 MB BTC-USD snapshot, the size of the real one."""
    sim = make_sim(levels=2000, symbols=("BTC-USD",))
    frame = sim._snapshot_frame(Session(ws=None, number=1), "BTC-USD")
    rows = json.loads(frame)["events"][0]["updates"]
    assert len(rows) == 4000 and 95 * 4000 < len(frame) < 115 * 4000


# --- REST ---------------------------------------------------------------------------------------

def _get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def test_public_products_endpoints():
    async def scenario(sim):
        base = f"{sim.rest_url}/api/v3/brokerage/market/products"
        status, listing = await asyncio.to_thread(_get, base)
        assert status == 200 and listing["num_products"] == 2
        assert [p["product_id"] for p in listing["products"]] == list(PRODUCTS)
        status, product = await asyncio.to_thread(_get, f"{base}/ETH-USD")
        assert status == 200 and product == listing["products"][1] | {"price": product["price"]}
        assert (product["base_currency_id"], product["quote_currency_id"], product["quote_increment"],
                product["base_increment"], product["product_type"], product["status"]) == (
                    "ETH", "USD", "0.01", "0.00000001", "SPOT", "online")
        bid, ask = sim.best_price("bid", "ETH-USD"), sim.best_price("ask", "ETH-USD")
        assert bid < D(product["price"]) < ask
        status, missing = await asyncio.to_thread(_get, f"{base}/DOGE-USD")
        assert status == 404 and missing["error"] == "NOT_FOUND"
        # every REST venue's overrides name its rest_url; Coinbase's processor reads none (the key is unused)
        assert sim.client_overrides() == {"url": sim.ws_url, "rest_url": sim.rest_url}
    run(scenario)


# --- through the real shell (registry, DataManager, FeedConnection) ------------------------------

FAULT_SEEN_AS = {"gap": "gap", "drop": "gap", "duplicate": "gap", "disconnect": "disconnect", "silence": "stale",
                 "crossed": "crossed", "garbage": "malformed"}


def test_every_supported_fault_has_its_shell_test():
    assert set(FAULT_SEEN_AS) == set(CoinbaseSim.supported_faults)


def test_two_products_through_the_shell_equal_the_true_books():
    async def scenario():
        async with sim_feed("coinbase", symbols=PRODUCTS) as run:
            await run.ready()
            await run.until(lambda: run.sim.steps > 20, "the flow to move")
            await run.synced()
            assert run.sim.connections == 1 and run.health("ETH-USD").resyncs == 0
            assert all(run.views[s].depth(side) >= 200 for s in PRODUCTS for side in Side)
    asyncio.run(scenario())


@pytest.mark.parametrize("kind", sorted(FAULT_SEEN_AS))
def test_each_fault_through_the_shell_is_injected_detected_and_resynced(kind):
    async def scenario():
        settings = {"max_age": 1.0} if kind == "silence" else {}
        async with sim_feed("coinbase", symbols=PRODUCTS, faults=(f"{kind}@5",), settings=settings) as run:
            await run.until(lambda: run.health("BTC-USD").last_fault is not None, f"{kind} to be noticed")
            await run.ready()
            await run.synced()
            assert run.sim.injected == [(kind, 1, 5)]
            for symbol in PRODUCTS:
                health = run.health(symbol)
                assert health.last_fault.kind == FAULT_SEEN_AS[kind], health.last_fault
                assert health.resyncs == 1 and health.state is FeedState.LIVE
            assert run.sim.connections == 2
    asyncio.run(scenario())
