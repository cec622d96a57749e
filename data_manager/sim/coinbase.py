"""Simulated Coinbase Advanced Trade market data: `level2` (+ `heartbeats`) for BTC-USD, as documented.

What a client sees (docs.cdp.coinbase.com, Advanced Trade WebSocket channels; shared/venues.md section 2):
- `{"type":"subscribe","product_ids":["BTC-USD"],"channel":"level2"}` is answered by a `subscriptions`
  frame, then the whole book as ONE `l2_data` frame (`events[0].type == "snapshot"`), then one `update`
  frame per flow step; sides are `bid` / `offer`, `new_quantity` is absolute and "0" deletes;
- `heartbeats` sends one frame a second with a `heartbeat_counter`;
- every frame of the connection, whatever its channel, carries the next `sequence_num` (from 0).

Faults: "gap" skips a sequence number, "drop" loses a frame whose number was used, "crossed" adds an
update that bids at the best ask (only on the wire: the flow's book stays true); the generic ones come
from SimVenue. There is no checksum and no REST snapshot, so "checksum" and "slow-snapshot" are refused.
"""
from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from data_manager.sim.flow import ASK, BID
from data_manager.sim.l2venue import FlowChange, FlowStep, L2SimVenue, dump
from data_manager.sim.server import Session

PRODUCT = "BTC-USD"
WIRE_SIDES = {BID: "bid", ASK: "offer"}
CROSSING_SIZE = Decimal("0.5")


def rfc3339(ns: int, digits: int = 9) -> str:
    """2024-10-08T09:10:36.120390407Z: `timestamp` has ns, `event_time` µs (digits=6)."""
    seconds, fraction = divmod(ns, 1_000_000_000)
    stamp = datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{fraction:09d}"[: len(stamp) + 1 + digits] + "Z"


def quantity(size: Decimal) -> str:
    """8 decimals, as BTC sizes are sent; a deleted level is "0" as in the docs."""
    return f"{size:.8f}" if size else "0"


class CoinbaseSim(L2SimVenue):
    name = "coinbase"
    path = "/"
    mean_gap_ticks = 20.0
    unsupported_faults = {
        "checksum": "Advanced Trade level2 has no checksum",
        "slow-snapshot": "the level2 snapshot comes on the socket, in one frame, not from REST",
    }

    # --- frames -----------------------------------------------------------------------------
    def _frame(self, session: Session, channel: str, events: list[dict[str, Any]]) -> str:
        """Number the frame now: the session's counter covers every channel."""
        sequence = session.state.get("sequence", 0)
        session.state["sequence"] = sequence + 1
        return dump({"channel": channel, "client_id": "", "timestamp": rfc3339(time.time_ns()),
                     "sequence_num": sequence, "events": events})

    def _l2_frame(self, session: Session, kind: str, changes: list[FlowChange]) -> str:
        event_time = rfc3339(time.time_ns(), digits=6)
        updates = [{"side": WIRE_SIDES[side], "event_time": event_time, "price_level": f"{price:.2f}",
                    "new_quantity": quantity(size)} for side, price, size in changes]
        return self._frame(session, "l2_data", [{"type": kind, "product_id": PRODUCT, "updates": updates}])

    def _snapshot_frame(self, session: Session) -> str:
        book = self.true_book()
        changes = [(side, price, size) for side in (BID, ASK) for price, size in book[side]]
        self.mark_snapshot(session)
        return self._l2_frame(session, "snapshot", changes)

    def _subscriptions_frame(self, session: Session) -> str:
        channels = session.state.setdefault("channels", {})
        return self._frame(session, "subscriptions", [{"subscriptions": channels}])

    def _heartbeat_frame(self, session: Session) -> str:
        counter = session.state.get("heartbeat_counter", 0) + 1
        session.state["heartbeat_counter"] = counter
        now = time.time_ns()
        stamp = datetime.fromtimestamp(now // 1_000_000_000, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        uptime = time.monotonic() - session.state["started"]
        current = f"{stamp}.{now % 1_000_000_000:09d} +0000 UTC m=+{uptime:.9f}"
        return self._frame(session, "heartbeats", [{"current_time": current, "heartbeat_counter": counter}])

    def _error_frame(self, message: str) -> str:
        return dump({"type": "error", "message": message})

    # --- the protocol -----------------------------------------------------------------------
    def frames_for(self, session: Session, change: FlowStep | None) -> list[str]:
        if not self.is_new(session, change):
            return []
        return [self._l2_frame(session, "update", change.changes)]

    async def on_request(self, session: Session, text: str | bytes) -> None:
        """{"type":"subscribe","product_ids":["BTC-USD"],"channel":"level2"} (one channel a message)."""
        session.state.setdefault("started", time.monotonic())
        try:
            request = json.loads(text)
            kind, channel = request["type"], request["channel"]
            products = request.get("product_ids", [])
        except (ValueError, KeyError, TypeError):
            await self.send_frames(session, [self._error_frame("failure to parse the request")])
            return
        if kind not in ("subscribe", "unsubscribe") or channel not in ("level2", "heartbeats"):
            await self.send_frames(session, [self._error_frame(f"unsupported request {kind!r} {channel!r}")])
            return
        if channel == "level2" and products != [PRODUCT]:
            await self.send_frames(session, [self._error_frame(f"failure to subscribe: products {products!r}")])
            return
        await self.send_frames(session, self._answer(session, kind, channel))

    def _answer(self, session: Session, kind: str, channel: str) -> list[str]:
        """Change the session's subscriptions; the frames to send, built (and numbered) in order."""
        channels = session.state.setdefault("channels", {})
        if kind == "unsubscribe":
            channels.pop(channel, None)
            if channel == "level2":
                session.subscribed = False
            else:
                self._stop_heartbeats(session)
            return [self._subscriptions_frame(session)]
        if channel in channels:
            return [self._subscriptions_frame(session)]
        channels[channel] = [PRODUCT] if channel == "level2" else ["heartbeats"]
        frames = [self._subscriptions_frame(session)]
        if channel == "level2":
            frames.append(self._snapshot_frame(session))
        else:
            self.every(session, 1.0, lambda: self._heartbeat_frame(session))
        return frames

    def _stop_heartbeats(self, session: Session) -> None:
        for task in session.state.pop("timers", []):
            task.cancel()

    # --- faults -----------------------------------------------------------------------------
    def inject(self, session: Session, kind: str, frames: list[str]) -> list[str]:
        if kind == "gap":  # the frames go out one number later: the client sees one number skipped
            session.state["sequence"] = session.state.get("sequence", 0) + 1
            return [_renumbered(frame, 1) for frame in frames]
        if kind == "drop":  # lost on the way: its number was used, the next frame shows the gap
            if not frames:  # a step without changes: lose a number all the same
                session.state["sequence"] = session.state.get("sequence", 0) + 1
            return []
        if kind == "crossed":  # only on the wire: the flow's book is left true
            crossing = [(BID, self.best_price(ASK), CROSSING_SIZE)]
            return frames + [self._l2_frame(session, "update", crossing)]
        return super().inject(session, kind, frames)


def _renumbered(frame: str, shift: int) -> str:
    message = json.loads(frame)
    message["sequence_num"] += shift
    return dump(message)
