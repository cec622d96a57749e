"""Books to Redis (optional: `pip install -r requirements-redis.txt`; off unless configured).

What a `serve` process writes, per feed (`{p}` is the prefix, default "btc-depth"; feed = venue:symbol):

    {p}:book:{venue}:{symbol}      the top-N book (JSON, `book_document`), SET with a TTL: a feed whose
                                   server died disappears after `ttl` seconds
    {p}:changes:{venue}:{symbol}   a stream (XADD, MAXLEN ~ `stream_maxlen`) of book changes: per
                                   snapshot, the levels of the top N that changed (size "0": gone), with
                                   the snapshot's `version`; `reset` "1" marks a whole book (a restart);
                                   prices are the venue's text: key levels by their numeric value
    {p}:orders:{venue}:{symbol}    pub/sub channel of level-3 order events (KuMEX received/open/match/
                                   update/done, Bitstamp order_created/changed/deleted), as the SDK did
    {p}:server:{venue}:{symbol}    which server serves the feed (JSON: url, host, pid), with a TTL
    {p}:feeds                      a set of every feed ever registered (readers enumerate it)

Ingest never waits for Redis: a book change only marks its feed dirty (O(1)); a writer task, every
`interval` seconds, reads each dirty book (one feed at a time, yielding in between) and sends one
pipeline. Order events wait in a queue of at most `queue_size`; beyond that they are dropped and
counted. A failing Redis is retried with exponential backoff (jittered, capped); every round trip has
a `timeout`. The state (`status()`) is part of `/v1/health`.
"""
from __future__ import annotations

import asyncio
import collections
import json
import logging
import os
import random
import socket
import time
from dataclasses import dataclass, fields
from decimal import Decimal
from itertools import islice
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit, urlunsplit

from data_manager.book import Side
from data_manager.feed import BookChanged, BookView, FeedKey, HealthChanged, OrderEvent

log = logging.getLogger(__name__)

BOOK_SCHEMA = 1
BACKOFF_BASE, BACKOFF_CAP = 0.5, 30.0
_encode = json.JSONEncoder(separators=(",", ":")).encode


@dataclass(frozen=True)
class RedisSettings:
    """The `redis:` block of config.yml (every key optional)."""

    enabled: bool = False
    url: str = "redis://127.0.0.1:6379/0"   # redis:// or rediss://; a password goes in the URL
    prefix: str = "btc-depth"                # every key starts with it
    ttl: float = 10.0                        # seconds a book snapshot or a registry entry lives unrefreshed
    interval: float = 0.2                    # seconds between two snapshots of a changing book
    top: int = 500                           # levels per side in each snapshot
    stream_maxlen: int = 10_000              # entries kept per changes stream (approximate trim)
    queue_size: int = 10_000                 # order events waiting for Redis; beyond that dropped, counted
    timeout: float = 2.0                     # seconds for one round trip (connect, a pipeline)


_LIMITS = {"ttl": (1.0, 86_400.0), "interval": (0.01, 60.0), "top": (1, 100_000),
           "stream_maxlen": (1, 10_000_000), "queue_size": (1, 10_000_000), "timeout": (0.05, 60.0)}


def redis_settings(block: Mapping[str, Any] | None) -> RedisSettings:
    """A plain `redis:` mapping -> RedisSettings; ValueError naming the key for anything wrong."""
    block = dict(block or {})
    known = {f.name: f for f in fields(RedisSettings)}
    for name in block:
        if name not in known:
            raise ValueError(f"redis.{name}: unknown key (known: {', '.join(known)})")
    values = {}
    for name, value in block.items():
        kind = type(getattr(RedisSettings, name))
        if kind is float and type(value) is int:
            value = float(value)
        if type(value) is not kind:
            raise ValueError(f"redis.{name}: expected {kind.__name__}, got {value!r}")
        low, high = _LIMITS.get(name, (None, None))
        if low is not None and not low <= value <= high:
            raise ValueError(f"redis.{name}: expected {low} to {high}, got {value!r}")
        values[name] = value
    settings = RedisSettings(**values)
    if not settings.url.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError(f"redis.url: expected redis://, rediss:// or unix://, got {settings.url!r}")
    return settings


