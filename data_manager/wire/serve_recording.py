"""A recording served over the wire, as the venue sent it: any client can be tested against a real
session (`main.py simulate --from-recording DIR`).

Per venue, one WebSocket server and one HTTP server on 127.0.0.1. The recorded sockets of the venue
(every `open` ... `closed` stretch of its files, in the order they were opened) are served one per
client connection, in order:

- `in` records are sent as recorded, at the recorded pace times `speed` (bare frame files: as fast as
  the client reads);
- an `out` record (what the recording client sent) waits until this client has sent as many messages,
  at most `OUT_WAIT` seconds: a subscribe is answered after it arrives, and a ping the client does not
  send never stalls the stream;
- a recorded `closed` closes the socket (the client reconnects and gets the next recorded socket); at
  the end of the recording the socket stays open and silent;
- HTTP requests get the recorded answers for their method, path and query, in recorded order (the last
  one again once they run out); any recorded WebSocket URL in an answer (KuMEX's token names its server)
  is rewritten to this server's.

It imports nothing from the client side: this is the other end of the wire.
"""
from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence
from urllib.parse import parse_qsl, urlsplit

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from data_manager.sim.http import HttpServer, Request, Response
from data_manager.wire import records
from data_manager.wire.records import CLOSED, HTTP, IN, OPEN, OUT, ReadReport, Record, Recording

log = logging.getLogger(__name__)

OUT_WAIT = 2.0
"""Seconds a recorded `out` waits for the client's own message before the stream goes on."""


@dataclass
class RecordedSocket:
    """One socket of the recording: what was sent and received on it, with its times."""

    opened_at: float | None
    records: list[Record] = field(default_factory=list)
    closed: bool = False


@dataclass(frozen=True)
class RawResponse(Response):
    """An answer whose body is served byte for byte as recorded (never parsed and written again)."""

    body: str = ""

    def encode(self) -> bytes:
        body = self.body.encode("utf-8")
        head = [f"HTTP/1.1 {self.status} {'OK' if self.status == 200 else 'Recorded'}",
                "Content-Type: application/json", f"Content-Length: {len(body)}", "Connection: close"]
        return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


@dataclass
class Served:
    """A venue's recording, cut for serving."""

    sockets: list[RecordedSocket] = field(default_factory=list)   # in the order they were opened
    answers: list[Record] = field(default_factory=list)           # HTTP answers, in recorded order
    origins: set[str] = field(default_factory=set)                # scheme://host:port of recorded sockets


def split_sockets(recordings: Sequence[Recording], warn: Callable[[str], None]) -> Served:
    served = Served()
    sockets, answers = served.sockets, served.answers
    for recording in recordings:
        current: RecordedSocket | None = None
        for record in records.read(recording, ReadReport(), warn):
            if record.dir == OPEN:
                current = RecordedSocket(record.ts)
                sockets.append(current)
                served.origins.add(_origin(record.data))
            elif record.dir == HTTP:
                answers.append(record)
            elif record.dir in (IN, OUT):
                if current is None:   # bare frames: one socket, no open record
                    current = RecordedSocket(record.ts)
                    sockets.append(current)
                current.records.append(record)
            elif record.dir == CLOSED and current is not None:
                current.closed = True
                current = None
    sockets.sort(key=lambda s: s.opened_at if s.opened_at is not None else float("-inf"))
    return served


