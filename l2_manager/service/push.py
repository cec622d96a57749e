"""The push channel (`ws://HOST:PORT/v1/stream`): top-N book changes, health changes and order events.

    ws://127.0.0.1:8765/v1/stream?depth=10[&venues=kraken,gemini][&symbols=BTC-USD][&orders=1]

On connect: one `hello` (the feeds and the depth), then one `book` message per feed (its top N now).
Then, as they happen:
    {"type":"book","venue":"kraken","symbol":"BTC-USD","state":"live","version":812,"at_ms":...,
     "bids":[["60010.1","0.5"],...],"asks":[...]}           the whole top N, only when it changed
    {"type":"health","venue":"kraken","symbol":"BTC-USD","state":"resyncing","at_ms":...}
    {"type":"order","venue":"kumex",...}                       with orders=1 (level-3 venues)

Book changes arrive at the feed's message rate (thousands a second); the hub only marks the feed
dirty then (O(1), nothing is read or sent while ingesting) and every `interval` seconds sends each
dirty feed's top N to the subscribers that want it, once per feed and depth, and only if it changed.
Health changes and order events are sent at once. A subscriber that cannot keep up (its queue of
`queue_size` messages is full) is disconnected with code 1013 ("try again later"), never waited for.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Callable, Mapping
from urllib.parse import parse_qsl, urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from data_manager.book import Side
from data_manager.feed import BookChanged, BookView, FeedKey, HealthChanged, OrderEvent
from data_manager.publish import order_document
from l2_manager.numbers import plain

log = logging.getLogger(__name__)

STREAM_PATH = "/v1/stream"
DEFAULT_DEPTH, MAX_DEPTH = 10, 100
PUSH_INTERVAL = 0.05
QUEUE_SIZE = 1000
_encode = json.JSONEncoder(separators=(",", ":")).encode


class StreamRefused(Exception):
    """A subscription request with a bad parameter: the socket is closed with 1008 and the reason."""


@dataclass(frozen=True)
class Wants:
    """What one subscriber asked for."""

    depth: int = DEFAULT_DEPTH
    venues: frozenset[str] | None = None
    symbols: frozenset[str] | None = None
    orders: bool = False

    def covers(self, key: FeedKey) -> bool:
        return ((self.venues is None or key.venue in self.venues)
                and (self.symbols is None or key.symbol in self.symbols))

    @classmethod
    def from_path(cls, path: str) -> "Wants":
        query = dict(parse_qsl(urlsplit(path).query, keep_blank_values=True))
        unknown = set(query) - {"depth", "venues", "symbols", "orders"}
        if unknown:
            raise StreamRefused(f"{sorted(unknown)[0]}: unknown parameter")
        depth_text = query.get("depth", str(DEFAULT_DEPTH))
        if not depth_text.isdigit() or not 1 <= int(depth_text) <= MAX_DEPTH:
            raise StreamRefused(f"depth: expected a whole number from 1 to {MAX_DEPTH}, got {depth_text!r}")
        orders = query.get("orders", "0")
        if orders not in ("0", "1"):
            raise StreamRefused(f"orders: expected 0 or 1, got {orders!r}")
        return cls(int(depth_text), _names(query.get("venues")), _names(query.get("symbols"), str.upper),
                   orders == "1")


def _names(text: str | None, normal: Callable[[str], str] = str) -> frozenset[str] | None:
    return None if text is None else frozenset(normal(n.strip()) for n in text.split(",") if n.strip())


@dataclass(eq=False)
class Subscriber:
    connection: ServerConnection
    wants: Wants
    queue: asyncio.Queue = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))


def top_levels(view: BookView, depth: int) -> tuple[list[list[str]], list[list[str]]]:
    return ([[plain(p), plain(s)] for p, s in islice(view.levels(Side.BID), depth)],
            [[plain(p), plain(s)] for p, s in islice(view.levels(Side.ASK), depth)])


class PushHub:
    """Subscribers of the push channel. Feed it every data-manager action (`on_action`); run `run()`."""

    def __init__(self, views: Mapping[FeedKey, BookView], interval: float = PUSH_INTERVAL,
                 clock: Callable[[], float] = time.time) -> None:
        self.views = views
        self.interval = interval
        self.clock = clock
        self.subscribers: set[Subscriber] = set()
        self.dropped = 0                     # subscribers disconnected for being too slow
        self._dirty: set[FeedKey] = set()
        self._versions: dict[FeedKey, int] = {}
        self._last: dict[tuple[FeedKey, int], tuple] = {}   # (feed, depth) -> top N last sent

    # --- from the data manager ------------------------------------------------------------------
    def on_action(self, action: object) -> None:
        kind = type(action)
        if kind is BookChanged:
            if self.subscribers:
                self._dirty.add(action.key)
        elif kind is HealthChanged:
            self._dirty.add(action.key)
            self._send(action.key, lambda w: True, {"type": "health", "venue": action.key.venue,
                                                    "symbol": action.key.symbol, "state": action.state.value,
                                                    "at_ms": int(self.clock() * 1000)})
        elif kind is OrderEvent:
            self._send(action.key, lambda w: w.orders, order_document(action))

    def status(self) -> dict[str, Any]:
        return {"subscribers": len(self.subscribers), "dropped_slow": self.dropped}

    # --- the flush loop ---------------------------------------------------------------------------
    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self.flush()

    def flush(self) -> None:
        """Send each dirty feed's top N to the subscribers that want it, if it changed since last sent."""
        dirty, self._dirty = self._dirty, set()
        for key in dirty:
            depths = {s.wants.depth for s in self.subscribers if s.wants.covers(key)}
            for depth in depths:
                view = self.views[key]
                seen = (view.state.value, *top_levels(view, depth))
                if self._last.get((key, depth)) != seen:
                    self._last[(key, depth)] = seen
                    self._send(key, lambda w, depth=depth: w.depth == depth, self._book_message(key, seen))

    def _book_message(self, key: FeedKey, seen: tuple) -> str:
        state, bids, asks = seen
        version = self._versions[key] = self._versions.get(key, 0) + 1
        return _encode({"type": "book", "venue": key.venue, "symbol": key.symbol, "state": state,
                        "version": version, "at_ms": int(self.clock() * 1000), "bids": bids, "asks": asks})

    def _send(self, key: FeedKey, wanted: Callable[[Wants], bool], message: dict | str) -> None:
        text = None
        for subscriber in list(self.subscribers):
            if not subscriber.wants.covers(key) or not wanted(subscriber.wants):
                continue
            text = text if text is not None else (message if isinstance(message, str) else _encode(message))
            self._offer(subscriber, text)

    def _offer(self, subscriber: Subscriber, text: str) -> None:
        try:
            subscriber.queue.put_nowait(text)
        except asyncio.QueueFull:
            self.dropped += 1
            self.subscribers.discard(subscriber)
            log.warning("push: a subscriber fell %d messages behind: disconnected", QUEUE_SIZE)
            asyncio.get_running_loop().create_task(subscriber.connection.close(1013, "too slow: reconnect"))

    # --- one WebSocket subscriber -----------------------------------------------------------------
    async def serve(self, connection: ServerConnection) -> None:
        """The websockets handler for `/v1/stream`: hello, the current books, then changes until closed."""
        try:
            wants = Wants.from_path(connection.request.path)
        except StreamRefused as refused:
            await connection.close(1008, str(refused)[:120])
            return
        subscriber = Subscriber(connection, wants)
        feeds = [key for key in self.views if wants.covers(key)]
        subscriber.queue.put_nowait(_encode({"type": "hello", "depth": wants.depth, "orders": wants.orders,
                                             "feeds": [{"venue": k.venue, "symbol": k.symbol} for k in feeds]}))
        for key in feeds:
            view = self.views[key]
            subscriber.queue.put_nowait(self._book_message(key, (view.state.value, *top_levels(view, wants.depth))))
        self.subscribers.add(subscriber)
        reader = asyncio.get_running_loop().create_task(connection.wait_closed())
        try:
            while not reader.done():
                getter = asyncio.ensure_future(subscriber.queue.get())
                await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
                if not getter.done():
                    getter.cancel()
                    break
                await connection.send(getter.result())
        except ConnectionClosed:
            pass
        finally:
            self.subscribers.discard(subscriber)
            reader.cancel()
