"""The commands of l2_manager: `buy` / `sell` (the answer), `depth` (liquidity near the mid) and
`queue` (where a limit order would stand). main.py dispatches here; the data side is reached only
through `data_manager.session`, whose network parts load lazily.

Streams: the answer goes to stdout; progress (while books sync) goes to stderr, and only when stderr is
a terminal; errors are one line on stderr. A stream whose encoding cannot carry the separator gets
ASCII separators and replacement characters, never a traceback.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import re
import sys
import time
from decimal import Decimal, InvalidOperation
from typing import Any

from data_manager.session import SessionError, open_session

log = logging.getLogger(__name__)

EXIT_OK, EXIT_USAGE, EXIT_PARTIAL, EXIT_NONE, EXIT_SHORTFALL = 0, 2, 3, 4, 5
MAX_SIZES = 20
MAX_QUOTE = Decimal(10) ** 12
_AMOUNT = re.compile(r"^\s*([+-]?[0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([A-Za-z]*)\s*$")


# --- argument types (one line each when refused: main.py turns them into exit 2) ------------------
def parse_amount(text: str) -> tuple[str, str]:
    """"15" -> ("15", ""); "100000usd" -> ("100000", "USD"). Only the shape is checked here: whether
    it is a base size or a quote amount (and so which rules apply) depends on the symbol and --quote,
    which argparse does not know yet (`_order_sizes`)."""
    match = _AMOUNT.match(text)
    if match is None:
        raise argparse.ArgumentTypeError(f"size must be a number, optionally with a unit (1.5, 100000usd), "
                                         f"got {text!r}")
    return match[1], match[2].upper()


def _number(text: str, what: str) -> Decimal:
    """`text` as a finite Decimal, or a one-line refusal naming `what`."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        value = None
    if value is None or not value.is_finite():
        raise argparse.ArgumentTypeError(f"{what} must be a number, got {text!r}")
    return value


def _positive(text: str, what: str, at_most: Decimal | None = None) -> Decimal:
    value = _number(text, what)
    if value <= 0 or (at_most is not None and value > at_most):
        bound = f" and at most {at_most:,}" if at_most is not None else ""
        raise argparse.ArgumentTypeError(f"{what} must be above 0{bound}, got {text!r}")
    return value


def _quote_amount(number: str, text: str) -> Decimal:
    value = _positive(number, "an amount", MAX_QUOTE)
    if value % Decimal("0.00000001"):
        raise argparse.ArgumentTypeError(f"amount {text} is finer than 0.00000001")
    return value


def parse_bps(text: str) -> Decimal:
    return _positive(text, "basis points", Decimal(10_000))


def parse_fee(text: str) -> tuple[str, Decimal]:
    from l2_manager.fees import parse_rate

    venue, sep, rate = text.partition("=")
    if not sep or not venue.strip():
        raise argparse.ArgumentTypeError(f"expected VENUE=RATE (e.g. kraken=0.25%), got {text!r}")
    try:
        return venue.strip(), parse_rate(rate)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def parse_bands(text: str) -> tuple[Decimal, ...]:
    out = []
    for item in text.split(","):
        out.append(_positive(item.strip().rstrip("%"), "a band (percent of mid)", Decimal(50)))
    if not out or len(set(out)) != len(out):
        raise argparse.ArgumentTypeError(f"expected distinct percentages like 0.1,0.5,1, got {text!r}")
    return tuple(out)


class CommandError(SessionError):
    """Bad input found once the symbol and the venues are known (a size's unit, a --fee venue): one
    line, exit 2. A `SessionError`, so main.py's handler prints it as such: `main.UsageError` cannot be
    raised from here, because main.py runs as `__main__` and `import main` would load a second copy
    whose UsageError main() does not catch."""


def usage(message: str) -> Exception:
    return CommandError(message)


# --- streams ---------------------------------------------------------------------------------------
def safe_streams() -> None:
    """A stream whose encoding has no middle dot (PYTHONIOENCODING=ascii, a latin-1 pipe) replaces what it
    cannot encode instead of raising; rich then draws ASCII guides and we use ASCII separators."""
    for stream in (sys.stdout, sys.stderr):
        try:
            "\u00b7\u2500".encode(stream.encoding or "ascii")
        except (UnicodeEncodeError, LookupError):
            reconfigure = getattr(stream, "reconfigure", None)
            if reconfigure is not None:
                reconfigure(errors="replace")


@contextlib.contextmanager
def reader_may_leave():
    """`btc-depth ... | head`: the reader closing the pipe ends the output, quietly (no traceback, and
    none at exit either: stdout is pointed at /dev/null so the final flush has nowhere to fail)."""
    try:
        yield
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def out_console():
    from rich.console import Console

    return Console(highlight=False)


