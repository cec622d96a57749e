"""The simulated KuCoin Futures (KuMEX) venue: REST (bullet token, snapshots, contracts) and the classic
token WebSocket, level 2 as KuCoin serves it today and level 3 v2 as it was documented.

REST, on the base's HTTP server (`rest_url`), every symbol in `self.symbols` (XBTUSDM, ETHUSDM):
    POST /api/v1/bullet-public       token + instanceServers[0] (this server, pingInterval 18000, pingTimeout 10000)
    GET  /api/v1/level2/snapshot     {sequence, symbol, bids, asks, ts}: [price, size] as JSON numbers
    GET  /api/v2/level3/snapshot     unsorted [orderTime, orderId, price, size, ts] rows (404 when not served)
    GET  /api/v1/contracts/active    every contract, in the venue's shape (K-USDK schema, ~70 fields)
    GET  /api/v1/contracts/{symbol}  one contract (inverse, multiplier -1, tickSize 0.1)
Errors come as KuCoin sends them: HTTP 200 with a `code` (bad symbol: 200003; a contract not listed:
404000), HTTP 404 for level 3.
WebSocket (`/endpoint?token=...&connectId=...`): `welcome` (id = connectId), `ack` for a subscribe that
asks for one, `pong` (with a µs `timestamp`) for `ping`, `{"id":...,"type":"error","code":404,"data":
"topic does not exist"}` for an unknown topic, an ack and then nothing for an unknown symbol, and
`{"type":"error","code":400,"data":"ping timeout"}` then close 60 s after the client's last message
(venues-2026 2.1, 2.5). Level 2 frames carry `sn == data.sequence` and a ms `timestamp`; level 3 and
level 2 count separate sequences (2022 frames: never mix them). Every stamp is the SimClock's now.

Faults: gap, drop, duplicate, disconnect, silence, crossed, garbage at pump time (after the n-th data
message of a connection); slow-snapshot at the connection's first REST snapshot; l3-refused and
l3-silent at its level-3 subscribe (an error frame carrying the request id, or the connectId with
`refusal_echo="connectId"`; or an ack, then silence). KuMEX sends no checksum: "checksum" is refused.
"""
from __future__ import annotations

import asyncio
import json
import logging
import random
from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property
from http import HTTPStatus
from typing import Any, Mapping
from urllib.parse import parse_qs, urlsplit

from data_manager.sim.clock import SimClock
from data_manager.sim.http import Handler, Request, Response
from data_manager.sim.l3_engine import BUY, L3Engine, LevelChange, Step, encode
from data_manager.sim.market import Market
from data_manager.sim.server import FaultPlan, Session, SimVenue, SimVenueSettings

log = logging.getLogger(__name__)

SUCCESS = "200000"
PING_INTERVAL_MS = 18_000
PING_TIMEOUT_MS = 10_000
IDLE_CLOSE_SECONDS = 60.0
SLOW_SNAPSHOT_SECONDS = 1.5
LEVEL2, LEVEL3 = 2, 3
TOPIC_LEVELS = {"/contractMarket/level2": LEVEL2, "/contractMarket/level3v2": LEVEL3}
PUMP_FAULTS = ("gap", "drop", "duplicate", "disconnect", "silence", "crossed", "garbage")
SUBSCRIBE_FAULTS = ("l3-refused", "l3-silent")
SNAPSHOT_FAULTS = ("slow-snapshot",)
CONTRACTS_PATH = "/api/v1/contracts/"
LEVEL3_NOT_SERVED = {"code": "404", "msg": "Not Found", "retry": False, "success": False}


@dataclass(frozen=True)
class ContractSpec:
    """What differs between the simulated contracts."""

    root: str               # XBT, ETH
    tick: Decimal
    level3_sequence: int    # where each counter starts (13 digits, as on the 2022 wire)
    level2_sequence: int
    sources: tuple[str, ...] = ("okex", "binance", "kucoin", "bybit", "bitmart", "gateio")


SPECS = {
    "XBTUSDM": ContractSpec("XBT", Decimal("0.1"), 1_639_148_000_000, 1_747_821_000_000),
    "ETHUSDM": ContractSpec("ETH", Decimal("0.05"), 1_603_512_000_000, 1_736_604_000_000),  # tick UNVERIFIED
}


