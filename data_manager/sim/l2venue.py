"""What the simulated L2 venues that push their whole book on the socket (Coinbase, Gemini) share.

Three things are easy to get subtly wrong, so they are written once here:
- Frame order. A session gets frames from the pump, from its subscribe and from its heartbeat timer.
  Each writer builds (and numbers) its frames without awaiting, then sends them under the session's lock;
  `asyncio.Lock` is FIFO, so frames reach the wire in the order they were built and numbered, and a
  snapshot is never overtaken by an update built after it.
- What a snapshot already holds. Every flow step has a number; a session remembers the last step its
  snapshot contains and is never sent that step again.
- Faults that a protocol cannot express are refused when the venue is built (`supported_faults`).

`paused` stops the flow (the pump still runs, but steps change nothing): tests set it, drain the socket,
and then compare the client's book with `true_book()` exactly.
"""
from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable, ClassVar, Mapping

from data_manager.sim.flow import ASK, BID, FlowSpec, LevelFlow
from data_manager.sim.clock import SimClock
from data_manager.sim.market import Market
from data_manager.sim.server import Session, SimVenue, SimVenueSettings

FlowChange = tuple[str, Decimal, Decimal]
"""(side "bid"/"ask", price, new size) as LevelFlow.step returns them; size 0 deletes."""


@dataclass(frozen=True)
class FlowStep:
    """One update of the venue's flow: its number, its changes (already applied to the flow) and the
    trades a venue reads into it (records in the venue's own shape; Gemini streams them)."""

    number: int
    changes: list[FlowChange]
    trades: tuple[Any, ...] = ()


def dump(message: dict[str, Any]) -> str:
    """Compact JSON, as the venues send it."""
    return json.dumps(message, separators=(",", ":"))


class L2SimVenue(SimVenue):
    """A SimVenue whose books are LevelFlows, one per symbol. Subclasses set the flow's shape and speak
    the protocol. A step moves every symbol's flow once: `step()` returns {native symbol: FlowStep}."""

    tick: ClassVar[Decimal] = Decimal("0.01")
    lot: ClassVar[Decimal] = Decimal("0.00000001")
    mean_gap_ticks: ClassVar[float] = 3.0

    def __init__(self, market: Market, seed: int, settings: SimVenueSettings,
                 symbols: Mapping[str, str] | None = None, clock: SimClock | None = None,
                 host: str = "127.0.0.1") -> None:
        super().__init__(market, seed, settings, symbols, clock, host)
        spec = FlowSpec(tick=self.tick, lot=self.lot, levels=settings.levels, mean_gap_ticks=self.mean_gap_ticks)
        self.flows = {native: LevelFlow(self.rng, spec, self.mid(native)) for native in self.symbols}
        self.steps = 0

    @property
    def flow(self) -> LevelFlow:
        """The first symbol's flow (most tests use one symbol)."""
        return next(iter(self.flows.values()))

    # --- the flow ---------------------------------------------------------------------------
    def step(self) -> dict[str, FlowStep] | None:
        if self.paused:
            return None
        self.steps += 1
        return {native: FlowStep(self.steps, flow.step(self.mid(native))) for native, flow in self.flows.items()}

    def true_book(self, native: str | None = None) -> dict[str, list[tuple[Decimal, Decimal]]]:
        flow = self.flows[native] if native is not None else self.flow
        return {BID: flow.levels(BID), ASK: flow.levels(ASK)}

    def best_price(self, side: str, native: str | None = None) -> Decimal:
        flow = self.flows[native] if native is not None else self.flow
        return flow.price(flow.best_tick(side))

    def mark_snapshot(self, session: Session, native: str | None = None) -> None:
        """The session's snapshot of `native` is being built now: it holds every step so far."""
        session.state.setdefault("snapshot_step", {})[native or next(iter(self.symbols))] = self.steps
        session.subscribed = True

    def is_new(self, session: Session, step: FlowStep | None, native: str | None = None) -> bool:
        """A step with changes that this session's snapshot of `native` does not already hold."""
        marks = session.state.get("snapshot_step", {})
        return step is not None and bool(step.changes) and step.number > marks.get(native or next(iter(self.symbols)), 0)

    # --- sending ----------------------------------------------------------------------------
    async def send_frames(self, session: Session, frames: list[str]) -> None:
        lock = session.state.setdefault("send_lock", asyncio.Lock())
        async with lock:
            await super().send_frames(session, frames)

    def every(self, session: Session, seconds: float, build: Callable[[], str]) -> None:
        """Send `build()` to the session every `seconds` (heartbeats) until it closes or is silenced."""
        async def loop() -> None:
            while session in self.sessions and not session.silenced:
                await asyncio.sleep(seconds)
                if session in self.sessions and not session.silenced:
                    await self.send_frames(session, [build()])
        session.state.setdefault("timers", []).append(self.spawn(loop()))

    # --- a session --------------------------------------------------------------------------
    async def serve_session(self, session: Session) -> None:
        try:
            async for text in session.ws:
                await self.on_request(session, text)
        finally:
            for task in session.state.get("timers", []):
                task.cancel()

    async def on_request(self, session: Session, text: str | bytes) -> None:
        """Answer one frame the client sent (subscribe, unsubscribe...)."""
        raise NotImplementedError
