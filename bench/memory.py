"""Memory: bytes per L2 price level and per L3 order held by our books (tracemalloc).

    python3 -m bench.memory [--levels N] [--orders N] [--json]

What a book really holds is counted: the book's own structures and the price and size objects it keeps
(parsed from text by `parse.fast_level`, as the processors do), order ids included for L3. Each figure
is (traced memory with the book) - (traced memory without it), divided by the levels or orders held,
for a book loaded as a snapshot is and for one built by one update at a time (chunks grow differently).
The reference is the pure-Python ceiling's book, a `SortedDict` of binary floats (`bench.ceiling`).
Targets (issue 15): at most 150 bytes per L2 level, 300 per L3 order.
"""
from __future__ import annotations

import argparse
import gc
import random
import tracemalloc
from typing import Any, Callable

from sortedcontainers import SortedDict

from bench.common import emit, machine, table
from data_manager.book import L2Book, L3Book, Side
from data_manager.parse import fast_level

TARGETS = {"L2 level": 150, "L3 order": 300}


def traced(build: Callable[[], Any]) -> int:
    """Bytes allocated by `build()` and still held by what it returns."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = build()
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    del kept
    return after - before


def level_texts(count: int, seed: int) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """`count` bids and asks as a venue writes them: distinct cent prices around 60,000, 8-decimal sizes."""
    rng = random.Random(seed)
    ticks = rng.sample(range(1, count * 4), count)
    def side(sign: int) -> list[tuple[str, str]]:
        return [(f"{(6_000_000 + sign * t) / 100:.2f}", f"{rng.randint(100_000, 200_000_000) / 1e8:.8f}") for t in ticks]
    return side(-1), side(+1)


def l2_figures(count: int, seed: int) -> dict[str, float]:
    bids_text, asks_text = level_texts(count, seed)
    held = 2 * count

    def snapshot() -> L2Book:
        book = L2Book()
        book.replace([fast_level(p, s) for p, s in bids_text], [fast_level(p, s) for p, s in asks_text])
        return book

    def updates() -> L2Book:
        book = L2Book()
        for (bp, bs), (ap, asz) in zip(bids_text, asks_text):
            book.update((fast_level(bp, bs),), (fast_level(ap, asz),))
        return book

    def floats() -> tuple[SortedDict, SortedDict]:
        return (SortedDict({float(p): float(s) for p, s in bids_text}),
                SortedDict({float(p): float(s) for p, s in asks_text}))

    return {"L2Book, loaded as a snapshot": traced(snapshot) / held,
            "L2Book, built by updates": traced(updates) / held,
            "reference: SortedDict of floats": traced(floats) / held}


def l3_figures(orders: int, seed: int) -> dict[str, float]:
    """`orders` resting orders, about 8 a price level, KuMEX-style 24-character ids made while traced
    (they arrive with the frames: the book keeps them)."""
    rng = random.Random(seed)
    rows = []
    for n in range(orders):
        side = Side.BID if n % 2 else Side.ASK
        tick = rng.randint(1, orders // 8)
        price = f"{(600_000 + (-tick if side is Side.BID else tick)) / 10:.1f}"
        rows.append((0x607a18fa00041bb6175488e9 + n * 7919, side, price, str(rng.randint(1, 50_000))))

    def book() -> L3Book:
        held = L3Book()
        for number, side, price_text, size_text in rows:
            price, size = fast_level(price_text, size_text)
            held.add(f"{number:024x}", side, price, size)
        return held

    def ids() -> list[str]:
        return [f"{number:024x}" for number, *_ in rows]

    def floats() -> tuple[dict, SortedDict, SortedDict]:
        index: dict[str, list] = {}
        sides = {Side.BID: SortedDict(), Side.ASK: SortedDict()}
        for number, side, price_text, size_text in rows:
            price, size = float(price_text), float(size_text)
            index[f"{number:024x}"] = [side, price, size]
            sides[side][price] = sides[side].get(price, 0.0) + size
        return index, sides[Side.BID], sides[Side.ASK]

    with_ids = traced(book) / orders
    return {"L3Book (order ids included)": with_ids,
            "L3Book, less the order ids' own strings": with_ids - (traced(ids) / orders - 8),
            "reference: dict + SortedDict of floats (ids included)": traced(floats) / orders}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--levels", type=int, default=100_000, help="levels per side")
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    l2, l3 = l2_figures(args.levels, args.seed), l3_figures(args.orders, args.seed)
    target = {"L2": TARGETS["L2 level"], "L3": TARGETS["L3 order"]}
    rows = [["L2 level", name, f"{value:.0f}", "" if "reference" in name else f"<= {target['L2']}"] for name, value in l2.items()]
    rows += [["L3 order", name, f"{value:.0f}", "" if "reference" in name else f"<= {target['L3']}"] for name, value in l3.items()]
    text = (f"Memory, bytes per L2 level ({args.levels:,} per side) and per L3 order ({args.orders:,}), tracemalloc.\n\n"
            + table(["unit", "book", "bytes", "target"], rows))
    emit(args.json, {"benchmark": "memory", "machine": machine(), "levels_per_side": args.levels,
                     "orders": args.orders, "bytes_per_level": l2, "bytes_per_order": l3, "targets": TARGETS}, text)


if __name__ == "__main__":
    main()
