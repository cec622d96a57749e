"""The wire commands main.py dispatches to: `record`, `check`, `simulate`.

    python3 main.py record DIR [--venues ...] [--symbol ...] [--seconds N] [--source sim]
    python3 main.py check DIR|FILE... [--symbol ...]
    python3 main.py simulate [--venues ...] [--port-base P] [--seed N] [--sim-fault ...] [--from-recording DIR]

Each takes its own options (`common = False`): `record` and `simulate` run several symbols at once, and
`check` starts no feed at all. This module is imported when main.py builds its parser, so everything
heavy is imported inside `run`.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time
from typing import Iterator, Sequence

EXIT_OK, EXIT_FAULT, EXIT_USAGE = 0, 1, 2
ROTATE_MB = 64


def _warn(line: str) -> None:
    print(f"warning: {line}", file=sys.stderr, flush=True)


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@contextlib.contextmanager
def stopped_by_signals(stop: asyncio.Event) -> Iterator[None]:
    """Ctrl-C (and SIGTERM) set `stop` instead of interrupting: the command ends cleanly, exit 0."""
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)
    for number in signals:
        loop.add_signal_handler(number, stop.set)
    try:
        yield
    finally:
        for number in signals:
            loop.remove_signal_handler(number)


async def _until(stop: asyncio.Event, seconds: float | None) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except asyncio.TimeoutError:
        pass


def _bounded(convert, low: float, high: float, what: str):
    """An argparse type: `convert(text)` between `low` and `high`, else one line naming both."""
    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected {what} from {low:g} to {high:g}, got {text!r}")
        return value
    return parse


_duration = _bounded(float, 0.001, 30 * 86400, "seconds")
_port = _bounded(int, 1024, 65000, "a port number")
_megabytes = _bounded(int, 1, 100_000, "whole megabytes")


def _add_venue_options(parser: argparse.ArgumentParser, what: str) -> None:
    from main import symbol_name

    parser.add_argument("--venues", help="comma-separated subset of the enabled venues, e.g. kraken,gemini")
    parser.add_argument("--symbol", type=symbol_name, action="append", metavar="SYMBOL",
                        help=f"unified BASE-QUOTE symbol, repeatable (default: {what})")
    parser.add_argument("--config", help="configuration file on top of the built-in one "
                                         "(default: $BTC_DEPTH_CONFIG, else none)")


def _add_sim_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, help="simulator seed (default: the config's)")
    parser.add_argument("--sim-fault", action="append", default=[], metavar="VENUE:KIND[@N]",
                        help="break a simulated feed on purpose after its N-th message")


def _chosen_venues(config, names: str | None, symbols: Sequence | None):
    """The enabled venues (or the --venues subset) that list any of `symbols` (all enabled ones when
    no symbol is given), with main.py's own checks and messages."""
    from main import UsageError, select_venues

    if not symbols:
        chosen = config.enabled
        if names is not None:
            wanted = {n.strip() for n in names.split(",") if n.strip()}
            unknown = wanted - {v.name for v in chosen}
            if not wanted or unknown:
                raise UsageError(f"--venues: {', '.join(sorted(unknown)) or names!r} is not an enabled venue "
                                 f"(enabled: {', '.join(v.name for v in chosen)})")
            chosen = [v for v in chosen if v.name in wanted]
        return list(chosen)
    chosen = []
    for symbol in symbols:
        for venue in select_venues(config, names, symbol):
            if venue not in chosen:
                chosen.append(venue)
    return chosen


def _configured_symbols(venues, mids=None) -> list:
    """Every symbol the venues list, in order (only those the simulator has a mid for, if `mids`)."""
    from data_manager.symbols import Symbol

    out = []
    for venue in venues:
        for name in venue.settings.symbols:
            symbol = Symbol.parse(name)
            if symbol not in out and (mids is None or symbol.name in mids):
                out.append(symbol)
    return out


def _sim_config(config, args: argparse.Namespace):
    from main import UsageError, apply_cli_to_config, check_source_flags

    check_source_flags(args)
    try:
        return apply_cli_to_config(config, args)
    except ValueError as exc:
        raise UsageError(f"--sim-fault: {exc}") from None


