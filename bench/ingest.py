"""Ingest: recorded captures replayed from memory through our processors and through cryptofeed's.

    python3 -m bench.ingest [--checksum] [--rounds N] [--json]

What is measured, per venue, in messages per second on one core (no network, no event loop for ours):
each received frame of the capture goes to `processor.receive(text)`, then the best bid and ask of that
book are read (`processor.best(side)`), as any consumer of the book does. "all" is the whole capture,
"steady" the frames after the last full book (snapshot).

Fairness, so that the ratio means something:
- Same order flow: cryptofeed's Kraken feed speaks WS v1, ours v2, so cryptofeed reads
  `kraken_v1_book_depth1000_2021-04-17.jsonl` and we read its v2 conversion (same updates, one extra
  `instrument` frame). Both use depth 1000. Gemini: both read `gemini_v2_l2_2021-06-24.jsonl`.
- One processor per pair: a capture holds 10 pairs on one connection, ours keep one symbol each (as
  they would on a single-pair connection). The frame's pair is found before timing (a list index per
  frame); the instrument frame goes to every Kraken processor, connection-level frames (status,
  heartbeats) to the first one.
- Coinbase's `sequence_num` counts every frame of a connection; each product's frames are renumbered
  so each product reads as its own connection would deliver it (cryptofeed has no Coinbase Advanced
  Trade rival in `cryptofeed_baseline`, so Coinbase shows our figure only).
- Checksums: cryptofeed validates Kraken's CRC32 only with `checksum_validation=True` (off by
  default). Without `--checksum` ours runs `verify_checksums=False` and cryptofeed its default; with
  `--checksum` both verify every book message.
- Rounds interleave ours and cryptofeed's (alternating who goes first); rates are medians over rounds
  and the ratio is the median of the per-round ratios. A round repeats a short capture (Gemini) until
  it takes about 0.2 s. Every pass starts after `gc.collect()`, the collector staying on during it.
"""
from __future__ import annotations

import argparse
import gc
import json
import re
import sys
import time
from dataclasses import dataclass
from typing import Callable

from bench.common import CAPTURES, PERF, emit, machine, median, table
from data_manager.book import Side
from data_manager.venues.base import VenueProcessor
from data_manager.venues.coinbase import CoinbaseProcessor
from data_manager.venues.gemini import GeminiProcessor
from data_manager.venues.kraken import KrakenProcessor

KRAKEN_V2 = CAPTURES / "kraken_v2_book_depth1000_2021-04-17.ndjson"
GEMINI_V2 = CAPTURES / "gemini_v2_l2_2021-06-24.jsonl"
COINBASE_AT = CAPTURES / "coinbase_advanced_level2_2021-04-17.ndjson"
KRAKEN_DEPTH = 1000
ROUND_SECONDS = 0.2


@dataclass
class Replay:
    """One venue's capture, ready to replay: frames, who gets each one, where the steady part starts."""

    venue: str
    symbols: list[str]
    frames: list[tuple[int, str]]       # (processor index, text); a frame for all pairs appears once per pair
    messages: int                       # received frames in the capture
    steady_from: int                    # index into `frames`
    steady_messages: int
    make: Callable[[str, bool], VenueProcessor]


def _symbol_in(text: str, key: str) -> str | None:
    """The first `"key":"value"` of a frame's text, without parsing it (routing is not what we time)."""
    at = text.find(f'"{key}":"')
    if at < 0:
        return None
    start = at + len(key) + 4
    return text[start:text.index('"', start)]


def kraken_replay() -> Replay:
    texts = KRAKEN_V2.read_text().splitlines()
    symbols = sorted({s for t in texts if t.startswith('{"channel":"book"') and (s := _symbol_in(t, "symbol"))})
    index = {s: i for i, s in enumerate(symbols)}
    frames, steady_from, steady_messages = [], 0, 0
    for text in texts:
        if text.startswith('{"channel":"instrument"'):
            frames.extend((i, text) for i in range(len(symbols)))
            continue
        symbol = _symbol_in(text, "symbol")
        frames.append((index.get(symbol, 0), text))
        if text.startswith('{"channel":"book","type":"snapshot"'):
            steady_from = len(frames)
    steady_messages = len(frames) - steady_from
    return Replay("kraken", symbols, frames, len(texts), steady_from, steady_messages,
                  lambda symbol, checksum: KrakenProcessor(symbol, depth=KRAKEN_DEPTH, verify_checksums=checksum))


