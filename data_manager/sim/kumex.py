"""The simulated KuCoin Futures (KuMEX) venue: REST (bullet token, snapshots, contract) and the WebSocket
feed, level 3 v2 exactly as documented, plus level 2 (what live KuCoin still serves).

REST, on its own HTTP server (`rest_url`):
    POST /api/v1/bullet-public          token + instanceServers[0] = this server's ws://.../endpoint
    GET  /api/v2/level3/snapshot        unsorted 5-element order rows (404 when level 3 is off)
    GET  /api/v1/level2/snapshot        [price, size] levels
    GET  /api/v1/contracts/XBTUSDM      inverse perpetual, multiplier -1, tickSize 1, lotSize 1
WebSocket (`ws_url`, `/endpoint?token=...&connectId=...`): `welcome` with the connectId, `ack` for a
subscribe/unsubscribe that asks for one, `pong` for `ping`, then one frame per event of each step.

Faults (FaultPlan kinds): gap (the venue skips one sequence number), drop (this connection loses one
frame), crossed (a made-up order that crosses the book), slow-snapshot (the next level-3 snapshot is
taken at once but answered 1.5 s later, so the client buffers many deltas meanwhile), and the generic
ones of SimVenue. KuMEX has no checksum: "checksum" is refused.
"""
from __future__ import annotations

import asyncio
import json
import logging
import random
from decimal import Decimal
from functools import cached_property
from urllib.parse import parse_qs, urlsplit

from data_manager.sim.http import HttpServer, Request, Response
from data_manager.sim.l3_engine import BUY, L3Engine, LevelChange, Step, encode
from data_manager.sim.market import Market
from data_manager.sim.server import Session, SimVenue, SimVenueSettings

log = logging.getLogger(__name__)

SYMBOL = "XBTUSDM"
LEVEL3_TOPIC = f"/contractMarket/level3v2:{SYMBOL}"
LEVEL2_TOPIC = f"/contractMarket/level2:{SYMBOL}"
SUCCESS = "200000"
PING_INTERVAL_MS = 50_000
PING_TIMEOUT_MS = 10_000
SLOW_SNAPSHOT_SECONDS = 1.5


class StepFrames:
    """One engine step, written once for every session that wants it (level 3 and/or level 2)."""

    def __init__(self, engine: L3Engine, step: Step) -> None:
        self.engine = engine
        self.step = step

    @cached_property
    def level3(self) -> list[str]:
        return [self.engine.render(event) for event in self.step.events]

    @cached_property
    def level2(self) -> list[str]:
        return [level2_frame(change) for change in self.step.changes]


def level2_frame(change: LevelChange) -> str:
    """venues.md 4, Level 2 (ccxt sample): {"type":"message","topic":"/contractMarket/level2:XBTUSDM",
    "subject":"level2","data":{"sequence":1668015155477,"change":"0.514,buy,64874","timestamp":...}}"""
    return encode({"type": "message", "topic": LEVEL2_TOPIC, "subject": "level2",
                    "data": {"sequence": change.sequence,
                             "change": f"{change.price},{change.side},{change.size}",
                             "timestamp": change.ts}})


