"""`python3 main.py serve`: every enabled venue's books kept live, answered over HTTP/JSON and pushed over
a WebSocket on one port, and (with `--redis URL` or `redis.enabled`) published to Redis.

    python3 main.py serve [--port 8765] [--host 127.0.0.1] [--symbol BTC-USD --symbol ETH-USD]
                          [--venues kraken,gemini] [--source live|sim] [--redis redis://127.0.0.1:6379/0]

One session for every symbol (`data_manager.session.open_session`, live or simulated; a multiplexed
venue carries all of them on one connection); the same data manager, processors and checks as the
one-shot commands. It prints one line when it listens, then runs until
Ctrl-C or SIGTERM.
"""
from __future__ import annotations

import argparse
import asyncio
import importlib.util
import logging
import os
from dataclasses import asdict
from typing import Any, Callable

from data_manager.publish import RedisPublisher, RedisSettings, redis_settings, shown_url
from data_manager.session import SessionError, open_session
from data_manager.symbols import Symbol

log = logging.getLogger(__name__)

DEFAULT_PORT = 8765
DEFAULT_HOST = "127.0.0.1"


class ServeError(SessionError):
    """A service that cannot start as asked: one line, exit 2 (main.py prints a SessionError; its
    UsageError cannot be raised from here: main.py runs as `__main__`, `import main` is a second copy)."""


def main_rules(call: Callable[[], Any]) -> Any:
    """main.py's own checks (select_venues, check_source_flags), their refusals as a ServeError."""
    from main import UsageError

    try:
        return call()
    except UsageError as exc:
        raise ServeError(str(exc)) from None


def port_number(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 0 to 65535 (0: any free port), got {text!r}")
    return int(text)


def configured_redis(config: Any, url: str | None) -> RedisSettings:
    """The `redis:` block (a mapping until config.py reads it, or RedisSettings), `--redis` on top."""
    block = getattr(config, "redis", None)
    try:
        settings = block if isinstance(block, RedisSettings) else redis_settings(block)
        if url is not None:
            settings = redis_settings({**asdict(settings), "url": url, "enabled": True})
    except ValueError as exc:
        raise ServeError(f"--redis: {exc}" if url is not None else str(exc)) from None
    if settings.enabled and importlib.util.find_spec("redis") is None:
        raise ServeError("Redis publishing needs the redis package: pip install -r requirements-redis.txt")
    return settings


class ServeCommand:
    common = False  # several symbols, no --json: its own options (main's parsers, main's rules)

    def help(self, name: str) -> str:
        return "keep the books live; answer over HTTP/JSON and WebSocket on 127.0.0.1:8765"

    def add_arguments(self, parser: argparse.ArgumentParser, name: str) -> None:
        from main import symbol_name

        parser.add_argument("--port", type=port_number, default=DEFAULT_PORT, help="TCP port (default 8765; 0: any)")
        parser.add_argument("--host", help="address to listen on (default 127.0.0.1; any other needs "
                                           "BTC_DEPTH_TOKEN)")
        parser.add_argument("--symbol", type=symbol_name, action="append", default=[], metavar="SYMBOL",
                            help="a symbol to serve (repeatable; default: every symbol the venues list)")
        parser.add_argument("--source", choices=("live", "sim"), default="live",
                            help="live venues (default) or the built-in offline simulator")
        parser.add_argument("--venues", help="comma-separated subset of the enabled venues")
        parser.add_argument("--config", help="configuration file on top of the built-in one")
        parser.add_argument("--redis", metavar="URL", help="publish to this Redis (e.g. redis://127.0.0.1:6379/0)")
        parser.add_argument("--seed", type=int, help="simulator seed (--source sim only)")
        parser.add_argument("--sim-fault", action="append", default=[], metavar="VENUE:KIND[@N]",
                            help="break a simulated feed on purpose (--source sim only)")

    async def run(self, args: argparse.Namespace, config, venues) -> int:
        from main import apply_cli_to_config, check_source_flags, select_venues
        from l2_manager.service.api import TOKEN_ENV
        from l2_manager.service.server import BindRefused, check_bind

        main_rules(lambda: check_source_flags(args))
        config = apply_cli_to_config(config, args)
        symbols = args.symbol or [Symbol.parse(s) for s in dict.fromkeys(
            s for v in config.enabled for s in v.settings.symbols)]
        plans = [(symbol, main_rules(lambda symbol=symbol: select_venues(config, args.venues, symbol)))
                 for symbol in dict.fromkeys(symbols)]
        host = args.host or DEFAULT_HOST
        token = os.environ.get(TOKEN_ENV) or None
        try:
            check_bind(host, args.host is not None, token)
        except BindRefused as exc:
            raise ServeError(f"--host: {exc}") from None
        redis = configured_redis(config, args.redis)
        names = {v.name for _, listing in plans for v in listing}
        chosen = [v for v in config.enabled if v.name in names]
        async with open_session(config, chosen, [symbol for symbol, _ in plans], args.source) as session:
            settings = {v.name: v.settings for v in chosen}
            await serve_session(session, settings, args.source, host, args.port, token, redis)
        return 0


serve_command = ServeCommand()


async def serve_session(session, settings, source: str, host: str, port: int, token: str | None,
                        redis: RedisSettings) -> None:
    """Serve what the session holds until cancelled."""
    from l2_manager.service.api import Api, Feeds
    from l2_manager.service.push import PushHub
    from l2_manager.service.server import Service

    views = session.views
    started = session.clock()
    hub = PushHub(views)
    publisher: RedisPublisher | None = None
    service: Service | None = None

    def reasons() -> dict:
        return session.reasons(session.clock() - started)

    def extras() -> dict[str, Any]:
        return {"push": hub.status(), "http": service.status() if service else {},
                "redis": publisher.status() if publisher is not None else {"state": "off"}}

    feeds = Feeds(source, views, settings, reasons, extras, started)
    service = Service(Api(feeds, session.clock), hub, host, port, token)
    try:
        await service.start()
    except OSError as exc:
        raise ServeError(f"--port: cannot listen on {host}:{port} ({exc.strerror or exc})") from None
    unsubscribe = [session.manager.subscribe(hub.on_action)]
    if redis.enabled:
        publisher = RedisPublisher(views, redis, service.url)
        unsubscribe.append(session.manager.subscribe(publisher.on_action))
        publisher.start()
    pushing = asyncio.get_running_loop().create_task(hub.run(), name="push")
    names = ", ".join(dict.fromkeys(key.symbol for key in views))
    print(f"serving {len(views)} feeds ({names}, {source}) on {service.url}"
          + (f", publishing to {shown_url(redis.url)}" if publisher else "")
          + ": GET /v1/health /v1/depletion?action=sell&size=15 /v1/depth /v1/books/VENUE/SYMBOL; "
            "WebSocket /v1/stream", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        pushing.cancel()
        for stop in unsubscribe:
            stop()
        if publisher is not None:
            await publisher.stop()
        await service.close()
