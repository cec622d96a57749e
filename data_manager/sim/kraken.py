"""Simulated Kraken Spot WebSocket v2 (`/v2`): `status`, `book` with checksums, `instrument`, ping.

The other end of the wire from `data_manager/venues/kraken.py`, written from the protocol facts only
(venues.md section 1), never from the client's code: the checksum here is computed independently.

What a session sees, like on the live feed:
- on connect a `status` frame; `{"method":"subscribe","params":{"channel":"book",...}}` gets an ack
  (req_id echoed), then a snapshot of the subscribed depth with its checksum;
- per flow step, one `update` holding only what changed inside that session's depth window, plus the
  levels that enter the window when a level inside it is deleted. Levels pushed out of the window by
  a better one get no delete: the client truncates, as it must on the real feed. A step that changes
  nothing inside the window sends nothing to that session;
- numbers as JSON numbers with fixed decimals (`"price":62802.5,"qty":0.00000000`), RFC 3339 times;
- `{"channel":"heartbeat"}` after about a second without anything else; `ping` -> `pong`.

The window a client must hold is the top `depth` of `true_book()`; `session_book(session)` returns the
window this simulator last sent to one session (the same thing, once the session has drained).
"""
from __future__ import annotations

import asyncio
import json
import logging
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from data_manager.sim.flow import ASK, BID, FlowSpec, LevelFlow
from data_manager.sim.market import Market
from data_manager.sim.server import Session, SimVenue, SimVenueSettings

log = logging.getLogger(__name__)

SYMBOL = "BTC/USD"
PRICE_PRECISION = 1
QTY_PRECISION = 8
TICK = Decimal("0.1")
LOT = Decimal("0.00000001")
BOOK_DEPTHS = (10, 25, 100, 500, 1000)
DEFAULT_DEPTH = 10
CHECKSUM_LEVELS = 10
HEARTBEAT_SECONDS = 1.0
CROSSING_QTY = Decimal("0.01")

HEARTBEAT = '{"channel":"heartbeat"}'
_NOT_APPLICABLE = {
    "gap": "Kraken v2 book frames carry no sequence numbers: use 'drop' (caught by the next checksum)",
    "slow-snapshot": "Kraken sends its snapshot on the stream right after the ack: there is no REST "
                     "snapshot to delay",
}

Levels = list[tuple[Decimal, Decimal]]


def _refuse_inapplicable(kind: str) -> None:
    if kind in _NOT_APPLICABLE:
        raise ValueError(f"kraken simulator cannot inject {kind!r}: {_NOT_APPLICABLE[kind]}")


# --- wire format ------------------------------------------------------------------------------------
def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _digits(value: Decimal, precision: int) -> str:
    return f"{value:.{precision}f}".replace(".", "").lstrip("0")


def book_checksum(bids: Levels, asks: Levels) -> int:
    """CRC32 of the 10 best asks then the 10 best bids (both given best first), fixed decimals."""
    text = "".join(_digits(price, PRICE_PRECISION) + _digits(qty, QTY_PRECISION)
                   for price, qty in asks[:CHECKSUM_LEVELS] + bids[:CHECKSUM_LEVELS])
    return zlib.crc32(text.encode("ascii"))


def _levels_json(levels: Levels) -> str:
    return ",".join(f'{{"price":{price:.{PRICE_PRECISION}f},"qty":{qty:.{QTY_PRECISION}f}}}'
                    for price, qty in levels)


def book_frame(kind: str, bids: Levels, asks: Levels, checksum: int, timestamp: str) -> str:
    """Written by hand: json.dumps cannot write 0.00000000 as a number with its trailing zeros."""
    return (f'{{"channel":"book","type":"{kind}","data":[{{"symbol":"{SYMBOL}",'
            f'"bids":[{_levels_json(bids)}],"asks":[{_levels_json(asks)}],'
            f'"checksum":{checksum},"timestamp":"{timestamp}"}}]}}')


