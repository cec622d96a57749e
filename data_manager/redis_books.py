"""Books read back from Redis (what `serve` processes publish, `publish.py`): `sell 15 --redis URL`
answers from them with no exchange connection, merging the feeds of every server in the cluster.

    books = await views_from_redis("redis://127.0.0.1:6379/0", Symbol("BTC", "USD"), venues=["kraken", ...])
    build_answer(action, sizes, books.views, "redis", books.reasons, terms=terms_for(books.views, settings))

A `RedisBookView` has the interface of `BookView` (the answer cannot tell them apart): the top-N levels
of the snapshot, the true depth, the state and the evidence as the serving process saw them, the age
grown by the time since publication. A feed that is registered (or asked for) but has no snapshot any
more (its server stopped publishing for longer than the TTL) is a view with no book, not live, and a
reason naming its last server.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Iterator, Sequence

from data_manager.book import Level, Side
from data_manager.feed import Fault, FeedKey, FeedState, HealthReport
from data_manager.publish import RedisKeys, shown_url
from data_manager.symbols import Symbol

READ_TIMEOUT = 5.0


class RedisBooksError(Exception):
    """Redis cannot be read, or holds no feed of the symbol: one line for the user."""


def _levels(rows: list[list[str]]) -> list[Level]:
    return [(Decimal(price), Decimal(size)) for price, size in rows]


class RedisBookView:
    """One published snapshot, read-only, best first, in base units (as `BookView`)."""

    __slots__ = ("key", "instrument", "symbol", "extra_notes", "_document", "_sides", "_native", "_depth",
                 "_state", "_read_at")

    def __init__(self, key: FeedKey, symbol: Symbol, document: dict[str, Any] | None, read_at: float,
                 extra_notes: tuple[str, ...] = ()) -> None:
        self.key = key
        self.symbol = symbol
        self.extra_notes = extra_notes
        self._document = document or {}
        self._read_at = read_at
        doc = self._document
        self.instrument = doc.get("instrument", "spot")
        self._state = FeedState(doc["state"]) if document else FeedState.CONNECTING
        self._sides = {Side.BID: _levels(doc.get("bids", [])), Side.ASK: _levels(doc.get("asks", []))}
        native = doc.get("native")
        self._native = self._sides if native is None else {Side.BID: _levels(native["bids"]),
                                                           Side.ASK: _levels(native["asks"])}
        self._depth = {side: int(doc.get("depth", {}).get(side.value, 0)) for side in Side}

    @property
    def venue(self) -> str:
        return self.key.venue

    @property
    def book_kind(self) -> str:
        return self._document.get("book", "L2")

    @property
    def state(self) -> FeedState:
        return self._state

    @property
    def live(self) -> bool:
        return self._state is FeedState.LIVE

    @property
    def notes(self) -> tuple[str, ...]:
        return tuple(self._document.get("notes", ())) + self.extra_notes

    @property
    def published_at(self) -> float | None:
        return self._document.get("at")

    @property
    def server(self) -> str | None:
        return self._document.get("server")

    def levels(self, side: Side) -> Iterator[Level]:
        return iter(self._sides[side])

    def native_levels(self, side: Side) -> Iterator[Level]:
        return iter(self._native[side])

    def best(self, side: Side) -> Level | None:
        levels = self._sides[side]
        return levels[0] if levels else None

    def depth(self, side: Side) -> int:
        return self._depth[side]

    def orders_at(self, side: Side, price: Any) -> list:
        return []  # snapshots carry levels, not orders

    def health(self, now: float) -> HealthReport:
        health = self._document.get("health", {})
        fault = health.get("last_fault")
        age = health.get("age")
        if age is not None and self.published_at is not None:
            age += max(0.0, now - self.published_at)
        return HealthReport(self._state.value, health.get("resyncs", 0),
                            None if fault is None else Fault(fault["kind"], fault["detail"], fault["at"]),
                            health.get("messages", 0), health.get("checksums_verified", 0),
                            health.get("first_sequence"), health.get("last_sequence"), age, health.get("last_live"))


@dataclass
class RedisBooks:
    views: list[RedisBookView]
    reasons: dict[FeedKey, str] = field(default_factory=dict)   # why a feed has no book here
    servers: dict[FeedKey, str] = field(default_factory=dict)   # which server published each feed


async def views_from_redis(url: str, symbol: Symbol, venues: Sequence[str] | None = None,
                           prefix: str = "btc-depth", timeout: float = READ_TIMEOUT) -> RedisBooks:
    """Every feed of `symbol` published under `prefix` (or just `venues`, in that order)."""
    import redis.asyncio as redis
    from redis.exceptions import RedisError

    keys = RedisKeys(prefix)
    client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        registered = {member.decode() for member in await client.smembers(keys.feeds)}
        names = list(venues) if venues is not None else sorted(
            feed.split(":", 1)[0] for feed in registered if feed.split(":", 1)[1] == symbol.name)
        if not names:
            raise RedisBooksError(f"no feed of {symbol.name} in Redis at {shown_url(url)} (prefix {prefix!r}): "
                                  "is a `serve` process publishing there?")
        feed_keys = [FeedKey(name, symbol.name) for name in names]
        pipe = client.pipeline(transaction=False)
        for key in feed_keys:
            pipe.get(keys.book(key))
            pipe.get(keys.server(key))
        answers = await pipe.execute()
    except (RedisError, OSError) as exc:
        raise RedisBooksError(f"--redis {shown_url(url)}: cannot read Redis ({type(exc).__name__}: {exc})") from None
    finally:
        await client.aclose()
    now = time.time()
    books = RedisBooks([])
    for index, key in enumerate(feed_keys):
        book, server = answers[2 * index], answers[2 * index + 1]
        document = json.loads(book) if book is not None else None
        books.views.append(RedisBookView(key, symbol, document, now))
        owner = json.loads(server).get("server") if server is not None else None
        if document is not None:
            books.servers[key] = document.get("server")
        elif owner is not None:
            books.reasons[key] = f"no book in Redis: its server {owner} has not published it within the TTL"
        elif RedisKeys.feed(key) in registered:
            books.reasons[key] = "no book in Redis: no server has published it lately"
        else:
            books.reasons[key] = "not published in Redis (no serve process has this feed)"
    return books