# --- record --------------------------------------------------------------------------------------
class RecordCommand:
    """`record DIR`: every frame, send and HTTP answer of every connection, into DIR, until --seconds
    or Ctrl-C; then a summary per venue."""

    common = False

    def help(self, name: str) -> str:
        return "record every frame the venues send (and we send) into DIR, for replay and check"

    def add_arguments(self, parser: argparse.ArgumentParser, name: str) -> None:
        parser.add_argument("directory", metavar="DIR", help="a new or empty directory for the JSON Lines files")
        _add_venue_options(parser, "every symbol each venue lists in the config")
        parser.add_argument("--seconds", type=_duration, metavar="N", help="stop after N seconds (default: Ctrl-C)")
        parser.add_argument("--source", choices=("live", "sim"), default="live",
                            help="record the live venues (default) or the built-in simulator")
        _add_sim_options(parser)
        parser.add_argument("--rotate-mb", type=_megabytes, default=ROTATE_MB, metavar="MB",
                            help=f"start a new file before one passes MB megabytes (default {ROTATE_MB})")

    async def run(self, args: argparse.Namespace, config, venues) -> int:
        from data_manager.session import WireOptions, open_session

        config = _sim_config(config, args)
        chosen = _chosen_venues(config, args.venues, args.symbol)
        mids = config.simulator.mids if args.source == "sim" else None
        symbols = args.symbol or _configured_symbols(chosen, mids)
        chosen = [v for v in chosen if any(s.name in v.settings.symbols for s in symbols)]
        wire = WireOptions(record=args.directory, rotate_bytes=args.rotate_mb * 2**20)
        stop = asyncio.Event()
        started = time.monotonic()
        with stopped_by_signals(stop):
            async with open_session(config, chosen, symbols, args.source, wire=wire, announce=False) as session:
                recorder = session.recorder
                if recorder is None:
                    return EXIT_USAGE   # the reason is already said, in one line
                _say(f"recording {', '.join(v.name for v in chosen)} ({', '.join(s.name for s in symbols)}, "
                     f"{args.source}) into {recorder.directory}"
                     + (f" for {args.seconds:g} s" if args.seconds else "") + "; Ctrl-C stops")
                await _until(stop, args.seconds)
        print(summary(recorder, time.monotonic() - started))
        return EXIT_FAULT if recorder.failed else EXIT_OK


def summary(recorder, seconds: float) -> str:
    files = sorted(p.name for p in recorder.directory.glob("*.jsonl"))
    lines = [f"recorded {seconds:.1f} s into {recorder.directory} ({len(files)} file{'s' if len(files) != 1 else ''})"]
    if recorder.failed:
        lines.append(f"recording stopped early: {recorder.failed}")
    lines.append(f"{'venue':<10}{'frames':>9}{'bytes':>12}{'reconnects':>12}  faults")
    for venue, tally in recorder.tallies.items():
        kinds = sorted({fault.split(':', 1)[0] for fault in tally.faults})
        faults = f"{len(tally.faults)}" + (f" ({', '.join(kinds)})" if kinds else "")
        lines.append(f"{venue:<10}{tally.frames:>9,}{tally.bytes:>12,}{tally.reconnects:>12}  {faults}")
    return "\n".join(lines)


# --- check ---------------------------------------------------------------------------------------
class CheckCommand:
    """`check DIR`: replay a recording offline through the same processors and report its quality."""

    common = False

    def help(self, name: str) -> str:
        return "re-verify a recording offline (sequences, checksums, chains, crossed books, time gaps)"

    def add_arguments(self, parser: argparse.ArgumentParser, name: str) -> None:
        parser.add_argument("paths", nargs="+", metavar="DIR|FILE",
                            help="a recording directory, or files (VENUE=FILE for a capture named otherwise)")
        parser.add_argument("--symbol", action="append", metavar="SYMBOL",
                            help="symbols a foreign capture holds (ours say it themselves; default BTC-USD)")
        parser.add_argument("--config", help="configuration file (a foreign capture is read with its venue's "
                                             "configured settings)")

    async def run(self, args: argparse.Namespace, config, venues) -> int:
        from main import UsageError, symbol_name

        from data_manager.registry import venues as registered
        from data_manager.wire.check import check_recordings, render
        from data_manager.wire.records import RecordingError, discover

        try:
            symbols = [symbol_name(text) for text in args.symbol or ["BTC-USD"]]
        except argparse.ArgumentTypeError as exc:
            raise UsageError(f"--symbol: {exc}") from None
        specs = registered()
        configured = {v.name: v.settings for v in config.venues.values()}
        try:
            checks = check_recordings(discover(args.paths, list(specs)), specs, configured, symbols, _warn)
        except (RecordingError, ValueError) as exc:
            raise UsageError(str(exc)) from None
        print(render(checks))
        return EXIT_FAULT if any(check.faulty for check in checks) else EXIT_OK


