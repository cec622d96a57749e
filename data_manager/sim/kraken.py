"""Simulated Kraken Spot WebSocket v2 (`/v2`): `status`, `book` with checksums, `instrument`, ping, and
REST `GET /0/public/AssetPairs`, for every served pair.

The other end of the wire from `data_manager/venues/kraken.py`, written from the protocol facts only
(venues.md section 1, venues-2026.md section 3), never from the client's code: the checksum here is
computed independently.

What a session sees, like on the live feed:
- on connect a `status` frame; `{"method":"subscribe","params":{"channel":"book","symbol":[...],...}}`
  gets one ack per pair (req_id echoed; an unknown pair gets its own refusal), then each pair's
  snapshot of the subscribed depth with its checksum;
- per flow step and pair, one `update` holding only what changed inside that session's depth window,
  deletes first (as Kraken does), plus the levels that enter the window when a level inside it is
  deleted. Levels pushed out of the window by a better one get no delete: the client truncates, as it
  must on the real feed. A step that changes nothing inside the window sends nothing for that pair;
- numbers as JSON numbers with the pair's fixed decimals (`"price":62802.5,"qty":0.00000000`), every
  time RFC 3339 from the simulator's clock; answers as compact JSON;
- `{"channel":"heartbeat"}` after about a second without anything else, while anything is subscribed
  (none after the last unsubscribe); `ping` -> `pong`.

`true_book(native)` is what a client subscribed at the latest requested depth must hold: the top
`depth` levels of the pair's flow.
"""
from __future__ import annotations

import asyncio
import json
import logging
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, ClassVar, Mapping

from data_manager.sim.clock import SimClock
from data_manager.sim.flow import ASK, BID, FlowSpec, LevelFlow
from data_manager.sim.http import Handler, Request, Response
from data_manager.sim.l2venue import FlowChange, FlowStep, L2SimVenue, dump
from data_manager.sim.market import Market
from data_manager.sim.server import Session, SimVenueSettings

log = logging.getLogger(__name__)

BOOK_DEPTHS = (10, 25, 100, 500, 1000)
DEFAULT_DEPTH = 10          # Kraken's, when a subscribe names none
TRUE_BOOK_DEPTH = 1000      # what `true_book` means before any subscription (the client's default depth)
CHECKSUM_LEVELS = 10
HEARTBEAT_SECONDS = 1.0
CROSSING_QTY = Decimal("0.01")
HEARTBEAT = '{"channel":"heartbeat"}'

_NOT_APPLICABLE = {
    "gap": "Kraken v2 book frames carry no sequence numbers: use 'drop' (caught by the next checksum)",
    "slow-snapshot": "Kraken sends its snapshot on the stream right after the ack: there is no REST "
                     "snapshot to delay",
}
_CARRIED_BY_UPDATES = ("checksum", "drop", "duplicate", "crossed")

Levels = list[tuple[Decimal, Decimal]]


# --- pairs -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PairSpec:
    """A pair's precision (the instrument channel's price_precision / qty_precision) and its smallest
    order in base units (REST `ordermin`, instrument `qty_min`)."""

    price_precision: int
    qty_precision: int
    ordermin: Decimal = Decimal(1)

    @property
    def tick(self) -> Decimal:
        return Decimal(1).scaleb(-self.price_precision)

    @property
    def lot(self) -> Decimal:
        return Decimal(1).scaleb(-self.qty_precision)


PAIRS = {"BTC/USD": PairSpec(1, 8, Decimal("0.00005")), "ETH/USD": PairSpec(2, 8, Decimal("0.002"))}
"""Kraken's precision for the pairs tests and the demo use (minimum orders as Kraken publishes them,
UNVERIFIED here); any other pair gets `OTHER_PAIR`."""
OTHER_PAIR = PairSpec(2, 8)

_LEGACY_CODES = {"BTC": "XBT", "DOGE": "XDG"}
_X_ASSETS = frozenset({"XBT", "ETH", "LTC", "XRP", "XLM", "XMR", "ETC", "ZEC", "MLN", "REP", "XDG"})
_Z_ASSETS = frozenset({"USD", "EUR", "GBP", "JPY", "CAD"})


