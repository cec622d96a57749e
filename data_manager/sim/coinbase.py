"""Simulated Coinbase Advanced Trade market data: `level2` + `heartbeats` for every served product on one
connection, and the public REST product endpoints, as documented.

What a client sees (docs.cdp.coinbase.com, Advanced Trade "WebSocket Channels", "WebSocket Overview",
"List Public Products"; shared/venues.md section 2, venues-2026.md section 4):
- `{"type":"subscribe","product_ids":["BTC-USD","ETH-USD"],"channel":"level2"}` (one channel a message,
  an optional `jwt` accepted unverified) is answered by a `subscriptions` frame, then each new product's
  whole book as ONE `l2_data` frame (`events[0].type == "snapshot"`), then one `update` frame per product
  per flow step; sides are `bid` / `offer`, `new_quantity` is absolute (trailing zeros trimmed) and "0"
  deletes. Snapshot rows carry `event_time` "1970-01-01T00:00:00Z", as in the docs' snapshot example;
  updates carry the µs time of the change, frames the ns `timestamp` of sending (both from SimClock);
- `heartbeats` sends one frame a second with `heartbeat_counter`: one counter for the whole venue (a real
  connection's first heartbeat reads 14191 at sequence_num 150, so it is not per connection);
- every frame of a connection, whatever its channel or product, carries the next `sequence_num` (from 0);
- every frame has `"client_id":""`, as every real frame quoted in venues.md does;
- a connection that has not subscribed within 5 s is closed ("WebSocket Overview");
- REST `GET /api/v3/brokerage/market/products` and `/products/{product_id}` answer in Coinbase's shape.

Faults: "gap" skips a sequence number, "drop" loses a frame whose number was used, "duplicate" sends a
step's frames again (or the last frame, when the step had none), "crossed" adds an update that bids at the
best ask (only on the wire: the flow's book stays true); "disconnect", "silence" and "garbage" come from
SimVenue. There is no checksum and no REST snapshot, so "checksum" and "slow-snapshot" are refused.
"""
from __future__ import annotations

import asyncio
import json
import random
import time
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Mapping

from data_manager.sim.clock import SimClock
from data_manager.sim.flow import ASK, BID
from data_manager.sim.http import Handler, Request, Response
from data_manager.sim.l2venue import FlowChange, FlowStep, L2SimVenue, dump
from data_manager.sim.market import Market
from data_manager.sim.server import Session, SimVenueSettings

WIRE_SIDES = {BID: "bid", ASK: "offer"}
CROSSING_SIZE = Decimal("0.5")
SNAPSHOT_EVENT_TIME = "1970-01-01T00:00:00Z"
CHANNELS = ("level2", "heartbeats")
PRODUCTS_PATH = "/api/v3/brokerage/market/products"
NOT_FOUND = {"error": "NOT_FOUND", "error_details": "product not found", "message": "product not found"}
NAMES = {"BTC": "Bitcoin", "ETH": "Ethereum", "USD": "US Dollar", "USDC": "USDC", "EUR": "Euro",
         "GBP": "British Pound"}


def rfc3339(ns: int, digits: int = 9) -> str:
    """2024-10-08T09:10:36.120390407Z: `timestamp` has ns, `event_time` µs (digits=6)."""
    seconds, fraction = divmod(ns, 1_000_000_000)
    stamp = datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{fraction:09d}"[: len(stamp) + 1 + digits] + "Z"


def quantity(size: Decimal) -> str:
    """As Coinbase writes sizes: "0.032355", "27.51", "1"; a deleted level is "0"."""
    return format(size.normalize(), "f") if size else "0"