def shown_url(url: str) -> str:
    """The URL without its password, for logs and /v1/health."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


class RedisKeys:
    """Every key and channel name, in one place (the publisher and the readers share it)."""

    def __init__(self, prefix: str = "btc-depth") -> None:
        self.prefix = prefix

    @staticmethod
    def feed(key: FeedKey) -> str:
        return f"{key.venue}:{key.symbol}"

    def book(self, key: FeedKey) -> str:
        return f"{self.prefix}:book:{self.feed(key)}"

    def changes(self, key: FeedKey) -> str:
        return f"{self.prefix}:changes:{self.feed(key)}"

    def orders(self, key: FeedKey) -> str:
        return f"{self.prefix}:orders:{self.feed(key)}"

    def server(self, key: FeedKey) -> str:
        return f"{self.prefix}:server:{self.feed(key)}"

    def track(self, ident: str) -> str:
        return f"{self.prefix}:track:{ident}"

    @property
    def feeds(self) -> str:
        return f"{self.prefix}:feeds"


# --- documents ------------------------------------------------------------------------------------
def decimal_text(value: Decimal | None) -> str | None:
    """Exact digits, never an exponent (1E+1 -> "10")."""
    return None if value is None else format(value, "f")


def side_rows(levels, top: int) -> list[list[str]]:
    return [[format(price, "f"), format(size, "f")] for price, size in islice(levels, top)]


def book_document(view: BookView, top: int, now: float, version: int, server: str) -> dict[str, Any]:
    """One feed as a reader needs it to answer as if it held the book: the top `top` levels per side in
    base units (and in the venue's own units when they differ: contracts), the true depth, the state
    and the evidence behind it. Read at one instant (no awaits)."""
    health = view.health(now)
    fault = health.last_fault
    bids, asks = side_rows(view.levels(Side.BID), top), side_rows(view.levels(Side.ASK), top)
    native_bids, native_asks = side_rows(view.native_levels(Side.BID), top), side_rows(view.native_levels(Side.ASK), top)
    native = None if (native_bids, native_asks) == (bids, asks) else {"bids": native_bids, "asks": native_asks}
    return {"schema": BOOK_SCHEMA, "venue": view.venue, "symbol": view.key.symbol, "instrument": view.instrument,
            "book": view.book_kind, "state": health.state, "notes": list(view.notes), "version": version,
            "at": now, "server": server, "top": top,
            "health": {"resyncs": health.resyncs, "messages": health.messages,
                       "checksums_verified": health.checksums_verified, "first_sequence": health.first_sequence,
                       "last_sequence": health.last_sequence, "age": health.age, "last_live": health.last_live,
                       "last_fault": None if fault is None else {"kind": fault.kind, "detail": fault.detail,
                                                                "at": fault.at}},
            "depth": {side.value: view.depth(side) for side in Side},
            "bids": bids, "asks": asks, "native": native}


def order_document(event: OrderEvent) -> dict[str, Any]:
    """One order event as published (Redis channel, push channel): exact strings, the venue's words."""
    return {"type": "order", "venue": event.key.venue, "symbol": event.key.symbol, "kind": event.kind,
            "order_id": event.order_id, "client_oid": event.client_oid, "side": event.side,
            "price": decimal_text(event.price), "size": decimal_text(event.size),
            "filled": decimal_text(event.filled), "at_ms": None if event.at is None else int(event.at * 1000)}


def changed_levels(before: list[list[str]], after: list[list[str]]) -> list[list[str]]:
    """The levels of `after` that are new or resized, and those of `before` gone from it (size "0").
    Levels are matched by numeric price (a venue may write 59982 once and 59982.0 the next time), so a
    reader keys its levels by `Decimal(price)` too."""
    old = {Decimal(price): Decimal(size) for price, size in before}
    new = {Decimal(price): Decimal(size) for price, size in after}
    out = [[price, size] for price, size in after if old.get(Decimal(price)) != new[Decimal(price)]]
    out.extend([price, "0"] for price, _ in before if Decimal(price) not in new)
    return out


# --- the publisher --------------------------------------------------------------------------------
class RedisPublisher:
    """Publishes every view in `views`; feed it the data managers' actions (`on_action`), then
    `start()`; `await stop()` at the end (it removes this server's registry entries)."""

    def __init__(self, views: Mapping[FeedKey, BookView], settings: RedisSettings, server: str,
                 clock: Callable[[], float] = time.time) -> None:
        self.views = views
        self.settings = settings
        self.server = server
        self.clock = clock
        self.keys = RedisKeys(settings.prefix)
        self.state = "connecting"
        self.last_error: str | None = None
        self.reconnects = 0
        self.snapshots = 0
        self.orders_published = 0
        self.dropped = 0
        self.last_ok: float | None = None
        self._orders: collections.deque[tuple[str, str]] = collections.deque()
        self._dirty: set[FeedKey] = set(views)
        self._published: dict[FeedKey, tuple[float, list, list]] = {}   # when, bids, asks (last sent)
        self._versions: dict[FeedKey, int] = {}
        self._registered = 0.0
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._redis = None
        self._rng = random.Random()
        self._identity = {"server": server, "host": socket.gethostname(), "pid": os.getpid(),
                          "started": clock()}

    # --- from the data managers (O(1): never waits, never reads a book) --------------------------
    def on_action(self, action: object) -> None:
        kind = type(action)
        if kind is BookChanged or kind is HealthChanged:
            self._dirty.add(action.key)
        elif kind is OrderEvent:
            if len(self._orders) >= self.settings.queue_size:
                self.dropped += 1
                return
            self._orders.append((self.keys.orders(action.key), _encode(order_document(action))))
            self._wake.set()

    def status(self) -> dict[str, Any]:
        return {"state": self.state, "url": shown_url(self.settings.url), "prefix": self.settings.prefix,
                "snapshots": self.snapshots, "orders_published": self.orders_published,
                "queued": len(self._orders), "dropped": self.dropped, "reconnects": self.reconnects,
                "last_error": self.last_error, "last_ok": self.last_ok}

    # --- lifecycle --------------------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="redis-publisher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._redis is not None:
            try:
                await asyncio.wait_for(self._unregister(), self.settings.timeout)
            except asyncio.TimeoutError:
                log.info("redis: registry entries left to expire (no answer in %g s)", self.settings.timeout)
            await self._redis.aclose()

    def _client(self):
        import redis.asyncio as redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        timeout = self.settings.timeout
        return redis.Redis.from_url(self.settings.url, socket_timeout=timeout, socket_connect_timeout=timeout,
                                    retry=Retry(NoBackoff(), 0), health_check_interval=0)

    async def _run(self) -> None:
        from redis.exceptions import RedisError

        attempt = 0
        self._redis = self._client()
        while True:
            try:
                await self._redis.ping()
                if self.state != "up":
                    log.info("redis: connected to %s", shown_url(self.settings.url))
                self.state, self.last_error = "up", None
                attempt = 0
                await self._publish_forever()
            except (RedisError, OSError) as exc:  # the Redis link only: our own bugs propagate
                attempt += 1
                self.reconnects += 1
                self.state, self.last_error = "down", f"{type(exc).__name__}: {exc}"[:300]
                self._dirty.update(self.views)      # whole books again once it is back
                self._published.clear()
                delay = self._rng.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2 ** min(attempt, 16)))
                log.warning("redis: %s; retrying in %.1f s", self.last_error, delay)
                await asyncio.sleep(delay)

    async def _publish_forever(self) -> None:
        interval = self.settings.interval
        loop = asyncio.get_running_loop()
        next_books = loop.time()
        while True:
            if loop.time() >= next_books:
                next_books = loop.time() + interval
                await self._publish_books()
            await self._publish_orders()
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), max(0.0, next_books - loop.time()))
            except asyncio.TimeoutError:
                pass

    async def _publish_books(self) -> None:
        now = self.clock()
        refresh = self.settings.ttl / 3
        due = self._dirty | {key for key, (at, _, _) in self._published.items() if now - at >= refresh}
        self._dirty = set()
        pipe = self._redis.pipeline(transaction=False)
        for key in due:
            self._add_book(pipe, key, self.clock())
            await asyncio.sleep(0)  # one book at a time: ingest runs in between
        register = now - self._registered >= refresh
        if register:
            self._add_registry(pipe, now)
        if due or register:
            await pipe.execute()
            self.last_ok = self.clock()
            self.snapshots += len(due)

    def _add_book(self, pipe, key: FeedKey, now: float) -> None:
        version = self._versions[key] = self._versions.get(key, 0) + 1
        document = book_document(self.views[key], self.settings.top, now, version, self.server)
        last = self._published.get(key)
        entry = {"version": version, "at_ms": int(now * 1000), "state": document["state"],
                 "reset": "1" if last is None else "0",
                 "bids": _encode(document["bids"] if last is None else changed_levels(last[1], document["bids"])),
                 "asks": _encode(document["asks"] if last is None else changed_levels(last[2], document["asks"]))}
        self._published[key] = (now, document["bids"], document["asks"])
        ttl_ms = int(self.settings.ttl * 1000)
        pipe.set(self.keys.book(key), _encode(document), px=ttl_ms)
        pipe.xadd(self.keys.changes(key), entry, maxlen=self.settings.stream_maxlen, approximate=True)

    def _add_registry(self, pipe, now: float) -> None:
        self._registered = now
        ttl_ms = int(self.settings.ttl * 1000)
        identity = _encode({**self._identity, "at": now})
        for key in self.views:
            pipe.set(self.keys.server(key), identity, px=ttl_ms)
        pipe.sadd(self.keys.feeds, *(self.keys.feed(key) for key in self.views))

    async def _publish_orders(self) -> None:
        if not self._orders:
            return
        batch = [self._orders.popleft() for _ in range(min(len(self._orders), 1000))]
        pipe = self._redis.pipeline(transaction=False)
        for channel, message in batch:
            pipe.publish(channel, message)
        try:
            await pipe.execute()
        except BaseException:
            self._orders.extendleft(reversed(batch))  # not sent: kept (the bound still holds)
            raise
        self.orders_published += len(batch)
        self.last_ok = self.clock()

    async def _unregister(self) -> None:
        """Shut-down: this server's registry entries and books go (only those still naming it)."""
        from redis.exceptions import RedisError

        try:
            for key in self.views:
                entry = await self._redis.get(self.keys.server(key))
                owner = json.loads(entry) if entry is not None else {}
                if (owner.get("server"), owner.get("pid")) == (self.server, self._identity["pid"]):
                    await self._redis.delete(self.keys.server(key), self.keys.book(key))
        except (RedisError, OSError) as exc:
            log.info("redis: registry entries left to expire (%s)", exc)
