"""The Coinbase and Gemini simulators against our own processors over real local WebSockets: the client's
book must equal the simulator's true book exactly, and each scripted fault must be caught as the right
FeedError (and must not corrupt the simulator's own book)."""
import asyncio
import json
import time

import pytest
from websockets.asyncio.client import ClientConnection, connect

from data_manager.book import Side
from data_manager.errors import CrossedBook, SequenceGap
from data_manager.sim.coinbase import CoinbaseSim
from data_manager.sim.gemini import GeminiSim
from data_manager.sim.market import Market
from data_manager.sim.server import FaultPlan, SimVenueSettings
from data_manager.venues.base import BookState, VenueProcessor
from data_manager.venues.coinbase import CoinbaseProcessor
from data_manager.venues.gemini import GeminiProcessor

SEED = 11
MAX_FRAME_BYTES = 16 * 2**20
RECV_TIMEOUT = 2.0   # the pump sends every 20 ms: a 2 s silence is a failure, not a slow machine
BARRIER = '{"type":"barrier"}'  # a request both venues refuse with an error frame


def settings(*faults: FaultPlan) -> SimVenueSettings:
    return SimVenueSettings(rate=50, levels=300, faults=faults)


async def subscribe(sim, processor: VenueProcessor) -> ClientConnection:
    ws = await connect(sim.ws_url, max_size=MAX_FRAME_BYTES)
    processor.reset()
    for message in processor.subscribe_messages():
        await ws.send(message)
    return ws


async def feed(ws: ClientConnection, processor: VenueProcessor, seconds: float) -> int:
    """What the shell does, for `seconds`: every frame into receive(); FeedErrors propagate."""
    frames, deadline = 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        processor.receive(await asyncio.wait_for(ws.recv(), RECV_TIMEOUT))
        frames += 1
    return frames


def is_refusal(text: str) -> bool:
    message = json.loads(text)
    return message.get("type") == "error" or message.get("result") == "error"


async def pause_and_drain(sim, ws: ClientConnection, processor: VenueProcessor) -> None:
    """Stop the flow, then read up to the answer to a request sent after it: every step taken before
    the pause was queued on the session before that answer (frames leave in the order they are built),
    so when the answer arrives every step has been applied. No "wait until quiet" guess."""
    sim.paused = True
    await ws.send(BARRIER)
    while not is_refusal(text := await asyncio.wait_for(ws.recv(), RECV_TIMEOUT)):
        processor.receive(text)


def client_book(processor: VenueProcessor) -> dict:
    return {"bid": list(processor.levels(Side.BID)), "ask": list(processor.levels(Side.ASK))}


async def synced_book(sim, processor: VenueProcessor, seconds: float) -> int:
    """Follow the venue for `seconds`, pause and drain; returns how many frames were received."""
    ws = await subscribe(sim, processor)
    try:
        frames = await feed(ws, processor, seconds)
        await pause_and_drain(sim, ws, processor)
        return frames
    finally:
        await ws.close()


async def first_fault(sim, processor: VenueProcessor) -> Exception:
    ws = await subscribe(sim, processor)
    try:
        with pytest.raises((SequenceGap, CrossedBook)) as caught:
            await feed(ws, processor, 3.0)
        return caught.value
    finally:
        await ws.close()


VENUES = {"coinbase": (CoinbaseSim, CoinbaseProcessor), "gemini": (GeminiSim, GeminiProcessor)}


@pytest.mark.parametrize("venue", VENUES)
def test_client_book_equals_the_true_book_exactly(venue):
    sim_class, processor_class = VENUES[venue]

    async def scenario():
        sim = sim_class(Market(SEED), SEED, settings())
        await sim.start()
        try:
            processor = processor_class()
            frames = await synced_book(sim, processor, 1.0)
            assert processor.state is BookState.LIVE
            assert sim.steps > 10 and frames > 10  # the book really moved while we followed it
            assert client_book(processor) == sim.true_book()
            assert processor.book.depth(Side.BID) >= 300 and processor.book.depth(Side.ASK) >= 300
            processor.book.check()
        finally:
            await sim.close()

    asyncio.run(scenario())


@pytest.mark.parametrize("kind, shift", [("gap", 1), ("drop", 1), ("duplicate", -1)])
def test_coinbase_sequence_faults_are_sequence_gaps(kind, shift):
    async def scenario():
        sim = CoinbaseSim(Market(SEED), SEED, settings(FaultPlan(kind, after=5)))
        await sim.start()
        try:
            error = await first_fault(sim, CoinbaseProcessor())
            assert isinstance(error, SequenceGap)
            assert error.got == error.expected + shift
        finally:
            await sim.close()

    asyncio.run(scenario())


@pytest.mark.parametrize("venue", VENUES)
def test_crossed_fault_is_caught_and_leaves_the_true_book_true(venue):
    sim_class, processor_class = VENUES[venue]

    async def scenario():
        sim = sim_class(Market(SEED), SEED, settings(FaultPlan("crossed", after=5)))
        await sim.start()
        try:
            processor = processor_class()
            error = await first_fault(sim, processor)
            assert isinstance(error, CrossedBook) and error.bid == error.ask
            processor.fault(error)
            await synced_book(sim, processor, 0.3)  # connection 2: no fault scripted there
            assert client_book(processor) == sim.true_book()
            assert processor.state is BookState.LIVE and not processor.book.crossed()
        finally:
            await sim.close()

    asyncio.run(scenario())


@pytest.mark.parametrize("sim_class, kind", [(GeminiSim, "gap"), (GeminiSim, "drop"), (GeminiSim, "checksum"),
                                             (GeminiSim, "slow-snapshot"), (CoinbaseSim, "checksum"),
                                             (CoinbaseSim, "slow-snapshot")])
def test_faults_the_protocol_cannot_show_are_refused_up_front(sim_class, kind):
    with pytest.raises(ValueError, match=f"cannot inject '{kind}': "):
        sim_class(Market(SEED), SEED, settings(FaultPlan(kind)))
