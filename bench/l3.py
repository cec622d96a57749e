"""L3: KuMEX level3v2 events per second through `KumexProcessor` into its `L3Book`.

    python3 -m bench.l3 [--events N] [--rounds N] [--json]

The input is the simulator's matching engine (`data_manager/sim/l3_engine.py`): its level-3 REST snapshot,
then `N` level3v2 events pre-rendered to the text frames the venue sends (received, open, update, match,
done, in the engine's proportions). A round builds a fresh processor, has it ask for and load the snapshot
(not timed), then times `receive(text)` for every event, twice: reading nothing, and reading the best bid
and ask after every event (`processor.best`, sizes converted to BTC as readers get them). The processor's
book must equal the engine's afterwards. Figures are medians over rounds.
"""
from __future__ import annotations

import argparse
import json
import random
import time
from decimal import Decimal

from bench.common import emit, machine, median, table
from data_manager.book import Side
from data_manager.sim.l3_engine import L3Engine
from data_manager.venues.kumex import KumexProcessor

MID = Decimal(60_000)


def engine_input(events: int, seed: int) -> tuple[str, list[str], L3Engine]:
    """(snapshot body, event frames, engine): the REST answer, then at least `events` frames that
    follow it, and the engine (whose book is the book after the last frame)."""
    engine = L3Engine(random.Random(seed), MID, levels=300)
    snapshot = json.dumps({"code": "200000", "data": engine.snapshot()})
    frames = engine.events(events)
    return snapshot, frames, engine


def synced_processor(snapshot: str, first: str) -> KumexProcessor:
    """A processor past welcome and snapshot, as the shell leaves it: `first` is buffered, then replayed."""
    processor = KumexProcessor(connect_id="bench")
    processor.reset()
    processor.receive('{"id":"bench","type":"welcome"}')
    processor.receive(first)
    if processor.snapshot_request() is None:
        raise RuntimeError("the processor did not ask for a snapshot")
    processor.load_snapshot(snapshot)
    return processor


def one_round(snapshot: str, frames: list[str], read_bbo: bool) -> float:
    """Seconds to receive frames[1:] (frames[0] went in before the snapshot)."""
    processor = synced_processor(snapshot, frames[0])
    receive, best = processor.receive, processor.best
    bid, ask = Side.BID, Side.ASK
    rest = frames[1:]
    t0 = time.perf_counter()
    if read_bbo:
        for text in rest:
            receive(text)
            best(bid)
            best(ask)
    else:
        for text in rest:
            receive(text)
    seconds = time.perf_counter() - t0
    if not processor.live:
        raise RuntimeError("the book is not live after the replay")
    return seconds


def check_book(snapshot: str, frames: list[str], engine: L3Engine) -> None:
    processor = synced_processor(snapshot, frames[0])
    for text in frames[1:]:
        processor.receive(text)
    processor.book.check()
    for side in Side:
        held = [(price, [(o.order_id, o.size) for o in processor.book.orders_at(side, price)])
                for price, _ in processor.book.levels(side)]
        if held != engine.book_orders(side.value):
            raise RuntimeError(f"{side.value} book differs from the engine's")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    snapshot, frames, engine = engine_input(args.events, args.seed)
    check_book(snapshot, frames, engine)
    events = len(frames) - 1
    subjects: dict[str, int] = {}
    for text in frames:
        subject = json.loads(text)["subject"]
        subjects[subject] = subjects.get(subject, 0) + 1
    rates = {"book only": [], "best bid+ask read after every event": []}
    for _ in range(args.rounds):
        rates["book only"].append(events / one_round(snapshot, frames, read_bbo=False))
        rates["best bid+ask read after every event"].append(events / one_round(snapshot, frames, read_bbo=True))
    result = {name: median(values) for name, values in rates.items()}
    orders = len(engine.orders)
    payload = {"benchmark": "l3", "events": events, "rounds": args.rounds, "subjects": subjects,
               "levels_per_side": {s: engine.depth(s) for s in ("bid", "ask")}, "orders": orders,
               "events_per_second": result, "machine": machine()}
    text = (f"KuMEX L3, events/s (median of {args.rounds} rounds), {events:,} level3v2 events after a "
            f"snapshot; book of {engine.depth('bid')}/{engine.depth('ask')} levels, {orders:,} orders.\n"
            f"Events: {', '.join(f'{k} {v:,}' for k, v in sorted(subjects.items()))}.\n\n"
            + table(["variant", "events/s", "µs/event"],
                    [[name, rate, 1e6 / rate] for name, rate in result.items()]))
    emit(args.json, payload, text)


if __name__ == "__main__":
    main()
