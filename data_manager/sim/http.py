"""A tiny HTTP/1.1 server for the simulator's REST endpoints (tokens, snapshots, reference data).

One request per connection (`Connection: close`), JSON answers, routes keyed by (method, path). Enough for
`urllib.request` and any HTTP client; nothing more (no chunked bodies, keep-alive or TLS), because the
simulator only has to answer the few requests a market-data client makes.
"""
from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from decimal import Decimal
from http import HTTPStatus
from typing import Any, Awaitable, Callable
from urllib.parse import parse_qsl, urlsplit

log = logging.getLogger(__name__)

READ_TIMEOUT = 10.0
MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]   # names lower-cased
    body: bytes = b""


@dataclass(frozen=True)
class Response:
    status: int
    payload: Any = None                  # serialised as JSON (Decimal written as a JSON number)
    headers: dict[str, str] = field(default_factory=dict)

    def encode(self) -> bytes:
        body = json.dumps(self.payload, separators=(",", ":"), default=_json_number).encode()
        try:
            reason = HTTPStatus(self.status).phrase
        except ValueError:
            reason = ""
        head = [f"HTTP/1.1 {self.status} {reason}", "Content-Type: application/json",
                f"Content-Length: {len(body)}", "Connection: close"]
        head += [f"{name}: {value}" for name, value in self.headers.items()]
        return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


def _json_number(value: Any) -> Any:
    """Decimals go out as numbers (the venue's contract info has numeric fields)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


Handler = Callable[[Request], Awaitable[Response]]


class BadRequest(Exception):
    pass


Fallback = Callable[[Request], Awaitable["Response | None"]]


class HttpServer:
    """`routes[(method, path)] = async handler(request) -> Response`. A request no route takes goes to
    `fallback` (a venue that answers a family of paths itself, e.g. unknown symbols), and when that
    gives None (or there is none), 404 (405 for a known path) with the `not_found` body."""

    def __init__(self, routes: dict[tuple[str, str], Handler], host: str = "127.0.0.1",
                 not_found: Any = None, fallback: Fallback | None = None) -> None:
        self.routes = routes
        self.host = host
        self.not_found = not_found if not_found is not None else {"error": "not found"}
        self.fallback = fallback
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, 0)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    @property
    def port(self) -> int:
        return self._server.sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                request = await asyncio.wait_for(self._read(reader), READ_TIMEOUT)
                response = await self._route(request)
            except (BadRequest, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
                response = Response(400, {"error": f"bad request: {exc}"})
            except asyncio.TimeoutError:
                return
            writer.write(response.encode())
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def _route(self, request: Request) -> Response:
        handler = self.routes.get((request.method, request.path))
        try:
            if handler is not None:
                return await handler(request)
            answer = await self.fallback(request) if self.fallback is not None else None
        except Exception:  # a simulator bug must answer 500, not hang the client
            log.exception("handler for %s %s failed", request.method, request.path)
            return Response(500, {"error": "internal error"})
        if answer is not None:
            return answer
        known = {path for _, path in self.routes}
        return Response(405 if request.path in known else 404, self.not_found)

    @staticmethod
    async def _read(reader: asyncio.StreamReader) -> Request:
        head = await reader.readuntil(b"\r\n\r\n")
        if len(head) > MAX_HEADER_BYTES:
            raise BadRequest("header too large")
        lines = head.decode("latin-1").split("\r\n")
        try:
            method, target, _version = lines[0].split(" ")
        except ValueError:
            raise BadRequest(f"request line {lines[0]!r}") from None
        headers = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        if not 0 <= length <= MAX_BODY_BYTES:
            raise BadRequest(f"content-length {length}")
        body = await reader.readexactly(length) if length else b""
        parts = urlsplit(target)
        return Request(method.upper(), parts.path, dict(parse_qsl(parts.query)), headers, body)
