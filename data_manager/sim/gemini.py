"""Simulated Gemini: the WebSocket API on `/` and the archived market data v2 on `/v2/marketdata` (one
server; the path a client connects to picks the protocol), plus REST `GET /v1/symbols` and
`GET /v1/symbols/details/{symbol}`. Every symbol in `self.symbols` is served around its own mid.

The WebSocket API as a client sees it (AsyncAPI spec v0.10.7; shared/venues-2026.md sections 1 and 5):
- the connection URL's `snapshot` parameter: -1 the whole book, N > 0 the top N levels, 0 or absent none;
- `{"id":1,"method":"subscribe","params":["btcusd@depth@100ms"]}` (stream names in any case; `@depth`
  too): the whole book of each new symbol (`U == u`, sorted sides) is sent BEFORE the ack
  `{"id":1,"status":200}`; one unknown stream rejects the whole request
  (`{"id":1,"status":400,"error":{"code":-1013,"msg":"Invalid stream name: ..."}}`); an unknown method is
  `-1020 "Unsupported operation"`; `ping` is answered `{"id":..,"status":200}`;
- then one `depthUpdate` per flow step and symbol: `U` = the symbol's previous `u`, `u` = `U` + its
  updates (one counter for every symbol, so a symbol's ids jump), levels zero-padded and unsorted, a side
  often `[]`, qty "0.00000000" deleting, `E` in nanoseconds from the SimClock;
- now and then an older frame again (`repeat_rate`): its `u` is at most the client's last, so a client
  must drop it; applying it would put old sizes back;
- no JSON heartbeat (the WebSocket library's protocol pings only).

Faults: "gap" (one frame's `U` skips ahead), "drop" (one step never sent: the next `U` shows it) and
"crossed" (an extra in-sequence update bidding at the best ask, on the wire only), plus the base's
generic "duplicate", "disconnect", "silence" and "garbage". v2 sessions carry no ids, so a "gap" or "drop"
due on one of them is not injected (and not recorded in `injected`). There is no checksum on Gemini.
"""
from __future__ import annotations

import json
import logging
import random
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Iterator, Mapping
from urllib.parse import parse_qsl, urlsplit

from data_manager.sim.clock import SimClock
from data_manager.sim.flow import ASK, BID
from data_manager.sim.gemini_v2 import MarketDataV2
from data_manager.sim.http import Handler, Request, Response
from data_manager.sim.l2venue import FlowStep, L2SimVenue, dump
from data_manager.sim.market import Market
from data_manager.sim.server import FaultPlan, Session, SimVenueSettings

log = logging.getLogger(__name__)

PATH_V2 = "/v2/marketdata"
FAULTS = ("gap", "drop", "duplicate", "disconnect", "silence", "crossed", "garbage")
FIRST_UPDATE_ID = 1_764_527_605_191_349   # the probe's order of magnitude; ids stay below 2**53
STREAM_KINDS = ("depth@100ms", "depth")
CROSSING_SIZE = Decimal("0.5")
RECENT_FRAMES = 3                          # a repeated frame is the one sent two steps before the newest


@dataclass(frozen=True)
class GeminiStep(FlowStep):
    """A flow step with each protocol's frames for it, built once for every session."""

    wire: Mapping[str, Any] = field(default_factory=dict)


def _row(price: Decimal, size: Decimal) -> list[str]:
    """["60000.10","0.01234567"]: zero-padded, as the API writes levels; "0.00000000" deletes."""
    return [f"{price:.2f}", f"{size:.8f}"]


def _reply(request_id: Any, **extra: Any) -> str:
    return dump({"id": request_id, "status": 200, **extra})


def _refusal(request_id: Any, code: int, message: str) -> str:
    return dump({"id": request_id, "status": 400, "error": {"code": code, "msg": message}})


