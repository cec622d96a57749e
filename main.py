"""btc-depth: if I buy or sell N BTC right now, what price do I actually get, per venue and merged?

    python3 main.py sell 15                    live venues (needs internet)
    python3 main.py sell 15 --source sim       the built-in exchange simulator, offline
    python3 main.py buy 2.5 --source sim --json

Exit codes: 0 every enabled venue answered from a live book; 3 some venues were excluded (named, with
the reason); 4 no venue was live; 2 bad input or configuration.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import logging.config
import sys
from dataclasses import replace
from decimal import Decimal, InvalidOperation
from pathlib import Path

from config import Config, VenueConfig, load_config, parse_fault
from data_manager.errors import ConfigError

log = logging.getLogger("main")

EXIT_OK, EXIT_USAGE, EXIT_PARTIAL, EXIT_NONE = 0, 2, 3, 4
SATOSHI = Decimal("0.00000001")
MAX_SIZE = Decimal(1_000_000)
DEFAULT_CONFIG = Path(__file__).resolve().parent / "config.yml"


class UsageError(Exception):
    """Bad command-line input: one line, exit 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not argparse's usage block
        raise UsageError(message)


def parse_size(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"size must be a number of BTC, got {text!r}") from None
    if not value.is_finite() or value <= 0:
        raise argparse.ArgumentTypeError(f"size must be a positive number of BTC, got {text!r}")
    if value > MAX_SIZE:
        raise argparse.ArgumentTypeError(f"size {text} BTC is more than {MAX_SIZE:,} BTC")
    if value % SATOSHI:
        raise argparse.ArgumentTypeError(f"size {text} BTC is finer than one satoshi (0.00000001)")
    return value


def positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not value > 0 or value > 3600:
        raise argparse.ArgumentTypeError(f"expected seconds between 0 and 3600, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="main.py", description=__doc__.split("\n\n")[0],
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("buy", "sell"), help="buy consumes asks, sell consumes bids")
    parser.add_argument("size", type=parse_size, help="how many BTC, e.g. 15 or 2.5")
    parser.add_argument("--source", choices=("live", "sim"), default="live",
                        help="live venues (default) or the built-in offline simulator")
    parser.add_argument("--json", action="store_true", help="print the answer as JSON")
    parser.add_argument("--max-wait", type=positive_seconds, default=10.0,
                        help="seconds to wait for the books to be ready (default 10)")
    parser.add_argument("--config", default=str(DEFAULT_CONFIG), help="configuration file (default config.yml)")
    parser.add_argument("--venues", help="comma-separated subset of the enabled venues, e.g. kraken,gemini")
    parser.add_argument("--seed", type=int, help="simulator seed (default: simulator.seed in the config)")
    parser.add_argument("--sim-fault", action="append", default=[], metavar="VENUE:KIND[@N]",
                        help="break a simulated feed on purpose, e.g. kraken:checksum@5 (repeatable)")
    parser.add_argument("--levels", type=int, default=12, metavar="N",
                        help="levels shown per tree before eliding the middle (default 12; --json has all)")
    parser.add_argument("--watch", type=positive_seconds, metavar="SECONDS",
                        help="keep running and redraw the answer every SECONDS")
    return parser


def select_venues(config: Config, names: str | None) -> list[VenueConfig]:
    enabled = config.enabled
    if not names:
        return enabled
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    known = {v.name for v in enabled}
    for name in wanted:
        if name not in known:
            raise UsageError(f"--venues: {name!r} is not an enabled venue (enabled: {', '.join(sorted(known))})")
    return [v for v in enabled if v.name in wanted]


def apply_cli_to_config(config: Config, args: argparse.Namespace) -> Config:
    """--seed and --sim-fault override the simulator section."""
    simulator = config.simulator
    if args.seed is not None:
        simulator = replace(simulator, seed=args.seed)
    for text in args.sim_fault:
        try:
            venue, plan = parse_fault(text)
        except ValueError as exc:
            raise UsageError(f"--sim-fault: {exc}") from None
        settings = simulator.venues[venue]
        venues = {**simulator.venues, venue: replace(settings, faults=settings.faults + (plan,))}
        simulator = replace(simulator, venues=venues)
    return replace(config, simulator=simulator)