def rest_names(native: str) -> dict[str, str]:
    """REST AssetPairs names of a v2 pair: legacy codes (XBT), X/Z-prefixed asset ids for the classic
    assets, the pair key ("XXBTZUSD") and its altname ("XBTUSD")."""
    base, quote = (_LEGACY_CODES.get(code, code) for code in native.split("/"))
    base_id = "X" + base if base in _X_ASSETS else base
    quote_id = ("Z" + quote if quote in _Z_ASSETS else "X" + quote if quote in _X_ASSETS else quote)
    altname = base + quote
    classic = base in _X_ASSETS and (quote in _Z_ASSETS or quote in _X_ASSETS)
    return {"key": base_id + quote_id if classic else altname, "altname": altname, "wsname": f"{base}/{quote}",
            "base": base_id, "quote": quote_id}


# --- wire format ----------------------------------------------------------------------------------
def rfc3339(seconds: float) -> str:
    """Kraken's times: RFC 3339, microseconds, UTC ("2026-08-16T23:37:05.376419Z")."""
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _digits(value: Decimal, precision: int) -> str:
    return f"{value:.{precision}f}".replace(".", "").lstrip("0")


def book_checksum(pair: PairSpec, bids: Levels, asks: Levels) -> int:
    """CRC32 of the 10 best asks then the 10 best bids (both given best first), fixed decimals."""
    text = "".join(_digits(price, pair.price_precision) + _digits(qty, pair.qty_precision)
                   for price, qty in asks[:CHECKSUM_LEVELS] + bids[:CHECKSUM_LEVELS])
    return zlib.crc32(text.encode("ascii"))


def _levels_json(pair: PairSpec, levels: Levels) -> str:
    return ",".join(f'{{"price":{price:.{pair.price_precision}f},"qty":{qty:.{pair.qty_precision}f}}}'
                    for price, qty in levels)


def book_frame(kind: str, native: str, pair: PairSpec, bids: Levels, asks: Levels, checksum: int,
               timestamp: str) -> str:
    """Written by hand: json.dumps cannot write 0.00000000 as a number with its trailing zeros."""
    return (f'{{"channel":"book","type":"{kind}","data":[{{"symbol":"{native}",'
            f'"bids":[{_levels_json(pair, bids)}],"asks":[{_levels_json(pair, asks)}],'
            f'"checksum":{checksum},"timestamp":"{timestamp}"}}]}}')


def _pair_json(native: str, pair: PairSpec) -> str:
    base, quote = native.split(":")[0].split("/")
    return (f'{{"symbol":"{native}","base":"{base}","quote":"{quote}","status":"online",'
            f'"qty_precision":{pair.qty_precision},"qty_increment":{pair.lot:f},"qty_min":{pair.ordermin:f},'
            f'"price_precision":{pair.price_precision},"price_increment":{pair.tick:f},'
            f'"cost_precision":5,"cost_min":0.5,"marginable":true,"has_index":true}}')


# --- one session's view of one pair ---------------------------------------------------------------
def _better(side: str, price: Decimal, than: Decimal) -> bool:
    return price > than if side == BID else price < than


@dataclass
class _Window:
    """The top `depth` levels of each side of one pair as last sent to one session, best first."""

    depth: int
    bids: Levels
    asks: Levels
    checksum: int

    def side(self, side: str) -> Levels:
        return self.bids if side == BID else self.asks

    def touched_by(self, changes: list[FlowChange]) -> bool:
        """Could this step change the window? Only a change at or inside its worst level can."""
        for side, price, _ in changes:
            levels = self.side(side)
            if len(levels) < self.depth or not _better(side, levels[-1][0], price):
                return True
        return False


def _window_changes(side: str, old: Levels, new: Levels, depth: int) -> Levels:
    """What the client needs to turn `old` into `new`: deletes for levels that left the window by
    being deleted (a level that is still better than the new worst can only have been deleted), then
    every level that is new or resized. Levels pushed out below the window get nothing."""
    new_sizes = dict(new)
    full = len(new) == depth
    worst = new[-1][0] if new else None
    deletes = [(price, Decimal(0)) for price, _ in old
               if price not in new_sizes and (not full or _better(side, price, worst))]
    old_sizes = dict(old)
    return deletes + [(price, qty) for price, qty in new if old_sizes.get(price) != qty]


def _applied(side: str, levels: Levels, changes: Levels, depth: int) -> Levels:
    """What a client holds after applying `changes` to `levels` and truncating (the drop fault's check)."""
    sizes = dict(levels)
    for price, qty in changes:
        if qty:
            sizes[price] = qty
        else:
            sizes.pop(price, None)
    return sorted(sizes.items(), reverse=side == BID)[:depth]


