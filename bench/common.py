"""What the benchmarks share: where the captures are, medians, and a plain-text table."""
from __future__ import annotations

import gc
import json
import os
import platform
import statistics
import sys
from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"   # CI clones the repo elsewhere but keeps shared/ beside it
CAPTURES = SHARED / "captures"
PERF = SHARED / "perf"


ROUND_SECONDS = 0.2
"""A variant's share of a round: a short pass is repeated until it takes about this long."""
Seconds = TypeVar("Seconds", float, tuple)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def interleaved(variants: dict[str, Callable[[], Seconds]], rounds: int) -> dict[str, list[Seconds]]:
    """Every variant once per round, the order rotating from round to round (so machine noise and
    warm caches hit all alike), each pass after `gc.collect()` with the collector on during it, as in
    production. A variant whose pass is short is repeated within its turn (`ROUND_SECONDS`); its
    round's figure is the mean pass. Returns each variant's figure per round: ratios between variants
    are taken within a round, then their median over rounds."""
    repeats = {}
    for name, run in variants.items():   # one untimed warm-up pass each, which also sizes the repeats
        gc.collect()
        first = run()
        seconds = first if isinstance(first, float) else first[0]
        repeats[name] = max(1, round(ROUND_SECONDS / max(seconds, 1e-6)))
    names = list(variants)
    results: dict[str, list[Seconds]] = {name: [] for name in names}
    for n in range(rounds):
        for name in names[n % len(names):] + names[:n % len(names)]:
            passes = []
            for _ in range(repeats[name]):
                gc.collect()
                passes.append(variants[name]())
            results[name].append(_mean(passes))
    return results


def _mean(passes: list) -> Any:
    if isinstance(passes[0], float):
        return sum(passes) / len(passes)
    return tuple(sum(column) / len(passes) for column in zip(*passes))


def machine() -> dict[str, Any]:
    return {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()}


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A markdown table (so the output can be pasted into the README as it is)."""
    cells = [[str(h) for h in headers]] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    def line(row: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))) + " |"
    rule = "|" + "|".join("-" * (w + 1) + (":" if i else "-") for i, w in enumerate(widths)) + "|"
    return "\n".join([line(cells[0]), rule] + [line(row) for row in cells[1:]])


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}" if value < 1000 else f"{value:,.0f}"
    return str(value)


def emit(as_json: bool, payload: dict[str, Any], text: str) -> None:
    if as_json:
        json.dump(payload, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(text)
