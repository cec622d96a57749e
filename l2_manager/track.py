"""`python3 main.py track ORDER_OR_CLIENT_ID`: follow one order on the level-3 venues from received to
done: when it rests (side, price, size), each fill with the size remaining, and its place in the queue
at its price after every event. It exits when the order is done.

It follows the `OrderEvent`s the level-3 processors emit (KuMEX received/open/match/update/done,
Bitstamp order_created/order_changed/order_deleted) through `DataManager.subscribe`, and reads the
queue from the book view, so it never touches a processor. Sizes are the venue's own units (contracts
on KuMEX): the queue is the venue's.

What the venues' public feeds allow:
- a `clientOid` appears only in KuMEX's `received`: an order is found by clientOid only if it arrives
  while we watch; an order already resting is found by its order id (one scan of the books at start);
- a match names the maker only, so an order that trades as a taker on arrival shows no fills of its
  own: it is seen resting with what was left (`open`), or done straight after `received`;
- `done` carries no reason in the event: "filled" when the last fill left nothing, otherwise
  "canceled" (or filled on arrival, for one that never rested).
With `--redis URL` every step is also published on `{prefix}:track:{ORDER_OR_CLIENT_ID}` (JSON).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, Callable, Mapping

from data_manager.book import Side
from data_manager.feed import BookView, FeedKey, OrderEvent
from l2_manager.numbers import plain

log = logging.getLogger(__name__)

EXIT_DONE, EXIT_USAGE, EXIT_NO_L3, EXIT_TIMEOUT = 0, 2, 4, 5
DONE_KINDS = frozenset({"done", "order_deleted"})
_SIDES = {"bid": Side.BID, "buy": Side.BID, "ask": Side.ASK, "sell": Side.ASK}
_ZERO = Decimal(0)


@dataclass(frozen=True)
class QueueSpot:
    """The order's place at its price, in time priority: 1 is the front."""

    position: int
    orders: int
    ahead: Decimal          # size resting in front of it at that price

    def text(self, unit: str) -> str:
        return f"queue {self.position} of {self.orders}, {plain(self.ahead)} {unit} ahead"


@dataclass(frozen=True)
class TrackStep:
    """One event of the order, as the track command says it."""

    key: FeedKey
    kind: str
    order_id: str
    at: float | None
    client_oid: str | None = None
    side: str | None = None
    price: Decimal | None = None
    remaining: Decimal | None = None
    filled: Decimal | None = None          # by this event
    filled_total: Decimal = _ZERO
    fills: int = 0
    queue: QueueSpot | None = None
    done: bool = False
    outcome: str | None = None             # with done: filled / canceled / done on arrival

    def document(self) -> dict[str, Any]:
        def text(value: Decimal | None) -> str | None:
            return None if value is None else plain(value)

        queue = self.queue
        return {"venue": self.key.venue, "symbol": self.key.symbol, "kind": self.kind, "order_id": self.order_id,
                "client_oid": self.client_oid, "at_ms": None if self.at is None else int(self.at * 1000),
                "side": self.side, "price": text(self.price), "remaining": text(self.remaining),
                "filled": text(self.filled), "filled_total": text(self.filled_total), "fills": self.fills,
                "queue": None if queue is None else {"position": queue.position, "orders": queue.orders,
                                                     "ahead": text(queue.ahead)},
                "done": self.done, "outcome": self.outcome}


def queue_spot(view: BookView, side: str | None, price: Decimal | None, order_id: str) -> QueueSpot | None:
    """Where `order_id` stands at its price now (None: not on the book)."""
    book_side = _SIDES.get(str(side).lower())
    if book_side is None or price is None:
        return None
    orders = view.orders_at(book_side, price)
    ahead = _ZERO
    for index, order in enumerate(orders):
        if order.order_id == order_id:
            return QueueSpot(index + 1, len(orders), ahead)
        ahead += order.size
    return None


def find_resting(views: Mapping[FeedKey, BookView], order_id: str) -> tuple[FeedKey, Side, Decimal, Decimal] | None:
    """An order already on a book when tracking starts: (feed, side, price, size), by one scan."""
    for key, view in views.items():
        if view.book_kind != "L3":
            continue
        for side in Side:
            for price, _ in view.native_levels(side):
                for order in view.orders_at(side, price):
                    if order.order_id == order_id:
                        return key, side, price, order.size
    return None


