"""The asyncio shell: backoff, and one venue's failure never holding up another."""
import asyncio
import random
from dataclasses import replace
from pathlib import Path

from config import load_config
from data_manager.book import Side
from data_manager.client import Backoff, DataManager, VenueFeed
from data_manager.sim.market import Market
from data_manager.sim.simulator import sim_class
from data_manager.venues.base import BookState
from main import build_processor

ROOT = Path(__file__).resolve().parents[1]
CONFIG = load_config(ROOT / "config.yml")


def test_backoff_grows_exponentially_with_jitter_up_to_its_cap():
    backoff, rng = Backoff(base=0.5, cap=30.0), random.Random(1)
    for attempt in range(1, 40):
        ceiling = min(30.0, 0.5 * 2 ** attempt)
        delays = [backoff.delay(attempt, rng) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays), attempt
        assert len(set(delays)) > 1  # jitter: reconnecting clients do not stampede in step


def test_an_unreachable_venue_does_not_hold_up_a_reachable_one():
    async def scenario():
        sim = sim_class("gemini")(Market(3), 3, CONFIG.simulator.venues["gemini"])
        await sim.start()
        reachable = replace(CONFIG.venues["gemini"], url=sim.ws_url)
        unreachable = replace(CONFIG.venues["coinbase"], url="ws://127.0.0.1:9/")
        manager = DataManager([VenueFeed(build_processor(v), v.url, v.max_age, Backoff(0.05, 0.2))
                               for v in (reachable, unreachable)])
        manager.start()
        try:
            ready = await manager.wait_ready(1.5)
        finally:
            await manager.stop()
            await sim.close()
        assert ready == {"gemini": True, "coinbase": False}
        coinbase = manager.feeds["coinbase"]
        assert coinbase.processor.state is BookState.CONNECTING
        assert coinbase.last_error.startswith("cannot reach 127.0.0.1:9")
        assert manager.feeds["gemini"].connects == 1

    asyncio.run(scenario())


def test_kumex_without_level_3_falls_back_to_level_2_through_the_shell_and_says_so():
    async def scenario():
        sim = sim_class("kumex")(Market(5), 5, CONFIG.simulator.venues["kumex"], level3_available=False)
        await sim.start()
        venue = replace(CONFIG.venues["kumex"], url=sim.ws_url, rest_url=sim.rest_url)
        feed = VenueFeed(build_processor(venue), venue.url, venue.max_age, Backoff(0.05, 0.2))
        manager = DataManager([feed])
        manager.start()
        try:
            ready = await manager.wait_ready(5)
            processor = feed.processor
            assert ready == {"kumex": True}
            assert processor.mode_note.startswith("L2 (level 3 unavailable")
            sim.paused = True
            deadline = asyncio.get_running_loop().time() + 3
            while list(processor.book.levels(Side.BID)) != sim.true_book()["bid"]:
                assert asyncio.get_running_loop().time() < deadline, "L2 book never matched the venue's"
                await asyncio.sleep(0.02)
            assert list(processor.book.levels(Side.ASK)) == sim.true_book()["ask"]
        finally:
            await manager.stop()
            await sim.close()

    asyncio.run(scenario())


def test_a_venue_that_accepts_but_never_sends_a_book_is_dropped_and_retried():
    async def scenario():
        from websockets.asyncio.server import serve

        async def mute(ws):  # accepts the subscription, then says nothing at all
            await ws.wait_closed()

        async with serve(mute, "127.0.0.1", 0) as server:
            url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
            feed = VenueFeed(build_processor(replace(CONFIG.venues["gemini"], url=url)), url, 5.0,
                             Backoff(0.05, 0.1), no_book_after=0.6)
            task = asyncio.create_task(feed.run())
            try:
                for _ in range(150):
                    if feed.connects >= 2:
                        break
                    await asyncio.sleep(0.02)
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        assert feed.connects >= 2
        assert feed.processor.last_fault.kind == "no-book"
        assert feed.processor.resyncs >= 1 and not feed.processor.live

    asyncio.run(scenario())
