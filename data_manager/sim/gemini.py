"""Simulated Gemini market data v2 `l2` for BTCUSD, as documented.

What a client sees (docs.gemini.com, "Market Data Version 2"; shared/venues.md section 3):
- `{"type":"subscribe","subscriptions":[{"name":"l2","symbols":["BTCUSD"]}]}` is answered by an
  `l2_updates` frame holding the whole book, the latest trades and `auction_events` (here always []);
- then one `l2_updates` per flow step, `changes` as [side buy/sell, price, absolute quantity], "0"
  deleting; when a step takes size off a best level it is read as a trade at the touch and a separate
  `trade` frame follows (the l2 subscription always streams trades too);
- `{"type":"heartbeat","timestamp":<ms>}` every 5 s;
- no sequence numbers and no checksum.

Faults: "crossed" adds an update that bids at the best ask (on the wire only: the flow's book stays
true), plus SimVenue's generic ones. "gap", "drop", "checksum" and "slow-snapshot" need a sequence, a
checksum or a REST snapshot that v2 does not have, so asking for them is refused when the venue is built.
"""
from __future__ import annotations

import json
import time
from collections import deque
from dataclasses import replace
from decimal import Decimal
from typing import Any

from data_manager.sim.flow import ASK, BID
from data_manager.sim.l2venue import FlowChange, FlowStep, L2SimVenue, dump
from data_manager.sim.market import Market
from data_manager.sim.server import Session, SimVenueSettings

SYMBOL = "BTCUSD"
WIRE_SIDES = {BID: "buy", ASK: "sell"}
TAKER_SIDE = {BID: "sell", ASK: "buy"}   # a trade against the bids was a sell
HEARTBEAT_SECONDS = 5.0
RECENT_TRADES = 50                       # the docs: the first message carries the last 50 trades
CROSSING_SIZE = Decimal("0.5")
NO_SEQUENCE = "Gemini v2 l2 has no sequence numbers, so a lost or skipped message cannot be shown"


def quantity(size: Decimal) -> str:
    """Up to 8 decimals, trailing zeros dropped ("0.02", "1"); a deleted level is "0"."""
    return f"{size.normalize():f}" if size else "0"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class GeminiSim(L2SimVenue):
    name = "gemini"
    path = "/v2/marketdata"
    mean_gap_ticks = 60.0
    unsupported_faults = {
        "gap": NO_SEQUENCE,
        "drop": NO_SEQUENCE,
        "checksum": "Gemini v2 l2 has no checksum",
        "slow-snapshot": "the whole book is the first l2_updates on the socket; there is no REST snapshot",
    }

    def __init__(self, market: Market, seed: int, settings: SimVenueSettings, host: str = "127.0.0.1") -> None:
        super().__init__(market, seed, settings, host)
        self._event_id = 1_000_000_000
        self.recent_trades: deque[dict[str, Any]] = deque(maxlen=RECENT_TRADES)
        for side in (ASK, BID, ASK):  # a short history, so the first message's `trades` is not empty
            self.recent_trades.append(self._trade(side, self.best_price(side), self.lot * 10_000))

    # --- trades -----------------------------------------------------------------------------
    def step(self) -> FlowStep | None:
        touch = {side: self.flow.levels(side, 1) for side in (BID, ASK)}
        step = super().step()
        if step is None:
            return None
        trades = tuple(self._trades_at_touch(touch, step.changes))
        self.recent_trades.extend(trades)
        return replace(step, trades=trades)

    def _trades_at_touch(self, touch: dict[str, list[tuple[Decimal, Decimal]]], changes: list[FlowChange]):
        """Size taken off a level that was best before the step is read as a trade at the touch."""
        after = {(side, price): size for side, price, size in changes}
        for side, levels in touch.items():
            if levels:
                price, size = levels[0]
                left = after.get((side, price), size)
                if left < size:
                    yield self._trade(side, price, size - left)

    def _trade(self, side: str, price: Decimal, size: Decimal) -> dict[str, Any]:
        """{"type":"trade","symbol":"BTCUSD","event_id":122258166738,"timestamp":1655330221424,
        "price":"22269.14","quantity":"0.00004473","side":"buy"} (side = the taker's)."""
        self._event_id += 1
        return {"type": "trade", "symbol": SYMBOL, "event_id": self._event_id, "timestamp": now_ms(),
                "price": f"{price:.2f}", "quantity": quantity(size), "side": TAKER_SIDE[side]}

    # --- frames -----------------------------------------------------------------------------
    def _l2_frame(self, changes: list[FlowChange], **extra: Any) -> str:
        rows = [[WIRE_SIDES[side], f"{price:.2f}", quantity(size)] for side, price, size in changes]
        return dump({"type": "l2_updates", "symbol": SYMBOL, "changes": rows, **extra})

    def _book_frame(self, session: Session) -> str:
        book = self.true_book()
        self.mark_snapshot(session)
        changes = [(side, price, size) for side in (BID, ASK) for price, size in book[side]]
        return self._l2_frame(changes, trades=list(self.recent_trades), auction_events=[])

    def _heartbeat_frame(self) -> str:
        return dump({"type": "heartbeat", "timestamp": now_ms()})

    def _error_frame(self, reason: str, message: str) -> str:
        return dump({"result": "error", "reason": reason, "message": message})

    # --- the protocol -----------------------------------------------------------------------
    def frames_for(self, session: Session, change: FlowStep | None) -> list[str]:
        if not self.is_new(session, change):
            return []
        trades = [dump({**trade, "tid": trade["event_id"]}) for trade in change.trades]
        return [self._l2_frame(change.changes)] + trades

    async def on_request(self, session: Session, text: str | bytes) -> None:
        """{"type":"subscribe","subscriptions":[{"name":"l2","symbols":["BTCUSD"]}]}"""
        try:
            request = json.loads(text)
            kind = request["type"]
            subscriptions = request["subscriptions"]
            names = [(item["name"], item["symbols"]) for item in subscriptions]
        except (ValueError, KeyError, TypeError):
            await self.send_frames(session, [self._error_frame("InvalidJson", "Failed to parse the request")])
            return
        if kind not in ("subscribe", "unsubscribe") or names != [("l2", [SYMBOL])]:
            await self.send_frames(session, [self._error_frame("InvalidRequest", f"unsupported {text!s:.200}")])
            return
        if kind == "unsubscribe":
            session.subscribed = False
            return
        first = "timers" not in session.state
        frame = self._book_frame(session)  # a (re)subscribe always starts from the whole book
        if first:
            self.every(session, HEARTBEAT_SECONDS, self._heartbeat_frame)
        await self.send_frames(session, [frame])

    # --- faults -----------------------------------------------------------------------------
    def inject(self, session: Session, kind: str, frames: list[str]) -> list[str]:
        if kind == "crossed":  # only on the wire: the flow's book is left true
            return frames + [self._l2_frame([(BID, self.best_price(ASK), CROSSING_SIZE)])]
        return super().inject(session, kind, frames)
