"""The service's HTTP routes, pure: a request (path, query string) becomes a `Reply` (status and JSON).

No sockets and no awaits here: every answer reads the live books at one instant, exactly as the
one-shot CLI does, through the same functions (`build_answer`, `build_depth`, `document.answer_json`,
`document.depth_json`), and query parameters are checked by the CLI's own parsers, so
`GET /v1/depletion?action=sell&size=15` is `sell 15 --json` for the same books.

    GET /v1/depletion?action=sell&size=15[&size=20][&quote=1][&merge=all][&limit_bps=10][&orders=1]
                     [&fee=kraken=0.25%][&symbol=BTC-USD][&venues=kraken,gemini]
                     [&format=text&width=100&levels=12&brief=1&color=1][&max_age_ms=20]
    GET /v1/depth[?bands=0.1,0.5,1][&symbol=...][&venues=...][&format=text...]
    GET /v1/books/{venue}/{symbol}[?depth=10]
    GET /v1/health

`max_age_ms` (default 0: computed for this request) lets a client that asks the same question many
times a second accept an answer computed at most that long ago for the same query; the answer's `at`
says when it was computed. Nothing else is ever cached.

A bad parameter is a 400 whose JSON names it: {"error": {"status": 400, "parameter": "size",
"message": "size: ..."}}; unknown and repeated parameters are refused the same way (a typo must not
fall back to a default). An unknown route, venue or symbol is a 404 in the same shape.
"""
from __future__ import annotations

import argparse
import io
import json
import time
from dataclasses import dataclass, field, replace
from decimal import Decimal
from itertools import islice
from typing import Any, Callable, Iterable, Mapping, Sequence
from urllib.parse import parse_qsl, unquote

from data_manager.book import Side
from data_manager.feed import BookView, FeedKey
from data_manager.symbols import Symbol
from l2_manager.numbers import epoch_ms, iso_utc, plain

SCHEMA = 1
TOKEN_ENV = "BTC_DEPTH_TOKEN"
"""The service's access token (server and clients read it from the environment, never from a file)."""
MAX_BOOK_DEPTH = 10_000
DEFAULT_BOOK_DEPTH = 10
MIN_WIDTH, MAX_WIDTH, DEFAULT_WIDTH = 40, 400, 100
MAX_ANSWER_AGE_MS = 1000
CACHE_ENTRIES = 256
_encode = json.JSONEncoder(separators=(",", ":")).encode
_TRUE, _FALSE = ("1", "true", "yes", "on", ""), ("0", "false", "no", "off")


@dataclass(frozen=True)
class Reply:
    """What one request gets: a JSON body, or text rendered off the event loop (`text()`; rich
    takes milliseconds), with headers such as the answer's exit code."""

    status: int
    body: dict[str, Any] | None = None
    text: Callable[[], str] | None = None
    headers: tuple[tuple[str, str], ...] = ()
    threaded: bool = True   # `text()` reads no live book (an answer with --orders does: on the loop)
    raw: bytes | None = None  # the body already encoded (a kept answer is encoded once)

    def encoded(self) -> bytes:
        return self.raw if self.raw is not None else _encode(self.body).encode()


class BadRequest(Exception):
    """A request we refuse, with the parameter at fault (None: the route itself)."""

    def __init__(self, parameter: str | None, problem: str, status: int = 400) -> None:
        super().__init__(f"{parameter}: {problem}" if parameter else problem)
        self.parameter = parameter
        self.status = status

    def reply(self) -> Reply:
        return Reply(self.status, {"error": {"status": self.status, "parameter": self.parameter,
                                             "message": str(self)}})


@dataclass
class Feeds:
    """What the service answers from: every book it keeps (in configuration order), each venue's
    settings (fees, size rules), why a feed is not live, and extra health sections (Redis, push)."""

    source: str
    views: Mapping[FeedKey, BookView]
    settings: Mapping[str, object]
    reasons: Callable[[], Mapping[FeedKey, str]] = dict
    extras: Callable[[], dict[str, Any]] = dict
    started: float = field(default_factory=time.time)

    def symbols(self) -> list[str]:
        return list(dict.fromkeys(key.symbol for key in self.views))

    def for_symbol(self, symbol: Symbol, venues: Sequence[str] | None = None) -> list[BookView]:
        views = [view for key, view in self.views.items() if key.symbol == symbol.name]
        if not views:
            raise BadRequest("symbol", f"{symbol.name} is not served here (served: {', '.join(self.symbols())})",
                             404)
        if venues is None:
            return views
        names = [view.venue for view in views]
        for name in venues:
            if name not in names:
                raise BadRequest("venues", f"{name!r} does not serve {symbol.name} here (serving: {', '.join(names)})")
        return [view for view in views if view.venue in venues]