def _answer(method: str, req_id: Any, time_in: str, result: dict | None = None,
            error: str | None = None, **extra: Any) -> str:
    """A request's answer: `result` with success true, or `error` with success false."""
    message: dict[str, Any] = {"method": method}
    if error is None:
        if result is not None:
            message["result"] = result
        message["success"] = True
    else:
        message.update(error=error, success=False, **extra)
    message.update(time_in=time_in, time_out=_now())
    if req_id is not None:
        message["req_id"] = req_id
    return json.dumps(message)


def _instrument_snapshot() -> str:
    """Reference data for our one pair (docs "instrument": data.assets[] and data.pairs[])."""
    pair = (f'{{"symbol":"{SYMBOL}","base":"BTC","quote":"USD","status":"online",'
            f'"qty_precision":{QTY_PRECISION},"qty_increment":{LOT:f},"qty_min":0.0001,'
            f'"price_precision":{PRICE_PRECISION},"price_increment":{TICK:f},'
            f'"cost_precision":5,"cost_min":0.5,"marginable":true}}')
    assets = ('{"id":"BTC","status":"enabled","precision":10,"precision_display":5},'
              '{"id":"USD","status":"enabled","precision":4,"precision_display":2}')
    return f'{{"channel":"instrument","type":"snapshot","data":{{"assets":[{assets}],"pairs":[{pair}]}}}}'


# --- one session's view of the book -----------------------------------------------------------------
def _better(side: str, price: Decimal, than: Decimal) -> bool:
    return price > than if side == BID else price < than


@dataclass
class _Window:
    """The top `depth` levels of each side as last sent to one session, best first."""

    depth: int
    bids: Levels
    asks: Levels
    checksum: int

    def side(self, side: str) -> Levels:
        return self.bids if side == BID else self.asks

    def touched_by(self, change: list[tuple[str, Decimal, Decimal]]) -> bool:
        """Could this step change the window? Only a change at or inside its worst level can."""
        for side, price, _ in change:
            levels = self.side(side)
            if len(levels) < self.depth or not _better(side, levels[-1][0], price):
                return True
        return False


def _window_changes(side: str, old: Levels, new: Levels, depth: int) -> Levels:
    """What the client needs to turn `old` into `new`: deletes for levels that left the window by
    being deleted (a level that is still better than the new worst can only have been deleted), then
    every level that is new or resized. Levels pushed out below the window get nothing."""
    old_sizes, new_sizes = dict(old), dict(new)
    full = len(new) == depth
    worst = new[-1][0] if new else None
    deletes = [(price, Decimal(0)) for price in old_sizes
               if price not in new_sizes and (not full or _better(side, price, worst))]
    return deletes + [(price, qty) for price, qty in new if old_sizes.get(price) != qty]


@dataclass
class _Update:
    """One step written for one session, kept so a fault can rewrite it."""

    bids: Levels
    asks: Levels
    checksum: int
    timestamp: str
    top_changed: bool  # the 10 levels under the checksum moved: a client that missed it will notice

    def frame(self, checksum: int | None = None) -> str:
        return book_frame("update", self.bids, self.asks,
                          self.checksum if checksum is None else checksum, self.timestamp)


