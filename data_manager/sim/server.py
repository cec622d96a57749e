"""The machinery every simulated venue shares: a WebSocket server on 127.0.0.1, its sessions, and a pump
that steps the venue's seeded order flow at its message rate and sends each session its frames.

A venue subclass supplies only its protocol: how a session subscribes (`serve_session`), how one step of
flow is written for one session (`frames_for`), and its true book (`true_book`) so tests can compare the
client's book with what the venue really holds. A venue with REST endpoints lists them in `rest_routes()`:
the base then runs one HTTP server beside the WebSocket one (`rest_url`), started and closed with it, and
`client_overrides()` points the client's `rest_url` at it.
"""
from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar, Coroutine, Mapping

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from data_manager.sim.clock import SimClock
from data_manager.sim.http import Handler, HttpServer, Request, Response
from data_manager.sim.market import Market

log = logging.getLogger(__name__)


FAULT_KINDS = ("gap", "checksum", "drop", "duplicate", "disconnect", "silence", "crossed", "garbage",
               "slow-snapshot")


@dataclass(frozen=True)
class FaultPlan:
    """Break the feed once: `kind` after the `after`-th data message of connection number `connection`."""

    kind: str
    after: int = 5
    connection: int = 1


@dataclass(frozen=True)
class SimVenueSettings:
    """What the simulator config says about one venue."""

    rate: float = 20.0          # book updates per second (0: the book never moves)
    levels: int = 300           # price levels per side at least
    basis_bps: Decimal = Decimal(0)  # a perpetual's premium over the common spot mid
    faults: tuple[FaultPlan, ...] = ()


class Session:
    """One client connection as the simulated venue sees it."""

    def __init__(self, ws: ServerConnection, number: int) -> None:
        self.ws = ws
        self.number = number            # 1 for the venue's first connection, 2 after a reconnect...
        self.subscribed = False
        self.data_sent = 0              # book data messages sent on this connection
        self.silenced = False           # the "silence" fault: nothing more is sent, socket kept open
        self.state: dict[str, Any] = {}  # per-protocol bookkeeping (sequence numbers, depth...)

    async def send(self, frame: str) -> bool:
        try:
            await self.ws.send(frame)
            return True
        except ConnectionClosed:
            return False


