"""The asyncio shell: one receive task per venue, each driving its own sans-I/O processor.

Per venue: (token request) -> connect -> reset the processor -> subscribe -> for every frame:
`processor.receive(text)`, send what it asks to send, fetch the snapshot it asks for (in the background, so
deltas keep arriving and are buffered meanwhile). A `FeedError` is logged in one line; the processor either
resyncs on the same connection (KuMEX refetches its snapshot) or the connection is dropped and made again.
Connection failures back off exponentially with jitter and a cap, forever; one venue failing never touches
the others (each task catches its own errors; nothing is gathered with sibling cancellation).
"""
from __future__ import annotations

import asyncio
import logging
import random
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Iterable

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from data_manager.errors import ConnectionLost, FeedError, MessageError, NoBook, StaleFeed
from data_manager.venues.base import BookState, HttpRequest, VenueProcessor

log = logging.getLogger(__name__)

MAX_FRAME_BYTES = 16 * 2**20   # Coinbase's BTC-USD snapshot is one frame of several MB
HTTP_TIMEOUT = 10.0
TIMER_SECONDS = 0.5
HEALTHY_SECONDS = 5.0          # live this long before a disconnect earns an immediate reconnect
NO_BOOK_SECONDS = 30.0         # connected this long without ever a live book: reconnect (KuMEX's
                               # level-3 silence fallback comes first, after 10 s)


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter and a cap: base * 2**attempt, at most `cap` seconds."""

    base: float = 0.5
    cap: float = 30.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        return rng.uniform(0.5, 1.0) * min(self.cap, self.base * 2 ** min(attempt, 30))


class _Reconnect(Exception):
    """Raised inside a session when the feed must be rebuilt on a new connection."""


class VenueFeed:
    """Keeps one venue's processor fed, forever, through faults and reconnects."""

    def __init__(self, processor: VenueProcessor, url: str, max_age: float, backoff: Backoff = Backoff(),
                 no_book_after: float = NO_BOOK_SECONDS) -> None:
        self.processor = processor
        self.no_book_after = no_book_after
        self.name = processor.venue
        self.url = url
        self.max_age = max_age
        self.backoff = backoff
        self.ready = asyncio.Event()
        self.last_error: str | None = None   # the latest reason the venue was not reachable
        self.connects = 0
        self._rng = random.Random()
        self._snapshot_task: asyncio.Task | None = None
        self._live_since: float | None = None   # when the book went live on this connection
        self._closed_by_us = False              # a close we chose is not reported as the venue's fault

    async def run(self) -> None:
        attempt = 0
        while True:
            self._live_since = None
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except _Reconnect:
                pass
            except Exception as exc:  # one venue's failure is logged and retried, never propagated
                self.last_error = _describe(exc, self.url)
                log.warning("%s: %s", self.name, self.last_error)
            self._update_ready()
            # A connection that stayed live for a while earns an immediate reconnect; a venue that keeps
            # failing, or faults again right after each snapshot, backs off so it never spins.
            healthy = self._live_since is not None and time.monotonic() - self._live_since >= HEALTHY_SECONDS
            attempt = 0 if healthy else attempt + 1
            delay = self.backoff.delay(attempt, self._rng) if attempt else 0.0
            if self.processor.state is not BookState.RESYNCING:
                self.processor.state = BookState.CONNECTING
            log.info("%s: reconnecting in %.1f s", self.name, delay)
            await asyncio.sleep(delay)

    async def _session(self) -> None:
        """One connection's life, from the token request to the socket's close."""
        url = await self._connect_url()
        async with connect(url, max_size=MAX_FRAME_BYTES, open_timeout=10, close_timeout=1) as ws:
            self.connects += 1
            self.last_error = None
            self._closed_by_us = False
            self.processor.reset()
            log.info("%s: connected to %s", self.name, url.split("?")[0])
            await self._send(ws, self.processor.subscribe_messages())
            timer = asyncio.create_task(self._timer(ws))
            try:
                async for frame in ws:
                    text = frame if isinstance(frame, str) else frame.decode("utf-8", "replace")
                    self._guarded(self.processor.receive, text)
                    await self._after_receive(ws)
                reason = "the venue closed the connection"
            except ConnectionClosed as exc:
                reason = f"connection lost ({exc.rcvd.code if exc.rcvd else 'no close frame'})"
            finally:
                timer.cancel()
                self._cancel_snapshot()
                self._update_ready()
            self.last_error = self.last_error or reason
            if not self._closed_by_us:
                self.processor.fault(ConnectionLost(self.name, reason))

    async def _connect_url(self) -> str:
        request = self.processor.token_request()
        if request is None:
            return self.processor.connect_url(self.url)
        try:
            status, body = await _http(request)
        except (OSError, urllib.error.URLError) as exc:
            raise ConnectionError(_describe(exc, request.url)) from exc
        if status != 200:
            raise MessageError(self.name, f"token request answered HTTP {status}", body)
        return self.processor.connect_url(self.url, body)

    def _guarded(self, apply, text: str) -> None:
        """Run one processor step; a feed fault resyncs in place or asks for a new connection."""
        try:
            apply(text)
        except FeedError as exc:
            in_place = self.processor.fault(exc)
            self._update_ready()
            if not in_place:
                raise _Reconnect() from exc
            # In place: a snapshot already on its way is kept; the processor judges by its sequence
            # whether it bridges the new buffer.

    async def _after_receive(self, ws: ClientConnection) -> None:
        """Send what the processor queued and start the snapshot fetch it asks for, if any."""
        self._update_ready()
        outbox = self.processor.take_outbox()
        if outbox:
            await self._send(ws, outbox)
        if self._snapshot_task is None:
            request = self.processor.snapshot_request()
            if request is not None:
                self._snapshot_task = asyncio.create_task(self._fetch_snapshot(ws, request))

    async def _fetch_snapshot(self, ws: ClientConnection, request: HttpRequest) -> None:
        try:
            status, body = await _http(request)
        except (OSError, urllib.error.URLError) as exc:
            status, body = 0, str(exc)
        self._snapshot_task = None
        if status != 200:
            log.warning("%s: snapshot request answered %s: %s", self.name, status or "nothing", body[:120])
            self.processor.snapshot_failed(status, body)
        else:
            try:
                self._guarded(self.processor.load_snapshot, body)
            except _Reconnect:
                log.warning("%s: snapshot unusable; reconnecting", self.name)
                self._closed_by_us = True
                await ws.close()
                return
        try:
            await self._after_receive(ws)
        except ConnectionClosed:
            pass  # the receive loop sees the close too, and handles it

    def _cancel_snapshot(self) -> None:
        if self._snapshot_task is not None:
            self._snapshot_task.cancel()
            self._snapshot_task = None

    async def _timer(self, ws: ClientConnection) -> None:
        """Venue pings, time-based processor decisions and the watchdogs (stale data, no book)."""
        connected = time.monotonic()
        next_ping = connected + (self.processor.ping_interval or 0)
        try:
            while True:
                await asyncio.sleep(TIMER_SECONDS)
                now = self.processor.clock()
                self.processor.on_timer(now)
                if self.processor.check_age(now, self.max_age):
                    self._update_ready()
                error = self._watchdog(now, time.monotonic() - connected)
                if error is not None:
                    self.last_error = error.detail()
                    self.processor.fault(error)
                    self._closed_by_us = True
                    await ws.close()
                    return
                if self.processor.ping_interval and time.monotonic() >= next_ping:
                    next_ping = time.monotonic() + self.processor.ping_interval
                    await self._send(ws, [self.processor.ping_message()])
                await self._after_receive(ws)
        except ConnectionClosed:
            return  # the receive loop sees the close too, and handles it

    def _watchdog(self, now: float, connected_for: float) -> FeedError | None:
        """A reason to drop this connection: stale for twice max_age (the socket alone proves nothing),
        or no usable book long after connecting (a subscription that never delivers)."""
        age = self.processor.age(now)
        if self.processor.state is BookState.STALE and age is not None and age > 2 * self.max_age:
            return StaleFeed(self.name, age, self.max_age)
        if self._live_since is None and connected_for > self.no_book_after:
            return NoBook(self.name, connected_for)
        return None

    async def _send(self, ws: ClientConnection, frames: Iterable[str | None]) -> None:
        for frame in frames:
            if frame is not None:
                await ws.send(frame)

    def _update_ready(self) -> None:
        if self.processor.live:
            if self._live_since is None:
                self._live_since = time.monotonic()
            self.ready.set()
        else:
            self.ready.clear()


