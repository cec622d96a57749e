"""The answer to "what do I get for N BTC right now": every venue's walk, the merged walk, and the
evidence of how far each book can be trusted. Built from the processors at one instant (no awaits in
between, so every book is read as of the same moment) and rendered by `render.py`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Mapping

from data_manager.book import Side
from data_manager.venues.base import VenueProcessor
from l2_manager.depletion import Action, Depletion, consumed_side, deplete_liquidity, deplete_merged


@dataclass(frozen=True)
class VenueStatus:
    """What the user needs to know about one venue's book before trusting its numbers."""

    name: str
    state: str
    included: bool                 # part of the merged book (only live books are)
    reason: str | None             # why not included / why not reachable
    book_kind: str                 # "L2" or "L3"
    notes: tuple[str, ...] = ()    # e.g. size conversion, perpetual basis, level-3 fallback
    resyncs: int = 0
    last_fault: dict | None = None
    checks: dict = field(default_factory=dict)
    age_ms: int | None = None
    depth: dict = field(default_factory=dict)   # levels per side held


@dataclass(frozen=True)
class Answer:
    action: Action
    size: Decimal
    source: str
    at: float
    venues: tuple[tuple[VenueStatus, Depletion | None], ...]
    merged: Depletion | None

    @property
    def excluded(self) -> list[VenueStatus]:
        return [status for status, _ in self.venues if not status.included]


VENUE_NOTES = {
    "kumex": ("perpetual future XBTUSDM: its prices carry a basis over spot",
              "sizes converted from USD contracts: BTC = contracts x contract value / price"),
}


def venue_status(processor: VenueProcessor, now: float, unreachable: str | None = None) -> VenueStatus:
    live = processor.live
    reason = None
    if not live:
        reason = unreachable or (f"last fault: {processor.last_fault.kind}: {processor.last_fault.detail}"
                                 if processor.last_fault else f"book is {processor.state.value}")
    fault = processor.last_fault
    age = processor.age(now)
    notes = VENUE_NOTES.get(processor.venue, ())
    if processor.mode_note:
        notes = (processor.mode_note,) + notes
    depth = getattr(processor, "depth", None)
    if depth:  # a depth-limited subscription: the venue's book goes deeper than what we hold
        notes = notes + (f"subscribed depth: the {depth} best levels per side",)
    return VenueStatus(
        name=processor.venue,
        state=processor.state.value,
        included=live,
        reason=reason,
        book_kind=processor.book_kind,
        notes=notes,
        resyncs=processor.resyncs,
        last_fault={"kind": fault.kind, "detail": fault.detail, "at": fault.at} if fault else None,
        checks=_checks(processor),
        age_ms=None if age is None else max(0, int(age * 1000)),
        depth={side.value: processor.book.depth(side) for side in Side},
    )


def _checks(processor: VenueProcessor) -> dict:
    integrity = processor.integrity
    checks: dict = {"messages": integrity.messages}
    if integrity.checksums_verified:
        checks["checksums_verified"] = integrity.checksums_verified
    if integrity.first_sequence is not None:
        checks["sequence_contiguous"] = f"{integrity.first_sequence}..{integrity.last_sequence}"
    return checks


def build_answer(action: Action, size: Decimal, processors: Mapping[str, VenueProcessor], source: str,
                 unreachable: Mapping[str, str | None] | None = None) -> Answer:
    """Walk every venue's book, then the merged book of the live ones, all at this one instant."""
    now = time.time()
    side = consumed_side(action)
    unreachable = unreachable or {}
    rows = []
    for name, processor in processors.items():
        status = venue_status(processor, now, unreachable.get(name))
        # A book that is not live is still walked when it has levels (a stale one), shown greyed,
        # and never enters the merged answer.
        has_levels = processor.best(side) is not None
        depletion = deplete_liquidity(name, action, size, processor.levels(side)) if has_levels else None
        rows.append((status, depletion))
    live = {name: p.levels(side) for name, p in processors.items() if p.live}
    merged = deplete_merged(action, size, live) if live else None
    return Answer(action, size, source, now, tuple(rows), merged)
