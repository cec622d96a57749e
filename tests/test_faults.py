"""Fault injection end to end: the simulator breaks a feed on purpose, the real shell and processor must
notice it with the right kind, resync, and end on exactly the simulator's own book.

Each case runs the production pieces only: `VenueFeed` (the asyncio shell) driving the venue's processor
over a real socket to the venue's simulator.
"""
import asyncio
import time
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from config import load_config
from data_manager.book import Side
from data_manager.client import Backoff, VenueFeed
from data_manager.sim.market import Market
from data_manager.sim.server import FaultPlan
from data_manager.sim.simulator import sim_class
from data_manager.venues.base import BookState
from l2_manager.answer import build_answer
from l2_manager.depletion import Action
from main import build_processor

ROOT = Path(__file__).resolve().parents[1]
CONFIG = load_config(ROOT / "config.yml")
SEED = 11

# (venue, fault) -> the fault kind the client must report; None: harmless, the book must stay exact.
CASES = {
    ("kraken", "checksum"): "checksum",
    ("kraken", "drop"): "checksum",          # Kraken has no sequence: the next checksum catches it
    ("kraken", "crossed"): "crossed",
    ("kraken", "garbage"): "malformed",
    ("kraken", "disconnect"): "disconnect",
    ("kraken", "silence"): "stale",
    ("kraken", "duplicate"): None,           # absolute sizes: applying an update twice changes nothing
    ("coinbase", "gap"): "gap",
    ("coinbase", "drop"): "gap",
    ("coinbase", "duplicate"): "gap",        # a repeated sequence_num is a fault too
    ("coinbase", "crossed"): "crossed",
    ("coinbase", "garbage"): "malformed",
    ("coinbase", "disconnect"): "disconnect",
    ("coinbase", "silence"): "stale",
    ("gemini", "crossed"): "crossed",
    ("gemini", "garbage"): "malformed",
    ("gemini", "disconnect"): "disconnect",
    ("gemini", "silence"): "stale",
    ("gemini", "duplicate"): None,
    ("kumex", "gap"): "gap",
    ("kumex", "drop"): "gap",
    ("kumex", "crossed"): "crossed",
    ("kumex", "garbage"): "malformed",
    ("kumex", "disconnect"): "disconnect",
    ("kumex", "silence"): "stale",
    ("kumex", "duplicate"): None,            # sequence <= last is skipped, as the docs say
}


async def _until(predicate, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def _client_levels(processor, side: Side):
    return list(processor.book.levels(side))


def _books_equal(processor, sim) -> bool:
    truth = sim.true_book()
    depth = getattr(processor, "depth", None)
    for side in Side:
        expected = truth[side.value][:depth] if depth else truth[side.value]
        if _client_levels(processor, side) != expected:
            return False
    if processor.book_kind == "L3":
        for side in Side:
            for price, orders in sim.true_orders()[side.value]:
                got = [(o.order_id, o.size) for o in processor.book.orders_at(side, price)]
                if got != list(orders):
                    return False
    return True


class Running:
    """One simulated venue and the real client feeding one processor from it."""

    def __init__(self, venue: str, faults: tuple[FaultPlan, ...], max_age: float = 5.0, rate: float = 80) -> None:
        settings = replace(CONFIG.simulator.venues[venue], rate=rate, faults=faults)
        self.sim = sim_class(venue)(Market(SEED), SEED, settings)
        self.venue, self.max_age = venue, max_age

    async def __aenter__(self):
        await self.sim.start()
        config = replace(CONFIG.venues[self.venue], url=self.sim.ws_url, max_age=self.max_age,
                         rest_url=getattr(self.sim, "rest_url", None) or CONFIG.venues[self.venue].rest_url)
        self.processor = build_processor(config)
        self.feed = VenueFeed(self.processor, config.url, config.max_age, Backoff(base=0.05, cap=0.2))
        self.task = asyncio.create_task(self.feed.run())
        return self

    async def __aexit__(self, *exc):
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        await self.sim.close()

    async def settle_and_compare(self) -> None:
        """Stop the flow, let the client drain what is in flight, and require the exact same book."""
        await _until(lambda: self.processor.live, 8, f"{self.venue} live again")
        self.sim.paused = True
        await _until(lambda: _books_equal(self.processor, self.sim), 5, f"{self.venue} book equal to the venue's")
        self.processor.book.check()


def _run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


@pytest.mark.parametrize("venue, kind", sorted(CASES), ids=[f"{v}-{k}" for v, k in sorted(CASES)])
def test_fault_is_detected_resynced_and_book_is_exact(venue, kind):
    expected = CASES[(venue, kind)]

    async def scenario():
        max_age = 1.0 if kind == "silence" else 5.0
        async with Running(venue, (FaultPlan(kind, after=3),), max_age=max_age) as run:
            if expected is None:
                await _until(lambda: run.processor.integrity.messages > 10, 8, "messages after the fault")
                await run.settle_and_compare()
                assert run.processor.last_fault is None and run.processor.resyncs == 0
                return
            await _until(lambda: run.processor.last_fault is not None, 10, f"{venue} to notice {kind}")
            fault = run.processor.last_fault
            assert fault.kind == expected, f"{venue} {kind}: reported {fault.kind}: {fault.detail}"
            assert run.processor.resyncs >= 1
            await run.settle_and_compare()
            assert run.processor.state is BookState.LIVE

    _run(scenario())


def test_kumex_deltas_buffered_during_a_slow_snapshot_are_applied_exactly_once():
    """The resync snapshot is answered 1.5 s late: every delta that arrived meanwhile is buffered, those the
    snapshot covers are dropped, the rest replayed once (an order opened twice would fail the L3 book)."""

    async def scenario():
        faults = (FaultPlan("slow-snapshot", after=1), FaultPlan("gap", after=4))
        async with Running("kumex", faults) as run:
            await _until(lambda: run.processor.last_fault is not None, 10, "the gap")
            assert run.processor.last_fault.kind == "gap"
            await _until(lambda: run.processor.live, 8, "live after the slow snapshot")
            assert run.sim.snapshots_served >= 2
            await run.settle_and_compare()
            assert run.processor.resyncs == 1

    _run(scenario())


def test_the_merged_answer_excludes_a_venue_while_it_is_faulty():
    async def scenario():
        async with Running("coinbase", ()) as healthy, \
                Running("gemini", (FaultPlan("silence", after=3),), max_age=1.0) as silent:
            await _until(lambda: silent.processor.state is BookState.STALE, 8, "gemini stale")
            processors = {"coinbase": healthy.processor, "gemini": silent.processor}
            answer = build_answer(Action.SELL, Decimal("1"), processors, "sim")
            status = {s.name: s for s, _ in answer.venues}
            assert status["coinbase"].included and not status["gemini"].included
            assert status["gemini"].state == "stale"
            assert {fill.venue for fill in answer.merged.fills} == {"coinbase"}
            assert answer.merged.filled == Decimal("1")

    _run(scenario())


def test_a_gemini_reconnect_never_keeps_a_level_the_new_book_lacks():
    async def scenario():
        async with Running("gemini", (FaultPlan("disconnect", after=3),)) as run:
            await _until(lambda: run.feed.connects >= 2 and run.processor.live, 10, "the second connection")
            await run.settle_and_compare()  # exact equality: no ghost level survived the reconnect

    _run(scenario())