def gemini_replay() -> Replay:
    texts = [rec["data"] for rec in map(json.loads, GEMINI_V2.read_text().splitlines()) if rec["dir"] == "in"]
    symbols = sorted({s for t in texts if t.startswith('{"type":"l2_updates"') and (s := _symbol_in(t, "symbol"))})
    index = {s: i for i, s in enumerate(symbols)}
    frames, seen, steady_from = [], set(), 0
    for text in texts:
        symbol = _symbol_in(text, "symbol")
        frames.append((index.get(symbol, 0), text))
        if text.startswith('{"type":"l2_updates"') and symbol not in seen:  # first one = whole book
            seen.add(symbol)
            steady_from = len(frames)
    return Replay("gemini", symbols, frames, len(texts), steady_from, len(frames) - steady_from,
                  lambda symbol, checksum: GeminiProcessor(symbol))


_SEQUENCE = re.compile(r'"sequence_num":\d+')


def coinbase_replay() -> Replay:
    texts = COINBASE_AT.read_text().splitlines()
    symbols = sorted({s for t in texts if (s := _symbol_in(t, "product_id"))})
    index = {s: i for i, s in enumerate(symbols)}
    counters = [0] * len(symbols)
    frames, steady_from = [], 0
    for text in texts:
        i = index.get(_symbol_in(text, "product_id"), 0)
        text = _SEQUENCE.sub(f'"sequence_num":{counters[i]}', text, count=1)
        counters[i] += 1
        frames.append((i, text))
        if '"type":"snapshot"' in text:
            steady_from = len(frames)
    return Replay("coinbase", symbols, frames, len(texts), steady_from, len(frames) - steady_from,
                  lambda symbol, checksum: CoinbaseProcessor(symbol))


def ours_pass(replay: Replay, checksum: bool) -> tuple[float, float]:
    """One pass over the whole capture with fresh processors: (seconds all, seconds steady)."""
    processors = [replay.make(symbol, checksum) for symbol in replay.symbols]
    for processor in processors:
        processor.reset()
    frames = replay.frames
    bid, ask = Side.BID, Side.ASK
    t0 = time.perf_counter()
    for i, text in frames[:replay.steady_from]:
        processor = processors[i]
        processor.receive(text)
        processor.best(bid)
        processor.best(ask)
    t1 = time.perf_counter()
    for i, text in frames[replay.steady_from:]:
        processor = processors[i]
        processor.receive(text)
        processor.best(bid)
        processor.best(ask)
    t2 = time.perf_counter()
    if any(not p.live for p in processors):
        raise RuntimeError(f"{replay.venue}: a book is not live after the replay")
    return t2 - t0, t2 - t1


def _rival(venue: str, checksum: bool):
    """cryptofeed's feed handler over its capture (shared/perf/cryptofeed_baseline.py, used as-is)."""
    if str(PERF) not in sys.path:
        sys.path.insert(0, str(PERF))
    import cryptofeed_baseline as cf
    frames = cf.load_frames(venue)
    run = cf.runner(venue, read_bbo=True, checksum=checksum and venue == "kraken")
    steady = len(frames) - cf.steady_start(venue, frames)
    return frames, run, steady


def collected(one_pass: Callable, *args: object) -> tuple[float, float]:
    """A pass that starts with no garbage left over from the previous one (the garbage collector stays
    on during the pass, as in production)."""
    gc.collect()
    return one_pass(*args)


def _repeats(seconds_per_pass: float) -> int:
    return max(1, round(ROUND_SECONDS / max(seconds_per_pass, 1e-6)))