class Query:
    """A query string, each parameter taken once by name; whatever is left at the end is refused."""

    def __init__(self, text: str) -> None:
        self._values: dict[str, list[str]] = {}
        for name, value in parse_qsl(text, keep_blank_values=True):
            self._values.setdefault(name, []).append(value)

    def all(self, name: str, parse: Callable[[str], Any]) -> list[Any]:
        """Every value of a repeatable parameter, a comma-separated list counting as several."""
        items = [part for value in self._values.pop(name, []) for part in value.split(",") if part.strip()]
        return [_parsed(name, parse, item) for item in items]

    def one(self, name: str, parse: Callable[[str], Any], default: Any = None) -> Any:
        values = self._values.pop(name, None)
        if values is None:
            return default
        if len(values) > 1:
            raise BadRequest(name, f"given {len(values)} times; give it once")
        return _parsed(name, parse, values[0])

    def flag(self, name: str) -> bool:
        return self.one(name, _flag, False)

    def done(self) -> None:
        if self._values:
            name = sorted(self._values)[0]
            raise BadRequest(name, "unknown parameter")


def _parsed(name: str, parse: Callable[[str], Any], value: str) -> Any:
    try:
        return parse(value)
    except (argparse.ArgumentTypeError, ValueError) as exc:  # the parsers' own one-line refusals
        raise BadRequest(name, str(exc)) from None


def _flag(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"expected 1 or 0 (true or false), got {text!r}")


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {text!r}")
        return text
    return parse


def _bounded(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"expected a whole number, got {text!r}") from None
        if not low <= value <= high:
            raise ValueError(f"expected a whole number from {low} to {high}, got {text!r}")
        return value
    return parse


def _venue_names(text: str) -> str:
    name = text.strip()
    if not name.isidentifier():
        raise ValueError(f"expected venue names separated by commas, got {text!r}")
    return name


@dataclass(frozen=True)
class TextOptions:
    """`format=text`: the CLI's rendering, as `buy/sell --server` prints it."""

    width: int = DEFAULT_WIDTH
    levels: int = 12
    brief: bool = False
    color: bool = False


def _output(query: Query) -> TextOptions | None:
    """None for JSON (the default); the rendering options for `format=text`."""
    if query.one("format", _choice("json", "text"), "json") == "json":
        return None
    return TextOptions(query.one("width", _bounded(MIN_WIDTH, MAX_WIDTH), DEFAULT_WIDTH),
                       query.one("levels", _bounded(0, 100_000), 12), query.flag("brief"), query.flag("color"))


def text_console(options: TextOptions):
    from rich.console import Console

    return Console(file=io.StringIO(), width=options.width, highlight=False, force_terminal=options.color,
                   color_system="standard" if options.color else None, legacy_windows=False)