class SimVenue:
    """A venue server: subclass it per protocol.

    `symbols` maps the venue's own symbol names to the unified ones the market quotes (e.g.
    {"XBTUSDM": "BTC-USD"}); `clock` stamps every frame (real time unless a test fixes its start).
    `supported_faults` lists what the venue's protocol can carry; anything else is refused when the
    venue is built, with the reason."""

    name = ""
    path = "/"
    supported_faults: ClassVar[tuple[str, ...]] = ()
    default_symbols: ClassVar[Mapping[str, str]] = {}
    rest_not_found: ClassVar[Any] = None
    """The body the venue's REST answers an unknown path with (None: a generic one)."""

    def __init__(self, market: Market, seed: int, settings: SimVenueSettings,
                 symbols: Mapping[str, str] | None = None, clock: SimClock | None = None,
                 host: str = "127.0.0.1") -> None:
        self.market = market
        self.settings = settings
        self.symbols: dict[str, str] = dict(symbols or self.default_symbols)
        self.clock = clock or SimClock()
        self.host = host
        for plan in settings.faults:
            if plan.kind not in self.supported_faults:
                raise ValueError(f"{self.name} simulator cannot inject {plan.kind!r} "
                                 f"(it can: {', '.join(self.supported_faults)})")
        self.rng = random.Random(f"{self.name}-{seed}")
        self.sessions: set[Session] = set()
        self.connections = 0
        self.elapsed = 0.0              # simulated seconds of flow so far
        self.paused = False             # tests pause the flow to compare books at a quiet moment
        self.injected: list[tuple[str, int, int]] = []   # (fault kind, connection, after message): what was done
        self._step_lock = asyncio.Lock()
        self._server = None
        self.http: HttpServer | None = None   # the REST server, while running, if the venue has routes
        self._tasks: set[asyncio.Task] = set()

    # --- lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        routes = dict(self.rest_routes())
        if routes:
            self.http = HttpServer(routes, self.host, self.rest_not_found, self.rest_fallback)
            await self.http.start()
        try:
            self._server = await serve(self._handle, self.host, 0, max_size=None, compression=None)
        except BaseException:
            await self._close_rest()
            raise
        if self.settings.rate > 0:
            self.spawn(self._pump())
        log.info("%s simulator listening on %s", self.name, self.ws_url)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        await self._close_rest()

    async def _close_rest(self) -> None:
        if self.http is not None:
            await self.http.close()

    def spawn(self, coro: Coroutine) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    @property
    def port(self) -> int:
        return self._server.sockets[0].getsockname()[1]

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}{self.path}"

    def mid(self, native: str | None = None) -> Decimal:
        """The common mid of one of our symbols (the first one by default), now."""
        unified = self.symbols[native] if native is not None else next(iter(self.symbols.values()))
        return self.market.mid_at(self.elapsed, unified)

    @property
    def rest_url(self) -> str:
        """http://127.0.0.1:<port> of the REST server (once started; only a venue with routes has one)."""
        if self.http is None:
            raise RuntimeError(f"{self.name} simulator has no REST server (no routes, or not started)")
        return self.http.url

    def client_overrides(self) -> dict[str, str]:
        """The settings a client changes to talk to this server instead of the venue."""
        overrides = {"url": self.ws_url}
        if self.http is not None:
            overrides["rest_url"] = self.rest_url
        return overrides

    # --- REST ---------------------------------------------------------------------------------
    def rest_routes(self) -> Mapping[tuple[str, str], Handler]:
        """{(method, path): async handler(request) -> Response}: the REST endpoints the venue serves,
        read once at start. None by default, and then no REST server runs."""
        return {}

    async def rest_fallback(self, request: Request) -> Response | None:
        """The answer to a request no route takes, for a venue that answers a family of paths itself
        (an unknown symbol...); None: the generic 404 with `rest_not_found`."""
        return None

    # --- the flow ---------------------------------------------------------------------------
    async def _pump(self) -> None:
        interval = 1 / self.settings.rate
        while True:
            await asyncio.sleep(interval)
            async with self._step_lock:
                if self.paused:
                    continue
                self.elapsed += interval
                change = self.step()
                for session in list(self.sessions):
                    if session.subscribed and not session.silenced:
                        await self._send_step(session, change)

    async def pause(self) -> None:
        """A barrier for tests: the flow stops, and no step is half-sent when this returns."""
        self.paused = True
        async with self._step_lock:
            pass

    def resume(self) -> None:
        self.paused = False

    async def _send_step(self, session: Session, change: Any) -> None:
        frames = self.frames_for(session, change)
        session.data_sent += 1
        fault = self._due_fault(session)
        if fault is not None:
            log.info("%s simulator: injecting %s on connection %d after message %d",
                     self.name, fault.kind, session.number, session.data_sent)
            self.injected.append((fault.kind, session.number, session.data_sent))
            frames = self.inject(session, fault.kind, frames)
        await self.send_frames(session, frames)
        if fault is not None and fault.kind == "disconnect":
            await session.ws.close()

    def _due_fault(self, session: Session) -> FaultPlan | None:
        for fault in self.settings.faults:
            if fault.connection == session.number and fault.after == session.data_sent:
                return fault
        return None

    def inject(self, session: Session, kind: str, frames: list[str]) -> list[str]:
        """Turn one step's frames into the faulty ones. Generic kinds here; a venue adds its own
        (gap, checksum, crossed, drop, slow-snapshot) by overriding and calling super()."""
        if kind == "garbage":
            return frames + ['{"this is not": json']
        if kind == "duplicate":
            return frames + frames
        if kind == "silence":
            session.silenced = True  # no data and no heartbeats from now on, socket kept open
            return []
        if kind == "disconnect":
            return frames
        raise ValueError(f"{self.name} simulator cannot inject {kind!r}")

    async def send_frames(self, session: Session, frames: list[str]) -> None:
        for frame in frames:
            if not await session.send(frame):
                self.sessions.discard(session)
                return

    async def _handle(self, ws: ServerConnection) -> None:
        self.connections += 1
        session = Session(ws, self.connections)
        self.sessions.add(session)
        try:
            await self.serve_session(session)
        except ConnectionClosed:
            pass
        finally:
            self.sessions.discard(session)

    # --- what a venue implements ------------------------------------------------------------
    def step(self) -> Any:
        """Advance the venue's flow by one update; return what `frames_for` needs to write it."""
        raise NotImplementedError

    def frames_for(self, session: Session, change: Any) -> list[str]:
        raise NotImplementedError

    async def serve_session(self, session: Session) -> None:
        """Speak the venue's protocol on one connection until it closes."""
        raise NotImplementedError

    def true_book(self) -> dict[str, list[tuple[Decimal, Decimal]]]:
        """{'bid': [(price, size)...], 'ask': [...]} best first, in the venue's own units."""
        raise NotImplementedError