def measure(replay: Replay, checksum: bool, rounds: int, rival: bool) -> dict:
    """Interleaved rounds of ours and (if any) cryptofeed's; medians of rates and of per-round ratios."""
    rival_frames = run = None
    if rival:
        rival_frames, run, rival_steady = _rival(replay.venue, checksum)
        rival_repeats = _repeats(run(rival_frames)[0])   # also warms cryptofeed up
    our_repeats = _repeats(ours_pass(replay, checksum)[0])
    ours, theirs, ratios = [], [], []

    def our_round() -> tuple[float, float]:
        passes = [collected(ours_pass, replay, checksum) for _ in range(our_repeats)]
        return (replay.messages * our_repeats / sum(a for a, _ in passes),
                replay.steady_messages * our_repeats / sum(s for _, s in passes))

    def their_round() -> tuple[float, float]:
        passes = [collected(run, rival_frames) for _ in range(rival_repeats)]
        return (len(rival_frames) * rival_repeats / sum(a for a, _ in passes),
                rival_steady * rival_repeats / sum(s for _, s in passes))

    for n in range(rounds):
        if rival and n % 2:
            theirs.append(their_round())
            ours.append(our_round())
        else:
            ours.append(our_round())
            if rival:
                theirs.append(their_round())
        if rival:
            ratios.append((ours[-1][0] / theirs[-1][0], ours[-1][1] / theirs[-1][1]))
    result = {
        "messages": replay.messages, "steady_messages": replay.steady_messages, "pairs": len(replay.symbols),
        "ours": {"all": median([a for a, _ in ours]), "steady": median([s for _, s in ours])},
    }
    if rival:
        result["cryptofeed"] = {"all": median([a for a, _ in theirs]), "steady": median([s for _, s in theirs]),
                                "messages": len(rival_frames), "steady_messages": rival_steady}
        result["ratio"] = {"all": median([a for a, _ in ratios]), "steady": median([s for _, s in ratios])}
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checksum", action="store_true",
                        help="Kraken: verify the CRC32 on every book message (ours and cryptofeed's)")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--venue", choices=("kraken", "gemini", "coinbase"), action="append",
                        help="only these venues (default: all three)")
    parser.add_argument("--no-rival", action="store_true", help="skip cryptofeed (ours only)")
    args = parser.parse_args(argv)
    venues = args.venue or ["kraken", "gemini", "coinbase"]
    builders = {"kraken": kraken_replay, "gemini": gemini_replay, "coinbase": coinbase_replay}
    results = {}
    for venue in venues:
        rival = not args.no_rival and venue in ("kraken", "gemini")
        results[venue] = measure(builders[venue](), args.checksum, args.rounds, rival)
    checks = ("Kraken CRC32 verified on every book message by both (cryptofeed checksum_validation=True)"
              if args.checksum else
              "no checksum verification by either (ours verify_checksums=False, cryptofeed's default)")
    payload = {"benchmark": "ingest", "rounds": args.rounds, "checksum": args.checksum, "checks": checks,
               "bbo_read_after_every_message": True, "machine": machine(), "venues": results}
    emit(args.json, payload, render(results, args.rounds, checks))


def render(results: dict, rounds: int, checks: str) -> str:
    rows = []
    for venue, r in results.items():
        cf = r.get("cryptofeed")
        rows.append([venue, r["messages"], r["ours"]["all"], r["ours"]["steady"],
                     cf["all"] if cf else "n/a", cf["steady"] if cf else "n/a",
                     f'{r["ratio"]["all"]:.2f}x' if cf else "n/a", f'{r["ratio"]["steady"]:.2f}x' if cf else "n/a"])
    head = ["venue", "msgs", "ours all/s", "ours steady/s", "cryptofeed all/s", "cryptofeed steady/s",
            "ratio all", "ratio steady"]
    return (f"Ingest, msgs/s (median of {rounds} interleaved rounds), best bid+ask read after every message;\n"
            f"{checks}.\n\n" + table(head, rows))


if __name__ == "__main__":
    main()