# --- simulate ------------------------------------------------------------------------------------
class SimulateCommand:
    """`simulate`: every venue's native protocol on 127.0.0.1 (or a recording, served as recorded),
    one line per venue with its URLs, until Ctrl-C."""

    common = False

    def help(self, name: str) -> str:
        return "serve the simulated venues (or a recording) on 127.0.0.1 for any client, until Ctrl-C"

    def add_arguments(self, parser: argparse.ArgumentParser, name: str) -> None:
        from data_manager.wire.options import parse_speed

        _add_venue_options(parser, "every symbol each venue lists that the simulator has a mid for")
        parser.add_argument("--port-base", type=_port, metavar="P",
                            help="fixed ports P, P+1, ... (default: free ports, printed)")
        _add_sim_options(parser)
        parser.add_argument("--from-recording", metavar="DIR", action="append",
                            help="serve this recording (a directory or files) instead of the synthetic flow")
        parser.add_argument("--speed", type=parse_speed, default=1.0, metavar="X",
                            help="--from-recording: X times the recorded pace (default 1)")

    async def run(self, args: argparse.Namespace, config, venues) -> int:
        from main import UsageError

        if args.from_recording and (args.sim_fault or args.seed is not None):
            raise UsageError("--seed and --sim-fault shape the synthetic flow, not a recording")
        args.source = "sim"   # for main.py's own checks of --seed / --sim-fault
        config = _sim_config(config, args)
        stop = asyncio.Event()
        with stopped_by_signals(stop):
            close, listing = await (self._recordings(args, config) if args.from_recording
                                    else self._simulator(args, config))
            forwards = None
            try:
                if args.port_base is not None:
                    forwards, listing = await _forwarded(args.port_base, listing)
                for name, urls, symbols in listing:
                    print(f"{name:<9} " + "  ".join(f"{key}={url}" for key, url in urls.items())
                          + f"  symbols={','.join(symbols)}", flush=True)
                _say(f"serving {len(listing)} venue(s) on 127.0.0.1 until Ctrl-C")
                await stop.wait()
            finally:
                if forwards is not None:
                    await forwards.close()
                await close()
        return EXIT_OK

    async def _simulator(self, args: argparse.Namespace, config):
        from data_manager.session import SessionError
        from data_manager.sim.simulator import SimPlan, Simulator

        chosen = _chosen_venues(config, args.venues, args.symbol)
        symbols = args.symbol or _configured_symbols(chosen, config.simulator.mids)
        missing = [s.name for s in symbols if s.name not in config.simulator.mids]
        if missing:
            raise SessionError(f"the simulator has no mid for {', '.join(missing)} (add it under simulator.mids)")
        plans = {}
        for venue in chosen:
            listed = [s for s in symbols if s.name in venue.settings.symbols]
            if listed:
                plans[venue.name] = SimPlan(venue.spec.simulator, {venue.spec.native_symbol(s): s.name for s in listed})
        try:
            simulator = Simulator(config.simulator.seed, config.simulator.mids, config.simulator.venues, plans)
        except ValueError as exc:
            raise SessionError(str(exc)) from None
        await simulator.start()
        listing = [(name, simulator.client_overrides(name), list(plan.symbols)) for name, plan in plans.items()]
        return simulator.close, listing

    async def _recordings(self, args: argparse.Namespace, config):
        from main import UsageError

        from data_manager.registry import venues as registered
        from data_manager.wire.records import RecordingError, discover
        from data_manager.wire.serve_recording import RecordingVenue, client_overrides

        specs = registered()
        try:
            found = discover(args.from_recording, list(specs))
        except RecordingError as exc:
            raise UsageError(str(exc)) from None
        wanted = {n.strip() for n in args.venues.split(",")} if args.venues else None
        by_venue: dict[str, list] = {}
        for recording in found:
            if wanted is None or recording.venue in wanted:
                by_venue.setdefault(recording.venue, []).append(recording)
        if not by_venue:
            raise UsageError(f"{', '.join(args.from_recording)}: no recording of {args.venues or 'any venue'}")
        servers = []
        for name, recordings in by_venue.items():
            server = RecordingVenue(name, recordings, args.speed, warn=_warn)
            await server.start()
            servers.append(server)

        async def close() -> None:
            for server in servers:
                await server.close()

        listing = [(s.name, client_overrides(specs[s.name].settings, s.ws_url, s.rest_url),
                    sorted({native for r in by_venue[s.name] for _, native in r.symbols}) or ["as recorded"])
                   for s in servers]
        return close, listing


async def _forwarded(base: int, listing):
    """Every URL of `listing` moved to a fixed port from `base` (a relay in front of each server)."""
    from main import UsageError

    from data_manager.wire.forward import Forwards

    forwards = Forwards(base)
    try:
        moved = [(name, {key: await forwards.url(url) for key, url in urls.items()}, symbols)
                 for name, urls, symbols in listing]
    except OSError as exc:
        await forwards.close()
        raise UsageError(str(exc)) from None
    return forwards, moved


record_command = RecordCommand()
check_command = CheckCommand()
simulate_command = SimulateCommand()
