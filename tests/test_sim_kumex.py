"""KumexProcessor against the KuMEX simulator over real sockets on 127.0.0.1: bullet token over HTTP, the
WebSocket feed, snapshots fetched in the background while deltas keep arriving, faults resynced in place,
and the level-2 fallback. The processor's book must equal the simulated venue's true book exactly."""
from __future__ import annotations

import asyncio
import json
import logging
import urllib.error
import urllib.request
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Callable

import pytest
from websockets.asyncio.client import connect

from data_manager.book import L2Book, L3Book, Side
from data_manager.errors import FeedError
from data_manager.sim.kumex import KumexSim
from data_manager.sim.market import Market
from data_manager.sim.server import FaultPlan, Session, SimVenueSettings
from data_manager.venues.base import HttpRequest
from data_manager.venues.kumex import L2_NOTE, KumexProcessor

RATE = 100.0  # steps per second (~3 level-3 events each)


async def http(request: HttpRequest) -> tuple[int, str]:
    """The shell's HTTP: urllib in a thread; an error status comes back with its body."""
    def call() -> tuple[int, str]:
        req = urllib.request.Request(request.url, data=request.body, method=request.method)
        try:
            with urllib.request.urlopen(req, timeout=5) as answer:
                return answer.status, answer.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()
    return await asyncio.to_thread(call)


class Driver:
    """What the asyncio shell does on one connection: receive, send the outbox, fetch the snapshot the
    processor asks for in a background task while frames keep arriving, resync in place on a fault."""

    def __init__(self, processor: KumexProcessor, ws) -> None:
        self.processor = processor
        self.ws = ws
        self.fetch: asyncio.Task | None = None
        self.faults: list[FeedError] = []

    async def guarded(self, action: Callable[[], None]) -> None:
        try:
            action()
        except FeedError as error:
            self.faults.append(error)
            assert self.processor.fault(error), f"{error} should resync in place"
        for frame in self.processor.take_outbox():
            await self.ws.send(frame)

    async def run_until(self, done: Callable[[], bool], timeout: float) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        p = self.processor
        while True:
            if self.fetch is not None and self.fetch.done():
                status, text = self.fetch.result()
                self.fetch = None
                await self.guarded(lambda: p.load_snapshot(text) if status == 200 else p.snapshot_failed(status, text))
            if done():
                return True
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            try:
                text = await asyncio.wait_for(self.ws.recv(), min(0.05, remaining))
            except asyncio.TimeoutError:
                continue
            await self.guarded(lambda: p.receive(text))
            p.book.check()
            if self.fetch is None and (request := p.snapshot_request()) is not None:
                self.fetch = asyncio.create_task(http(request))

    async def finish(self) -> None:
        if self.fetch is not None:
            self.fetch.cancel()


async def run_session(sim: KumexSim, seconds: float, caught_up: Callable[[KumexProcessor], bool],
                      check: Callable[[KumexProcessor, Driver], None], timeout: float = 4.0) -> None:
    """Token, connect, drive for at least `seconds` and until `caught_up`, then `check` at once (no await
    in between: the venue cannot move while we compare)."""
    processor = KumexProcessor(rest_url=sim.rest_url)
    status, bullet = await http(processor.token_request())
    assert status == 200
    url = processor.connect_url("unused", bullet)
    assert url.startswith(sim.ws_url + "?token=")
    async with connect(url, max_size=16 * 2**20) as ws:
        processor.reset()
        for frame in processor.subscribe_messages():
            await ws.send(frame)
        driver = Driver(processor, ws)
        loop = asyncio.get_running_loop()
        start = loop.time()
        try:
            reached = await driver.run_until(lambda: loop.time() - start >= seconds and caught_up(processor),
                                             timeout)
            assert reached, f"not caught up: state {processor.state}, faults {driver.faults}"
            check(processor, driver)
        finally:
            await driver.finish()


def with_sim(check_run, **sim_options) -> None:
    async def main() -> None:
        settings = SimVenueSettings(rate=RATE, levels=300, basis_bps=Decimal(5),
                                    faults=tuple(sim_options.pop("faults", ())))
        sim = KumexSim(Market(11), seed=11, settings=settings, **sim_options)
        await sim.start()
        try:
            await check_run(sim)
        finally:
            await sim.close()
    asyncio.run(main())


def level3_caught_up(sim: KumexSim) -> Callable[[KumexProcessor], bool]:
    return lambda p: p.live and p.last_sequence == sim.engine.sequence


def assert_same_orders(processor: KumexProcessor, sim: KumexSim) -> None:
    """Every order, its size and its place in the queue, and every level total, exactly."""
    book = processor.book
    assert isinstance(book, L3Book)
    book.check()
    true_orders, true_levels = sim.true_orders(), sim.true_book()
    for side in Side:
        got = [(price, [(o.order_id, o.size) for o in book.orders_at(side, price)]) for price, _ in book.levels(side)]
        assert got == true_orders[side.value]
        assert list(book.levels(side)) == true_levels[side.value]
        assert book.depth(side) >= 300


