"""The asyncio shell: one task per connection, doing only what its sans-I/O processor asks.

Per attempt: `processor.begin()`, then execute actions: `Fetch` (an HTTP request; its answer goes back
as `http_response`), `Connect(url)` (open the WebSocket, then `connection_made()`), `Send`, and
`Reconnect` (close; the next attempt waits for the backoff and the venue's connection limits). Every
frame goes to `receive`, a timer calls `tick` every `TICK_SECONDS`, and a closed socket is
`connection_lost`. `BookChanged` / `HealthChanged` go to the listener (the data manager).

The shell names no venue and reads or writes no processor attribute. It never catches a processor's
exception to decide what happens next: venue faults never leave a processor (they become actions), so
anything that does is our own bug. It ends this connection's task, is logged with its traceback, and is
shown to the user as an internal error; other connections go on.

HTTP runs urllib in a daemon thread under a total deadline: a server that answers one byte per second
cannot hold up `--max-wait`, Ctrl-C or the process exit.
"""
from __future__ import annotations

import asyncio
import collections
import logging
import random
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Callable, Protocol

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from data_manager import __version__
from data_manager.feed import (Action, BookChanged, Connect, Fetch, FeedProcessor, HealthChanged, HttpRequest,
                               OrderEvent, Reconnect, Send, TICK_SECONDS)
from data_manager.registry import ConnectLimits

log = logging.getLogger(__name__)

USER_AGENT = f"btc-depth/{__version__} (order-book depth tool; python-urllib)"
MAX_FRAME_BYTES = 16 * 2**20   # Coinbase's BTC-USD snapshot is one frame of several MB; Gemini >= 8 MiB
HTTP_TIMEOUT = 10.0            # seconds for a whole HTTP request, first byte to last
OPEN_TIMEOUT = 10.0
HEALTHY_SECONDS = 60.0         # live this long: the next disconnect earns an immediate retry (if allowed)


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter and a cap: uniform(0, min(cap, base * 2**attempt))."""

    base: float = 1.0
    cap: float = 30.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        return rng.uniform(0.0, min(self.cap, self.base * 2 ** min(attempt, 30)))


class AttemptWindow:
    """A venue's limits on connection attempts: a minimum interval, and at most N in a sliding window."""

    def __init__(self, limits: ConnectLimits) -> None:
        self.limits = limits
        self._starts: collections.deque[float] = collections.deque()

    def earliest(self, now: float) -> float:
        """The first moment a new attempt is allowed."""
        starts, limits = self._starts, self.limits
        while starts and now - starts[0] >= limits.per_seconds:
            starts.popleft()
        earliest = starts[-1] + limits.min_interval if starts else now
        if len(starts) >= limits.attempts:
            earliest = max(earliest, starts[0] + limits.per_seconds)
        return max(now, earliest)

    def started(self, now: float) -> None:
        self._starts.append(now)


Listener = Callable[["FeedConnection", Action], None]


class WireTap(Protocol):
    """Sees everything that crosses the wire of one connection, in order (a recorder implements it)."""

    def opened(self, url: str) -> None: ...
    def sent(self, text: str) -> None: ...
    def received(self, text: str) -> None: ...
    def http(self, request: HttpRequest, tag: str, status: int, body: str) -> None: ...
    def closed(self, reason: str) -> None: ...