# --- the venue -----------------------------------------------------------------------------------------
class KrakenSim(SimVenue):
    """BTC/USD on a seeded `LevelFlow` (tick 0.1, lot 1e-8) around the common mid."""

    name = "kraken"
    path = "/v2"

    def __init__(self, market: Market, seed: int, settings: SimVenueSettings,
                 host: str = "127.0.0.1") -> None:
        for plan in settings.faults:  # refused now, not in the middle of the pump
            _refuse_inapplicable(plan.kind)
        super().__init__(market, seed, settings, host)
        spec = FlowSpec(tick=TICK, lot=LOT, levels=max(settings.levels, max(BOOK_DEPTHS)),
                        mean_gap_ticks=4.0)
        self.flow = LevelFlow(self.rng, spec, self.mid())
        self.paused = False

    # --- flow -----------------------------------------------------------------------------------
    def pause(self) -> None:
        """Freeze the book (the pump keeps ticking but changes nothing), so a test can drain the
        socket (a ping's pong comes after every frame sent before it) and compare exactly."""
        self.paused = True

    def resume(self) -> None:
        self.paused = False

    def step(self) -> list[tuple[str, Decimal, Decimal]] | None:
        return None if self.paused else self.flow.step(self.mid())

    def true_book(self) -> dict[str, Levels]:
        return {"bid": self.flow.levels(BID), "ask": self.flow.levels(ASK)}

    def session_book(self, session: Session) -> dict[str, Levels] | None:
        """The window last sent to `session` (None before it subscribed to the book)."""
        window: _Window | None = session.state.get("window")
        return None if window is None else {"bid": list(window.bids), "ask": list(window.asks)}

    def frames_for(self, session: Session, change: Any) -> list[str]:
        window: _Window | None = session.state.get("window")
        update = None
        if window is not None and change and window.touched_by(change):
            update = self._advance(window)
        session.state["update"] = update
        frames = [] if update is None else [update.frame()]
        pending: list[str] = session.state.setdefault("pending", [])
        if pending:
            faulty = self._fault_frames(session, pending[0], update)
            if faulty is not None:
                log.info("kraken simulator: deferred %s fault injected", pending.pop(0))
                return faulty
        return frames

    def _advance(self, window: _Window) -> _Update | None:
        """Move the window to the flow's current top and say what changed in it."""
        bids, asks = self.flow.levels(BID, window.depth), self.flow.levels(ASK, window.depth)
        bid_changes = _window_changes(BID, window.bids, bids, window.depth)
        ask_changes = _window_changes(ASK, window.asks, asks, window.depth)
        if not bid_changes and not ask_changes:
            return None
        old_checksum = window.checksum
        window.bids, window.asks, window.checksum = bids, asks, book_checksum(bids, asks)
        return _Update(bid_changes, ask_changes, window.checksum, _now(), window.checksum != old_checksum)

    # --- faults ---------------------------------------------------------------------------------
    def inject(self, session: Session, kind: str, frames: list[str]) -> list[str]:
        """checksum / drop / crossed here; a kind this step cannot carry waits for a step that can."""
        _refuse_inapplicable(kind)
        if kind not in ("checksum", "drop", "crossed"):
            return super().inject(session, kind, frames)
        faulty = self._fault_frames(session, kind, session.state.get("update"))
        if faulty is None:
            log.info("kraken simulator: %s fault deferred to the next update that can carry it", kind)
            session.state.setdefault("pending", []).append(kind)
            return frames
        return faulty

    def _fault_frames(self, session: Session, kind: str, update: _Update | None) -> list[str] | None:
        """This step's frames with `kind` applied, or None when this step cannot carry it."""
        if kind == "crossed":
            window: _Window | None = session.state.get("window")
            if window is None or not window.asks:
                return None
            return ([] if update is None else [update.frame()]) + [self._crossed_frame(window)]
        if update is None:
            return None
        if kind == "checksum":
            return [update.frame(checksum=update.checksum ^ 0x5A5A5A5A)]
        if kind == "drop":  # silent loss; only a loss that moved the top 10 is caught by a checksum
            return [] if update.top_changed else None
        raise ValueError(f"kraken simulator cannot inject {kind!r}")

    def _crossed_frame(self, window: _Window) -> str:
        """A bid at the best ask, with the checksum of the crossed book the client will hold, so
        only the crossed-book check can catch it. The window keeps the true book."""
        bid = (window.asks[0][0], CROSSING_QTY)
        checksum = book_checksum([bid] + window.bids, window.asks)
        return book_frame("update", [bid], [], checksum, _now())

    # --- protocol -------------------------------------------------------------------------------
    async def send_frames(self, session: Session, frames: list[str]) -> None:
        if frames:
            session.state["last_sent"] = asyncio.get_running_loop().time()
        await super().send_frames(session, frames)

    async def serve_session(self, session: Session) -> None:
        session.state.update(last_sent=asyncio.get_running_loop().time(), channels=set(), window=None)
        heartbeats = self.spawn(self._heartbeats(session))
        try:
            status = {"channel": "status", "type": "update",
                      "data": [{"version": "2.0.0", "system": "online", "api_version": "v2",
                                "connection_id": 7_000_000_000 + session.number}]}
            await self.send_frames(session, [json.dumps(status)])
            async for text in session.ws:
                await self._on_request(session, text)
        finally:
            heartbeats.cancel()

    async def _heartbeats(self, session: Session) -> None:
        """Docs: about one heartbeat a second when nothing else is sent, once anything is subscribed."""
        loop = asyncio.get_running_loop()
        while True:
            idle = loop.time() - session.state["last_sent"]
            if idle < HEARTBEAT_SECONDS:
                await asyncio.sleep(HEARTBEAT_SECONDS - idle)
            elif session.state["channels"] and not session.silenced:
                await self.send_frames(session, [HEARTBEAT])
            else:
                await asyncio.sleep(HEARTBEAT_SECONDS)

    async def _on_request(self, session: Session, text: str | bytes) -> None:
        if session.silenced:  # the "silence" fault: the venue looks alive at the TCP level only
            return
        time_in = _now()
        try:
            request = json.loads(text)
        except ValueError:
            request = None
        if not isinstance(request, dict):
            await self.send_frames(session, [json.dumps({"error": "Malformed request", "success": False,
                                                         "time_in": time_in, "time_out": _now()})])
            return
        method, req_id = request.get("method"), request.get("req_id")
        params = request.get("params") if isinstance(request.get("params"), dict) else {}
        if method == "ping":
            await self.send_frames(session, [_answer("pong", req_id, time_in)])
        elif method == "subscribe" and params.get("channel") == "book":
            await self._subscribe_book(session, params, req_id, time_in)
        elif method == "subscribe" and params.get("channel") == "instrument":
            session.state["channels"].add("instrument")
            ack = _answer("subscribe", req_id, time_in, {"channel": "instrument", "snapshot": True})
            await self.send_frames(session, [ack, _instrument_snapshot()])
        elif method == "unsubscribe" and params.get("channel") == "book" and session.state["window"]:
            window, session.state["window"], session.subscribed = session.state["window"], None, False
            result = {"channel": "book", "depth": window.depth, "symbol": SYMBOL}
            await self.send_frames(session, [_answer("unsubscribe", req_id, time_in, result)])
        else:
            error = f"EGeneral:Invalid arguments: {method} {params.get('channel')!r} not supported"
            await self.send_frames(session, [_answer(str(method), req_id, time_in, error=error)])

    async def _subscribe_book(self, session: Session, params: dict, req_id: Any, time_in: str) -> None:
        """Ack, then the snapshot. The window is taken and the session marked subscribed with no
        await in between, so the pump's next update is computed against exactly that snapshot."""
        depth, symbols = params.get("depth", DEFAULT_DEPTH), params.get("symbol")
        if type(depth) is not int or depth not in BOOK_DEPTHS:
            error = f"EGeneral:Invalid arguments:depth must be one of {list(BOOK_DEPTHS)}"
            await self.send_frames(session, [_answer("subscribe", req_id, time_in, error=error)])
            return
        if not isinstance(symbols, list) or symbols != [SYMBOL]:
            refusal = _answer("subscribe", req_id, time_in, error=f"Currency pair not supported {symbols!r}",
                              symbol=symbols)
            await self.send_frames(session, [refusal])
            return
        if session.state["window"] is not None:
            await self.send_frames(session, [_answer("subscribe", req_id, time_in, error="Already subscribed",
                                                     symbol=SYMBOL)])
            return
        snapshot = params.get("snapshot", True) is not False
        result = {"channel": "book", "depth": depth, "snapshot": snapshot, "symbol": SYMBOL}
        await self.send_frames(session, [_answer("subscribe", req_id, time_in, result)])
        bids, asks = self.flow.levels(BID, depth), self.flow.levels(ASK, depth)
        window = _Window(depth, bids, asks, book_checksum(bids, asks))
        session.state["window"] = window
        session.state["channels"].add("book")
        session.subscribed = True
        if snapshot:
            await self.send_frames(session, [book_frame("snapshot", bids, asks, window.checksum, _now())])
