"""The archived Gemini market data v2 `l2`, as `GeminiSim` serves it on `/v2/marketdata`.

What a client sees (developer.gemini.com/websocket/archived/v2.md; shared/venues.md section 3 and
venues-2026.md section 1.7):
- `{"type":"subscribe","subscriptions":[{"name":"l2","symbols":["BTCUSD","ETHUSD"]}]}` (upper case only;
  no valid symbol at all: `{"reason":"NoValidTradingPairs","result":"error"}`) is answered, per symbol, by
  an `l2_updates` holding the whole book, its latest trades and `auction_events` (here always []);
- then one `l2_updates` per flow step and symbol, `changes` as [side buy/sell, price, absolute quantity],
  "0" deleting; size taken off a best level is read as a trade at the touch and a separate `trade`
  frame follows (the l2 subscription streams trades too);
- `{"type":"heartbeat","timestamp":<ms>}` every 5 s;
- no sequence numbers and no checksum, so "gap" and "drop" cannot be shown here and are not injected.
"""
from __future__ import annotations

import json
from collections import deque
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Iterator, Mapping

from data_manager.sim.flow import ASK, BID
from data_manager.sim.l2venue import FlowChange, FlowStep, dump
from data_manager.sim.server import Session

if TYPE_CHECKING:
    from data_manager.sim.gemini import GeminiSim

WIRE_SIDES = {BID: "buy", ASK: "sell"}
TAKER_SIDE = {BID: "sell", ASK: "buy"}   # a trade against the bids was a sell
HEARTBEAT_SECONDS = 5.0
RECENT_TRADES = 50                       # the docs: the first message carries the last 50 trades
CROSSING_SIZE = Decimal("0.5")
FIRST_EVENT_ID = 122_258_166_738
Level = tuple[Decimal, Decimal]


def quantity(size: Decimal) -> str:
    """Up to 8 decimals, trailing zeros dropped ("0.02", "1"), as v2 writes them; a deleted level is "0"."""
    return f"{size.normalize():f}" if size else "0"


class MarketDataV2:
    """One protocol of `GeminiSim`: builds each step's v2 frames once, and answers v2 sessions."""

    name = "v2"
    carries = frozenset({"duplicate", "disconnect", "silence", "crossed", "garbage"})

    def __init__(self, sim: "GeminiSim") -> None:
        self.sim = sim
        self.wire_names = {native.upper(): native for native in sim.symbols}
        self._event_id = FIRST_EVENT_ID
        self.recent_trades: dict[str, deque[dict[str, Any]]] = {}
        for native in sim.symbols:  # a short history, so that the whole book's `trades` is not empty
            recent = self.recent_trades[native] = deque(maxlen=RECENT_TRADES)
            for side in (ASK, BID, ASK):
                recent.append(self._trade(native, side, sim.best_price(side, native), sim.lot * 10_000))

    # --- building frames once per step ------------------------------------------------------
    def prepare(self, native: str, step: FlowStep, touch: Mapping[str, list[Level]]) -> tuple[str, ...]:
        """This step's frames for `native`: its l2_updates, then a trade frame per trade at the touch."""
        trades = list(self._trades_at_touch(native, touch, step.changes))
        self.recent_trades[native].extend(trades)
        return (self._l2_frame(native, step.changes),) + tuple(dump({**trade, "tid": trade["event_id"]})
                                                               for trade in trades)

    def _trades_at_touch(self, native: str, touch: Mapping[str, list[Level]],
                         changes: list[FlowChange]) -> Iterator[dict[str, Any]]:
        """Size taken off a level that was best before the step is read as a trade at the touch."""
        after = {(side, price): size for side, price, size in changes}
        for side, levels in touch.items():
            if levels:
                price, size = levels[0]
                left = after.get((side, price), size)
                if left < size:
                    yield self._trade(native, side, price, size - left)

    def _trade(self, native: str, side: str, price: Decimal, size: Decimal) -> dict[str, Any]:
        """{"type":"trade","symbol":"BTCUSD","event_id":122258166738,"timestamp":1655330221424,
        "price":"22269.14","quantity":"0.00004473","side":"buy"} (side = the taker's)."""
        self._event_id += 1
        return {"type": "trade", "symbol": native.upper(), "event_id": self._event_id, "timestamp": self.sim.clock.ms(),
                "price": f"{price:.2f}", "quantity": quantity(size), "side": TAKER_SIDE[side]}

    def _l2_frame(self, native: str, changes: list[FlowChange], **extra: Any) -> str:
        rows = [[WIRE_SIDES[side], f"{price:.2f}", quantity(size)] for side, price, size in changes]
        return dump({"type": "l2_updates", "symbol": native.upper(), "changes": rows, **extra})

    def _book_frame(self, session: Session, native: str) -> str:
        book = self.sim.true_book(native)
        self.sim.mark_snapshot(session, native)
        changes = [(side, price, size) for side in (BID, ASK) for price, size in book[side]]
        return self._l2_frame(native, changes, trades=list(self.recent_trades[native]), auction_events=[])

    def _heartbeat_frame(self) -> str:
        return dump({"type": "heartbeat", "timestamp": self.sim.clock.ms()})

    # --- a session --------------------------------------------------------------------------
    def opened(self, session: Session, query: str) -> None:
        """v2 takes no connection parameters."""

    async def on_request(self, session: Session, text: str | bytes) -> None:
        """{"type":"subscribe","subscriptions":[{"name":"l2","symbols":["BTCUSD"]}]} (or unsubscribe)."""
        try:
            request = json.loads(text)
            kind = request["type"]
            wanted = [(item["name"], item["symbols"]) for item in request["subscriptions"]]
        except (ValueError, KeyError, TypeError):
            await self.sim.send_frames(session, [_error("InvalidJson", "Failed to parse the request")])
            return
        if kind not in ("subscribe", "unsubscribe") or any(name != "l2" or type(names) is not list
                                                           for name, names in wanted):
            await self.sim.send_frames(session, [_error("InvalidRequest", f"unsupported {str(text):.200}")])
            return
        natives = [self.wire_names[name] for _, names in wanted for name in names
                   if type(name) is str and name in self.wire_names]
        if not natives:
            await self.sim.send_frames(session, [dump({"reason": "NoValidTradingPairs", "result": "error"})])
            return
        subscribed: list[str] = session.state["symbols"]
        if kind == "unsubscribe":
            subscribed[:] = [native for native in subscribed if native not in natives]
            session.subscribed = bool(subscribed)
            return
        frames = []
        for native in dict.fromkeys(natives):
            if native not in subscribed:
                subscribed.append(native)
                frames.append(self._book_frame(session, native))
        if not session.state.get("heartbeats"):
            session.state["heartbeats"] = True
            self.sim.every(session, HEARTBEAT_SECONDS, self._heartbeat_frame)
        await self.sim.send_frames(session, frames)

    def frames_for(self, session: Session, steps: Mapping[str, FlowStep] | None) -> list[str]:
        return [frame for _, step in self.sim.new_steps(session, steps) for frame in step.wire[self.name]]

    def inject(self, session: Session, kind: str, frames: list[str]) -> list[str] | None:
        """The v2 faults; None for the generic ones the base injects."""
        if kind == "crossed":  # only on the wire: the flow's book is left true
            native = session.state["symbols"][0]
            return frames + [self._l2_frame(native, [(BID, self.sim.best_price(ASK, native), CROSSING_SIZE)])]
        return None


def _error(reason: str, message: str) -> str:
    return dump({"result": "error", "reason": reason, "message": message})