async def _http(request: HttpRequest) -> tuple[int, str]:
    """Blocking urllib in a worker thread: the receive loop keeps buffering meanwhile."""

    def call() -> tuple[int, str]:
        req = urllib.request.Request(request.url, data=request.body, method=request.method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT) as response:
                return response.status, response.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:  # the body still says why (KuCoin puts a code in it)
            return exc.code, exc.read().decode("utf-8", "replace")

    return await asyncio.to_thread(call)


def _describe(exc: BaseException, url: str) -> str:
    """One line a trader understands: which address, and why it failed."""
    host = url.split("//", 1)[-1].split("/", 1)[0].split("?", 1)[0]
    if isinstance(exc, ConnectionError) and exc.args and str(exc.args[0]).startswith("cannot reach"):
        return str(exc.args[0])  # already described (the token request names its own host)
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        return f"cannot reach {host}: timed out"
    if isinstance(exc, (OSError, urllib.error.URLError)):
        reason = getattr(exc, "reason", None) or exc
        return f"cannot reach {host}: {getattr(reason, 'strerror', None) or reason}"
    if isinstance(exc, (InvalidHandshake, InvalidURI)):
        return f"{host} refused the WebSocket connection: {exc}"
    if isinstance(exc, MessageError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


class DataManager:
    """Starts one task per venue and answers "which books are ready"."""

    def __init__(self, feeds: list[VenueFeed]) -> None:
        self.feeds = {feed.name: feed for feed in feeds}
        self._tasks: list[asyncio.Task] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(feed.run(), name=f"feed-{name}") for name, feed in self.feeds.items()]

    async def wait_ready(self, timeout: float) -> dict[str, bool]:
        """Wait until every venue's book is live, or `timeout` seconds; report each venue."""
        waits = [asyncio.create_task(feed.ready.wait()) for feed in self.feeds.values()]
        try:
            await asyncio.wait(waits, timeout=timeout)
        finally:
            for wait in waits:
                wait.cancel()
        return {name: feed.processor.live for name, feed in self.feeds.items()}

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