# --- the routes -----------------------------------------------------------------------------------
class Api:
    def __init__(self, feeds: Feeds, clock: Callable[[], float] = time.time) -> None:
        self.feeds = feeds
        self.clock = clock
        self._recent: dict[tuple[str, str], tuple[float, Reply]] = {}   # (path, query) -> (when, reply)

    def handle(self, path: str, query: str) -> Reply:
        try:
            parsed = Query(query)
            max_age = parsed.one("max_age_ms", _bounded(0, MAX_ANSWER_AGE_MS), 0) / 1000
            if not max_age:
                return self._route(path, parsed)
            return self._recently(path, query, max_age, lambda: self._route(path, parsed))
        except BadRequest as refused:
            return refused.reply()

    def _recently(self, path: str, query: str, max_age: float, compute: Callable[[], Reply]) -> Reply:
        """The same question's answer if it is at most `max_age` old, else a new one (kept if it is a 200)."""
        key = (path, "&".join(sorted(part for part in query.split("&") if not part.startswith("max_age_ms="))))
        now = time.monotonic()
        kept = self._recent.get(key)
        if kept is not None and now - kept[0] <= max_age:
            return kept[1]
        reply = compute()
        if reply.status == 200 and reply.threaded:
            if len(self._recent) >= CACHE_ENTRIES:
                self._recent.pop(next(iter(self._recent)))
            if reply.body is not None:
                reply = replace(reply, raw=reply.encoded())
            self._recent[key] = (now, reply)
        return reply

    def _route(self, path: str, query: Query) -> Reply:
        parts = [unquote(part) for part in path.strip("/").split("/")]
        if parts[:1] != ["v1"] or len(parts) < 2:
            raise BadRequest(None, f"no such route {path!r} (routes: /v1/depletion, /v1/depth, "
                                   "/v1/books/{venue}/{symbol}, /v1/health, /v1/stream)", 404)
        route, rest = parts[1], parts[2:]
        if route == "depletion" and not rest:
            return self.depletion(query)
        if route == "depth" and not rest:
            return self.depth(query)
        if route == "health" and not rest:
            query.done()
            return Reply(200, self.health())
        if route == "books" and len(rest) == 2:
            return self.book(rest[0], rest[1], query)
        raise BadRequest(None, f"no such route {path!r}", 404)

    # --- /v1/depletion ----------------------------------------------------------------------------
    def depletion(self, query: Query) -> Reply:
        from l2_manager import cli
        from l2_manager.answer import build_answer, exit_code, terms_for
        from l2_manager.depletion import Action

        action = query.one("action", _choice("buy", "sell"))
        if action is None:
            raise BadRequest("action", "missing: buy or sell")
        symbol = query.one("symbol", Symbol.parse, Symbol("BTC", "USD"))
        sizes = query.all("size", cli.parse_amount)
        if not sizes:
            raise BadRequest("size", "missing: e.g. size=15 or size=100000usd")
        wanted = argparse.Namespace(sizes=sizes, symbol=symbol, quote=query.flag("quote"),
                                    fee=query.all("fee", cli.parse_fee))
        merge = query.one("merge", _choice("spot", "all"), "spot")
        limit_bps = query.one("limit_bps", cli.parse_bps)
        with_orders = query.flag("orders")
        venues = query.one("venues", lambda text: [_venue_names(n) for n in text.split(",")])
        text = _output(query)
        query.done()
        views = self.feeds.for_symbol(symbol, venues)
        orders = _cli_rule("size", lambda: cli._order_sizes(wanted))
        overrides = _cli_rule("fee", lambda: cli._fee_overrides(wanted, [argparse.Namespace(name=v.venue)
                                                                          for v in views]))
        answer = build_answer(Action(action), orders, views, self.feeds.source, self._reasons(views), self.clock(),
                              terms=terms_for(views, self.feeds.settings, overrides), merge=merge,
                              limit_bps=limit_bps, with_orders=with_orders)
        code = exit_code(answer)
        if text is None:
            from l2_manager.document import answer_json

            return _json_answer(answer_json(answer, code), code)
        return Reply(200, text=lambda: _render_answer(answer, code, text), headers=_exit_header(code),
                     threaded=not with_orders)

    # --- /v1/depth --------------------------------------------------------------------------------
    def depth(self, query: Query) -> Reply:
        from l2_manager import cli
        from l2_manager.answer import build_depth, live_exit_code
        from l2_manager.depth import DEFAULT_BANDS

        symbol = query.one("symbol", Symbol.parse, Symbol("BTC", "USD"))
        bands = query.one("bands", cli.parse_bands, DEFAULT_BANDS)
        venues = query.one("venues", lambda text: [_venue_names(n) for n in text.split(",")])
        text = _output(query)
        query.done()
        views = self.feeds.for_symbol(symbol, venues)
        report = build_depth(views, bands, self.feeds.source, self._reasons(views), self.clock())
        # no terms, as the `depth` command (book liquidity is before fees; its statuses say fee 0 "default")
        code = live_exit_code(report.statuses)
        if text is None:
            from l2_manager.document import depth_json

            return _json_answer(depth_json(report, code), code)
        return Reply(200, text=lambda: _render_depth(report, text), headers=_exit_header(code))

    # --- /v1/books/{venue}/{symbol} ---------------------------------------------------------------
    def book(self, venue: str, symbol_text: str, query: Query) -> Reply:
        depth = query.one("depth", _bounded(1, MAX_BOOK_DEPTH), DEFAULT_BOOK_DEPTH)
        query.done()
        symbol = _parsed("symbol", Symbol.parse, symbol_text)
        key = FeedKey(venue, symbol.name)
        view = self.feeds.views.get(key)
        if view is None:
            served = ", ".join(f"{k.venue}/{k.symbol}" for k in self.feeds.views)
            raise BadRequest(None, f"no book {venue}/{symbol.name} here (books: {served})", 404)
        now = self.clock()
        return Reply(200, {**envelope("book", now), **book_json(view, depth, now)})

    # --- /v1/health -------------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        now = self.clock()
        reasons = self.feeds.reasons()
        feeds = [feed_health_json(view, now, reasons.get(key)) for key, view in self.feeds.views.items()]
        live = sum(1 for feed in feeds if feed["live"])
        return {**envelope("health", now), "source": self.feeds.source, "up_s": round(now - self.feeds.started, 3),
                "live": live, "feeds_total": len(feeds), "feeds": feeds, **self.feeds.extras()}

    def _reasons(self, views: Iterable[BookView]) -> dict[FeedKey, str]:
        reasons = self.feeds.reasons()
        return {view.key: reasons[view.key] for view in views if view.key in reasons}