class WebSocketApi:
    """One protocol of `GeminiSim`: builds each step's depthUpdate once, and answers API sessions."""

    name = "new"
    carries = frozenset(FAULTS)

    def __init__(self, sim: "GeminiSim", repeat_rate: float) -> None:
        self.sim = sim
        self.repeat_rate = repeat_rate
        self.update_id = FIRST_UPDATE_ID
        self.last_id = {native: self._advance(1) for native in sim.symbols}   # `u` of each book's newest frame

    def _advance(self, count: int) -> int:
        self.update_id += count
        return self.update_id

    # --- building frames once per step ------------------------------------------------------
    def prepare(self, native: str, step: FlowStep, touch: Any) -> str:
        """{"e":"depthUpdate","E":1796083200123456789,"s":"btcusd","U":1764527605191350,"u":1764527605191353,
        "b":[["59999.40","0.00000000"],["59998.10","0.01234567"]],"a":[]}: one entry per changed level
        (the last change wins), sides shuffled. (`touch` is v2's: trades are not in the API's book stream.)"""
        final: dict[tuple[str, Decimal], Decimal] = {}
        for side, price, size in step.changes:
            final[(side, price)] = size
        rows: dict[str, list[list[str]]] = {BID: [], ASK: []}
        for (side, price), size in final.items():
            rows[side].append(_row(price, size))
        for side_rows in rows.values():
            self.sim.wire_rng.shuffle(side_rows)
        first = self.last_id[native]
        # Other markets share the counter, so ids beyond this frame's own updates are used too: at least
        # one, so that a `crossed` fault frame (ids U..U+1, see `inject`) never ends where this one does.
        last = self._advance(len(final) + 1 + self.sim.wire_rng.randrange(2))
        self.last_id[native] = last
        return self._depth_frame(native, first, last, rows[BID], rows[ASK])

    def _depth_frame(self, native: str, first: int, last: int, bids: list, asks: list) -> str:
        return dump({"e": "depthUpdate", "E": self.sim.clock.ns(), "s": native, "U": first, "u": last,
                     "b": bids, "a": asks})

    def _snapshot_frame(self, session: Session, native: str) -> str | None:
        """The whole book (or the top N) as the first frame of `native`; None if the URL asked for none."""
        self.sim.mark_snapshot(session, native)
        depth = session.state["snapshot"]
        if depth == 0:
            return None
        book = self.sim.true_book(native)
        rows = {side: [_row(price, size) for price, size in book[side][:depth if depth > 0 else None]]
                for side in (BID, ASK)}
        last = self.last_id[native]
        return self._depth_frame(native, last, last, rows[BID], rows[ASK])

    # --- a session --------------------------------------------------------------------------
    def opened(self, session: Session, query: str) -> None:
        value = dict(parse_qsl(query)).get("snapshot", "0")
        session.state["snapshot"] = int(value) if value.lstrip("-").isdigit() and len(value) < 10 else 0
        session.state["streams"] = []

    async def on_request(self, session: Session, text: str | bytes) -> None:
        try:
            request = json.loads(text)
        except ValueError:
            request = None
        if type(request) is not dict:
            await self.sim.send_frames(session, [_refusal(None, -1000, "Invalid JSON request")])
            return
        request_id, method = request.get("id"), request.get("method")
        if method in ("subscribe", "SUBSCRIBE"):
            frames = self._subscribe(session, request_id, request.get("params"))
        elif method in ("unsubscribe", "UNSUBSCRIBE"):
            frames = self._unsubscribe(session, request_id, request.get("params"))
        elif method in ("list_subscriptions", "LIST_SUBSCRIPTIONS"):
            frames = [_reply(request_id, result=list(session.state["streams"]))]
        elif method == "ping":
            frames = [_reply(request_id)]
        else:
            frames = [_refusal(request_id, -1020, "Unsupported operation")]
        await self.sim.send_frames(session, frames)

    def _natives(self, params: Any) -> tuple[list[tuple[str, str]], str | None]:
        """[(stream, native)] for every stream named, or the first one that is not ours."""
        if type(params) is not list or not params:
            return [], str(params)
        found = []
        for stream in params:
            symbol, _, kind = stream.lower().partition("@") if type(stream) is str else ("", "", "")
            if kind not in STREAM_KINDS or symbol not in self.sim.symbols:
                return [], str(stream)
            found.append((stream, symbol))
        return found, None

    def _subscribe(self, session: Session, request_id: Any, params: Any) -> list[str]:
        streams, bad = self._natives(params)
        if bad is not None:
            return [_refusal(request_id, -1013, f"Invalid stream name: {bad:.200}")]
        frames = []
        subscribed: list[str] = session.state["symbols"]
        for stream, native in streams:
            if native not in subscribed:
                subscribed.append(native)
                session.state["streams"].append(stream)
                snapshot = self._snapshot_frame(session, native)
                if snapshot is not None:
                    frames.append(snapshot)
        return frames + [_reply(request_id)]  # the whole books go out before the ack, as on the wire

    def _unsubscribe(self, session: Session, request_id: Any, params: Any) -> list[str]:
        streams, bad = self._natives(params)
        if bad is not None:
            return [_refusal(request_id, -1013, f"Invalid stream name: {bad:.200}")]
        gone = {native for _, native in streams}
        session.state["symbols"][:] = [native for native in session.state["symbols"] if native not in gone]
        session.state["streams"][:] = [s for s in session.state["streams"] if s.lower().partition("@")[0] not in gone]
        session.subscribed = bool(session.state["symbols"])
        return [_reply(request_id)]

    def frames_for(self, session: Session, steps: Mapping[str, FlowStep] | None) -> list[str]:
        frames: list[str] = []
        sent: dict[str, deque[str]] = session.state.setdefault("sent", {})
        for native, step in self.sim.new_steps(session, steps):
            frame = step.wire[self.name]
            frames.append(frame)
            recent = sent.setdefault(native, deque(maxlen=RECENT_FRAMES))
            recent.append(frame)
            if len(recent) == RECENT_FRAMES and self.sim.wire_rng.random() < self.repeat_rate:
                frames.append(recent[0])  # u <= the client's last: to be dropped
        return frames

    # --- faults -----------------------------------------------------------------------------
    def inject(self, session: Session, kind: str, frames: list[str]) -> list[str] | None:
        """The faults only ids can show; None for the generic ones the base injects."""
        if kind == "gap":
            return self._skip_ahead(session, frames)
        if kind == "drop":
            return []
        if kind == "crossed":  # in sequence (U = the client's last u, u one past it), on the wire only
            native = session.state["symbols"][0]
            last = self.last_id[native]
            bid = [_row(self.sim.best_price(ASK, native), CROSSING_SIZE)]
            return frames + [self._depth_frame(native, last, last + 1, bid, [])]
        return None

    def _skip_ahead(self, session: Session, frames: list[str]) -> list[str]:
        """The step's first frame with `U` one past the client's last `u` (or an empty one if the step
        had none for this session)."""
        if not frames:
            native = session.state["symbols"][0]
            last = self.last_id[native]
            return [self._depth_frame(native, last + 1, last + 1, [], [])]
        message = json.loads(frames[0])
        message["U"] += 1
        return [dump(message)] + frames[1:]