def setup_logging(config: Config) -> None:
    if config.logging:
        try:
            logging.config.dictConfig(config.logging)
        except (ValueError, TypeError, AttributeError, ImportError) as exc:
            raise ConfigError(config.path, "logging", f"not a usable dictConfig block ({exc})") from None


def build_processor(venue: VenueConfig):
    """The sans-I/O processor for one configured venue."""
    from data_manager.venues.coinbase import CoinbaseProcessor
    from data_manager.venues.gemini import GeminiProcessor
    from data_manager.venues.kraken import KrakenProcessor
    from data_manager.venues.kumex import KumexProcessor

    if venue.name == "kraken":
        return KrakenProcessor(venue.symbol, depth=venue.depth, price_precision=venue.price_precision,
                               qty_precision=venue.qty_precision)
    if venue.name == "kumex":
        return KumexProcessor(venue.symbol, rest_url=venue.rest_url, level3=venue.level3,
                              contract_value=venue.contract_value)
    return {"gemini": GeminiProcessor, "coinbase": CoinbaseProcessor}[venue.name](venue.symbol)


async def run(args: argparse.Namespace, config: Config, venues: list[VenueConfig]) -> int:
    """Start the feeds (and the simulator), wait for the books, answer, stop everything."""
    from data_manager.client import DataManager, VenueFeed
    from data_manager.sim.simulator import Simulator

    simulator = None
    if args.source == "sim":
        sim_config = config.simulator
        simulator = Simulator(sim_config.seed, sim_config.mid, sim_config.venues, [v.name for v in venues])
        await simulator.start()
        venues = [_pointed_at(v, simulator.endpoint(v.name)) for v in venues]
    manager = DataManager([VenueFeed(build_processor(v), v.url, v.max_age) for v in venues])
    manager.start()
    try:
        await manager.wait_ready(args.max_wait)
        if args.watch:
            return await _watch(args, manager)
        return _answer_once(args, manager)
    finally:
        await manager.stop()
        if simulator is not None:
            await simulator.close()


def _pointed_at(venue: VenueConfig, endpoint) -> VenueConfig:
    return replace(venue, url=endpoint.ws_url, rest_url=endpoint.rest_url or venue.rest_url)


def _answer(args: argparse.Namespace, manager):
    from l2_manager.answer import build_answer
    from l2_manager.depletion import Action

    processors = {name: feed.processor for name, feed in manager.feeds.items()}
    reasons = {name: (f"not live after {args.max_wait:g} s: {feed.last_error}" if feed.last_error else None)
               for name, feed in manager.feeds.items()}
    return build_answer(Action(args.action), args.size, processors, args.source, reasons)


def _exit_code(answer) -> int:
    live = sum(1 for status, _ in answer.venues if status.included)
    return EXIT_OK if live == len(answer.venues) else EXIT_NONE if live == 0 else EXIT_PARTIAL


def _answer_once(args: argparse.Namespace, manager) -> int:
    from rich.console import Console

    from l2_manager.render import answer_json, render

    answer = _answer(args, manager)
    code = _exit_code(answer)
    log.info("answered %s %s from %s: exit %d", args.action, args.size, args.source, code)
    if args.json:
        print(json.dumps(answer_json(answer), indent=2))
    if code == EXIT_NONE:
        for status, _ in answer.venues:
            print(f"{status.name}: {status.reason}", file=sys.stderr)
        if args.source == "live":
            print("hint: no venue could be reached from this machine; "
                  "`--source sim` runs the same client against the built-in simulator", file=sys.stderr)
    elif not args.json:
        render(answer, Console(), args.levels)
    return code


async def _watch(args: argparse.Namespace, manager) -> int:
    from rich.console import Console
    from rich.live import Live

    from l2_manager.render import answer_group

    console = Console()
    with Live(console=console, auto_refresh=False, screen=False) as live:
        while True:
            live.update(answer_group(_answer(args, manager), args.levels), refresh=True)
            await asyncio.sleep(args.watch)


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        config = apply_cli_to_config(load_config(args.config), args)
        venues = select_venues(config, args.venues)
        setup_logging(config)
    except (UsageError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return asyncio.run(run(args, config, venues))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
