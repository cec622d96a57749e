"""btc-depth: if I buy or sell N BTC right now, what price do I actually get, per venue and merged?

examples:
  python3 main.py sell 15                              live venues (needs internet)
  python3 main.py sell 15 --source sim                 the built-in exchange simulator, offline
  python3 main.py buy 2.5 --source sim --json          the same answer as JSON (schema 1)
  python3 main.py sell 100000usd --source sim          receive 100,000 USD after fees
  python3 main.py sell 1 5 15 --source sim             a ladder: one row per size
  python3 main.py sell 15 --source sim --fee kraken=0.25% --brief
  python3 main.py buy 5 --source sim --limit-bps 10    how much fits within 10 bps of mid
  python3 main.py sell 2 --source sim --merge all      let the perpetual into the merged answer
  python3 main.py sell 1 --source sim --orders --venues bitstamp
  python3 main.py depth --source sim                   size within 0.1/0.5/1/2/5 % of mid
  python3 main.py queue buy 59990 0.5 --venue bitstamp --source sim
  python3 main.py sell 5 --source sim --watch 1        redraw every second (JSON Lines with --json)
  python3 main.py sell 20 --symbol ETH-USD --source sim
  python3 main.py sell 5 --source sim --sim-fault coinbase:gap@20 --sim-fault kraken:checksum@40

exit codes:
  0  every enabled venue answered from a live book
  2  bad input or configuration (one line on stderr)
  3  some venues were excluded from the merged answer (each is named, with the reason)
  4  no venue was live
  5  a shortfall: the merged answer (or, with no merged answer, every venue) could not fill a size
  130 / 143  interrupted (Ctrl-C / SIGTERM)
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import logging.config
import os
import signal
import sys
from dataclasses import replace
from decimal import Decimal, InvalidOperation
from pathlib import Path

from config import Config, VenueConfig, config_path, load_config, parse_fault
from data_manager import __version__
from data_manager.errors import ConfigError, UsageError
from data_manager.session import SessionError
from data_manager.symbols import Symbol

log = logging.getLogger("main")

EXIT_OK, EXIT_USAGE, EXIT_PARTIAL, EXIT_NONE = 0, 2, 3, 4
EXIT_INTERRUPTED, EXIT_TERMINATED = 130, 143
QUANTUM = Decimal("0.00000001")
MAX_SIZE = Decimal(1_000_000)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not argparse's usage block
        raise UsageError(message)


def parse_size(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"size must be a number, got {text!r}") from None
    if not value.is_finite() or value <= 0:
        raise argparse.ArgumentTypeError(f"size must be a positive number, got {text!r}")
    if value > MAX_SIZE:
        raise argparse.ArgumentTypeError(f"size {text} is more than {MAX_SIZE:,}")
    if value % QUANTUM:
        raise argparse.ArgumentTypeError(f"size {text} is finer than 0.00000001")
    return value


def positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"expected seconds between 0 and 3600, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 0 <= value <= 100_000:
        raise argparse.ArgumentTypeError(f"expected a whole number from 0 to 100000, got {text!r}")
    return value


def symbol_name(text: str) -> Symbol:
    try:
        return Symbol.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


COMMANDS = {
    "buy": "l2_manager.cli:answer_command",
    "sell": "l2_manager.cli:answer_command",
    "depth": "l2_manager.cli:depth_command",
    "queue": "l2_manager.cli:queue_command",
    "record": "data_manager.wire.commands:record_command",
    "check": "data_manager.wire.commands:check_command",
    "simulate": "data_manager.wire.commands:simulate_command",
    "serve": "l2_manager.service.command:serve_command",
    "track": "l2_manager.track:track_command",
}
"""Each command: name -> "module:object" with `help`, `add_arguments(parser)` and `run(args, config,
venues) -> exit code` (async). Imported only when used, so a command costs nothing until it runs."""


def load_command(name: str):
    import importlib

    module, attribute = COMMANDS[name].split(":")
    return getattr(importlib.import_module(module), attribute)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="btc-depth", description=__doc__.split("\n\n")[0],
                     epilog="\n\n".join(__doc__.split("\n\n")[1:]) + "\n\nfault kinds (--sim-fault): "
                     + fault_kinds_help(), formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"btc-depth {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True
    for name in COMMANDS:
        command = load_command(name)
        sub = commands.add_parser(name, help=command.help(name), formatter_class=argparse.RawDescriptionHelpFormatter)
        if getattr(command, "common", True):
            add_common_arguments(sub)
        command.add_arguments(sub, name)
    return parser


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--symbol", type=symbol_name, default=Symbol("BTC", "USD"),
                        help="unified BASE-QUOTE symbol (default BTC-USD)")
    from data_manager.wire.options import add_wire_arguments

    add_wire_arguments(parser)   # --source live|sim|replay DIR..., --speed, --at, --record DIR
    parser.add_argument("--json", action="store_true", help="print the answer as JSON")
    parser.add_argument("--max-wait", type=positive_seconds, default=10.0,
                        help="seconds to wait for the books to be ready (default 10)")
    parser.add_argument("--config", help="configuration file on top of the built-in one "
                                         "(default: $BTC_DEPTH_CONFIG, else none)")
    parser.add_argument("--venues", help="comma-separated subset of the enabled venues, e.g. kraken,gemini")
    parser.add_argument("--seed", type=int, help="simulator seed (--source sim only)")
    parser.add_argument("--sim-fault", action="append", default=[], metavar="VENUE:KIND[@N]",
                        help="break a simulated feed on purpose after its N-th message (--source sim only)")


def fault_kinds_help() -> str:
    from data_manager.registry import venues

    return "; ".join(f"{name}: {', '.join(spec.sim_faults) or 'none'}" for name, spec in venues().items())


def select_venues(config: Config, names: str | None, symbol: Symbol) -> list[VenueConfig]:
    """The enabled venues (or the `--venues` subset) that list `symbol`."""
    enabled = config.enabled
    if names is not None:
        wanted = [n.strip() for n in names.split(",") if n.strip()]
        if not wanted:
            raise UsageError("--venues: expected venue names separated by commas, e.g. kraken,gemini")
        known = {v.name for v in enabled}
        for name in wanted:
            if name not in known:
                raise UsageError(f"--venues: {name!r} is not an enabled venue (enabled: {', '.join(sorted(known))})")
        enabled = [v for v in enabled if v.name in wanted]
    listing = [v for v in enabled if symbol.name in v.settings.symbols]
    if not listing:
        offered = sorted({s for v in enabled for s in v.settings.symbols})
        raise UsageError(f"--symbol: no enabled venue lists {symbol.name} (configured: {', '.join(offered)})")
    return listing


def check_source_flags(args: argparse.Namespace) -> None:
    if args.source != "sim" and (args.seed is not None or args.sim_fault):
        raise UsageError("--seed and --sim-fault work only with --source sim")
    for text in args.sim_fault:
        try:
            parse_fault(text)
        except ValueError as exc:
            raise UsageError(f"--sim-fault: {exc}") from None


def apply_cli_to_config(config: Config, args: argparse.Namespace) -> Config:
    """--seed and --sim-fault override the simulator section."""
    simulator = config.simulator
    if args.seed is not None:
        simulator = replace(simulator, seed=args.seed)
    for text in args.sim_fault:
        venue, plan = parse_fault(text)
        settings = simulator.venues[venue]
        venues = {**simulator.venues, venue: replace(settings, faults=settings.faults + (plan,))}
        simulator = replace(simulator, venues=venues)
    return replace(config, simulator=simulator)


def setup_logging(config: Config) -> None:
    """The `logging:` block, with every file under BTC_DEPTH_LOG_DIR (default /tmp); never the terminal."""
    log_dir = os.environ.get("BTC_DEPTH_LOG_DIR")
    block = json.loads(json.dumps(config.logging))
    for handler in block.get("handlers", {}).values():
        if isinstance(handler, dict) and "filename" in handler and log_dir:
            handler["filename"] = str(Path(log_dir) / Path(str(handler["filename"])).name)
    logging.lastResort = None  # a warning with no handler must not reach the terminal
    try:
        logging.config.dictConfig(block)
    except (ValueError, TypeError, AttributeError, ImportError) as exc:
        cause = exc.__cause__ or exc
        if isinstance(cause, OSError):  # an unwritable log directory: say so once, run without logs
            print(f"warning: cannot write the log files ({cause.strerror}: {cause.filename}); "
                  "running without logs (set BTC_DEPTH_LOG_DIR)", file=sys.stderr)
            logging.getLogger().handlers[:] = [logging.NullHandler()]
            return
        raise ConfigError(config.path, "logging", f"not a usable logging block ({cause})") from None


def _terminate(signum, frame) -> None:
    raise SystemExit(EXIT_TERMINATED)


def main(argv: list[str] | None = None) -> int:
    """Ctrl-C at any moment, even during start-up, is exit 130 with no traceback."""
    try:
        return _main(sys.argv[1:] if argv is None else argv)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def _main(argv: list[str]) -> int:
    signal.signal(signal.SIGTERM, _terminate)
    try:
        args = build_parser().parse_args(argv)
        common = getattr(load_command(args.command), "common", True)
        if common:
            check_source_flags(args)
        config = load_config(config_path(getattr(args, "config", None)))
        if common:
            config = apply_cli_to_config(config, args)
            venues = select_venues(config, args.venues, args.symbol)
        else:
            venues = config.enabled
        setup_logging(config)
    except (UsageError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return asyncio.run(load_command(args.command).run(args, config, venues))
    except (UsageError, SessionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # between the interpreter's start and main()
        sys.exit(EXIT_INTERRUPTED)