class GeminiSim(L2SimVenue):
    name = "gemini"
    path = "/"
    supported_faults = FAULTS
    default_symbols = {"btcusd": "BTC-USD"}
    rest_not_found = {"result": "error", "reason": "InvalidSymbol", "message": "not a valid symbol"}
    mean_gap_ticks = 60.0

    def __init__(self, market: Market, seed: int, settings: SimVenueSettings,
                 symbols: Mapping[str, str] | None = None, clock: SimClock | None = None,
                 host: str = "127.0.0.1", repeat_rate: float = 0.05) -> None:
        super().__init__(market, seed, settings, symbols, clock, host)
        self.wire_rng = random.Random(f"gemini-wire-{seed}")   # wire effects never change the flow
        self.api = WebSocketApi(self, repeat_rate)
        self.v2 = MarketDataV2(self)
        self.wires = (self.api, self.v2)

    # --- where it listens -------------------------------------------------------------------
    @property
    def api_url(self) -> str:
        return f"ws://{self.host}:{self.port}/?snapshot=-1"

    @property
    def v2_url(self) -> str:
        return f"ws://{self.host}:{self.port}{PATH_V2}"

    def client_overrides(self) -> dict[str, str]:
        """Both URLs, so the client reaches this server whichever protocol its settings select."""
        return {**super().client_overrides(), "url": self.api_url, "v2_url": self.v2_url}

    # --- the flow ---------------------------------------------------------------------------
    def step(self) -> dict[str, FlowStep] | None:
        touches = {native: {side: flow.levels(side, 1) for side in (BID, ASK)} for native, flow in self.flows.items()}
        steps = super().step()
        if steps is None:
            return None
        return {native: self._with_wire(native, step, touches[native]) for native, step in steps.items()}

    def _with_wire(self, native: str, step: FlowStep, touch: Any) -> FlowStep:
        if not step.changes:
            return step
        return GeminiStep(step.number, step.changes, wire={wire.name: wire.prepare(native, step, touch)
                                                           for wire in self.wires})

    # --- sessions ---------------------------------------------------------------------------
    async def serve_session(self, session: Session) -> None:
        target = urlsplit(session.ws.request.path)
        wire = self.v2 if target.path.rstrip("/") == PATH_V2 else self.api
        session.state["wire"] = wire
        session.state["symbols"] = []   # natives subscribed on this connection, in order
        wire.opened(session, target.query)
        await super().serve_session(session)

    async def on_request(self, session: Session, text: str | bytes) -> None:
        if not session.silenced:  # a silenced session answers nothing, not even a ping
            await session.state["wire"].on_request(session, text)

    def new_steps(self, session: Session, steps: Mapping[str, FlowStep] | None) -> Iterator[tuple[str, FlowStep]]:
        """(native, step) for each symbol the session follows whose step its book does not hold yet."""
        if steps is not None:
            for native in session.state["symbols"]:
                step = steps.get(native)
                if self.is_new(session, step, native):
                    yield native, step

    def frames_for(self, session: Session, change: Mapping[str, FlowStep] | None) -> list[str]:
        return session.state["wire"].frames_for(session, change)

    def inject(self, session: Session, kind: str, frames: list[str]) -> list[str]:
        faulty = session.state["wire"].inject(session, kind, frames)
        return faulty if faulty is not None else super().inject(session, kind, frames)

    def _due_fault(self, session: Session) -> FaultPlan | None:
        fault = super()._due_fault(session)
        if fault is not None and fault.kind not in session.state["wire"].carries:
            log.warning("%s simulator: %s cannot be shown on a %s session; not injected",
                        self.name, fault.kind, session.state["wire"].name)
            return None
        return fault

    # --- REST -------------------------------------------------------------------------------
    def rest_routes(self) -> Mapping[tuple[str, str], Handler]:
        routes: dict[tuple[str, str], Handler] = {("GET", "/v1/symbols"): self._symbols}
        for native in self.symbols:
            handler = self._details(native)
            for spelling in (native, native.upper()):
                routes[("GET", f"/v1/symbols/details/{spelling}")] = handler
        return routes

    async def _symbols(self, request: Request) -> Response:
        """["btcusd","ethusd"]: every symbol, lower case."""
        return Response(200, sorted(self.symbols))

    def _details(self, native: str):
        """{"symbol":"BTCUSD","base_currency":"BTC","quote_currency":"USD","tick_size":1E-8,
        "quote_increment":0.01,"min_order_size":"0.00001","status":"open","wrap_enabled":false,
        "product_type":"spot","contract_type":"vanilla","contract_price_currency":"USD"}
        (developer.gemini.com, REST Market Data, Get Symbol Details)."""
        base, _, quote = self.symbols[native].partition("-")
        payload = {"symbol": native.upper(), "base_currency": base, "quote_currency": quote,
                   "tick_size": self.lot, "quote_increment": self.tick, "min_order_size": "0.00001",
                   "status": "open", "wrap_enabled": False, "product_type": "spot", "contract_type": "vanilla",
                   "contract_price_currency": quote}

        async def handler(request: Request) -> Response:
            return Response(200, payload)
        return handler
