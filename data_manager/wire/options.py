"""The wire options every session command takes: `--source live|sim|replay DIR...`, `--speed`, `--at`,
`--record DIR`.

They are parsed into one value, `args.source`: a `session.Source` (the string "live", "sim" or
"replay", which commands compare and show) carrying the `WireOptions`. Each of these options rebuilds it
from everything parsed so far, so their order on the command line does not matter.
"""
from __future__ import annotations

import argparse
from datetime import datetime, timezone
from typing import Any, Sequence

from data_manager.session import Source, WireOptions

SOURCES = ("live", "sim", "replay")
MAX_SPEED = 10_000.0


def parse_speed(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a speed like 1 or 10, got {text!r}") from None
    if not 0 < value <= MAX_SPEED:
        raise argparse.ArgumentTypeError(f"speed must be above 0 and at most {MAX_SPEED:g} (leave --speed out "
                                         f"to replay as fast as possible), got {text!r}")
    return value


def parse_at(text: str) -> float:
    """ISO 8601 (`2026-12-01T18:00:00Z`; no zone means UTC) -> epoch seconds."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a time like 2026-12-01T18:00:00Z, got {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def _rebuild(namespace: argparse.Namespace) -> None:
    wire = WireOptions(tuple(getattr(namespace, "replay", None) or ()), getattr(namespace, "speed", None),
                       getattr(namespace, "at", None), getattr(namespace, "record", None))
    namespace.source = Source(str(getattr(namespace, "source", "live")), wire)


class SourceAction(argparse.Action):
    """`--source live`, `--source sim`, `--source replay DIR [FILE...]`."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Sequence[str] | Any, option: str | None = None) -> None:
        kind, *paths = values
        if kind not in SOURCES:
            raise argparse.ArgumentError(self, f"invalid choice: {kind!r} (choose from "
                                               f"{', '.join(repr(s) for s in SOURCES)})")
        if kind == "replay" and not paths:
            raise argparse.ArgumentError(self, "replay needs the recording: --source replay DIR (or FILE...)")
        if kind != "replay" and paths:
            raise argparse.ArgumentError(self, f"{kind} takes no path (got {paths[0]!r}); "
                                               "put the size before --source")
        namespace.replay = tuple(paths)
        namespace.source = kind
        _rebuild(namespace)


class WireAction(argparse.Action):
    """`--speed`, `--at`, `--record`: stored, then folded into `args.source`."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option: str | None = None) -> None:
        setattr(namespace, self.dest, values)
        _rebuild(namespace)


def add_wire_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", nargs="+", action=SourceAction, default="live", metavar="SOURCE",
                        help="live venues (default); sim, the built-in offline simulator; or replay DIR|FILE..., "
                             "a recording fed through the same processors")
    parser.add_argument("--speed", type=parse_speed, action=WireAction, metavar="X",
                        help="replay at X times the recorded pace (default: as fast as possible)")
    parser.add_argument("--at", type=parse_at, action=WireAction, metavar="TIME",
                        help="replay up to TIME (ISO 8601, e.g. 2026-12-01T18:00:00Z; default: the end)")
    parser.add_argument("--record", action=WireAction, metavar="DIR",
                        help="record every frame and HTTP answer of this run into DIR (JSON Lines)")
