"""Render cost: a walk of 1,000 levels must render as fast as one of 12 (only the rows shown are built).

    python3 -m bench.render [--json] [--rounds N]

Two answers, built once from the same kind of book (one venue, four merged, the level table showing the
default 12 rows): one whose walk consumes 12 levels per venue, one whose walk consumes 1,000. Each round
renders both the way the CLI does (the whole answer into an 80-column console, no colour) and times
them; the figure is the median over rounds, and the target is a ratio of at most 1.5 (the large walk's
numbers are wider and the merged walk's venue list is longer; nothing else may grow with it).
Building the answer (the walks) is not timed: bench.depletion measures that.
"""
from __future__ import annotations

import argparse
import io
import time
from decimal import Decimal

from rich.console import Console

from bench.common import emit, machine, median, table
from data_manager.book import L2Book
from data_manager.feed import BookView, FeedBook, FeedKey, FeedState, Health
from data_manager.symbols import Symbol
from l2_manager.answer import build_answer
from l2_manager.depletion import Action
from l2_manager.fees import VenueTerms
from l2_manager.render import render

VENUES = ("alpha", "beta", "gamma", "delta")
LEVEL_SIZE = Decimal("0.01")
TARGET_RATIO = 1.5


def live_view(venue: str, levels: int, offset: int) -> BookView:
    """A live book of `levels` bids of 0.01 BTC each, a cent apart (each venue offset by a tenth of a
    cent so the merged walk interleaves them), and one ask."""
    key = FeedKey(venue, "BTC-USD")
    health = Health(key, lambda action: None)
    book = L2Book()
    top = Decimal("60000.00") + Decimal(offset) / 1000
    book.replace([(top - Decimal(i) / 100, LEVEL_SIZE) for i in range(levels)], [(top + 1, Decimal(1))])
    health.to(FeedState.SYNCING, 0.0)
    health.to(FeedState.LIVE, 0.0)
    return BookView(FeedBook(key, venue, book, health), "spot", Symbol("BTC", "USD"))


def answer_for(consumed: int):
    """Every venue's walk consumes `consumed` levels; the merged walk 4 x `consumed` / 4."""
    views = [live_view(venue, consumed + 10, offset) for offset, venue in enumerate(VENUES)]
    size = LEVEL_SIZE * consumed
    terms = {venue: VenueTerms(Decimal("0.004"), "config") for venue in VENUES}
    return build_answer(Action.SELL, [size], views, "bench", now=0.0, terms=terms)


def render_once(answer) -> float:
    console = Console(file=io.StringIO(), width=80, color_system=None)
    started = time.perf_counter()
    render(answer, console, 12)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--rounds", type=int, default=31)
    args = parser.parse_args()
    small, large = answer_for(12), answer_for(1000)
    assert large.answers[0].venues[0].cost.walk.levels_consumed == 1000
    timings: dict[str, list[float]] = {"12 levels": [], "1,000 levels": []}
    for _ in range(args.rounds):  # interleaved, so machine noise hits both alike
        timings["12 levels"].append(render_once(small))
        timings["1,000 levels"].append(render_once(large))
    ms = {name: median(values) * 1000 for name, values in timings.items()}
    ratio = ms["1,000 levels"] / ms["12 levels"]
    rows = [[name, f"{value:.2f}"] for name, value in ms.items()]
    rows.append(["ratio (1,000 / 12)", f"{ratio:.2f}"])
    text = (f"Render, ms per answer (median of {args.rounds}), 4 venues + merged, 12 rows shown per tree, 80 columns.\n\n"
            + table(["walk per venue", "ms"], rows)
            + f"\n\ntarget: ratio <= {TARGET_RATIO}: {'yes' if ratio <= TARGET_RATIO else 'NO'}")
    emit(args.json, {"machine": machine(), "ms": ms, "ratio": ratio, "target": TARGET_RATIO}, text)


if __name__ == "__main__":
    main()