class OrderTracker:
    """Follows one order through the order events (pure: feed it actions, read the steps)."""

    def __init__(self, ident: str, views: Mapping[FeedKey, BookView]) -> None:
        self.ident = ident
        self.views = views
        self.order_id: str | None = None
        self.key: FeedKey | None = None
        self.side: str | None = None
        self.price: Decimal | None = None
        self.remaining: Decimal | None = None
        self.client_oid: str | None = None
        self.filled_total = _ZERO
        self.fills = 0
        self.rested = False
        self.done = False

    def adopt_resting(self) -> TrackStep | None:
        """Tracking an order id already on a book: start from where it rests."""
        found = find_resting(self.views, self.ident)
        if found is None:
            return None
        self.key, side, self.price, self.remaining = found
        self.order_id, self.side, self.rested = self.ident, side.value, True
        return self._step("resting", None)

    def on_action(self, action: object) -> TrackStep | None:
        if type(action) is not OrderEvent or self.done:
            return None
        if self.order_id is None:
            if self.ident not in (action.order_id, action.client_oid):
                return None
            self.order_id, self.key, self.client_oid = action.order_id, action.key, action.client_oid
        elif action.order_id != self.order_id or action.key != self.key:
            return None
        return self._event(action)

    def _event(self, event: OrderEvent) -> TrackStep:
        self.side = event.side or self.side
        self.price = event.price if event.price is not None else self.price
        if event.filled:
            self.filled_total += event.filled
            self.fills += 1
        if event.kind in DONE_KINDS:
            self.done = True
            self.remaining = _ZERO if self.remaining is None or event.filled else self.remaining
            return self._step(event.kind, event, done=True)
        if event.size is not None:
            self.remaining = event.size
            self.rested = self.rested or event.kind in ("open", "order_created")
        return self._step(event.kind, event)

    def _outcome(self) -> str:
        if self.fills and not self.remaining:
            return "filled"
        if not self.rested:
            return "done on arrival (filled as a taker, or canceled)"
        return "canceled" if not self.fills else "canceled after partial fills"

    def _step(self, kind: str, event: OrderEvent | None, done: bool = False) -> TrackStep:
        view = self.views.get(self.key)
        spot = None if done or view is None else queue_spot(view, self.side, self.price, self.order_id)
        return TrackStep(self.key, kind, self.order_id, event.at if event is not None else time.time(),
                         self.client_oid, self.side, self.price, self.remaining,
                         event.filled if event is not None else None, self.filled_total, self.fills, spot,
                         done, self._outcome() if done else None)


def unit_of(view: BookView | None) -> str:
    if view is None:
        return ""
    return "contracts" if view.instrument == "perpetual" else view.symbol.base


def stamp(epoch: float) -> str:
    """HH:MM:SS.mmm UTC: events of one order come milliseconds apart."""
    return time.strftime("%H:%M:%S", time.gmtime(epoch)) + f".{int(epoch * 1000) % 1000:03d}"


def step_line(step: TrackStep, unit: str) -> str:
    """One human line per event."""
    when = stamp(step.at) if step.at is not None else "--:--:--.---"
    parts = [when, f"{step.key.venue} {step.key.symbol}", f"{step.kind:<9}", f"order {step.order_id}"]
    if step.client_oid:
        parts.append(f"clientOid {step.client_oid}")
    if step.side and step.price is not None and step.remaining and not step.done:
        parts.append(f"{step.side} {plain(step.remaining)} {unit} @ {plain(step.price)}")
    if step.filled:
        parts.append(f"filled {plain(step.filled)} (total {plain(step.filled_total)}, {plain(step.remaining or _ZERO)} left)")
    if step.queue is not None:
        parts.append(step.queue.text(unit))
    if step.done:
        parts.append(f"-> {step.outcome}; {plain(step.filled_total)} {unit} in {step.fills} fill"
                     f"{'' if step.fills == 1 else 's'}")
    return "  ".join(parts)