class CoinbaseSim(L2SimVenue):
    name = "coinbase"
    path = "/"
    mean_gap_ticks = 20.0
    supported_faults = ("gap", "drop", "duplicate", "disconnect", "silence", "crossed", "garbage")
    default_symbols = {"BTC-USD": "BTC-USD"}
    rest_not_found = NOT_FOUND
    subscribe_deadline = 5.0       # seconds a connection may stay without a subscription
    heartbeat_seconds = 1.0

    def __init__(self, market: Market, seed: int, settings: SimVenueSettings,
                 symbols: Mapping[str, str] | None = None, clock: SimClock | None = None,
                 host: str = "127.0.0.1") -> None:
        super().__init__(market, seed, settings, symbols, clock, host)
        self.heartbeat_counter = random.Random(f"coinbase-heartbeats-{seed}").randrange(10_000, 1_000_000)
        self._started = time.monotonic()

    # --- lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        await super().start()
        self.spawn(self._heartbeats())

    # --- frames -----------------------------------------------------------------------------
    def _frame(self, session: Session, channel: str, events: list[dict[str, Any]]) -> str:
        """Number the frame now: the session's counter covers every channel and product."""
        sequence = session.state.get("sequence", 0)
        session.state["sequence"] = sequence + 1
        text = dump({"channel": channel, "client_id": "", "timestamp": rfc3339(self.clock.ns()),
                     "sequence_num": sequence, "events": events})
        session.state["last_frame"] = text
        return text

    def _l2_frame(self, session: Session, native: str, kind: str, changes: list[FlowChange],
                  event_time: str | None = None) -> str:
        stamp = event_time or rfc3339(self.clock.ns(), digits=6)
        updates = [{"side": WIRE_SIDES[side], "event_time": stamp, "price_level": f"{price:.2f}",
                    "new_quantity": quantity(size)} for side, price, size in changes]
        return self._frame(session, "l2_data", [{"type": kind, "product_id": native, "updates": updates}])

    def _snapshot_frame(self, session: Session, native: str) -> str:
        book = self.true_book(native)
        changes = [(side, price, size) for side in (BID, ASK) for price, size in book[side]]
        self.mark_snapshot(session, native)
        return self._l2_frame(session, native, "snapshot", changes, SNAPSHOT_EVENT_TIME)

    def _subscriptions_frame(self, session: Session) -> str:
        return self._frame(session, "subscriptions", [{"subscriptions": dict(self._channels(session))}])

    def _heartbeat_frame(self, session: Session) -> str:
        """{"current_time":"2023-10-23 14:43:13.362521689 +0000 UTC m=+425760.164580852","heartbeat_counter":14191}
        (Go's time.Time text: the wall clock, then the server's monotonic reading)."""
        now = self.clock.ns()
        stamp = datetime.fromtimestamp(now // 1_000_000_000, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        uptime = time.monotonic() - self._started
        current = f"{stamp}.{now % 1_000_000_000:09d} +0000 UTC m=+{uptime:.9f}"
        return self._frame(session, "heartbeats", [{"current_time": current,
                                                    "heartbeat_counter": self.heartbeat_counter}])

    @staticmethod
    def _error_frame(message: str) -> str:
        return dump({"type": "error", "message": message})

    @staticmethod
    def _channels(session: Session) -> dict[str, list[str]]:
        return session.state.setdefault("channels", {})

    # --- the flow ---------------------------------------------------------------------------
    def frames_for(self, session: Session, change: dict[str, FlowStep] | None) -> list[str]:
        """One `update` frame per subscribed product that this step changed (and its snapshot lacks)."""
        if change is None:
            return []
        return [self._l2_frame(session, native, "update", change[native].changes)
                for native in self._channels(session).get("level2", ())
                if self.is_new(session, change.get(native), native)]

    async def _heartbeats(self) -> None:
        """One venue-wide ticker, as a real server's: every heartbeat subscriber gets the same counter."""
        while True:
            await asyncio.sleep(self.heartbeat_seconds)
            self.heartbeat_counter += 1
            for session in list(self.sessions):
                if "heartbeats" in self._channels(session) and not session.silenced:
                    await self.send_frames(session, [self._heartbeat_frame(session)])

    # --- a session --------------------------------------------------------------------------
    async def serve_session(self, session: Session) -> None:
        deadline = self.spawn(self._close_unless_subscribed(session))
        try:
            await super().serve_session(session)
        finally:
            deadline.cancel()

    async def _close_unless_subscribed(self, session: Session) -> None:
        """The venue drops a connection that has not subscribed within 5 s (close code UNVERIFIED)."""
        await asyncio.sleep(self.subscribe_deadline)
        if not session.state.get("ever_subscribed"):
            await session.ws.close(1000, "no subscribe within 5 s")

    async def on_request(self, session: Session, text: str | bytes) -> None:
        """{"type":"subscribe","product_ids":["BTC-USD"],"channel":"level2","jwt":"..."} (one channel a message)."""
        request = _json_object(text)
        kind = request.get("type") if request is not None else None
        channel = request.get("channel") if request is not None else None
        products = request.get("product_ids", []) if request is not None else None
        if (request is None or type(kind) is not str or type(channel) is not str or type(products) is not list
                or any(type(p) is not str for p in products)):
            await self.send_frames(session, [self._error_frame("failure to parse the request")])
            return
        if kind not in ("subscribe", "unsubscribe") or channel not in CHANNELS:
            await self.send_frames(session, [self._error_frame(f"unsupported request {kind!r} {channel!r}")])
            return
        unknown = [p for p in products if p not in self.symbols]
        if channel == "level2" and (unknown or not products):
            refused = f"Failed to subscribe: products {unknown or products!r}"
            await self.send_frames(session, [self._error_frame(refused)])
            return
        if isinstance(request.get("jwt"), str):
            session.state["jwt"] = request["jwt"]  # accepted as is: the simulator knows no keys
        await self.send_frames(session, self._answer(session, kind, channel, products))

    def _answer(self, session: Session, kind: str, channel: str, products: list[str]) -> list[str]:
        """Change the session's subscriptions; the frames to send, built (and numbered) in order."""
        channels = self._channels(session)
        if kind == "unsubscribe":
            if channel == "level2":
                kept = [p for p in channels.get("level2", []) if p not in products]
                channels["level2"] = kept
                session.subscribed = bool(kept)
            else:
                channels.pop(channel, None)
            return [self._subscriptions_frame(session)]
        session.state["ever_subscribed"] = True
        if channel == "heartbeats":
            channels["heartbeats"] = ["heartbeats"]
            return [self._subscriptions_frame(session)]
        subscribed = channels.setdefault("level2", [])
        new = [p for p in dict.fromkeys(products) if p not in subscribed]
        subscribed.extend(new)
        return [self._subscriptions_frame(session)] + [self._snapshot_frame(session, p) for p in new]

    # --- REST -------------------------------------------------------------------------------
    def rest_routes(self) -> Mapping[tuple[str, str], Handler]:
        routes = {("GET", PRODUCTS_PATH): self._list_products}
        for native in self.symbols:
            routes[("GET", f"{PRODUCTS_PATH}/{native}")] = self._product_route(native)
        return routes

    async def _list_products(self, request: Request) -> Response:
        """GET /api/v3/brokerage/market/products: {"products":[...],"num_products":N,"pagination":null}."""
        products = [self.product(native) for native in self.symbols]
        return Response(200, {"products": products, "num_products": len(products), "pagination": None})

    def _product_route(self, native: str):
        async def handler(request: Request) -> Response:
            return Response(200, self.product(native))
        return handler

    def product(self, native: str) -> dict[str, Any]:
        """One product as the public endpoint writes it (nautilus_trader's recorded BTC-USD answer):
        {"product_id":"BTC-USD","price":"68923.67",...,"base_increment":"0.00000001","quote_increment":"0.01",
         ...,"product_type":"SPOT","quote_currency_id":"USD","base_currency_id":"BTC",...,"product_venue":"CBE",
         ...,"best_bid_price":"","best_ask_price":""}: every field of the recording, in its order, empty
         where the recording is empty."""
        base, quote = self.symbols[native].split("-")
        bid, ask = self.best_price(BID, native), self.best_price(ASK, native)
        tick, lot = f"{self.tick}", f"{self.lot:f}"
        return {
            "product_id": native, "price": f"{(bid + ask) / 2:.2f}", "price_percentage_change_24h": "0",
            "volume_24h": "0", "volume_percentage_change_24h": "0", "base_increment": lot,
            "quote_increment": tick, "quote_min_size": "1", "quote_max_size": "150000000", "base_min_size": lot,
            "base_max_size": "3400", "base_name": NAMES.get(base, base), "quote_name": NAMES.get(quote, quote),
            "watched": False, "is_disabled": False, "new": False, "status": "online", "cancel_only": False,
            "limit_only": False, "post_only": False, "trading_disabled": False, "auction_mode": False,
            "product_type": "SPOT", "quote_currency_id": quote, "base_currency_id": base,
            "fcm_trading_session_details": None, "mid_market_price": "", "alias": "", "alias_to": [],
            "base_display_symbol": base, "quote_display_symbol": quote, "view_only": False,
            "price_increment": tick, "display_name": native, "product_venue": "CBE",
            "approximate_quote_24h_volume": "0", "new_at": "2023-01-01T00:00:00Z", "market_cap": "",
            "base_cbrn": "", "quote_cbrn": "", "product_cbrn": "", "icon_color": "", "icon_url": "",
            "display_name_overwrite": "", "is_alpha_testing": False, "about_description": "",
            "best_bid_price": "", "best_ask_price": "",
        }

    # --- faults -----------------------------------------------------------------------------
    def inject(self, session: Session, kind: str, frames: list[str]) -> list[str]:
        if kind == "gap":  # the frames go out one number later: the client sees one number skipped
            session.state["sequence"] = session.state.get("sequence", 0) + 1
            return [_renumbered(frame, 1) for frame in frames]
        if kind == "drop":  # lost on the way: its number was used, the next frame shows the gap
            if not frames:  # a step without changes: lose a number all the same
                session.state["sequence"] = session.state.get("sequence", 0) + 1
            return frames[1:]
        if kind == "duplicate" and not frames:
            return [session.state["last_frame"]]  # the subscription's frames at least were sent
        if kind == "crossed":  # only on the wire: the flow's book is left true
            native = self._channels(session)["level2"][0]
            crossing = [(BID, self.best_price(ASK, native), CROSSING_SIZE)]
            return frames + [self._l2_frame(session, native, "update", crossing)]
        return super().inject(session, kind, frames)


def _json_object(text: str | bytes) -> dict[str, Any] | None:
    try:
        request = json.loads(text)
    except ValueError:  # not JSON (json.JSONDecodeError and UnicodeDecodeError are ValueErrors)
        return None
    return request if type(request) is dict else None


def _renumbered(frame: str, shift: int) -> str:
    message = json.loads(frame)
    message["sequence_num"] += shift
    return dump(message)
