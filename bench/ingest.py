"""Ingest: each venue's frames through what a live connection runs, against cryptofeed and the ceiling.

    python3 -m bench.ingest [--venue NAME ...] [--rounds N] [--events N] [--no-rival] [--json]

What is timed, per stream, in frames per second on one core (no socket, no event loop):
- ours: ONE processor built through the registry for every symbol of the capture (multiplexed venues
  route each frame by symbol inside, as live), taken by `bench.shell.BenchShell`: every frame to
  `processor.receive(text)`, its actions drained and executed after each frame, REST answers (KuMEX
  token and snapshots, Bitstamp's snapshot) given when asked, and after every `BookChanged` the best bid
  and ask of the book it names read through that book's `BookView` (sizes in base units). Twice: with
  the decoder in use (msgspec when `requirements-fast.txt` is installed) and with the stdlib only.
- cryptofeed 2.4.1 (Kraken, Gemini): its own feed handler over its capture
  (`../shared/perf/cryptofeed_baseline.py`, as-is), reading the best bid and ask of the updated symbol
  after every update. Kraken: cryptofeed speaks WS v1 and reads the v1 recording, we read its v2
  conversion (the same order flow, `../shared/captures/README.md`); depth 1000 both.
- ceiling: `bench.ceiling`, orjson + SortedDict with float keys, for every venue (the only yardstick
  for Coinbase, KuMEX and Bitstamp, which cryptofeed's baseline does not replay).

"kraken" verifies no checksum on either side (ours: `verify_checksum` overridden to skip, cryptofeed's
default, the ceiling none); "kraken+crc" verifies the CRC32 of every book frame on all three. "all" is
the whole stream, "steady" the frames after the last whole book. Rounds interleave the variants (the
order rotating each round, `bench.common.interleaved`); rates are medians over rounds; ratios are taken
within each round, then their median.
"""
from __future__ import annotations

import argparse
import sys
from typing import Any, Callable

from bench.ceiling import ceiling_pass, stream_for
from bench.common import PERF, emit, interleaved, machine, median, table
from bench.shell import Factory, one_pass
from bench.streams import Stream
from data_manager import parse
from data_manager.registry import venue

STREAMS = ("kraken", "kraken+crc", "gemini", "coinbase", "kumex-l2", "kumex-l3", "bitstamp")
RIVALS = {"kraken": ("kraken", False), "kraken+crc": ("kraken", True), "gemini": ("gemini", False)}
TARGETS = {  # (decoder, rival) -> minimum ratio, from issue 15
    ("msgspec", "cryptofeed"): {"kraken": 3.0, "kraken+crc": 2.5, "gemini": 3.0},
    ("stdlib", "cryptofeed"): {"kraken": 2.5, "kraken+crc": 2.0, "gemini": 2.5},
    ("msgspec", "ceiling"): dict.fromkeys(STREAMS, 0.7),
}


def _unchecked_kraken() -> Factory:
    """Kraken's processor with the checksum switched off through its one documented switch."""
    base = venue("kraken").processor

    class Unchecked(base):  # type: ignore[misc, valid-type]
        def verify_checksum(self, pair: Any, bids: Any, asks: Any, expected: int) -> bool:
            return False

    return Unchecked


def _ours(stream: Stream, factory: Factory | None, decoder: str) -> Callable[[], tuple[float, float]]:
    def run() -> tuple[float, float]:
        previous = parse.use_decoder(decoder)
        try:
            return one_pass(stream, factory)
        finally:
            parse.use_decoder(previous)
    return run


def _rival(name: str) -> tuple[int, int, Callable[[], tuple[float, float]]]:
    """(frames, steady frames, one pass) of cryptofeed's handler over its capture."""
    if str(PERF) not in sys.path:
        sys.path.insert(0, str(PERF))
    import cryptofeed_baseline as cf
    capture, checksum = RIVALS[name]
    frames = cf.load_frames(capture)
    run = cf.runner(capture, read_bbo=True, checksum=checksum)
    return len(frames), len(frames) - cf.steady_start(capture, frames), lambda: run(frames)


