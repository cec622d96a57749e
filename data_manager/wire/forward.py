"""Fixed local ports (`simulate --port-base P`) in front of servers that listen on ephemeral ones.

The simulated venues bind port 0 (a free port, never a clash in tests). A user who wants stable URLs
for their own bot gets a plain TCP relay on P, P+1, ... to each of them: bytes are copied both ways
untouched, so WebSocket and HTTP pass as they are.
"""
from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit, urlunsplit

CHUNK = 64 * 1024


class PortForward:
    """Listens on host:port and relays every connection to target_host:target_port."""

    def __init__(self, host: str, port: int, target_host: str, target_port: int) -> None:
        self.host, self.port = host, port
        self.target = (target_host, target_port)
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, self.host, self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._pipes):
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            target_reader, target_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        pipes = [asyncio.create_task(_pipe(reader, target_writer)), asyncio.create_task(_pipe(target_reader, writer))]
        self._pipes.update(pipes)
        try:
            await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in pipes:
                task.cancel()
                self._pipes.discard(task)
            for w in (writer, target_writer):
                w.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
    with contextlib.suppress(OSError, RuntimeError):
        writer.write_eof()


class Forwards:
    """One relay per distinct server port, numbered from `base` in the order URLs are given."""

    def __init__(self, base: int, host: str = "127.0.0.1") -> None:
        self.next_port = base
        self.host = host
        self.relays: dict[int, PortForward] = {}   # target port -> relay

    async def url(self, url: str) -> str:
        """`url` with its port replaced by a relay's (started on first use)."""
        parts = urlsplit(url)
        target = parts.port
        if target is None:
            return url
        relay = self.relays.get(target)
        if relay is None:
            relay = PortForward(self.host, self.next_port, parts.hostname or self.host, target)
            try:
                await relay.start()
            except OSError as exc:
                raise OSError(f"cannot listen on {self.host}:{self.next_port}: {exc.strerror or exc}") from None
            self.relays[target] = relay
            self.next_port += 1
        return urlunsplit((parts.scheme, f"{self.host}:{relay.port}", parts.path, parts.query, parts.fragment))

    async def close(self) -> None:
        for relay in self.relays.values():
            await relay.close()
