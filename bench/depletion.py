"""Depletion: microseconds per walk of a book, one venue and four merged, at 1k to 100k levels per side.

    python3 -m bench.depletion [--json] [--samples N]

A sample is one `deplete_liquidity` (or `deplete_merged`) call over `book.levels(side)` of real
`L2Book`s (what `processor.levels` returns for an L2 venue), plus reading the answer's `vwap` (a walk is
asked for its price). Before every sample the book gets an update that adds or removes a level
(alternately, beyond the deepest level so every walk consumes the same levels), so nothing cached from
the previous walk could help. Books are loaded as a snapshot is (one message, best level first), with
distinct random cent prices and sizes of 0.001 to 2 BTC. Sizes are chosen so that exactly 10, 100 or
1,000 levels are consumed (the last one partly). Buy walks the asks, sell the bids; the figure is the
median over samples.

The reference (`../shared/perf/README.md`, "Depletion"): the same levels as binary floats in a plain
`SortedDict` side, walked best first until filled, the last level partly, the VWAP out; issue 15's
target is a 10-level walk within 1.2x of it, and walks flat from 1k to 100k levels.
"""
from __future__ import annotations

import argparse
import random
import time
from decimal import Decimal
from typing import Callable

from sortedcontainers import SortedDict

from bench.common import emit, machine, median, table
from data_manager.book import L2Book, Side
from l2_manager.depletion import Action, consumed_side, deplete_liquidity, deplete_merged

BOOK_LEVELS = (1_000, 10_000, 100_000)
CONSUMED = (10, 100, 1_000)
MERGED_BOOKS = 4
MERGED_CONSUMED = 100
MID = 50_000_00  # in cents
TARGETS = {"100 levels (µs)": 20.0, "1,000 levels (µs)": 200.0, "merged 4 x 100 levels (µs)": 45.0,
           "flat from 1k to 100k (max/min)": 1.2, "10 levels / float SortedDict walk": 1.2}
"""The issue's targets; each figure is the worse of buy and sell, and of the three book sizes."""


def make_book(levels: int, rng: random.Random, offset: Decimal = Decimal(0)) -> L2Book:
    """`levels` per side at distinct random cent prices around MID (+ `offset`), sizes 0.001 to 2 BTC
    (8 decimals), loaded as a snapshot is: one message, best level first."""
    book = L2Book()
    spread = levels * 4
    def side(sign: int) -> list[tuple[Decimal, Decimal]]:
        ticks = sorted(rng.sample(range(1, spread), levels))
        return [(Decimal(MID + sign * tick).scaleb(-2) + offset, Decimal(rng.randint(100_000, 200_000_000)).scaleb(-8))
                for tick in ticks]
    book.replace(side(-1), side(+1))
    return book


class Churn:
    """One book change per call: alternately adds a level at a fresh price beyond the deepest one (so the
    walks still consume the same levels) and removes it again."""

    def __init__(self, book: L2Book, rng: random.Random) -> None:
        self.book, self.rng, self.added = book, rng, None
        self.deepest = {side: list(book.levels(side))[-1][0] for side in Side}

    def __call__(self) -> None:
        if self.added is not None:
            self.book.apply(*self.added, Decimal(0))
            self.added = None
            return
        side = self.rng.choice((Side.BID, Side.ASK))
        offset = Decimal(self.rng.randint(1, 99)).scaleb(-4)  # between cents: never an existing price
        price = self.deepest[side] - offset if side is Side.BID else self.deepest[side] + offset
        self.added = (side, price)
        self.book.apply(side, price, Decimal("0.5"))


def size_for(levels: list[tuple[Decimal, Decimal]], consumed: int) -> Decimal:
    """An order that takes `consumed` levels, half of the last one."""
    top = levels[:consumed]
    return sum((s for _, s in top[:-1]), Decimal(0)) + top[-1][1] / 2