@dataclass
class _Update:
    """One pair's update for one session, kept so a fault can rewrite, repeat or withhold it."""

    native: str
    pair: PairSpec
    depth: int
    bids: Levels
    asks: Levels
    checksum: int
    timestamp: str
    before: tuple[Levels, Levels]   # the window this update was computed from (what a client held)

    def frame(self, checksum: int | None = None) -> str:
        return book_frame("update", self.native, self.pair, self.bids, self.asks,
                          self.checksum if checksum is None else checksum, self.timestamp)

    def missed_by_next(self, following: "_Update") -> bool:
        """A client that missed this update, then got `following`: does its checksum disagree?"""
        bids = _applied(BID, self.before[0], following.bids, self.depth)
        asks = _applied(ASK, self.before[1], following.asks, self.depth)
        return book_checksum(self.pair, bids, asks) != following.checksum


# --- the venue ------------------------------------------------------------------------------------
class KrakenSim(L2SimVenue):
    """Every served pair on a seeded `LevelFlow` (the pair's tick and lot) around its common mid."""

    name = "kraken"
    path = "/v2"
    supported_faults: ClassVar[tuple[str, ...]] = ("checksum", "drop", "duplicate", "disconnect", "silence",
                                                   "crossed", "garbage")
    default_symbols: ClassVar[Mapping[str, str]] = {"BTC/USD": "BTC-USD"}
    rest_not_found: ClassVar[Any] = {"error": ["EGeneral:Unknown method"]}   # Kraken's body (status UNVERIFIED)
    tick = PAIRS["BTC/USD"].tick
    lot = PAIRS["BTC/USD"].lot
    mean_gap_ticks = 4.0

    def __init__(self, market: Market, seed: int, settings: SimVenueSettings,
                 symbols: Mapping[str, str] | None = None, clock: SimClock | None = None,
                 host: str = "127.0.0.1") -> None:
        for plan in settings.faults:  # refused now, with the reason, not in the middle of the pump
            if plan.kind in _NOT_APPLICABLE:
                raise ValueError(f"kraken simulator cannot inject {plan.kind!r}: {_NOT_APPLICABLE[plan.kind]}")
        super().__init__(market, seed, settings, symbols, clock, host)
        self.pairs = {native: PAIRS.get(native, OTHER_PAIR) for native in self.symbols}
        for native, pair in self.pairs.items():  # the base built every flow with BTC/USD's tick
            if (pair.tick, pair.lot) != (self.tick, self.lot):
                spec = FlowSpec(tick=pair.tick, lot=pair.lot, levels=settings.levels,
                                mean_gap_ticks=self.mean_gap_ticks)
                self.flows[native] = LevelFlow(self.rng, spec, self.mid(native))
        self.depths: dict[str, int] = {}   # native -> the depth last subscribed (what true_book holds)

    # --- reading ------------------------------------------------------------------------------
    def true_book(self, native: str | None = None) -> dict[str, Levels]:
        native = native or next(iter(self.symbols))
        flow, depth = self.flows[native], self.depths.get(native, TRUE_BOOK_DEPTH)
        return {BID: flow.levels(BID, depth), ASK: flow.levels(ASK, depth)}

    def now(self) -> str:
        return rfc3339(self.clock.now())

    # --- the flow, per session ----------------------------------------------------------------
    def frames_for(self, session: Session, step: dict[str, FlowStep] | None) -> list[str]:
        updates = []
        windows: dict[str, _Window] = session.state.get("windows", {})
        for native, window in windows.items():
            flow_step = step.get(native) if step else None
            if flow_step is not None and flow_step.changes and window.touched_by(flow_step.changes):
                update = self._advance(native, window)
                if update is not None:
                    updates.append(update)
        session.state["updates"] = updates
        frames = [update.frame() for update in updates]
        for kind in list(session.state.get("pending", ())):
            frames = self._carry(session, kind, updates, frames, session.data_sent + 1)
        return frames

    def _advance(self, native: str, window: _Window) -> _Update | None:
        """Move the window to the flow's current top and say what changed in it."""
        flow, pair = self.flows[native], self.pairs[native]
        bids, asks = flow.levels(BID, window.depth), flow.levels(ASK, window.depth)
        bid_changes = _window_changes(BID, window.bids, bids, window.depth)
        ask_changes = _window_changes(ASK, window.asks, asks, window.depth)
        if not bid_changes and not ask_changes:
            return None
        before = (window.bids, window.asks)
        window.bids, window.asks, window.checksum = bids, asks, book_checksum(pair, bids, asks)
        return _Update(native, pair, window.depth, bid_changes, ask_changes, window.checksum, self.now(), before)

    # --- faults ---------------------------------------------------------------------------------
    def inject(self, session: Session, kind: str, frames: list[str]) -> list[str]:
        """checksum / drop / duplicate / crossed need an update (or a window) to carry them: they are
        carried by this step if it can, else by the first step that can, and recorded in `injected`
        only then. Everything else is the base's."""
        if kind not in _CARRIED_BY_UPDATES:
            return super().inject(session, kind, frames)
        if self.injected and self.injected[-1] == (kind, session.number, session.data_sent):
            self.injected.pop()  # the base recorded it as done; `_carry` records it when it is
        session.state.setdefault("pending", []).append(kind)
        return self._carry(session, kind, session.state.get("updates", []), frames, session.data_sent)

    def _carry(self, session: Session, kind: str, updates: list[_Update], frames: list[str],
               after: int) -> list[str]:
        """This step's frames (step number `after` of the session) with the pending fault `kind`
        applied, if this step can carry it; recorded in `injected` when it is."""
        done = True
        if kind == "crossed":
            windows: dict[str, _Window] = session.state.get("windows", {})
            native, window = next(iter(windows.items()), (None, None))
            if window is None or not window.asks:
                return frames
            frames = frames + [self._crossed_frame(native, window)]
        elif kind == "drop":
            frames, done = self._drop(session, updates, frames)
        elif not updates:
            return frames
        elif kind == "checksum":
            frames = [updates[0].frame(checksum=updates[0].checksum ^ 0x5A5A5A5A)] + frames[1:]
        elif kind == "duplicate":  # harmless by design: Kraken's sizes are absolute, the book stays exact
            frames = frames[:1] + frames
        if done:
            session.state["pending"].remove(kind)
            self.injected.append((kind, session.number, after))
            log.info("kraken simulator: %s injected on connection %d", kind, session.number)
        return frames

    def _drop(self, session: Session, updates: list[_Update], frames: list[str]) -> tuple[list[str], bool]:
        """Lose one update so that the next one's checksum must catch it: hold an update back; when the
        same pair's next update comes, drop the held one if a client that missed it would disagree with
        the next checksum, else send both (late, in order) and hold the next one instead."""
        held: _Update | None = session.state.get("held")
        if held is None:
            if not updates:
                return frames, False
            session.state["held"] = updates[0]
            return frames[1:], False
        position = next((i for i, update in enumerate(updates) if update.native == held.native), None)
        if position is None:
            return frames, False
        following = updates[position]
        if held.missed_by_next(following):
            session.state["held"] = None
            return frames, True
        session.state["held"] = following
        return frames[:position] + [held.frame()] + frames[position + 1:], False

    def _crossed_frame(self, native: str, window: _Window) -> str:
        """A bid at the best ask, with the checksum of the crossed book the client will hold, so only
        the crossed-book check can catch it. The window keeps the true book."""
        pair = self.pairs[native]
        bid = (window.asks[0][0], CROSSING_QTY)
        checksum = book_checksum(pair, [bid] + window.bids, window.asks)
        return book_frame("update", native, pair, [bid], [], checksum, self.now())

    # --- a session ------------------------------------------------------------------------------
    async def send_frames(self, session: Session, frames: list[str]) -> None:
        if frames:
            session.state["last_sent"] = asyncio.get_running_loop().time()
        await super().send_frames(session, frames)

    async def serve_session(self, session: Session) -> None:
        session.state.update(last_sent=asyncio.get_running_loop().time(), channels=set(), windows={})
        session.state.setdefault("timers", []).append(self.spawn(self._heartbeats(session)))
        status = {"channel": "status", "type": "update",
                  "data": [{"version": "2.0.0", "system": "online", "api_version": "v2",
                            "connection_id": 17_843_232_920_108_160_000 + session.number}]}
        await self.send_frames(session, [dump(status)])
        await super().serve_session(session)

    async def _heartbeats(self, session: Session) -> None:
        """Docs: about one heartbeat a second when nothing else is sent, while anything is subscribed."""
        loop = asyncio.get_running_loop()
        while session in self.sessions:
            idle = loop.time() - session.state["last_sent"]
            if idle < HEARTBEAT_SECONDS:
                await asyncio.sleep(HEARTBEAT_SECONDS - idle)
            elif session.state["channels"] and not session.silenced:
                await self.send_frames(session, [HEARTBEAT])
            else:
                await asyncio.sleep(HEARTBEAT_SECONDS)

    def _answer(self, method: str, req_id: Any, time_in: str, result: dict | None = None,
                error: str | None = None, symbol: str | None = None) -> str:
        """A request's answer: `result` with success true, or `error` with success false (compact)."""
        message: dict[str, Any] = {"method": method}
        if req_id is not None:
            message["req_id"] = req_id
        if error is None:
            if result is not None:
                message["result"] = result
            message["success"] = True
        else:
            message.update(error=error, success=False)
            if symbol is not None:
                message["symbol"] = symbol
        message.update(time_in=time_in, time_out=self.now())
        return dump(message)

    async def on_request(self, session: Session, text: str | bytes) -> None:
        if session.silenced:  # the "silence" fault: the venue looks alive at the TCP level only
            return
        time_in = self.now()
        request = _json_object(text)
        if request is None:
            await self.send_frames(session, [dump({"error": "Malformed request", "success": False,
                                                   "time_in": time_in, "time_out": self.now()})])
            return
        method, req_id = request.get("method"), request.get("req_id")
        params = request.get("params") if isinstance(request.get("params"), dict) else {}
        channel = params.get("channel")
        if method == "ping":
            frames = [self._answer("pong", req_id, time_in)]
        elif method == "subscribe" and channel == "book":
            frames = self._subscribe_book(session, params, req_id, time_in)
        elif method == "unsubscribe" and channel == "book":
            frames = self._unsubscribe_book(session, params, req_id, time_in)
        elif method in ("subscribe", "unsubscribe") and channel == "instrument":
            frames = self._instrument(session, method, req_id, time_in)
        else:
            error = f"EGeneral:Invalid arguments: {method} {channel!r} not supported"
            frames = [self._answer(str(method), req_id, time_in, error=error)]
        await self.send_frames(session, frames)

    def _symbols(self, params: dict) -> list[str] | None:
        symbols = params.get("symbol")
        if isinstance(symbols, list) and symbols and all(isinstance(s, str) for s in symbols):
            return symbols
        return None

    def _subscribe_book(self, session: Session, params: dict, req_id: Any, time_in: str) -> list[str]:
        """One ack per pair, then each new pair's snapshot. Built without an await, so the pump's next
        update for a pair is computed against exactly the snapshot sent."""
        depth, symbols = params.get("depth", DEFAULT_DEPTH), self._symbols(params)
        if type(depth) is not int or depth not in BOOK_DEPTHS:
            error = f"EGeneral:Invalid arguments:depth must be one of {list(BOOK_DEPTHS)}"
            return [self._answer("subscribe", req_id, time_in, error=error)]
        if symbols is None:
            return [self._answer("subscribe", req_id, time_in, error="EGeneral:Invalid arguments:symbol")]
        snapshot = params.get("snapshot", True) is not False
        windows: dict[str, _Window] = session.state["windows"]
        acks, snapshots = [], []
        for native in symbols:
            if native not in self.symbols:
                acks.append(self._answer("subscribe", req_id, time_in, symbol=native,
                                         error=f"Currency pair not supported {native}"))
            elif native in windows:
                acks.append(self._answer("subscribe", req_id, time_in, symbol=native, error="Already subscribed"))
            else:
                result = {"channel": "book", "depth": depth, "snapshot": snapshot, "symbol": native}
                acks.append(self._answer("subscribe", req_id, time_in, result))
                flow, pair = self.flows[native], self.pairs[native]
                bids, asks = flow.levels(BID, depth), flow.levels(ASK, depth)
                windows[native] = _Window(depth, bids, asks, book_checksum(pair, bids, asks))
                self.depths[native] = depth
                if snapshot:
                    snapshots.append(book_frame("snapshot", native, pair, bids, asks, windows[native].checksum,
                                                self.now()))
        if windows:
            session.state["channels"].add("book")
            session.subscribed = True
        return acks + snapshots

    def _unsubscribe_book(self, session: Session, params: dict, req_id: Any, time_in: str) -> list[str]:
        windows: dict[str, _Window] = session.state["windows"]
        answers = []
        for native in self._symbols(params) or []:
            window = windows.pop(native, None)
            if window is None:
                answers.append(self._answer("unsubscribe", req_id, time_in, symbol=native,
                                            error="Subscription Not Found"))
            else:
                result = {"channel": "book", "depth": window.depth, "symbol": native}
                answers.append(self._answer("unsubscribe", req_id, time_in, result))
        if not windows:
            session.state["channels"].discard("book")
            session.subscribed = False
        return answers or [self._answer("unsubscribe", req_id, time_in, error="EGeneral:Invalid arguments:symbol")]

    def _instrument(self, session: Session, method: str, req_id: Any, time_in: str) -> list[str]:
        channels: set[str] = session.state["channels"]
        if method == "unsubscribe":
            channels.discard("instrument")
            return [self._answer(method, req_id, time_in, {"channel": "instrument"})]
        channels.add("instrument")
        return [self._answer(method, req_id, time_in, {"channel": "instrument", "snapshot": True}),
                self._instrument_snapshot()]

    def _instrument_snapshot(self) -> str:
        """Reference data for every served pair (docs "instrument": data.assets[] and data.pairs[]), plus
        a US margin row for the first pair (`BTC/USD:BTNL`, venues-2026 §3) with another precision: a
        client must match the exact symbol."""
        rows = [_pair_json(native, pair) for native, pair in self.pairs.items()]
        first, pair = next(iter(self.pairs.items()))
        decoy = PairSpec(pair.price_precision + 1, pair.qty_precision, pair.ordermin)
        rows.append(_pair_json(f"{first}:BTNL", decoy))
        codes = sorted({code for native in self.pairs for code in native.split("/")})
        assets = ",".join(f'{{"id":"{code}","status":"enabled","precision":10,"precision_display":5}}'
                          for code in codes)
        pairs = ",".join(rows)
        return f'{{"channel":"instrument","type":"snapshot","data":{{"assets":[{assets}],"pairs":[{pairs}]}}}}'

    # --- REST -----------------------------------------------------------------------------------
    def rest_routes(self) -> Mapping[tuple[str, str], Handler]:
        return {("GET", "/0/public/AssetPairs"): self._asset_pairs}

    async def _asset_pairs(self, request: Request) -> Response:
        """`GET /0/public/AssetPairs?pair=XBTUSD,ETHUSD` in Kraken's shape (REST names: XBT, X/Z ids);
        a pair may be named by its key, altname, wsname or v2 symbol."""
        wanted = [name.strip().upper() for name in request.query.get("pair", "").split(",") if name.strip()]
        result = {}
        for native, pair in self.pairs.items():
            names = rest_names(native)
            aliases = {names["key"], names["altname"], names["wsname"], native, native.replace("/", "")}
            if not wanted or aliases & set(wanted):
                result[names["key"]] = self._asset_pair(names, pair)
        if wanted and len(result) < len(wanted):
            return Response(200, {"error": ["EQuery:Unknown asset pair"]})
        return Response(200, {"error": [], "result": result})

    @staticmethod
    def _asset_pair(names: dict[str, str], pair: PairSpec) -> dict[str, Any]:
        return {"altname": names["altname"], "wsname": names["wsname"], "aclass_base": "currency",
                "base": names["base"], "aclass_quote": "currency", "quote": names["quote"], "lot": "unit",
                "cost_decimals": 5, "pair_decimals": pair.price_precision, "lot_decimals": pair.qty_precision,
                "lot_multiplier": 1, "leverage_buy": [2, 3], "leverage_sell": [2, 3],
                "fees": [[0, 0.4], [10000, 0.35]], "fees_maker": [[0, 0.25], [10000, 0.2]],
                "fee_volume_currency": "ZUSD", "margin_call": 80, "margin_stop": 40,
                "ordermin": f"{pair.ordermin:f}", "costmin": "0.5", "tick_size": f"{pair.tick:f}",
                "status": "online"}


def _json_object(text: str | bytes) -> dict | None:
    try:
        request = json.loads(text)
    except ValueError:
        return None
    return request if isinstance(request, dict) else None