def plain(value: Decimal) -> str:
    """60026 or 60026.5, never 60026.0 or 6E+4: KuCoin's writing of prices today."""
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def double(value: Decimal, places: str = "0.01") -> Decimal:
    """A Java double as KuCoin's JSON writes it: 60006.5, 1000000.0, 0.0002 (at least one decimal)."""
    value = value.quantize(Decimal(places)).normalize()
    return value.quantize(Decimal("0.1")) if value.as_tuple().exponent >= 0 else value


def venue_json(value: Any) -> str:
    """Compact JSON with each Decimal written as the number it is (1000000.0 stays 1000000.0): the
    venue's own number shapes, which `json` cannot produce from a Decimal."""
    if isinstance(value, Decimal):
        return f"{value:f}"
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(key)}:{venue_json(item)}" for key, item in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(map(venue_json, value)) + "]"
    return json.dumps(value)


@dataclass(frozen=True)
class VenueResponse(Response):
    """A Response whose body keeps the venue's number shapes (see `venue_json`)."""

    def encode(self) -> bytes:
        body = venue_json(self.payload).encode()
        head = [f"HTTP/1.1 {self.status} {HTTPStatus(self.status).phrase}", "Content-Type: application/json",
                f"Content-Length: {len(body)}", "Connection: close"]
        return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


class StepFrames:
    """One engine step of one contract, written once for every session that wants it."""

    def __init__(self, native: str, engine: L3Engine, step: Step) -> None:
        self.native = native
        self.engine = engine
        self.step = step

    @cached_property
    def level3(self) -> list[str]:
        return [self.engine.render(event) for event in self.step.events]

    @cached_property
    def level2(self) -> list[str]:
        return [level2_frame(self.native, change) for change in self.step.changes]

    def frames(self, level: int) -> list[str]:
        return self.level3 if level == LEVEL3 else self.level2


def level2_frame(native: str, change: LevelChange) -> str:
    """K-PROBE 6 (2026-09-22): {"topic":"/contractMarket/level2:XBTUSDTM","type":"message","subject":
    "level2","sn":1747821025244,"data":{"sequence":1747821025244,"change":"83614,buy,12","timestamp":
    1790113097240}}"""
    return encode({"topic": f"/contractMarket/level2:{native}", "type": "message", "subject": "level2",
                   "sn": change.sequence, "data": {"sequence": change.sequence,
                                                   "change": f"{change.price},{change.side},{change.size}",
                                                   "timestamp": change.ts}})


