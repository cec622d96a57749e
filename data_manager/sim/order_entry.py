"""Order entry for the simulated KuMEX: place an order with your own `clientOid`, and see it on the
public level-3 feed the way a real order would appear (received with the clientOid, open, match...,
done), with the next sequence numbers, to every subscribed client.

    entry = OrderEntry(sim)                                    # a running KumexSim
    order_id = await entry.limit("XBTUSDM", "buy", price, contracts, client_oid="my-1")
    await entry.market("XBTUSDM", "sell", contracts)          # a taker that fills resting orders

It plugs into a running `KumexSim` without changing it: the engine's own order paths make the events
(`L3Engine._limit`, `_market`, `_cancel`; only the clientOid the engine drew is replaced by yours), and
they are sent through the simulator's own `frames_for` / `send_frames`, between two steps of the flow
(under its `pause()` barrier, so no step is half-sent). The flow's pause state is left as it was: a
test that pauses the flow first keeps the random flow away from its order.

Hook wanted from the engine's owner (then the private calls go): a public `L3Engine.place(side, tick,
size, client_oid) -> order_id` / `market(...)` / `cancel(order_id)`, each returning its `Step`.
"""
from __future__ import annotations

from decimal import Decimal
from typing import Callable

from data_manager.sim.kumex import KumexSim, StepFrames
from data_manager.sim.l3_engine import SIDE_NAMES, L3Engine, Step


class OrderEntry:
    def __init__(self, sim: KumexSim) -> None:
        self.sim = sim

    async def limit(self, native: str, side: str, price: Decimal, size: int, client_oid: str) -> str:
        """A limit order of `size` contracts at `price`: it trades what it crosses and rests the rest."""
        engine = self.sim.engines[native]
        tick = int(price / engine.tick)
        if engine.price(tick) != price:
            raise ValueError(f"{price} is not on the {engine.tick} tick of {native}")
        return await self._enter(native, lambda: engine._limit(SIDE_NAMES[side], tick, int(size)), client_oid)

    async def market(self, native: str, side: str, size: int, client_oid: str = "") -> str:
        """A market order of `size` contracts: it fills resting orders, best price first, oldest first."""
        engine = self.sim.engines[native]
        return await self._enter(native, lambda: engine._market(SIDE_NAMES[side], int(size)), client_oid)

    async def cancel(self, native: str, order_id: str) -> None:
        engine = self.sim.engines[native]
        order = engine.orders.get(order_id)
        if order is None:
            raise KeyError(f"order {order_id} is not on the {native} book")
        await self._enter(native, lambda: engine._cancel(order), None)

    async def _enter(self, native: str, make: Callable[[], None], client_oid: str | None) -> str:
        """Run one order path of the engine between two steps, then send its events to every subscriber."""
        sim = self.sim
        was_paused = sim.paused
        await sim.pause()
        try:
            engine = sim.engines[native]
            step = _events_of(engine, make)
            order_id = ""
            for event in step.events:
                if event.subject == "received":
                    order_id = event.data["orderId"]
                    if client_oid is not None:
                        event.data["clientOid"] = client_oid
                    break
            change = {native: StepFrames(native, engine, step)}
            for session in list(sim.sessions):
                if session.subscribed and not session.silenced:
                    await sim.send_frames(session, sim.frames_for(session, change))
            return order_id
        finally:
            if not was_paused:
                sim.resume()


def _events_of(engine: L3Engine, make: Callable[[], None]) -> Step:
    """What one order path emits, as a `Step` (the engine appends to its current step's lists)."""
    engine._events, engine._changes = [], []
    make()
    return Step(engine._events, engine._changes)