def timed(samples: int, before: Callable[[], None], call: Callable[[], object]) -> float:
    """Median µs of `call()` (with its `vwap` read), each right after `before()`; a few untimed calls
    first, so the figures do not depend on which configuration runs first."""
    for _ in range(samples // 5):
        before()
        call().vwap
    times = []
    clock = time.perf_counter
    for _ in range(samples):
        before()
        t0 = clock()
        result = call()
        result.vwap
        times.append(clock() - t0)
    return median(times) * 1e6


class FloatWalk:
    """The reference walk's answer (only its VWAP is read)."""

    __slots__ = ("vwap",)

    def __init__(self, vwap: float) -> None:
        self.vwap = vwap


def float_walk(side: SortedDict, bids: bool, size: float) -> FloatWalk:
    """The reference: best first over a float `SortedDict` side until `size` is filled."""
    left, notional = size, 0.0
    for price in (reversed(side) if bids else side):   # keys + dict lookups: a reversed items view is slow
        available = side[price]
        take = available if available < left else left
        notional += price * take
        left -= take
        if left <= 0:
            break
    return FloatWalk(notional / (size - left))


def single(samples: int, rng: random.Random) -> dict:
    out = {}
    for levels in BOOK_LEVELS:
        book = make_book(levels, rng)
        churn = Churn(book, rng)
        floats = {side: SortedDict({float(p): float(q) for p, q in book.levels(side)}) for side in Side}
        row = {}
        for action in (Action.BUY, Action.SELL):
            side = consumed_side(action)
            for consumed in CONSUMED:
                size = size_for(book.top(side, consumed), consumed)
                def call(action=action, side=side, size=size):
                    return deplete_liquidity("v", action, size, book.levels(side))
                def reference(side=side, size=float(size)):
                    return float_walk(floats[side], side is Side.BID, size)
                assert call().levels_consumed == consumed
                n = samples if consumed < 1000 else max(20, samples // 5)
                row[f"{action.value} {consumed}"] = timed(n, churn, call)
                row[f"{action.value} {consumed} float"] = timed(n, churn, reference)
        out[levels] = row
    return out


def merged(samples: int, rng: random.Random) -> dict:
    out = {}
    for levels in BOOK_LEVELS:
        # a tenth of a cent apart, so no two venues share a price (ties would make the count ambiguous)
        books = {f"venue{i}": make_book(levels, rng, Decimal(i).scaleb(-3)) for i in range(MERGED_BOOKS)}
        churns = [Churn(book, rng) for book in books.values()]
        def churn() -> None:
            rng.choice(churns)()
        row = {}
        for action in (Action.BUY, Action.SELL):
            side = consumed_side(action)
            tops = sorted((level for book in books.values() for level in book.top(side, MERGED_CONSUMED)),
                          reverse=side is Side.BID)
            size = size_for(tops, MERGED_CONSUMED)
            def call(action=action, side=side, size=size):
                return deplete_merged(action, size, {name: book.levels(side) for name, book in books.items()})
            assert call().levels_consumed == MERGED_CONSUMED
            row[action.value] = timed(samples, churn, call)
        out[levels] = row
    return out


def verdict(single_rows: dict, merged_rows: dict) -> dict:
    walk100 = [max(r["buy 100"], r["sell 100"]) for r in single_rows.values()]
    versus_float = [r[f"{a} 10"] / r[f"{a} 10 float"] for r in single_rows.values() for a in ("buy", "sell")]
    walk1000 = [max(r["buy 1000"], r["sell 1000"]) for r in single_rows.values()]
    merged100 = [max(r.values()) for r in merged_rows.values()]
    got = {"100 levels (µs)": max(walk100), "1,000 levels (µs)": max(walk1000),
           "merged 4 x 100 levels (µs)": max(merged100),
           "flat from 1k to 100k (max/min)": max(max(walk100) / min(walk100), max(merged100) / min(merged100)),
           "10 levels / float SortedDict walk": max(versus_float)}
    return {name: {"got": got[name], "target": TARGETS[name], "ok": got[name] <= TARGETS[name]} for name in TARGETS}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=301)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    single_rows = single(args.samples, rng)
    merged_rows = merged(args.samples, rng)
    checks = verdict(single_rows, merged_rows)
    payload = {"benchmark": "depletion", "unit": "µs per call, vwap read", "samples": args.samples,
               "machine": machine(), "single": single_rows, "merged": merged_rows, "targets": checks}
    emit(args.json, payload, render(single_rows, merged_rows, checks, args.samples))


def render(single_rows: dict, merged_rows: dict, checks: dict, samples: int) -> str:
    heads = [f"{a} {c}" for a in ("buy", "sell") for c in CONSUMED]
    floats = table(["levels per side"] + [f"{h} levels" for h in heads],
                   [[f"{n:,}"] + [r[f"{h} float"] for h in heads] for n, r in single_rows.items()])
    one = table(["levels per side"] + [f"{h} levels" for h in heads],
                [[f"{n:,}"] + [r[h] for h in heads] for n, r in single_rows.items()])
    four = table(["levels per book", f"buy {MERGED_CONSUMED} merged", f"sell {MERGED_CONSUMED} merged"],
                 [[f"{n:,}", r["buy"], r["sell"]] for n, r in merged_rows.items()])
    goals = table(["target", "got", "limit", "ok"],
                  [[name, f'{c["got"]:.2f}', f'{c["target"]:.2f}', "yes" if c["ok"] else "NO"]
                   for name, c in checks.items()])
    return (f"Depletion, µs per call (vwap read), median of {samples} samples, each right after an update "
            f"that added or removed a level.\n\nOne book, `deplete_liquidity`:\n\n{one}\n\n"
            f"The reference, a float `SortedDict` side walked in plain Python:\n\n{floats}\n\n"
            f"{MERGED_BOOKS} books merged, `deplete_merged`:\n\n{four}\n\n{goals}")


if __name__ == "__main__":
    main()
