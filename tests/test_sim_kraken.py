"""The Kraken simulator against the real processor, over a real WebSocket on 127.0.0.1.

The test drives the processor itself (subscribe, receive), as the shell would. For an exact
comparison it pauses the simulator's flow, sends a ping and reads until its pong: every frame sent
before the pong has then been applied, so the processor must hold exactly the top `depth` of the
simulator's true book."""
from __future__ import annotations

import asyncio
import json

import pytest
from websockets.asyncio.client import connect

from data_manager.book import Side
from data_manager.errors import ChecksumMismatch, CrossedBook, FeedError, MessageError
from data_manager.sim.kraken import KrakenSim
from data_manager.sim.market import Market
from data_manager.sim.server import FaultPlan, SimVenueSettings
from data_manager.venues.base import BookState
from data_manager.venues.kraken import KrakenProcessor

SEED = 11
MAX_SIZE = 16 * 2**20
RECV_TIMEOUT = 2.0


def make_sim(*faults: FaultPlan, rate: float = 50) -> KrakenSim:
    return KrakenSim(Market(SEED), SEED, SimVenueSettings(rate=rate, levels=1000, faults=faults))


async def pump_for(ws, processor: KrakenProcessor, seconds: float, record: list[dict]) -> None:
    """receive() every frame for `seconds`, checking the book after each one."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        text = await asyncio.wait_for(ws.recv(), RECV_TIMEOUT)
        processor.receive(text)
        processor.book.check()
        record.append(json.loads(text))


async def drain(ws, processor: KrakenProcessor, record: list[dict]) -> None:
    """Read until the pong of a fresh ping: nothing sent before it is still in flight."""
    ping = processor.ping_message()
    req_id = json.loads(ping)["req_id"]
    await ws.send(ping)
    while True:
        text = await asyncio.wait_for(ws.recv(), RECV_TIMEOUT)
        processor.receive(text)
        message = json.loads(text)
        record.append(message)
        if message.get("method") == "pong" and message.get("req_id") == req_id:
            return


def test_processor_follows_the_simulator_exactly():
    async def scenario():
        sim = make_sim()
        await sim.start()
        try:
            async with connect(sim.ws_url, max_size=MAX_SIZE) as ws:
                processor = KrakenProcessor(depth=25)
                processor.reset()
                for frame in processor.subscribe_messages():
                    await ws.send(frame)
                record: list[dict] = []
                await pump_for(ws, processor, 1.0, record)
                sim.pause()
                await drain(ws, processor, record)
                true_book = sim.true_book()
                session = next(iter(sim.sessions))
                return processor, record, true_book, sim.session_book(session)
        finally:
            await sim.close()

    processor, record, true_book, session_book = asyncio.run(scenario())

    kinds = [(m.get("channel"), m.get("type")) for m in record]
    assert kinds[0] == ("status", "update")
    assert ("instrument", "snapshot") in kinds
    assert kinds.count(("book", "snapshot")) == 1
    updates = kinds.count(("book", "update"))
    assert updates >= 20  # ~50 steps a second, most of them touch the top 25
    assert processor.integrity.checksums_verified == updates + 1
    assert processor.state is BookState.LIVE

    for side, name in ((Side.BID, "bid"), (Side.ASK, "ask")):
        assert list(processor.levels(side)) == true_book[name][:25]
        assert session_book[name] == true_book[name][:25]
    assert len(true_book["bid"]) >= 1000 and len(true_book["ask"]) >= 1000
    processor.book.check()

    # wire format: fixed decimals, as the live feed writes them
    update = next(m for m in record if m.get("type") == "update" and m["channel"] == "book")
    assert update["data"][0]["timestamp"].endswith("Z")


async def run_until_error(sim: KrakenSim, depth: int = 10, seconds: float = 3.0) -> FeedError | None:
    """Feed the processor until it raises (what the shell would hand to fault()), or time runs out."""
    await sim.start()
    try:
        async with connect(sim.ws_url, max_size=MAX_SIZE) as ws:
            processor = KrakenProcessor(depth=depth)
            processor.reset()
            for frame in processor.subscribe_messages():
                await ws.send(frame)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + seconds
            while loop.time() < deadline:
                text = await asyncio.wait_for(ws.recv(), RECV_TIMEOUT)
                try:
                    processor.receive(text)
                except FeedError as error:
                    return error
            return None
    finally:
        await sim.close()


def test_checksum_fault_is_caught():
    error = asyncio.run(run_until_error(make_sim(FaultPlan("checksum", after=5))))
    assert isinstance(error, ChecksumMismatch)
    assert error.expected != error.computed


def test_dropped_update_is_caught_by_the_next_checksum():
    error = asyncio.run(run_until_error(make_sim(FaultPlan("drop", after=5))))
    assert isinstance(error, ChecksumMismatch)


def test_crossed_fault_passes_the_checksum_and_is_caught_as_crossed():
    error = asyncio.run(run_until_error(make_sim(FaultPlan("crossed", after=5))))
    assert isinstance(error, CrossedBook)
    assert error.bid >= error.ask


def test_invalid_depth_gets_an_error_ack():
    async def scenario():
        sim = make_sim(rate=0)
        await sim.start()
        try:
            async with connect(sim.ws_url) as ws:
                status = json.loads(await asyncio.wait_for(ws.recv(), RECV_TIMEOUT))
                await ws.send('{"method":"subscribe","params":{"channel":"book","symbol":["BTC/USD"],'
                              '"depth":30},"req_id":1}')
                return status, await asyncio.wait_for(ws.recv(), RECV_TIMEOUT)
        finally:
            await sim.close()

    status, text = asyncio.run(scenario())
    assert status["channel"] == "status"
    ack = json.loads(text)
    assert ack["success"] is False and ack["req_id"] == 1 and "depth" in ack["error"]
    with pytest.raises(MessageError, match="subscription refused"):
        KrakenProcessor().receive(text)


def test_heartbeat_when_the_book_is_quiet():
    async def scenario():
        sim = make_sim(rate=0)  # no flow: after the snapshot only heartbeats
        await sim.start()
        try:
            async with connect(sim.ws_url, max_size=MAX_SIZE) as ws:
                processor = KrakenProcessor(depth=1000)
                for frame in processor.subscribe_messages():
                    await ws.send(frame)
                frames = []
                while not frames or frames[-1] != {"channel": "heartbeat"}:
                    text = await asyncio.wait_for(ws.recv(), RECV_TIMEOUT)
                    processor.receive(text)
                    frames.append(json.loads(text))
                return processor, frames, sim.true_book()
        finally:
            await sim.close()

    processor, frames, true_book = asyncio.run(scenario())
    assert processor.integrity.checksums_verified == 1
    assert processor.book.depth(Side.BID) == processor.book.depth(Side.ASK) == 1000
    assert list(processor.levels(Side.ASK)) == true_book["ask"][:1000]


@pytest.mark.parametrize("kind", ["gap", "slow-snapshot"])
def test_faults_kraken_cannot_have_are_refused(kind):
    with pytest.raises(ValueError, match="kraken"):
        make_sim(FaultPlan(kind))