# --- progress while the books sync ---------------------------------------------------------------
class Progress:
    """A transient status per venue on stderr while the books sync (only when stderr is a terminal):
    connecting, syncing, live, or failed with the reason. Redrawn on every health change."""

    def __init__(self, session, max_wait: float) -> None:
        self.session = session
        self.max_wait = max_wait
        self.started = time.monotonic()
        self._live = None
        self._unsubscribe = None

    def __enter__(self) -> "Progress":
        if not sys.stderr.isatty():
            return self
        from rich.console import Console
        from rich.live import Live

        self._live = Live(self._view(), console=Console(stderr=True), transient=True, auto_refresh=True,
                          refresh_per_second=4, get_renderable=self._view)
        self._live.__enter__()
        self._unsubscribe = self.session.manager.subscribe(self._changed)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self._live is not None:
            self._live.__exit__(*exc)

    def _changed(self, action: object) -> None:
        from data_manager.feed import HealthChanged

        if type(action) is HealthChanged and self._live is not None:
            self._live.refresh()

    def _view(self):
        from rich.table import Table

        manager = self.session.manager
        table = Table.grid(padding=(0, 2))
        waited = time.monotonic() - self.started
        table.add_row(f"waiting for the books ({waited:.1f} of at most {self.max_wait:g} s)", "")
        for key, view in manager.views.items():
            if view.live:
                state = "live"
            elif manager.failed(key):
                state = f"failed: {manager.last_error(key) or view.state.value}"
            else:
                state = view.state.value
            table.add_row(f"  {key.venue}", state)
        return table


async def wait_for_books(session, max_wait: float) -> float:
    """Wait for every book to be live or failed (at most `max_wait`), with progress on a terminal's
    stderr. Returns when the wait started (monotonic), so that reasons say how long was really waited:
    a run whose venues all failed at once ends at once, and says so."""
    started = time.monotonic()
    with Progress(session, max_wait):
        await session.wait_ready(max_wait)
    return started


def waited(started: float) -> float:
    return round(time.monotonic() - started, 1)


# --- buy / sell ----------------------------------------------------------------------------------
class AnswerCommand:
    """`buy SIZE...` / `sell SIZE...`: what a market order gets on each venue and merged, after fees."""

    def help(self, name: str) -> str:
        return ("what a market buy gets, after fees (walks the asks)" if name == "buy"
                else "what a market sell gets, after fees (walks the bids)")

    def add_arguments(self, parser: argparse.ArgumentParser, name: str) -> None:
        from main import non_negative_int, positive_seconds

        parser.add_argument("sizes", nargs="+", type=parse_amount, metavar="SIZE",
                            help="base units (15, 2.5), or quote with its suffix (100000usd); several sizes "
                                 "make a ladder")
        parser.add_argument("--quote", action="store_true",
                            help="the sizes are amounts of the quote currency, net of fees: what a sell "
                                 "receives or a buy spends")
        parser.add_argument("--fee", action="append", default=[], type=parse_fee, metavar="VENUE=RATE",
                            help="override a venue's taker fee for this run, e.g. kraken=0.25%% (repeatable)")
        parser.add_argument("--merge", choices=("spot", "all"), default="spot",
                            help="venues in the merged answer: spot only (default) or all, perpetuals too")
        parser.add_argument("--limit-bps", type=parse_bps, metavar="BPS",
                            help="also say how much each book can take with no fill more than BPS past its mid")
        parser.add_argument("--orders", action="store_true",
                            help="expand each consumed level of an order-level (L3) book into the orders hit")
        parser.add_argument("--brief", action="store_true", help="the headline and the split only, no trees")
        parser.add_argument("--levels", type=non_negative_int, default=12, metavar="N",
                            help="level rows shown per tree (default 12; 0 shows none; --json has all)")
        parser.add_argument("--watch", type=positive_seconds, metavar="SECONDS",
                            help="keep running and redraw every SECONDS (JSON Lines with --json)")
        parser.add_argument("--server", metavar="URL",
                            help="ask a running `serve` (e.g. http://127.0.0.1:8765) instead of the venues")

    async def run(self, args: argparse.Namespace, config, venues) -> int:
        safe_streams()
        if args.server:
            return await _ask_server(args)
        orders = _order_sizes(args)
        overrides = _fee_overrides(args, venues)
        settings = {v.name: v.settings for v in venues}
        async with open_session(config, venues, args.symbol, args.source) as session:
            started = await wait_for_books(session, args.max_wait)
            context = (orders, settings, overrides)
            if args.watch:
                return await _watch(args, session, context, started)
            return _answer_once(args, session, context, started)