class RecordingVenue:
    """One venue's recording behind a WebSocket server and an HTTP server (see the module docstring)."""

    def __init__(self, name: str, recordings: Sequence[Recording], speed: float | None = 1.0,
                 host: str = "127.0.0.1", warn: Callable[[str], None] = log.warning) -> None:
        self.name = name
        self.speed = speed
        self.host = host
        served = split_sockets(recordings, warn)
        self.sockets = served.sockets
        self.connections = 0
        self.sent_all = asyncio.Event()      # every frame of the first recorded socket is out
        self._recorded_urls = sorted(served.origins, key=len, reverse=True)
        self._answers: dict[tuple[str, str], collections.deque[Record]] = {}
        for answer in served.answers:
            method = str(answer.fields.get("method", "GET"))
            self._answers.setdefault((method, urlsplit(str(answer.fields.get("url", ""))).path), collections.deque()).append(answer)
        self._server = None
        self.http = HttpServer({key: self._answer for key in self._answers}, host)

    async def start(self) -> None:
        self._server = await serve(self._handle, self.host, 0, max_size=None, compression=None)
        await self.http.start()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        await self.http.close()

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self._server.sockets[0].getsockname()[1]}/"

    @property
    def rest_url(self) -> str:
        return self.http.url

    # --- HTTP -----------------------------------------------------------------------------------
    async def _answer(self, request: Request) -> Response:
        queue = self._answers[(request.method, request.path)]
        matching = [r for r in queue if dict(parse_qsl(urlsplit(str(r.fields.get("url", ""))).query)) == request.query]
        record = matching[0] if matching else queue[0]
        if len(queue) > 1:
            queue.remove(record)
        status = record.fields.get("status")
        return RawResponse(status if type(status) is int and status > 0 else 502, body=self._rewritten(record.data))

    def _rewritten(self, body: str) -> str:
        """Recorded WebSocket servers named in an answer become this one (KuMEX's token `endpoint`)."""
        ours = self.ws_url.rstrip("/")
        for origin in self._recorded_urls:
            body = body.replace(origin, ours)
        return body

    # --- WebSocket ------------------------------------------------------------------------------
    async def _handle(self, ws: ServerConnection) -> None:
        self.connections += 1
        number = self.connections
        if number > len(self.sockets):
            log.info("%s recording: connection %d has no recorded socket left; kept open, silent", self.name, number)
            await ws.wait_closed()
            return
        socket = self.sockets[number - 1]
        received = _Counter()
        reader = asyncio.create_task(self._read(ws, received))
        try:
            await self._play(ws, socket, received)
            if number == 1:
                self.sent_all.set()
            if socket.closed:
                await ws.close()
            else:
                await ws.wait_closed()
        except ConnectionClosed:
            pass
        finally:
            reader.cancel()

    async def _read(self, ws: ServerConnection, received: "_Counter") -> None:
        try:
            async for _ in ws:
                received.add()
        except ConnectionClosed:
            pass

    async def _play(self, ws: ServerConnection, socket: RecordedSocket, received: "_Counter") -> None:
        loop = asyncio.get_running_loop()
        started, outs = loop.time(), 0
        for record in socket.records:
            if record.dir == OUT:
                outs += 1
                await received.reach(outs, OUT_WAIT)
                continue
            if self.speed and record.ts is not None and socket.opened_at is not None:
                delay = started + (record.ts - socket.opened_at) / self.speed - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            await ws.send(record.data)


class _Counter:
    """How many messages the client sent; `reach(n, timeout)` waits for the n-th (or the timeout)."""

    def __init__(self) -> None:
        self.count = 0
        self._changed = asyncio.Event()

    def add(self) -> None:
        self.count += 1
        self._changed.set()

    async def reach(self, wanted: int, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.count < wanted and loop.time() < deadline:
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), deadline - loop.time())
            except asyncio.TimeoutError:
                return


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def client_overrides(settings_type: type, ws_url: str, rest_url: str) -> dict[str, str]:
    """The settings a client of ours changes to reach these servers: every WebSocket URL field to the
    WebSocket server, every HTTP URL field to the HTTP server (from the fields' `schemes`)."""
    overrides = {}
    for item in dataclasses.fields(settings_type):
        schemes: Iterable[str] = item.metadata.get("schemes", ())
        if any(s.startswith("ws") for s in schemes):
            overrides[item.name] = ws_url
        elif any(s.startswith("http") for s in schemes):
            overrides[item.name] = rest_url
    return overrides