class KumexSim(SimVenue):
    name = "kumex"
    path = "/endpoint"

    def __init__(self, market: Market, seed: int, settings: SimVenueSettings, host: str = "127.0.0.1",
                 level3_available: bool = True) -> None:
        super().__init__(market, seed, settings, host)
        self.level3_available = level3_available
        self.engine = L3Engine(random.Random(f"kumex-engine-{seed}"), self.venue_mid(), levels=settings.levels,
                               symbol=SYMBOL)
        self.http = HttpServer({
            ("POST", "/api/v1/bullet-public"): self._bullet,
            ("GET", "/api/v2/level3/snapshot"): self._level3_snapshot,
            ("GET", "/api/v1/level2/snapshot"): self._level2_snapshot,
            ("GET", f"/api/v1/contracts/{SYMBOL}"): self._contract,
        }, host, not_found={"code": "404000", "msg": "Not Found"})
        self.tokens: set[str] = set()
        self.snapshots_served = 0
        self._slow_snapshots = 0

    # --- lifecycle --------------------------------------------------------------------------------
    async def start(self) -> None:
        await self.http.start()
        try:
            await super().start()
        except BaseException:
            await self.http.close()
            raise

    async def close(self) -> None:
        await super().close()
        await self.http.close()

    @property
    def rest_url(self) -> str:
        return self.http.url

    def venue_mid(self) -> Decimal:
        """A perpetual quotes at a basis to spot: the common mid times (1 + basis_bps / 10000)."""
        return self.mid() * (1 + self.settings.basis_bps / 10_000)

    # --- the true book, for tests -----------------------------------------------------------------
    def true_book(self) -> dict[str, list[tuple[Decimal, Decimal]]]:
        """Levels in contracts, best first."""
        return {"bid": self.engine.levels("bid"), "ask": self.engine.levels("ask")}

    def true_orders(self) -> dict[str, list[tuple[Decimal, list[tuple[str, Decimal]]]]]:
        """Orders per level in time priority, best level first."""
        return {"bid": self.engine.book_orders("bid"), "ask": self.engine.book_orders("ask")}

    # --- REST -------------------------------------------------------------------------------------
    async def _bullet(self, request: Request) -> Response:
        """FD "Apply connect token", public: a token and the server to connect to."""
        token = f"sim{self.rng.getrandbits(160):040x}=="
        self.tokens.add(token)
        return Response(200, {"code": SUCCESS, "data": {"token": token, "instanceServers": [{
            "endpoint": f"ws://{self.host}:{self.port}{self.path}", "protocol": "websocket",
            "encrypt": False, "pingInterval": PING_INTERVAL_MS, "pingTimeout": PING_TIMEOUT_MS}]}})

    def _symbol_error(self, request: Request) -> Response | None:
        if request.query.get("symbol") != SYMBOL:
            return Response(400, {"code": "400100", "msg": f"symbol {request.query.get('symbol')!r} invalid"})
        return None

    async def _level3_snapshot(self, request: Request) -> Response:
        """Taken when asked; with a slow-snapshot fault pending, answered 1.5 s later (stale by then)."""
        if not self.level3_available:
            return Response(404, {"code": "404000", "msg": "Not Found"})
        error = self._symbol_error(request)
        if error is not None:
            return error
        data = self.engine.snapshot()
        self.snapshots_served += 1
        if self._slow_snapshots:
            self._slow_snapshots -= 1
            await asyncio.sleep(SLOW_SNAPSHOT_SECONDS)
        return Response(200, {"code": SUCCESS, "data": data})

    async def _level2_snapshot(self, request: Request) -> Response:
        error = self._symbol_error(request)
        if error is not None:
            return error
        self.snapshots_served += 1
        return Response(200, {"code": SUCCESS, "data": self.engine.level2_snapshot()})

    async def _contract(self, request: Request) -> Response:
        """Fields from the fixture's contract_XBTUSDM.json (FD 2021 example), prices from the sim."""
        mid = self.venue_mid().quantize(Decimal("0.01"))
        return Response(200, {"code": SUCCESS, "data": {
            "symbol": SYMBOL, "rootSymbol": "XBT", "type": "FFWCSX", "baseCurrency": "XBT",
            "quoteCurrency": "USD", "settleCurrency": "XBT", "maxOrderQty": 1000000, "maxPrice": 1000000,
            "lotSize": 1, "tickSize": 1, "indexPriceTickSize": Decimal("0.01"), "multiplier": -1,
            "isInverse": True, "isQuanto": False, "status": "Open", "markPrice": mid,
            "indexPrice": self.mid().quantize(Decimal("0.01")), "makerFeeRate": Decimal("0.0002"),
            "takerFeeRate": Decimal("0.0006"), "indexSymbol": ".KXBT", "maxLeverage": 100}})

    # --- WebSocket --------------------------------------------------------------------------------
    async def serve_session(self, session: Session) -> None:
        query = parse_qs(urlsplit(session.ws.request.path).query)
        token = (query.get("token") or [""])[0]
        connect_id = (query.get("connectId") or [f"sim{session.number}"])[0]
        if token not in self.tokens:
            await session.send(encode({"id": connect_id, "type": "error", "code": 401,
                                        "data": "token is invalid"}))
            await session.ws.close()
            return
        session.state["topics"] = set()
        await session.send(encode({"id": connect_id, "type": "welcome"}))
        async for text in session.ws:
            reply = self._answer(session, text)
            if reply is not None:
                await session.send(reply)

    def _answer(self, session: Session, text: str | bytes) -> str | None:
        """FD: ping -> pong; subscribe/unsubscribe -> ack when `response` is true; else an error."""
        try:
            request = json.loads(text)
            kind, ident = request["type"], str(request.get("id"))
        except (ValueError, TypeError, KeyError):
            return encode({"type": "error", "code": 400, "data": "request is invalid"})
        if kind == "ping":
            return encode({"id": ident, "type": "pong"})
        if kind not in ("subscribe", "unsubscribe"):
            return encode({"id": ident, "type": "error", "code": 400, "data": f"type {kind} is invalid"})
        topic = request.get("topic")
        topics: set[str] = session.state["topics"]
        if topic not in (LEVEL3_TOPIC, LEVEL2_TOPIC) or (topic == LEVEL3_TOPIC and not self.level3_available):
            return encode({"id": ident, "type": "error", "code": 404, "data": "topic does not exist"})
        if kind == "subscribe":
            topics.add(topic)
        else:
            topics.discard(topic)
        session.subscribed = bool(topics)
        return encode({"id": ident, "type": "ack"}) if request.get("response") else None

    # --- the flow ---------------------------------------------------------------------------------
    def step(self) -> StepFrames:
        return StepFrames(self.engine, self.engine.step(self.venue_mid()))

    def frames_for(self, session: Session, change: StepFrames) -> list[str]:
        topics = session.state.get("topics", ())
        frames: list[str] = []
        if LEVEL3_TOPIC in topics:
            frames += change.level3
        if LEVEL2_TOPIC in topics:
            frames += change.level2
        return frames

    def inject(self, session: Session, kind: str, frames: list[str]) -> list[str]:
        if kind == "checksum":
            raise ValueError("kumex simulator cannot inject 'checksum': KuCoin Futures sends no checksum")
        if kind == "drop":
            return frames[1:]
        if kind == "slow-snapshot":
            self._slow_snapshots += 1
            return frames
        if kind not in ("gap", "crossed"):
            return super().inject(session, kind, frames)
        level = 3 if LEVEL3_TOPIC in session.state.get("topics", ()) else 2
        if kind == "gap":
            self.engine.skip_sequence(level)  # every later message, for every client, is one higher
            return frames
        return frames + [self._crossing_frame(level)]

    def _crossing_frame(self, level: int) -> str:
        """A made-up bid at the best ask, numbered as the next real message: a client that applies it
        holds a crossed book and must resync (the real message with that number follows)."""
        ask = self.engine.price(self.engine.best_tick("ask"))
        if level == 2:
            return level2_frame(LevelChange(self.engine.level2_sequence + 1, BUY, str(ask), 1, 0))
        return encode({"type": "message", "topic": LEVEL3_TOPIC, "subject": "open", "data": {
            "symbol": SYMBOL, "sequence": self.engine.sequence + 1, "side": BUY, "price": str(ask),
            "size": "1", "orderId": "crossed-fault-order", "orderTime": 0, "ts": 0}})