def _cli_rule(parameter: str, call: Callable[[], Any]) -> Any:
    """The CLI's rules for a parameter (they raise a one-line `SessionError`, `cli.CommandError`)."""
    from data_manager.session import SessionError

    try:
        return call()
    except SessionError as exc:
        message = str(exc)
        for prefix in ("argument SIZE: ", "--fee: "):
            message = message.removeprefix(prefix)
        raise BadRequest(parameter, message) from None


def _exit_header(code: int) -> tuple[tuple[str, str], ...]:
    return (("X-Exit-Code", str(code)),)


def _json_answer(document: dict[str, Any], code: int) -> Reply:
    return Reply(200, document, headers=_exit_header(code))


def _render_answer(answer, code: int, options: TextOptions) -> str:
    """What `buy/sell` prints: the rendered answer, or (no venue live) one reason line per venue."""
    from l2_manager.answer import EXIT_NONE
    from l2_manager.render import render

    if code == EXIT_NONE:
        return "".join(f"{status.name}: {status.reason}\n" for status in answer.statuses)
    console = text_console(options)
    render(answer, console, options.levels, options.brief)
    return console.file.getvalue()


def _render_depth(report, options: TextOptions) -> str:
    from l2_manager.render import render_depth

    console = text_console(options)
    render_depth(report, console)
    return console.file.getvalue()


# --- documents ------------------------------------------------------------------------------------
def envelope(kind: str, at: float) -> dict[str, Any]:
    return {"schema": SCHEMA, "kind": kind, "at": iso_utc(at), "at_ms": epoch_ms(at)}


def levels_json(levels: Iterable[tuple[Decimal, Decimal]], depth: int) -> list[list[str]]:
    """Exact prices and sizes as strings, best first (the book's own digits, never a float)."""
    return [[plain(price), plain(size)] for price, size in islice(levels, depth)]


def book_json(view: BookView, depth: int, now: float) -> dict[str, Any]:
    """One book's top `depth` levels per side in base units, with its state."""
    health = view.health(now)
    return {"venue": view.venue, "symbol": view.key.symbol, "instrument": view.instrument, "book": view.book_kind,
            "state": health.state, "live": view.live, "notes": list(view.notes), "unit": view.symbol.base,
            "age_ms": None if health.age is None else int(health.age * 1000),
            "depth": {side.value: view.depth(side) for side in Side},
            "bids": levels_json(view.levels(Side.BID), depth), "asks": levels_json(view.levels(Side.ASK), depth)}


def feed_health_json(view: BookView, now: float, reason: str | None) -> dict[str, Any]:
    health = view.health(now)
    fault = health.last_fault
    return {"venue": view.venue, "symbol": view.key.symbol, "book": view.book_kind, "state": health.state,
            "live": view.live, "reason": reason,
            "age_ms": None if health.age is None else int(health.age * 1000),
            "resyncs": health.resyncs,
            "last_fault": None if fault is None else {"kind": fault.kind, "detail": fault.detail,
                                                     "at": iso_utc(fault.at), "at_ms": epoch_ms(fault.at)},
            "last_live": iso_utc(health.last_live),
            "checks": {"messages": health.messages, "checksums_verified": health.checksums_verified,
                       "sequence_first": health.first_sequence, "sequence_last": health.last_sequence},
            "depth": {side.value: view.depth(side) for side in Side}, "notes": list(view.notes)}
