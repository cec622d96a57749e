"""The cheapest split of one order across venues, after fees, within each venue's order-size rules.

The merged walk orders every venue's levels by fee-adjusted price (`deplete_after_fees`), so its
allocation is the best split given the books. A venue's share must then be an order that venue accepts
(at least its minimum, a multiple of its size increment): a share that is not is cut to the largest
size the venue accepts (possibly nothing), that venue is capped there, and the walk is run again, so
what was cut moves to the next best levels of the other venues. Capping only removes liquidity, so
every level taken before is taken again, and a capped venue keeps exactly its cap: each round caps one
more venue, and the loop ends within one round per venue. Every move is recorded and said.

What the split assumes (the README says it too): funds on every venue, the orders sent at the same
moment, and the books exactly as displayed (no one else trades first).
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Callable, Iterable, Mapping

from data_manager.book import Level
from l2_manager.depletion import Action, Depletion, capped, deplete_after_fees
from l2_manager.fees import VenueTerms

_ZERO = Decimal(0)


@dataclass(frozen=True)
class Reallocation:
    """Part of a venue's share moved to other venues' levels, and why."""

    venue: str
    moved: Decimal
    reason: str


@dataclass(frozen=True)
class Split:
    walk: Depletion                              # the merged fills, gross prices, each with its venue
    reallocations: tuple[Reallocation, ...] = ()


def cheapest_split(action: Action, size: Decimal, sides: Mapping[str, Callable[[], Iterable[Level]]],
                   terms: Mapping[str, VenueTerms], name: str = "merged") -> Split:
    """`sides`: each venue's side as a callable giving a fresh best-first iterator (a re-walk needs a
    new one)."""
    buy = action is Action.BUY
    factors = {venue: terms[venue].factor(buy) for venue in sides}
    caps: dict[str, Decimal] = {}
    moves: list[Reallocation] = []
    while True:
        books = {venue: capped(levels(), caps.get(venue)) for venue, levels in sides.items()
                 if caps.get(venue) != _ZERO}
        walk = deplete_after_fees(action, size, books, factors, name)
        cut = False
        for venue, share in walk.allocation().items():
            if venue in caps:
                continue
            allowed = terms[venue].allowed(share)
            if allowed != share:
                moves.append(Reallocation(venue, share - allowed, terms[venue].refusal(share) or "refused"))
                caps[venue] = allowed
                cut = True
        if not cut:
            return Split(walk, tuple(moves))