class FeedConnection:
    """Keeps one connection's processor fed, forever, through faults and reconnects."""

    def __init__(self, processor: FeedProcessor, limits: ConnectLimits = ConnectLimits(),
                 backoff: Backoff = Backoff(), listener: Listener | None = None,
                 http_timeout: float = HTTP_TIMEOUT, tap: WireTap | None = None) -> None:
        self._processor = processor
        self.name = processor.venue
        self.limits = limits
        self.backoff = backoff
        self.listener = listener
        self.http_timeout = http_timeout
        self.tap = tap
        self.last_error: str | None = None     # why the latest attempt failed, in words a trader reads
        self.failed_attempts = 0               # attempts in a row that never opened a socket
        self.connects = 0
        self.crashed: BaseException | None = None
        self._window = AttemptWindow(limits)
        self._rng = random.Random()
        self._ws: ClientConnection | None = None
        self._url: str | None = None
        self._reconnect: str | None = None
        self._tasks: set[asyncio.Task] = set()

    # --- the loop of attempts --------------------------------------------------------------------
    async def run(self) -> None:
        attempt = 0
        try:
            while True:
                loop = asyncio.get_running_loop()
                start = self._window.earliest(loop.time())
                if attempt:
                    start = max(start, loop.time() + self.backoff.delay(attempt, self._rng))
                if start > loop.time():
                    log.info("%s: reconnecting in %.1f s", self.name, start - loop.time())
                    await asyncio.sleep(start - loop.time())
                self._window.started(loop.time())
                live_for = await self._attempt()
                healthy = live_for >= HEALTHY_SECONDS and self.limits.immediate_retry
                attempt = 0 if healthy else attempt + 1
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # a bug of ours: say so, loudly, and stop this connection only
            self.crashed = exc
            self.last_error = f"internal error: {type(exc).__name__}: {exc} (see the log)"
            log.exception("%s: internal error; this feed is stopped", self.name)
        finally:
            self._cancel_tasks()

    async def _attempt(self) -> float:
        """One connection attempt, from `begin` to the socket's close: seconds the socket was open."""
        processor = self._processor
        self._url = None
        self._reconnect = None
        processor.begin()
        await self._execute(processor.actions())
        while self._url is None and self._reconnect is None and self._tasks:
            await asyncio.wait(set(self._tasks), return_when=asyncio.FIRST_COMPLETED)
        if self._url is None:
            self.failed_attempts += 1
            self.last_error = self._reconnect or self.last_error
            processor.connection_lost(self.last_error or "no connection")
            await self._execute(processor.actions())
            self._cancel_tasks()
            return 0.0
        return await self._session(self._url)

    async def _session(self, url: str) -> float:
        processor = self._processor
        try:
            ws = await connect(url, max_size=MAX_FRAME_BYTES, open_timeout=OPEN_TIMEOUT, close_timeout=1,
                               user_agent_header=USER_AGENT)
        except (OSError, asyncio.TimeoutError, InvalidHandshake, InvalidURI) as exc:
            self.failed_attempts += 1
            self.last_error = describe(exc, url)
            log.warning("%s: %s", self.name, self.last_error)
            processor.connection_lost(self.last_error)
            await self._execute(processor.actions())
            self._cancel_tasks()
            return 0.0
        opened = time.monotonic()
        tap = self.tap
        if tap is not None:
            tap.opened(url)
        self._ws = ws
        self.connects += 1
        self.failed_attempts = 0
        self.last_error = None
        log.info("%s: connected to %s", self.name, url.split("?")[0])
        ticker = asyncio.create_task(self._ticks())
        reason = "the venue closed the connection"
        try:
            processor.connection_made()
            await self._execute(processor.actions())
            async for frame in ws:
                text = frame if type(frame) is str else frame.decode("utf-8", "replace")
                if tap is not None:
                    tap.received(text)
                processor.receive(text)
                await self._execute(processor.actions())
        except ConnectionClosed as exc:
            reason = f"connection lost ({exc.rcvd.code if exc.rcvd else 'no close frame'})"
        finally:
            ticker.cancel()
            self._ws = None
            self._cancel_tasks()
            await ws.close()
        if self._reconnect is None:
            self.last_error = reason
            log.warning("%s: %s", self.name, reason)
        if tap is not None:
            tap.closed(self._reconnect or reason)
        processor.connection_lost(self._reconnect or reason)
        await self._execute(processor.actions())
        return time.monotonic() - opened

    async def _ticks(self) -> None:
        try:
            while True:
                await asyncio.sleep(TICK_SECONDS)
                self._processor.tick(time.time())
                await self._execute(self._processor.actions())
        except ConnectionClosed:
            return  # the receive loop sees the close too, and handles it

    # --- executing actions -----------------------------------------------------------------------
    async def _execute(self, actions: list[Action]) -> None:
        for action in actions:
            kind = type(action)
            if kind is BookChanged or kind is HealthChanged or kind is OrderEvent:
                if self.listener is not None:
                    self.listener(self, action)
            elif kind is Send:
                if self._ws is not None and self._reconnect is None:
                    if self.tap is not None:
                        self.tap.sent(action.text)
                    await self._ws.send(action.text)
            elif kind is Fetch:
                self._spawn(self._fetch(action))
            elif kind is Connect:
                self._url = action.url
            elif kind is Reconnect:
                if self._reconnect is None:
                    self._reconnect = action.reason
                    self.last_error = action.reason
                    log.info("%s: closing the connection: %s", self.name, action.reason)
                    if self._ws is not None:
                        self._spawn(self._ws.close())
            else:
                raise TypeError(f"unknown action {action!r}")

    async def _fetch(self, fetch: Fetch) -> None:
        status, body = await http(fetch.request, self.http_timeout)
        if self.tap is not None:
            self.tap.http(fetch.request, fetch.tag, status, body)
        if status != 200:
            log.warning("%s: %s %s answered %s: %s", self.name, fetch.request.method, fetch.request.url,
                        status or "nothing", body[:160])
        self._processor.http_response(fetch.tag, status, body)
        await self._execute(self._processor.actions())

    def _spawn(self, coro) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            if not isinstance(exc, ConnectionClosed):
                self.crashed = exc
                log.error("%s: internal error in a background step", self.name, exc_info=exc)

    def _cancel_tasks(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        self._tasks.clear()

    def close(self) -> None:
        """Shut-down: the processor ignores whatever still arrives."""
        self._processor.close()
        self._processor.actions()  # nothing more is executed


async def http(request: HttpRequest, timeout: float = HTTP_TIMEOUT) -> tuple[int, str]:
    """(status, body); status 0 with a one-line reason when no answer came within `timeout` seconds.

    urllib in a daemon thread: an abandoned request (deadline, Ctrl-C) never holds up the event loop or
    the process exit, whatever the server does."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[tuple[int, str]] = loop.create_future()

    def settle(result: tuple[int, str]) -> None:
        if not future.done():
            future.set_result(result)

    def call() -> None:
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if request.body is not None:
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(request.url, data=request.body, method=request.method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as response:
                result = response.status, response.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:  # the body still says why (KuCoin puts a code in it)
            result = exc.code, exc.read().decode("utf-8", "replace")
        except (OSError, urllib.error.URLError, ValueError) as exc:
            result = 0, describe(exc, request.url)
        try:
            loop.call_soon_threadsafe(settle, result)
        except RuntimeError:  # the loop closed while the request was abandoned: nobody waits for it
            pass

    threading.Thread(target=call, name="http", daemon=True).start()
    try:
        return await asyncio.wait_for(future, timeout)
    except asyncio.TimeoutError:
        return 0, f"no answer from {_host(request.url)} within {timeout:g} s"


def _host(url: str) -> str:
    return url.split("//", 1)[-1].split("/", 1)[0].split("?", 1)[0]


def describe(exc: BaseException, url: str) -> str:
    """One line a trader understands: which address, and why it failed."""
    host = _host(url)
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        return f"cannot reach {host}: timed out"
    if isinstance(exc, (InvalidHandshake, InvalidURI)):
        return f"{host} refused the WebSocket connection: {exc}"
    if isinstance(exc, (OSError, urllib.error.URLError)):
        reason = getattr(exc, "reason", None) or exc
        return f"cannot reach {host}: {getattr(reason, 'strerror', None) or reason}"
    return f"{host}: {type(exc).__name__}: {exc}"