answer_command = AnswerCommand()


async def _ask_server(args: argparse.Namespace) -> int:
    """`--server URL`: the same answer, computed by a running `serve` from its warm books."""
    from l2_manager.service.client import ServerError, fetch_answer

    if args.watch or args.orders:
        raise CommandError("--server answers one question at a time: leave out --watch and --orders")
    try:
        code, text, to_stderr = await fetch_answer(args.server, args)
    except ServerError as exc:
        raise CommandError(str(exc)) from None
    print(text, file=sys.stderr if to_stderr else sys.stdout)
    return code


def _order_sizes(args: argparse.Namespace) -> list:
    """Each SIZE as base units (main.parse_size's rules: at most 1,000,000, whole satoshis) or as an
    amount of the quote (a unit suffix equal to the quote, or --quote)."""
    from l2_manager.cost import OrderSize
    from main import parse_size

    if len(args.sizes) > MAX_SIZES:
        raise usage(f"at most {MAX_SIZES} sizes in a ladder, got {len(args.sizes)}")
    symbol = args.symbol
    out = []
    for number, unit in args.sizes:
        written = number + unit.lower()
        if unit and unit not in (symbol.base, symbol.quote):
            raise usage(f"argument SIZE: {written}: the unit must be {symbol.base} or {symbol.quote} "
                        f"for {symbol.name}")
        in_quote = unit == symbol.quote or (args.quote and not unit)
        try:
            value = _quote_amount(number, written) if in_quote else parse_size(number)
        except argparse.ArgumentTypeError as exc:
            raise usage(f"argument SIZE: {exc}") from None
        out.append(OrderSize(value, in_quote))
    return out


def _fee_overrides(args: argparse.Namespace, venues) -> dict[str, Decimal]:
    names = [v.name for v in venues]
    overrides = {}
    for venue, rate in args.fee:
        if venue not in names:
            raise usage(f"--fee: {venue!r} is not one of the venues asked ({', '.join(names)})")
        overrides[venue] = rate
    return overrides


def _answer(args: argparse.Namespace, session, context, started: float):
    from l2_manager.answer import build_answer, terms_for
    from l2_manager.depletion import Action

    orders, settings, overrides = context
    views = list(session.views.values())
    return build_answer(Action(args.command), orders, views, args.source, session.reasons(waited(started)),
                        session.clock(), terms=terms_for(views, settings, overrides), merge=args.merge,
                        limit_bps=args.limit_bps, with_orders=args.orders)


def _answer_once(args: argparse.Namespace, session, context, started: float) -> int:
    from l2_manager.answer import exit_code
    from l2_manager.document import answer_json
    from l2_manager.render import render

    answer = _answer(args, session, context, started)
    code = exit_code(answer)
    log.info("answered %s %s from %s: exit %d", args.command, ", ".join(str(o.amount) for o in context[0]),
             args.source, code)
    with reader_may_leave():
        if args.json:
            print(json.dumps(answer_json(answer, code), indent=2))
        elif code == EXIT_NONE:
            _no_venue(answer, args.source)
        else:
            render(answer, out_console(), args.levels, args.brief)
    return code


def _no_venue(answer, source: str) -> None:
    for status in answer.statuses:
        print(f"{status.name}: {status.reason}", file=sys.stderr)
    if source == "live":
        print("hint: no venue could be reached from this machine; "
              "`--source sim` runs the same client against the built-in simulator", file=sys.stderr)


async def _watch(args: argparse.Namespace, session, context, started: float) -> int:
    """Redraw every `--watch` seconds until Ctrl-C (exit 130, from main). A terminal gets one live
    frame that fits its height; a pipe or file gets every frame as it is drawn (JSON Lines with --json)."""
    from l2_manager.answer import exit_code
    from l2_manager.document import answer_json
    from l2_manager.render import answer_group

    console = out_console()
    if args.json or not console.is_terminal:
        with reader_may_leave():  # `--watch 1 | head`: the reader leaving ends the run, exit 0
            while True:
                answer = _answer(args, session, context, started)
                if args.json:
                    sys.stdout.write(json.dumps(answer_json(answer, exit_code(answer))) + "\n")
                else:
                    console.print(answer_group(answer, console, args.levels, args.brief))
                    console.print()
                sys.stdout.flush()
                await asyncio.sleep(args.watch)
        return EXIT_OK
    from rich.live import Live

    with Live(console=console, auto_refresh=False, screen=False, vertical_overflow="crop") as live:
        while True:
            answer = _answer(args, session, context, started)
            live.update(answer_group(answer, console, args.levels, args.brief, height=console.height - 1),
                        refresh=True)
            await asyncio.sleep(args.watch)


