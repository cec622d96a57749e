"""L3: order events per second into the level-3 book (KuMEX level3v2, Bitstamp live_orders).

    python3 -m bench.l3 [--events N] [--rounds N] [--json]

The input is each simulator's own matching engine (`bench.streams.kumex(3)`, `bench.streams.bitstamp`):
its REST snapshot and N events as the text frames the venue sends, in the engine's proportions. Each
pass builds a fresh processor through the registry, connects it (`bench.shell.BenchShell`: token,
welcome and acks untimed), and times every frame after the snapshot is in: `receive(text)`, actions
drained (OrderEvent and BookChanged included), twice: reading nothing, and reading the best bid and
ask (in base units) after every change. Before timing, one replay's books are compared with the
engine's order by order. Targets (issue 15): 250,000 events/s book only, 180,000 with the read.
"""
from __future__ import annotations

import argparse
from typing import Any

from bench import streams
from bench.common import emit, interleaved, machine, median, table
from bench.shell import BenchShell, one_pass
from bench.streams import Stream
from data_manager import parse
from data_manager.book import Side

TARGETS = {"book only": 250_000, "best bid+ask read after every event": 180_000}


def check_books(stream: Stream) -> None:
    """The processor's book after the whole stream equals the engine's, order by order."""
    shell = BenchShell(stream).connect()
    shell.play(stream.frames)
    shell.check_live()
    book = next(iter(shell.processor.books.values())).book
    book.check()
    if stream.venue == "kumex":
        engine = stream.extra["engine"]
        truth = {side: engine.book_orders(side.value) for side in Side}
    else:
        flow = stream.extra["flow"]
        truth = {side: list(flow.queue_orders(0 if side is Side.BID else 1).items()) for side in Side}
    for side in Side:
        held = [(price, [(o.order_id, o.size) for o in book.orders_at(side, price)]) for price, _ in book.levels(side)]
        if held != truth[side]:
            raise RuntimeError(f"{stream.venue}: the {side.value} book differs from the engine's")


def measure(stream: Stream, rounds: int) -> dict[str, Any]:
    check_books(stream)
    variants = {name: (lambda read=read: one_pass(stream, read_bbo=read))
                for name, read in (("book only", False), ("best bid+ask read after every event", True))}
    passes = interleaved(variants, rounds)
    steady = len(stream.steady)
    return {"events": steady, "input": stream.notes,
            "events_per_second": {name: median([steady / s for _, s in runs]) for name, runs in passes.items()}}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    results = {"kumex": measure(streams.kumex(3, args.events, args.seed), args.rounds),
               "bitstamp": measure(streams.bitstamp(args.events, args.seed), args.rounds)}
    rows = []
    for venue, result in results.items():
        for name, rate in result["events_per_second"].items():
            rows.append([venue, name, rate, 1e6 / rate, f"{TARGETS[name]:,}", "yes" if rate >= TARGETS[name] else "NO"])
    text = (f"L3 events/s into the book (median of {args.rounds} interleaved rounds), decoder "
            f"{parse.decoder_name()}; inputs: " + "; ".join(f"{v}: {r['input']}" for v, r in results.items())
            + "\n\n" + table(["venue", "variant", "events/s", "µs/event", "target", "ok"], rows))
    emit(args.json, {"benchmark": "l3", "rounds": args.rounds, "decoder": parse.decoder_name(),
                     "machine": machine(), "venues": results, "targets": TARGETS}, text)


if __name__ == "__main__":
    main()