# --- the command ----------------------------------------------------------------------------------
def level3_venues(venues):
    """Each venue with level 3 switched on where its settings have such a switch (`level3`)."""
    out = []
    for venue in venues:
        if hasattr(venue.settings, "level3") and not venue.settings.level3:
            venue = replace(venue, settings=replace(venue.settings, level3=True))
        out.append(venue)
    return out


class TrackCommand:
    def help(self, name: str) -> str:
        return "follow one order (order id or clientOid) on the level-3 venues until it is done"

    def add_arguments(self, parser: argparse.ArgumentParser, name: str) -> None:
        from main import positive_seconds

        parser.add_argument("ident", metavar="ORDER_OR_CLIENT_ID", help="the venue's order id or your clientOid")
        parser.add_argument("--timeout", type=positive_seconds, metavar="SECONDS",
                            help="give up after SECONDS (exit 5); default: follow until done")
        parser.add_argument("--redis", metavar="URL", help="also publish every step on {prefix}:track:ID")

    async def run(self, args: argparse.Namespace, config, venues) -> int:
        from data_manager.session import open_session

        async with open_session(config, level3_venues(venues), args.symbol, args.source) as session:
            publish = await _track_publisher(args.redis, config, args.ident)
            try:
                return await follow(session, args, publish)
            finally:
                await publish(None)


track_command = TrackCommand()


async def follow(session, args: argparse.Namespace, publish: Callable) -> int:
    """Print each step until the order is done (0), or --timeout (5); 4 if no book is level 3."""
    views = session.views
    tracker = OrderTracker(args.ident, views)
    steps: asyncio.Queue[TrackStep] = asyncio.Queue()

    def on_action(action: object) -> None:
        step = tracker.on_action(action)
        if step is not None:
            steps.put_nowait(step)

    unsubscribe = session.manager.subscribe(on_action)
    try:
        await session.wait_ready(args.max_wait, wait_for_faults=False)
        if not any(view.book_kind == "L3" for view in views.values()):
            await session.manager.wait_ready(args.max_wait, until=lambda: any(v.book_kind == "L3" for v in views.values()))
        l3 = [str(key) for key, view in views.items() if view.book_kind == "L3"]
        if not l3:
            print(f"error: no level-3 book among {', '.join(str(k) for k in views)}: nothing to track",
                  file=sys.stderr)
            return EXIT_NO_L3
        print(f"following {args.ident} on {', '.join(l3)}", file=sys.stderr)
        if tracker.order_id is None and (resting := tracker.adopt_resting()) is not None:
            steps.put_nowait(resting)
        deadline = None if args.timeout is None else asyncio.get_running_loop().time() + args.timeout
        while True:
            remaining = None if deadline is None else deadline - asyncio.get_running_loop().time()
            try:
                step = await asyncio.wait_for(steps.get(), remaining)
            except asyncio.TimeoutError:
                print(f"error: {args.ident} not done after {args.timeout:g} s", file=sys.stderr)
                return EXIT_TIMEOUT
            say(step, unit_of(views.get(step.key)), args.json)
            await publish(step)
            if step.done:
                return EXIT_DONE
    finally:
        unsubscribe()


def say(step: TrackStep, unit: str, as_json: bool) -> None:
    print(json.dumps(step.document()) if as_json else step_line(step, unit), flush=True)


async def _track_publisher(url: str | None, config, ident: str) -> Callable:
    """`publish(step)` on Redis channel {prefix}:track:ident (best effort: a failure is one warning);
    `publish(None)` closes. Without --redis it does nothing."""
    if url is None:
        async def nothing(step: TrackStep | None) -> None:
            return None
        return nothing
    import redis.asyncio as redis
    from redis.exceptions import RedisError

    from data_manager.publish import RedisKeys
    from l2_manager.service.command import configured_redis

    settings = configured_redis(config, url)
    client = redis.Redis.from_url(settings.url, socket_timeout=settings.timeout,
                                  socket_connect_timeout=settings.timeout)
    channel = RedisKeys(settings.prefix).track(ident)

    async def publish(step: TrackStep | None) -> None:
        try:
            if step is None:
                await client.aclose()
            else:
                await client.publish(channel, json.dumps(step.document()))
        except (RedisError, OSError) as exc:
            log.warning("track: cannot publish to Redis (%s)", exc)
    return publish
