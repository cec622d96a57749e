"""The answer to "what do I get for N BTC right now": every venue's walk, the merged walk, and the
evidence of how far each book can be trusted. Built from read-only book views at one instant (no awaits
in between, so every book is read as of the same moment) and rendered by `render.py`. It never sees a
processor.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Mapping, Sequence

from data_manager.book import Side
from data_manager.feed import BookView, FeedKey, HealthReport
from data_manager.symbols import Symbol
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
    instrument: str = "spot"


@dataclass(frozen=True)
class Answer:
    action: Action
    size: Decimal
    source: str
    at: float
    venues: tuple[tuple[VenueStatus, Depletion | None], ...]
    merged: Depletion | None
    symbol: Symbol = Symbol("BTC", "USD")


def venue_status(view: BookView, now: float, unreachable: str | None = None) -> VenueStatus:
    health = view.health(now)
    reason = None
    if not view.live:
        fault = health.last_fault
        reason = unreachable or (f"last fault: {fault.kind}: {fault.detail}" if fault and health.state != "live"
                                 else f"book is {health.state}")
    fault = health.last_fault
    return VenueStatus(
        name=view.venue,
        state=health.state,
        included=view.live,
        reason=reason,
        book_kind=view.book_kind,
        notes=view.notes,
        resyncs=health.resyncs,
        last_fault={"kind": fault.kind, "detail": fault.detail, "at": fault.at} if fault else None,
        checks=_checks(health),
        age_ms=None if health.age is None else int(health.age * 1000),
        depth={side.value: view.depth(side) for side in Side},
        instrument=view.instrument,
    )


def _checks(health: HealthReport) -> dict:
    checks: dict = {"messages": health.messages}
    if health.checksums_verified:
        checks["checksums_verified"] = health.checksums_verified
    if health.first_sequence is not None:
        checks["sequence_contiguous"] = f"{health.first_sequence}..{health.last_sequence}"
    return checks


def build_answer(action: Action, size: Decimal, views: Sequence[BookView], source: str,
                 unreachable: Mapping[FeedKey, str | None] | None = None, now: float | None = None) -> Answer:
    """Walk every venue's book, then the merged book of the live ones, all at this one instant."""
    now = time.time() if now is None else now
    side = consumed_side(action)
    unreachable = unreachable or {}
    rows = []
    for view in views:
        status = venue_status(view, now, unreachable.get(view.key))
        # A book that is not live is still walked when it has levels (a stale one), shown greyed,
        # and never enters the merged answer.
        has_levels = view.best(side) is not None
        depletion = deplete_liquidity(view.venue, action, size, view.levels(side)) if has_levels else None
        rows.append((status, depletion))
    live = {view.venue: view.levels(side) for view in views if view.live}
    merged = deplete_merged(action, size, live) if live else None
    symbol = views[0].symbol if views else Symbol("BTC", "USD")
    return Answer(action, size, source, now, tuple(rows), merged, symbol)