def test_level3_book_equals_the_venue_book():
    async def check_run(sim: KumexSim) -> None:
        def check(p: KumexProcessor, driver: Driver) -> None:
            assert p.live and p.mode_note == "" and driver.faults == []
            assert_same_orders(p, sim)
            assert p.integrity.messages > 100 and p.integrity.snapshots == 1
            assert sim.snapshots_served == 1 and sim.connections == 1
            price, contracts = next(p.book.levels(Side.ASK))
            assert p.best(Side.ASK) == (price, (contracts / price).quantize(Decimal("1E-8"), ROUND_HALF_EVEN))
            mid = (p.book.best(Side.BID)[0] + p.book.best(Side.ASK)[0]) / 2
            assert abs(mid / sim.venue_mid() - 1) < Decimal("0.001")
        await run_session(sim, 0.6, level3_caught_up(sim), check)
        status, text = await http(HttpRequest("GET", sim.rest_url + "/api/v1/contracts/XBTUSDM"))
        contract = json.loads(text, parse_float=Decimal)["data"]
        assert status == 200 and contract["multiplier"] == -1 and contract["isInverse"] is True
        assert contract["tickSize"] == 1 and contract["lotSize"] == 1
    with_sim(check_run)


def test_faults_are_detected_and_resynced_in_place_to_the_exact_book(caplog):
    """A slow first snapshot (many deltas buffered meanwhile), then a venue gap, a dropped frame, a made-up
    crossing order, a duplicate and a garbage frame: each resynced on the same connection."""
    faults = [FaultPlan("slow-snapshot", after=1), FaultPlan("gap", after=150), FaultPlan("drop", after=170),
              FaultPlan("crossed", after=190), FaultPlan("duplicate", after=205), FaultPlan("garbage", after=220)]

    async def check_run(sim: KumexSim) -> None:
        def check(p: KumexProcessor, driver: Driver) -> None:
            kinds = [fault.kind for fault in driver.faults]
            assert kinds.count("gap") == 2 and "crossed" in kinds and "malformed" in kinds, kinds
            assert p.resyncs == len(kinds) and p.duplicates > 0
            assert sim.connections == 1  # never reconnected
            assert sim.snapshots_served == 1 + len(kinds)
            assert_same_orders(p, sim)
        caught_up = level3_caught_up(sim)
        await run_session(sim, 0, lambda p: p.resyncs >= 4 and caught_up(p), check, timeout=5.0)
    caplog.set_level(logging.INFO, logger="data_manager.venues.kumex")
    with_sim(check_run, faults=faults)
    replayed = [record.args[-1] for record in caplog.records if "replayed" in record.getMessage()]
    assert replayed[0] > 50  # the slow snapshot: deltas buffered for 1.5 s, then replayed on top of it


def test_level3_unavailable_falls_back_to_level2():
    async def check_run(sim: KumexSim) -> None:
        def check(p: KumexProcessor, driver: Driver) -> None:
            assert p.mode_note == L2_NOTE and not p.level3 and isinstance(p.book, L2Book)
            assert driver.faults == []
            p.book.check()
            for side in Side:
                assert list(p.book.levels(side)) == sim.true_book()[side.value]
            assert p.best(Side.BID)[0] == sim.true_book()["bid"][0][0]
        await run_session(sim, 0.5, lambda p: p.live and p.last_sequence == sim.engine.level2_sequence, check)
        status, _ = await http(HttpRequest("GET", sim.rest_url + "/api/v2/level3/snapshot?symbol=XBTUSDM"))
        assert status == 404
    with_sim(check_run, level3_available=False)


def test_engine_snapshot_and_prerendered_events_rebuild_its_book_without_a_socket():
    """The benchmark's input: `snapshot()` then `events(n)`; a processor fed both holds the engine's book."""
    engine = KumexSim(Market(5), seed=5, settings=SimVenueSettings(levels=300)).engine
    snapshot = json.dumps({"code": "200000", "data": engine.snapshot()})
    frames = engine.events(3000)
    assert len(frames) >= 3000
    subjects = {json.loads(frame)["subject"] for frame in frames}
    assert subjects == {"received", "open", "update", "match", "done"}
    processor = KumexProcessor(connect_id="bench")
    processor.reset()
    processor.receive('{"id":"bench","type":"welcome"}')
    processor.receive(frames[0])
    assert processor.snapshot_request() is not None
    processor.load_snapshot(snapshot)
    for frame in frames[1:]:
        processor.receive(frame)
    assert processor.live and processor.last_sequence == engine.sequence
    for side in Side:
        book = processor.book
        assert [(price, [(o.order_id, o.size) for o in book.orders_at(side, price)])
                for price, _ in book.levels(side)] == engine.book_orders(side.value)
    book.check()
    walked, levels = Decimal(0), 0
    for _, btc in processor.levels(Side.BID):  # a 15 BTC sell walks real depth, not one fat level
        walked, levels = walked + btc, levels + 1
        if walked >= 15:
            break
    assert walked >= 15 and levels >= 5


def test_checksum_fault_is_refused():
    sim = KumexSim(Market(1), seed=1, settings=SimVenueSettings())
    with pytest.raises(ValueError, match="checksum"):
        sim.inject(Session(None, 1), "checksum", [])