def measure(name: str, rounds: int, events: int, rival: bool) -> dict[str, Any]:
    base = name.split("+")[0]
    stream = stream_for(base, events)
    checksum = name == "kraken+crc"
    factory = _unchecked_kraken() if base == "kraken" and not checksum else None
    decoders = ["stdlib"] if parse.FAST_DECODE is None else ["msgspec", "stdlib"]
    variants: dict[str, Callable[[], tuple[float, float]]] = {
        f"ours {d}": _ours(stream, factory, d) for d in decoders}
    counts = {v: (len(stream.frames), len(stream.steady)) for v in variants}
    options = {"checksum": checksum} if base == "kraken" else {}
    variants["ceiling"] = lambda: ceiling_pass(base, stream, **options)
    counts["ceiling"] = counts[f"ours {decoders[0]}"]
    if rival and name in RIVALS:
        frames, steady, run = _rival(name)
        variants["cryptofeed"] = run
        counts["cryptofeed"] = (frames, steady)
    passes = interleaved(variants, rounds)
    rates = {v: [(counts[v][0] / a, counts[v][1] / s) for a, s in passes[v]] for v in variants}
    result: dict[str, Any] = {"frames": len(stream.frames), "steady_frames": len(stream.steady),
                              "symbols": len(stream.symbols), "input": stream.notes, "rates": {}, "ratios": {}}
    for v, per_round in rates.items():
        result["rates"][v] = {"all": median([a for a, _ in per_round]), "steady": median([s for _, s in per_round])}
    for d in decoders:
        for other in ("cryptofeed", "ceiling"):
            if other in rates:
                pairs = list(zip(rates[f"ours {d}"], rates[other]))
                result["ratios"][f"{d} / {other}"] = {"all": median([o[0] / t[0] for o, t in pairs]),
                                                      "steady": median([o[1] / t[1] for o, t in pairs])}
    return result


def verdicts(results: dict[str, Any]) -> list[list[str]]:
    rows = []
    for (decoder, other), limits in TARGETS.items():
        for name, limit in limits.items():
            ratio = results.get(name, {}).get("ratios", {}).get(f"{decoder} / {other}")
            if ratio is not None:
                got = ratio["all"]
                rows.append([f"{name}: ours ({decoder}) / {other}, all", f"{got:.2f}", f">= {limit}",
                             "yes" if got >= limit else "NO"])
    return rows


def render(results: dict[str, Any], rounds: int) -> str:
    decoders = ["stdlib"] if parse.FAST_DECODE is None else ["msgspec", "stdlib"]
    parts = [f"Ingest, frames/s (median of {rounds} interleaved rounds); one processor per connection, "
             "actions drained after every frame, best bid+ask of the changed book read after every change."]
    for part in ("all", "steady"):
        head = ["stream", "frames"] + [f"ours {d}" for d in decoders] + ["cryptofeed", "ceiling"]
        head += [f"{d} / {o}" for d in decoders for o in ("cryptofeed", "ceiling")]
        rows = []
        for name, r in results.items():
            row = [name, r["frames"] if part == "all" else r["steady_frames"]]
            row += [r["rates"][f"ours {d}"][part] for d in decoders]
            row += [r["rates"][v][part] if v in r["rates"] else "n/a" for v in ("cryptofeed", "ceiling")]
            row += [f'{r["ratios"][k][part]:.2f}x' if k in r["ratios"] else "n/a"
                    for k in (f"{d} / {o}" for d in decoders for o in ("cryptofeed", "ceiling"))]
            rows.append(row)
        parts.append(f"{'Whole stream' if part == 'all' else 'Steady part (after the last whole book)'}:\n\n"
                     + table(head, rows))
    parts.append("Inputs: " + "; ".join(f"{n}: {r['input']}" for n, r in results.items()))
    rows = verdicts(results)
    if rows:
        parts.append(table(["target (issue 15)", "got", "limit", "ok"], rows))
    return "\n\n".join(parts)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--venue", choices=STREAMS, action="append", help="only these streams (default: all)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--events", type=int, default=60_000, help="frames of the simulated streams")
    parser.add_argument("--no-rival", action="store_true", help="skip cryptofeed")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    results = {name: measure(name, args.rounds, args.events, not args.no_rival) for name in args.venue or STREAMS}
    payload = {"benchmark": "ingest", "rounds": args.rounds, "decoder": parse.decoder_name(),
               "bbo_read_after_every_change": True, "machine": machine(), "streams": results,
               "targets": verdicts(results)}
    emit(args.json, payload, render(results, args.rounds))


if __name__ == "__main__":
    main()
