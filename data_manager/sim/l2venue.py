"""What the simulated L2 venues that push their whole book on the socket (Coinbase, Gemini) share.

Three things are easy to get subtly wrong, so they are written once here:
- Frame order. A session gets frames from the pump, from its subscribe and from its heartbeat timer.
  Each writer builds (and numbers) its frames without awaiting, then sends them under the session's lock;
  `asyncio.Lock` is FIFO, so frames reach the wire in the order they were built and numbered, and a
  snapshot is never overtaken by an update built after it.
- What a snapshot already holds. Every flow step has a number; a session remembers the last step its
  snapshot contains and is never sent that step again.
- Faults that a protocol cannot express (a checksum fault on a venue without checksums) are refused when
  the venue is built, with the reason, not in the middle of the pump.

`paused` stops the flow (the pump still runs, but steps change nothing): tests set it, drain the socket,
and then compare the client's book with `true_book()` exactly.
"""
from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable, ClassVar

from data_manager.sim.flow import ASK, BID, FlowSpec, LevelFlow
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
    """A SimVenue whose book is one LevelFlow. Subclasses set the flow's shape and speak the protocol."""

    tick: ClassVar[Decimal] = Decimal("0.01")
    lot: ClassVar[Decimal] = Decimal("0.00000001")
    mean_gap_ticks: ClassVar[float] = 3.0
    unsupported_faults: ClassVar[dict[str, str]] = {}   # fault kind -> why this protocol cannot show it

    def __init__(self, market: Market, seed: int, settings: SimVenueSettings, host: str = "127.0.0.1") -> None:
        super().__init__(market, seed, settings, host)
        for plan in settings.faults:
            self.check_fault(plan.kind)
        spec = FlowSpec(tick=self.tick, lot=self.lot, levels=settings.levels, mean_gap_ticks=self.mean_gap_ticks)
        self.flow = LevelFlow(self.rng, spec, self.mid())
        self.steps = 0
        self.paused = False

    def check_fault(self, kind: str) -> None:
        if kind in self.unsupported_faults:
            raise ValueError(f"{self.name} simulator cannot inject {kind!r}: {self.unsupported_faults[kind]}")

    def inject(self, session: Session, kind: str, frames: list[str]) -> list[str]:
        self.check_fault(kind)
        return super().inject(session, kind, frames)

    # --- the flow ---------------------------------------------------------------------------
    def step(self) -> FlowStep | None:
        if self.paused:
            return None
        changes = self.flow.step(self.mid())
        self.steps += 1
        return FlowStep(self.steps, changes)

    def true_book(self) -> dict[str, list[tuple[Decimal, Decimal]]]:
        return {BID: self.flow.levels(BID), ASK: self.flow.levels(ASK)}

    def best_price(self, side: str) -> Decimal:
        return self.flow.price(self.flow.best_tick(side))

    def mark_snapshot(self, session: Session) -> None:
        """The session's snapshot is being built now: it holds every step so far."""
        session.state["snapshot_step"] = self.steps
        session.subscribed = True

    def is_new(self, session: Session, step: FlowStep | None) -> bool:
        """A step with changes that this session's snapshot does not already hold."""
        return step is not None and bool(step.changes) and step.number > session.state.get("snapshot_step", 0)

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
