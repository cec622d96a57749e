"""The service's socket: websockets' own server, HTTP GET routes through its `process_request` hook and
the push channel (`/v1/stream`) as a WebSocket on the same port.

Every HTTP response closes its connection (websockets answers a request it does not upgrade and then
closes: no keep-alive); `bench/serve.py` measures what that costs on loopback.

Access: 127.0.0.1 by default. Binding any other address needs `--host` and a token in `BTC_DEPTH_TOKEN`
(at least `MIN_TOKEN_CHARS` characters); once a token is set, every request, HTTP or WebSocket, must
carry `Authorization: Bearer <token>`, compared in constant time (`hmac.compare_digest`).
"""
from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import time
from email.utils import formatdate
from http import HTTPStatus

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from l2_manager.service.api import TOKEN_ENV, Api, BadRequest, Reply
from l2_manager.service.push import STREAM_PATH, PushHub

log = logging.getLogger(__name__)

MIN_TOKEN_CHARS = 16


class BindRefused(Exception):
    """Serving on this address is not allowed as configured (one line for the user)."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve anywhere
        return False


def check_bind(host: str, host_given: bool, token: str | None) -> None:
    """Loopback needs nothing; anything else needs an explicit --host and a long enough token."""
    if token is not None and len(token) < MIN_TOKEN_CHARS:
        raise BindRefused(f"{TOKEN_ENV} is {len(token)} characters; use at least {MIN_TOKEN_CHARS} "
                          "(e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(32))')")
    if is_loopback(host):
        return
    if not host_given:
        raise BindRefused(f"serving on {host} (not loopback) needs an explicit --host")
    if token is None:
        raise BindRefused(f"serving on {host} (not loopback) needs a token: set {TOKEN_ENV}; clients send "
                          "it as 'Authorization: Bearer <token>'")


def authorized(header: str | None, token: str | None) -> bool:
    if token is None:
        return True
    scheme, _, given = (header or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


class Service:
    """The HTTP/WebSocket server around an `Api` and a `PushHub`."""

    def __init__(self, api: Api, hub: PushHub, host: str = "127.0.0.1", port: int = 8765,
                 token: str | None = None) -> None:
        self.api = api
        self.hub = hub
        self.host = host
        self.port = port
        self.token = token
        self.requests = 0
        self.handling: dict[str, list[float]] = {}   # route -> [count, seconds, worst seconds], in the loop
        self._server: Server | None = None

    async def start(self) -> None:
        self._server = await serve(self.hub.serve, self.host, self.port, process_request=self._process_request,
                                   compression=None, max_size=2**16, server_header="btc-depth")
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("serving on %s", self.url)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def _handled(self, path: str, seconds: float) -> None:
        parts = path.strip("/").split("/")
        route = parts[1] if len(parts) > 1 and parts[0] == "v1" else "other"
        tally = self.handling.setdefault(route, [0, 0.0, 0.0])
        tally[0] += 1
        tally[1] += seconds
        tally[2] = max(tally[2], seconds)

    def status(self) -> dict:
        """Requests so far, and per route how long the answers held the loop (mean and worst, ms)."""
        return {"requests": self.requests, "routes": {route: {"count": count, "mean_ms": round(total / count * 1000, 3),
                                                              "max_ms": round(worst * 1000, 3)}
                                                      for route, (count, total, worst) in self.handling.items()}}

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        """An HTTP answer for every route but the push channel, whose handshake goes on (None)."""
        self.requests += 1
        path, _, query = request.path.partition("?")
        if not authorized(request.headers.get("Authorization"), self.token):
            return respond(BadRequest(None, "missing or wrong token (Authorization: Bearer ...)",
                                      HTTPStatus.UNAUTHORIZED).reply())
        if path == STREAM_PATH and "upgrade" in request.headers.get("Connection", "").lower():
            return None
        started = time.perf_counter()
        reply = self.api.handle(path, query)
        self._handled(path, time.perf_counter() - started)
        if reply.text is not None:  # rich takes milliseconds: off the event loop unless it reads a book
            text = await asyncio.to_thread(reply.text) if reply.threaded else reply.text()
            return respond(reply, text.encode(), "text/plain; charset=utf-8")
        return respond(reply)


def respond(reply: Reply, body: bytes | None = None,
            content_type: str = "application/json") -> Response:
    """The reply as websockets' `Response` (it sends it, then closes the connection)."""
    body = body if body is not None else reply.encoded()
    headers = Headers([("Date", formatdate(usegmt=True)), ("Connection", "close"),
                       ("Content-Type", content_type), ("Content-Length", str(len(body))),
                       ("Cache-Control", "no-store"), *reply.headers])
    return Response(reply.status, HTTPStatus(reply.status).phrase, headers, body)