# --- depth -----------------------------------------------------------------------------------------
class DepthCommand:
    """`depth`: the size resting within 0.1 / 0.5 / 1 / 2 / 5 % of mid, per venue and merged (spot)."""

    def help(self, name: str) -> str:
        return "liquidity within x %% of mid on each side, per venue and merged"

    def add_arguments(self, parser: argparse.ArgumentParser, name: str) -> None:
        parser.add_argument("--bands", type=parse_bands, metavar="PCT,PCT,...",
                            help="percentages of mid (default 0.1,0.5,1,2,5, or depth_bands in the config)")

    async def run(self, args: argparse.Namespace, config, venues) -> int:
        from l2_manager.answer import build_depth, live_exit_code
        from l2_manager.depth import DEFAULT_BANDS
        from l2_manager.document import depth_json
        from l2_manager.render import render_depth

        safe_streams()
        bands = args.bands or tuple(Decimal(str(b)) for b in getattr(config, "depth_bands", DEFAULT_BANDS))
        async with open_session(config, venues, args.symbol, args.source) as session:
            started = await wait_for_books(session, args.max_wait)
            report = build_depth(list(session.views.values()), bands, args.source,
                                 session.reasons(waited(started)))
        code = live_exit_code(report.statuses)
        with reader_may_leave():
            if args.json:
                print(json.dumps(depth_json(report, code), indent=2))
            else:
                render_depth(report, out_console())
        return code


depth_command = DepthCommand()


# --- queue -----------------------------------------------------------------------------------------
class QueueCommand:
    """`queue buy PRICE SIZE --venue bitstamp`: for a limit order placed now, what is ahead of it at
    that price, and an estimate of its time to fill from the traded rate seen while watching."""

    def help(self, name: str) -> str:
        return "where a limit order placed now would stand in the queue, and its time to fill"

    def add_arguments(self, parser: argparse.ArgumentParser, name: str) -> None:
        from main import parse_size, positive_seconds

        parser.add_argument("side", choices=("buy", "sell"), help="a limit buy rests on the bids, a sell on the asks")
        parser.add_argument("price", type=_price, help="the limit price")
        parser.add_argument("size", type=parse_size, help="the order's size, in the venue's own units")
        parser.add_argument("--venue", required=True, help="the venue (an order-level book shows each order)")
        parser.add_argument("--sample", type=positive_seconds, default=10.0, metavar="SECONDS",
                            help="how long to watch the traded rate before answering (default 10)")

    async def run(self, args: argparse.Namespace, config, venues) -> int:
        from l2_manager.answer import venue_status
        from l2_manager.depletion import Action
        from l2_manager.document import queue_json
        from l2_manager.fees import terms_from_settings
        from l2_manager.queue import TradeFlow, estimate, queue_position, resting_side
        from l2_manager.render import render_queue

        safe_streams()
        chosen = [v for v in venues if v.name == args.venue]
        if not chosen:
            names = ", ".join(v.name for v in venues)
            raise usage(f"--venue: {args.venue!r} is not an enabled venue listing {args.symbol.name} ({names})")
        action = Action(args.side)
        async with open_session(config, chosen, args.symbol, args.source) as session:
            started = await wait_for_books(session, args.max_wait)
            view = next(iter(session.views.values()))
            if not view.live:
                status = venue_status(view, time.time(), terms_from_settings(chosen[0].settings),
                                      unreachable=session.reasons(waited(started)).get(view.key))
                print(f"{view.venue}: {status.reason}", file=sys.stderr)
                return EXIT_NONE
            flow = TradeFlow(view, resting_side(action), time.monotonic)
            unsubscribe = session.manager.subscribe(flow.on_action)
            try:
                await asyncio.sleep(args.sample)
            finally:
                unsubscribe()
            at = time.time()
            status = venue_status(view, at, terms_from_settings(chosen[0].settings))
            position = queue_position(view, action, args.price, args.size)
            result = estimate(position, *flow.rate())
        with reader_may_leave():
            if args.json:
                print(json.dumps(queue_json(status, view.symbol, position, result, args.source, at, EXIT_OK),
                                 indent=2))
            else:
                render_queue(status, position, result, out_console())
        return EXIT_OK


def _price(text: str) -> Decimal:
    return _positive(text, "price")


queue_command = QueueCommand()