class KumexSim(SimVenue):
    name = "kumex"
    path = "/endpoint"
    supported_faults = PUMP_FAULTS + SNAPSHOT_FAULTS + SUBSCRIBE_FAULTS
    default_symbols = {"XBTUSDM": "BTC-USD"}
    rest_not_found = {"code": "404000", "msg": "Not Found"}

    def __init__(self, market: Market, seed: int, settings: SimVenueSettings,
                 symbols: Mapping[str, str] | None = None, clock: SimClock | None = None,
                 host: str = "127.0.0.1", *, level3: bool = True, refusal_echo: str = "request",
                 idle_close: float = IDLE_CLOSE_SECONDS, ping_interval_ms: int = PING_INTERVAL_MS,
                 ping_timeout_ms: int = PING_TIMEOUT_MS) -> None:
        """`level3`: serve level 3 (else every level-3 subscribe is refused, as KuCoin may do today);
        `refusal_echo`: whose id an l3-refused error carries ("request": the subscribe's, as on the
        2026 wire; "connectId": as the docs say); `idle_close`: seconds without a client message
        before the venue says "ping timeout" and closes; `ping_interval_ms` / `ping_timeout_ms`: what
        the token answer says (18000 / 10000 today; tests shorten them to notice a silence sooner)."""
        super().__init__(market, seed, settings, symbols, clock, host)
        unknown = set(self.symbols) - set(SPECS)
        if unknown:
            raise ValueError(f"kumex simulator has no contract {', '.join(sorted(unknown))} (it has {', '.join(SPECS)})")
        if refusal_echo not in ("request", "connectId"):
            raise ValueError(f"refusal_echo must be 'request' or 'connectId', not {refusal_echo!r}")
        self.level3 = level3
        self.refusal_echo = refusal_echo
        self.idle_close = idle_close
        self.ping_interval_ms = ping_interval_ms
        self.ping_timeout_ms = ping_timeout_ms
        self.engines = {native: L3Engine(random.Random(f"kumex-engine-{seed}-{native}"), self.venue_mid(native),
                                         levels=settings.levels, symbol=native, tick=SPECS[native].tick,
                                         sequence=SPECS[native].level3_sequence,
                                         level2_sequence=SPECS[native].level2_sequence, clock=self.clock.ns)
                        for native in self.symbols}
        self.tokens: set[str] = set()
        self.snapshots_served = 0
        self._used_plans: set[FaultPlan] = set()
        self._step: dict[str, StepFrames] = {}

    def venue_mid(self, native: str | None = None) -> Decimal:
        """A perpetual quotes at a basis to spot: the common mid times (1 + basis_bps / 10000)."""
        return self.mid(native) * (1 + self.settings.basis_bps / 10_000)

    def engine(self, native: str | None = None) -> L3Engine:
        return self.engines[native] if native is not None else next(iter(self.engines.values()))

    # --- the true book, for tests -----------------------------------------------------------------
    def true_book(self, native: str | None = None) -> dict[str, list[tuple[Decimal, Decimal]]]:
        """Levels in contracts, best first."""
        engine = self.engine(native)
        return {"bid": engine.levels("bid"), "ask": engine.levels("ask")}

    def true_orders(self, native: str | None = None) -> dict[str, list[tuple[Decimal, list[tuple[str, Decimal]]]]]:
        """Orders per level in time priority, best level first."""
        engine = self.engine(native)
        return {"bid": engine.book_orders("bid"), "ask": engine.book_orders("ask")}

    # --- REST -------------------------------------------------------------------------------------
    def rest_routes(self) -> Mapping[tuple[str, str], Handler]:
        routes: dict[tuple[str, str], Handler] = {
            ("POST", "/api/v1/bullet-public"): self._bullet, ("GET", "/api/v1/level2/snapshot"): self._level2_snapshot,
            ("GET", "/api/v2/level3/snapshot"): self._level3_snapshot,
            ("GET", "/api/v1/contracts/active"): self._active_contracts}
        routes.update({("GET", f"/api/v1/contracts/{native}"): self._contract for native in self.symbols})
        return routes

    async def rest_fallback(self, request: Request) -> Response | None:
        """K-PROBE rest.md 6: a contract the venue does not list is HTTP 200 with code 404000."""
        if request.method == "GET" and request.path.startswith(CONTRACTS_PATH):
            return VenueResponse(200, {"msg": "The contract information you requested does not exist.",
                                       "code": "404000"})
        return None

    async def _bullet(self, request: Request) -> Response:
        """K-USDK x-response-example (2025-11; the same on the wire 2026-09-22)."""
        token = f"sim{self.rng.getrandbits(240):060x}.{self.rng.getrandbits(96):024x}=="
        self.tokens.add(token)
        return VenueResponse(200, {"code": SUCCESS, "data": {"token": token, "instanceServers": [{
            "endpoint": self.ws_url, "encrypt": False, "protocol": "websocket",
            "pingInterval": self.ping_interval_ms, "pingTimeout": self.ping_timeout_ms}]}})

    def _symbol(self, request: Request) -> str | None:
        symbol = request.query.get("symbol")
        return symbol if symbol in self.engines else None

    @staticmethod
    def _invalid_symbol() -> Response:
        """K-PROBE rest.md 6: a bad symbol is HTTP 200 {"msg":"Invalid symbol.","code":"200003"}."""
        return VenueResponse(200, {"msg": "Invalid symbol.", "code": "200003"})

    async def _level2_snapshot(self, request: Request) -> Response:
        """K-USDK: {"code":"200000","data":{"sequence":1697895963339,"symbol":"XBTUSDM","bids":[[66968,2],
        [66964.8,25596]],"asks":[[66968.1,13501],...],"ts":1729168101216000000}}: numbers, ts in ns."""
        native = self._symbol(request)
        if native is None:
            return self._invalid_symbol()
        engine = self.engines[native]
        data = {"sequence": engine.level2_sequence, "symbol": native,
                "bids": [[price, int(size)] for price, size in engine.levels("bid")],
                "asks": [[price, int(size)] for price, size in engine.levels("ask")], "ts": self.clock.ns()}
        return await self._snapshot_answer(data)

    async def _level3_snapshot(self, request: Request) -> Response:
        """FD: rows [orderTime, orderId, price, size, ts], "not sorted"; 404 when level 3 is not served."""
        if not self.level3:
            return VenueResponse(404, LEVEL3_NOT_SERVED)
        native = self._symbol(request)
        if native is None:
            return self._invalid_symbol()
        return await self._snapshot_answer(self.engines[native].snapshot())

    async def _snapshot_answer(self, data: dict) -> Response:
        """Taken when asked; the slow-snapshot fault answers it 1.5 s later (the stream runs on)."""
        self.snapshots_served += 1
        if self._claim(SNAPSHOT_FAULTS, self.connections) is not None:
            await asyncio.sleep(SLOW_SNAPSHOT_SECONDS)
        return VenueResponse(200, {"code": SUCCESS, "data": data})

    async def _active_contracts(self, request: Request) -> Response:
        return VenueResponse(200, {"code": SUCCESS, "data": [self.contract(native) for native in self.engines]})

    async def _contract(self, request: Request) -> Response:
        return VenueResponse(200, {"code": SUCCESS, "data": self.contract(request.path.rsplit("/", 1)[-1])})

    def contract(self, native: str) -> dict[str, Any]:
        """`GET /api/v1/contracts/{symbol}` data in the K-USDK schema's field order, with the venue's
        number shapes (markPrice 60006.5, maxPrice 1000000.0, openInterest a string). Static values
        from the fixture's contract_XBTUSDM.json (FD 2021) and the 2025 example; prices from the sim."""
        spec, root = SPECS[native], SPECS[native].root
        engine = self.engines[native]
        mark, index = self.venue_mid(native), self.mid(native)
        best = engine.best_tick("bid")
        last = engine.price(best) if best is not None else mark.quantize(spec.tick)
        now_ms = self.clock.ms()
        funding_every = 28_800_000
        volume = 103_845_210
        return {
            "symbol": native, "rootSymbol": root, "type": "FFWCSX", "firstOpenDate": 1552638575000,
            "expireDate": None, "settleDate": None, "baseCurrency": root, "quoteCurrency": "USD",
            "settleCurrency": root, "maxOrderQty": 1000000, "maxPrice": Decimal("1000000.0"), "lotSize": 1,
            "tickSize": double(spec.tick), "indexPriceTickSize": Decimal("0.01"), "multiplier": -1,
            "initialMargin": Decimal("0.01"), "maintainMargin": Decimal("0.005"), "maxRiskLimit": 200,
            "minRiskLimit": 200, "riskStep": 100, "makerFeeRate": Decimal("0.0002"),
            "takerFeeRate": Decimal("0.0006"), "takerFixFee": Decimal("0.0"), "makerFixFee": Decimal("0.0"),
            "settlementFee": None, "isDeleverage": True, "isQuanto": False, "isInverse": True,
            "markMethod": "FairPrice", "fairMethod": "FundingRate", "fundingBaseSymbol": f".{root}INT8H",
            "fundingQuoteSymbol": ".USDINT8H", "fundingRateSymbol": f".{native}FPI8H", "indexSymbol": f".K{root}",
            "settlementSymbol": "", "status": "Open", "fundingFeeRate": Decimal("0.0001"),
            "predictedFundingFeeRate": Decimal("0.000083"), "fundingRateGranularity": funding_every,
            "openInterest": "31764120", "turnoverOf24h": double(volume / mark, "0.00000001"),
            "volumeOf24h": volume, "markPrice": double(mark), "indexPrice": double(index),
            "lastTradePrice": double(last), "nextFundingRateTime": funding_every - now_ms % funding_every,
            "maxLeverage": 100, "sourceExchanges": list(spec.sources), "premiumsSymbol1M": f".{native}PI",
            "premiumsSymbol8H": f".{native}PI8H", "fundingBaseSymbol1M": f".{root}INT",
            "fundingQuoteSymbol1M": ".USDINT", "lowPrice": double(mark * Decimal("0.98"), str(spec.tick)),
            "highPrice": double(mark * Decimal("1.02"), str(spec.tick)), "priceChgPct": Decimal("0.0118"),
            "priceChg": double(mark * Decimal("0.0118"), str(spec.tick)), "k": Decimal("490.0"),
            "m": Decimal("300.0"), "f": Decimal("1.3"), "mmrLimit": Decimal("0.3"),
            "mmrLevConstant": Decimal("100.0"), "supportCross": True,
            "buyLimit": double(mark * Decimal("1.05"), "0.0001"), "sellLimit": double(mark * Decimal("0.95"), "0.0001"),
        }

    # --- faults decided outside the pump --------------------------------------------------------
    def _due_fault(self, session: Session) -> FaultPlan | None:
        """Pump-time faults only: the others happen at a subscribe or a snapshot (see `_claim`)."""
        fault = super()._due_fault(session)
        return fault if fault is not None and fault.kind in PUMP_FAULTS else None

    def _claim(self, kinds: tuple[str, ...], connection: int) -> FaultPlan | None:
        """The first unused plan of `kinds` for `connection`, recorded as injected once."""
        for plan in self.settings.faults:
            if plan.kind in kinds and plan.connection == connection and plan not in self._used_plans:
                self._used_plans.add(plan)
                self.injected.append((plan.kind, connection, 0))
                log.info("kumex simulator: injecting %s on connection %d", plan.kind, connection)
                return plan
        return None

    # --- WebSocket --------------------------------------------------------------------------------
    async def serve_session(self, session: Session) -> None:
        query = parse_qs(urlsplit(session.ws.request.path).query)
        token = (query.get("token") or [""])[0]
        connect_id = (query.get("connectId") or [f"sim{session.number}"])[0]
        loop = asyncio.get_running_loop()
        session.state.update(topics={}, connect_id=connect_id, heard=loop.time(), send_lock=asyncio.Lock())
        if token not in self.tokens:
            await self.send_frames(session, [encode({"id": connect_id, "type": "error", "code": 401,
                                                     "data": "token is invalid"})])
            await session.ws.close()
            return
        await self.send_frames(session, [encode({"id": connect_id, "type": "welcome"})])
        watchdog = self.spawn(self._idle_watch(session))
        try:
            async for text in session.ws:
                session.state["heard"] = loop.time()
                await self.send_frames(session, self._answer(session, text))
        finally:
            watchdog.cancel()

    async def send_frames(self, session: Session, frames: list[str]) -> None:
        """Under the session's lock: frames reach the wire in the order they were built."""
        lock = session.state.get("send_lock")
        if lock is None:
            await super().send_frames(session, frames)
            return
        async with lock:
            await super().send_frames(session, frames)

    async def _idle_watch(self, session: Session) -> None:
        """K-PROBE 5: 60 s after the client's last message, even with data streaming, the venue sends
        {"type":"error","code":400,"data":"ping timeout"} and closes 1000 "Bye"."""
        loop = asyncio.get_running_loop()
        while True:
            quiet = loop.time() - session.state["heard"]
            if quiet >= self.idle_close:
                await self.send_frames(session, [encode({"type": "error", "code": 400, "data": "ping timeout"})])
                await session.ws.close(1000, "Bye")
                return
            await asyncio.sleep(self.idle_close - quiet)

    def _answer(self, session: Session, text: str | bytes) -> list[str]:
        """ping -> pong; subscribe / unsubscribe -> ack (when `response` is true); else an error."""
        if session.silenced:
            return []  # the silence fault: not even pongs
        try:
            request = json.loads(text)
        except ValueError as exc:
            return [encode({"id": f"{self.rng.getrandbits(32):08x}", "type": "error", "code": 400,
                            "data": f"Unrecognized token: {exc}"[:100]})]
        request = request if isinstance(request, dict) else {}
        kind, ident = request.get("type"), str(request.get("id"))
        if kind == "ping":
            return [encode({"id": ident, "type": "pong", "timestamp": self.clock.us()})]
        if kind in ("subscribe", "unsubscribe"):
            return self._subscription(session, kind, ident, request)
        return [encode({"id": ident, "type": "error", "code": 400, "data": f"type {kind} is invalid"})]

    def _subscription(self, session: Session, kind: str, ident: str, request: dict) -> list[str]:
        """K-PROBE 4: an unknown topic is a 404 error with our id; an unknown symbol is acked, then
        silent. Level 3 may be refused (not served, or the l3-refused fault) or silenced (l3-silent)."""
        topic = request.get("topic")
        prefix, _, names = topic.partition(":") if isinstance(topic, str) else ("", "", "")
        level = TOPIC_LEVELS.get(prefix)
        if level is None or not names:
            return [self._error(ident, 404, "topic does not exist")]
        topics: dict[tuple[int, str], bool] = session.state["topics"]
        silent = False
        if level == LEVEL3 and kind == "subscribe":
            plan = self._claim(SUBSCRIBE_FAULTS, session.number)
            if not self.level3 or (plan is not None and plan.kind == "l3-refused"):
                echo = session.state["connect_id"] if self.refusal_echo == "connectId" else ident
                return [self._error(echo, 404, "topic does not exist")]
            silent = plan is not None
        for native in names.split(","):
            if native not in self.engines:
                continue
            if kind == "subscribe":
                topics[(level, native)] = silent
            else:
                topics.pop((level, native), None)
        session.subscribed = bool(topics)
        return [encode({"id": ident, "type": "ack"})] if request.get("response") is True else []

    @staticmethod
    def _error(ident: str, code: int, data: str) -> str:
        return encode({"id": ident, "type": "error", "code": code, "data": data})

    # --- the flow ---------------------------------------------------------------------------------
    def step(self) -> dict[str, StepFrames]:
        """One order arrives at every contract (a step that changes nothing is stepped again)."""
        steps = {}
        for native, engine in self.engines.items():
            step = engine.step(self.venue_mid(native))
            for _ in range(100):
                if step.events:
                    break
                step = engine.step(self.venue_mid(native))
            steps[native] = StepFrames(native, engine, step)
        self._step = steps
        return steps

    def _streams(self, session: Session, change: Mapping[str, StepFrames]) -> list[list[str]]:
        """This step's frames of each book topic the session receives, topic by topic."""
        return [change[native].frames(level) for (level, native), silent in session.state.get("topics", {}).items()
                if not silent and native in change]

    def frames_for(self, session: Session, change: Mapping[str, StepFrames]) -> list[str]:
        return [frame for frames in self._streams(session, change) for frame in frames]

    def inject(self, session: Session, kind: str, frames: list[str]) -> list[str]:
        if kind == "drop":
            return [frame for stream in self._streams(session, self._step) for frame in stream[1:]]
        if kind == "gap":
            for native in self._natives(session):
                self.engines[native].skip_sequence(LEVEL3)  # every later message, for every client, is
                self.engines[native].skip_sequence(LEVEL2)  # one higher
            return frames
        if kind == "crossed":
            return frames + self._crossing_frames(session)
        return super().inject(session, kind, frames)

    def _natives(self, session: Session) -> list[str]:
        return list(dict.fromkeys(native for _, native in session.state.get("topics", {})))

    def _crossing_frames(self, session: Session) -> list[str]:
        """A made-up bid at the best ask on each book topic, numbered as its next real message: a client
        that applies it holds a crossed book and must resync (the real message with that number follows)."""
        frames = []
        for (level, native), silent in session.state.get("topics", {}).items():
            engine = self.engines[native]
            best = engine.best_tick("ask")
            if silent or best is None:
                continue
            ask = str(engine.price(best))
            if level == LEVEL2:
                frames.append(level2_frame(native, LevelChange(engine.level2_sequence + 1, BUY, ask, 1,
                                                               self.clock.ms())))
            else:
                now = self.clock.ns()
                frames.append(encode({"type": "message", "topic": engine.topic, "subject": "open", "data": {
                    "symbol": native, "sequence": engine.sequence + 1, "side": BUY, "price": ask, "size": "1",
                    "orderId": f"{now // 1_000_000_000:08x}ffffff{self.rng.getrandbits(40):010x}",
                    "orderTime": now, "ts": now}}))
        return frames
