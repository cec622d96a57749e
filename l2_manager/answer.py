"""The answer to "what do I get for N BTC right now": every venue's walk after fees, the cheapest split
across the spot venues, the perpetual apart, and the evidence of how far each book can be trusted.

Built from read-only book views at one instant (no awaits in between, so every book is read as of the
same moment) and rendered by `render.py` (people) or `document.py` (JSON). It never sees a processor.

References, each named where it is shown:
- each venue's own mid and spread; the merged **spot** mid (best bid and ask of the live spot venues),
  the one reference every venue is compared against, perpetuals included (their basis is measured
  against it);
- the merged answer is spot-only by default (`merge="spot"`); `merge="all"` adds the perpetuals, whose
  fills are then said plainly not to be spot sales.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import cached_property
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Callable, Iterable, Mapping, Sequence

from data_manager.book import Level, Side
from data_manager.feed import BookView, Fault, FeedKey, HealthReport
from data_manager.symbols import Symbol
from l2_manager.cost import (Cost, OrderSize, PerpetualLeg, Tail, basis_bps, fee_of, position_opened)
from l2_manager.depletion import (Action, Depletion, adjusted, after_walk, consumed_side, deplete_liquidity, merged_levels,
                                  size_for_quote)
from l2_manager.depth import Within, bands, within_bps
from l2_manager.fees import VenueTerms, terms_from_settings
from l2_manager.numbers import BPS, duration, price_scale
from l2_manager.queue import orders_hit
from l2_manager.split import Reallocation, cheapest_split

_ZERO = Decimal(0)
SPOT, PERPETUAL = "spot", "perpetual"
EXIT_OK, EXIT_PARTIAL, EXIT_NONE, EXIT_SHORTFALL = 0, 3, 4, 5


@dataclass(frozen=True)
class Top:
    """Best bid and ask of a book (or of several): the mid and the spread."""

    bid: Decimal | None
    ask: Decimal | None

    @property
    def mid(self) -> Decimal | None:
        return None if self.bid is None or self.ask is None else (self.bid + self.ask) / 2

    @property
    def spread(self) -> Decimal | None:
        return None if self.bid is None or self.ask is None else self.ask - self.bid

    @property
    def spread_bps(self) -> Decimal | None:
        mid, spread = self.mid, self.spread
        return None if mid is None or spread is None or not mid else spread / mid * BPS


def top_of(views: Iterable[BookView]) -> Top:
    """The best bid and ask across `views` (one view: its own top)."""
    views = list(views)
    bids = [level[0] for view in views if (level := view.best(Side.BID)) is not None]
    asks = [level[0] for view in views if (level := view.best(Side.ASK)) is not None]
    return Top(max(bids) if bids else None, min(asks) if asks else None)


@dataclass(frozen=True)
class VenueStatus:
    """What the user needs to know about one venue's book before trusting its numbers."""

    name: str
    state: str
    live: bool
    in_merge: bool                   # part of the merged answer (live, and spot unless --merge all)
    reason: str | None               # why not live / why not merged, in words that say what happened
    book_kind: str = "L2"            # "L2" or "L3"
    instrument: str = SPOT
    notes: tuple[str, ...] = ()
    resyncs: int = 0
    last_fault: Fault | None = None
    last_live: float | None = None   # the last moment the book was known live (None: never, or now)
    age_ms: int | None = None
    checks: dict = field(default_factory=dict)
    depth: dict = field(default_factory=dict)
    terms: VenueTerms = VenueTerms()
    top: Top = Top(None, None)
    price_scale: int = 2


@dataclass(frozen=True)
class VenueOutcome:
    venue: str
    cost: Cost | None                 # None: no level on the side walked
    perpetual: PerpetualLeg | None = None


@dataclass(frozen=True)
class Saving:
    """The split against the best single venue able to fill the whole order alone."""

    venue: str
    amount: Decimal       # quote units: more received (sell) or less spent (buy) than that venue alone
    bps: Decimal
    base: Decimal = _ZERO  # a quote-sized order: base units sold fewer (sell) / bought more (buy)


@dataclass(frozen=True)
class MergedOutcome:
    cost: Cost | None
    venues: tuple[str, ...]                       # the venues merged
    reallocations: tuple[Reallocation, ...] = ()
    saving: Saving | None = None
    includes_perpetual: bool = False
    perpetual: Mapping[str, PerpetualLeg] = field(default_factory=dict)  # with --merge all


@dataclass(frozen=True)
class SizedAnswer:
    order: OrderSize
    venues: tuple[VenueOutcome, ...]
    merged: MergedOutcome | None


@dataclass(frozen=True)
class LimitAnswer:
    """`--limit-bps`: what each book (own mid) and the merged book (spot mid) can take within X bps."""

    bps: Decimal
    venues: tuple[tuple[str, Within | None], ...]
    merged: Within | None


@dataclass(frozen=True)
class Answer:
    action: Action
    source: str
    at: float
    symbol: Symbol
    statuses: tuple[VenueStatus, ...]
    spot: Top
    answers: tuple[SizedAnswer, ...]
    merge: str = SPOT
    limit: LimitAnswer | None = None
    orders_at: Callable[[str, Decimal], list] | None = None   # --orders: (venue, price) -> queue
    with_orders: bool = False

    @property
    def side(self) -> Side:
        return consumed_side(self.action)

    @cached_property
    def _by_name(self) -> dict[str, VenueStatus]:
        return {status.name: status for status in self.statuses}

    def status(self, venue: str) -> VenueStatus:
        return self._by_name[venue]

    def parts(self, cost: Cost) -> list[Part]:
        """A merged walk's share per venue (size, gross notional, that venue's fee, net), in the order
        venues first appear in the walk: the allocation."""
        totals: dict[str, list[Decimal]] = {}
        for venue, (price, taken) in zip(cost.walk.venues, cost.walk.levels):
            entry = totals.setdefault(venue, [_ZERO, _ZERO])
            entry[0] += taken
            entry[1] += price * taken
        out = []
        for venue, (filled, notional) in totals.items():
            fee = notional * self.status(venue).terms.fee
            out.append(Part(venue, filled, notional, fee, notional + fee if cost.buy else notional - fee))
        return out

    def orders_hit(self, cost: Cost, index: int, last_index: Mapping[str, int]) -> list[tuple[Any, Decimal]] | None:
        """--orders: the orders the walk's `index`-th fill hits, in time priority, with the size taken
        from each (None: not asked, or not an order-level book). `last_index`: `last_fills(walk)`."""
        venue = cost.walk.venues[index]
        if self.orders_at is None or self.status(venue).book_kind != "L3":
            return None
        price, taken = cost.walk.levels[index]
        tail = cost.tails.get(venue)
        full = tail.last_full if tail is not None and last_index.get(venue) == index and tail.last_full else taken
        return orders_hit(self.orders_at(venue, price), taken / full if full else Decimal(1))


@dataclass(frozen=True)
class Part:
    """One venue's share of a merged order."""

    venue: str
    size: Decimal
    notional: Decimal
    fee: Decimal
    net: Decimal


def last_fills(walk: Depletion) -> dict[str, int]:
    """Each venue's last fill in a walk: the only one of its fills that may take a level in part."""
    out: dict[str, int] = {}
    for index, venue in enumerate(walk.venues):
        out[venue] = index
    return out


# --- statuses ---------------------------------------------------------------------------------------
def venue_status(view: BookView, now: float, terms: VenueTerms, merge: str = SPOT,
                 unreachable: str | None = None) -> VenueStatus:
    health = view.health(now)
    live = view.live
    in_merge = live and (merge == "all" or view.instrument == SPOT)
    return VenueStatus(
        name=view.venue,
        state=health.state,
        live=live,
        in_merge=in_merge,
        reason=_reason(view, health, now, unreachable, in_merge),
        book_kind=view.book_kind,
        instrument=view.instrument,
        notes=view.notes,
        resyncs=health.resyncs,
        last_fault=health.last_fault,
        last_live=health.last_live,
        age_ms=None if health.age is None else int(health.age * 1000),
        checks=_checks(health),
        depth={side.value: view.depth(side) for side in Side},
        terms=terms,
        top=top_of([view]),
        price_scale=price_scale(view.levels(Side.BID), view.levels(Side.ASK)),
    )


def _reason(view: BookView, health: HealthReport, now: float, unreachable: str | None, in_merge: bool) -> str | None:
    """What happened, not just the state: the session's words (HTTP status and URL, an unreachable
    host), the fault kind and its evidence, how long since the book was last live."""
    if view.live:
        return None if in_merge else "perpetual: not a spot sale, shown apart (--merge all includes it)"
    fault = health.last_fault
    if unreachable:
        text = unreachable
    elif health.state == "stale":
        text = f"stale: no data or heartbeat for {duration(health.age or 0.0)}"
    elif health.state == "resyncing" and fault is not None:
        text = f"resyncing after {fault.kind}: {fault.detail}"
    elif health.state == "syncing":
        text = "syncing: connected, no whole book yet"
    else:
        text = f"{health.state}: no connection yet"
    if health.last_live is not None:
        text += f"; last live {duration(max(0.0, now - health.last_live))} ago"
    elif health.state != "stale":
        text += "; never live"
    return text


def _checks(health: HealthReport) -> dict:
    return {"messages": health.messages, "checksums_verified": health.checksums_verified,
            "sequence_first": health.first_sequence, "sequence_last": health.last_sequence}


# --- walks ------------------------------------------------------------------------------------------
def contracts_for(view: BookView, side: Side, taken: Sequence[Level]) -> Decimal:
    """The walk's size in the venue's own units (contracts): each level's native size, the last one
    in proportion to the part taken, at the native sizes' own precision (whole contracts)."""
    total = _ZERO
    for native, base, (_, part) in zip(view.native_levels(side), view.levels(side), taken):
        if part == base[1]:
            total += native[1]
        else:
            exponent = native[1].as_tuple().exponent
            quantum = Decimal(1).scaleb(exponent if isinstance(exponent, int) else 0)
            total += (native[1] * part / base[1]).quantize(quantum, ROUND_HALF_EVEN)
    return total


def _tail(view: BookView, side: Side, taken: Sequence[Level]) -> Tail:
    """The side after `taken` (this venue's fills, best first): its new best and its last level's size."""
    best, full = after_walk(view.levels(side), len(taken), taken[-1][1] if taken else None)
    return Tail(best, full)


def _base_size(order: OrderSize, levels: Callable[[], Iterable[Level]], factor: Decimal) -> tuple[Decimal, bool]:
    """The base size to walk for `order`: the amount itself, or what the quote amount buys or sells
    after fees (the walk over fee-adjusted prices stops at the amount)."""
    if not order.in_quote:
        return order.amount, False
    size, found = size_for_quote(order.amount, adjusted(levels(), factor))
    return size, not found


def _venue_outcome(view: BookView, action: Action, order: OrderSize, terms: VenueTerms, spot_mid: Decimal | None,
                   own: Top) -> VenueOutcome:
    side = consumed_side(action)
    if view.best(side) is None:
        return VenueOutcome(view.venue, None)
    size, ran_out = _base_size(order, lambda: view.levels(side), terms.factor(action is Action.BUY))
    if not size:
        return VenueOutcome(view.venue, None)
    walk = deplete_liquidity(view.venue, action, size, view.levels(side))
    tail = _tail(view, side, walk.levels)
    cost = Cost(walk, walk.notional * terms.fee, own.mid, spot_mid, tail.best_after, order, ran_out,
                {view.venue: tail})
    perpetual = None
    if view.instrument == PERPETUAL:
        perpetual = PerpetualLeg(contracts_for(view, side, walk.levels), position_opened(action),
                                 basis_bps(own.mid, spot_mid))
    return VenueOutcome(view.venue, cost, perpetual)


def _merged_outcome(views: Sequence[BookView], action: Action, order: OrderSize, terms: Mapping[str, VenueTerms],
                    spot_mid: Decimal | None, singles: Sequence[VenueOutcome]) -> MergedOutcome:
    side = consumed_side(action)
    buy = action is Action.BUY
    names = tuple(view.venue for view in views)
    includes_perpetual = any(view.instrument == PERPETUAL for view in views)
    sides = {view.venue: (lambda view=view: view.levels(side)) for view in views}
    if order.in_quote:
        stream = merged_levels(side, [adjusted(levels(), terms[v].factor(buy)) for v, levels in sides.items()])
        size, found = size_for_quote(order.amount, stream)
        ran_out = not found
    else:
        size, ran_out = order.amount, False
    if not size:
        return MergedOutcome(None, names, includes_perpetual=includes_perpetual)
    split = cheapest_split(action, size, sides, terms)
    walk = split.walk
    by_venue = {view.venue: view for view in views}
    taken: dict[str, list[Level]] = {name: [] for name in names}
    for venue, level in zip(walk.venues, walk.levels):
        taken[venue].append(level)
    tails = {name: _tail(by_venue[name], side, taken[name]) for name in names}
    afters = [tail.best_after for tail in tails.values() if tail.best_after is not None]
    after = (min(afters) if buy else max(afters)) if afters else None
    merged_top = top_of(list(views))
    best = merged_top.ask if buy else merged_top.bid
    cost = Cost(walk, fee_of(walk, terms), merged_top.mid, spot_mid, after, order, ran_out, tails, best)
    perpetual = {view.venue: PerpetualLeg(contracts_for(view, side, taken[view.venue]), position_opened(action),
                                          basis_bps(top_of([view]).mid, spot_mid))
                 for view in views if view.instrument == PERPETUAL and taken[view.venue]}
    return MergedOutcome(cost, names, split.reallocations, _saving(cost, singles, terms, spot_mid),
                         includes_perpetual, perpetual)


def _saving(split: Cost, singles: Sequence[VenueOutcome], terms: Mapping[str, VenueTerms],
            spot_mid: Decimal | None) -> Saving | None:
    """Against the best venue that could fill the whole order alone, within its own size rules."""
    if not split.complete:
        return None
    able = [o for o in singles if o.cost is not None and o.cost.complete
            and terms[o.venue].refusal(o.cost.filled) is None]
    if not able:
        return None
    buy = split.buy
    if split.order is not None and split.order.in_quote:
        # The same quote amount: the better answer sells fewer (sell) or buys more (buy) base units.
        best = (max if buy else min)(able, key=lambda o: o.cost.filled)
        base = split.filled - best.cost.filled if buy else best.cost.filled - split.filled
        value = base * spot_mid if spot_mid is not None else _ZERO
        return Saving(best.venue, value, base / best.cost.filled * BPS, base)
    best = (min if buy else max)(able, key=lambda o: o.cost.net)
    amount = best.cost.net - split.net if buy else split.net - best.cost.net
    return Saving(best.venue, amount, amount / best.cost.net * BPS if best.cost.net else _ZERO)


def _limit(views: Sequence[BookView], merged: Sequence[BookView], side: Side, bps: Decimal,
           spot_mid: Decimal | None) -> LimitAnswer:
    rows = []
    for view in views:
        mid = top_of([view]).mid
        rows.append((view.venue, None if mid is None else within_bps(view.levels(side), side, mid, bps)))
    total = None
    if merged and spot_mid is not None:
        total = within_bps(merged_levels(side, [view.levels(side) for view in merged]), side, spot_mid, bps)
    return LimitAnswer(bps, tuple(rows), total)


def build_answer(action: Action, sizes: Sequence[OrderSize | Decimal], views: Sequence[BookView], source: str,
                 unreachable: Mapping[FeedKey, str | None] | None = None, now: float | None = None, *,
                 terms: Mapping[str, VenueTerms] | None = None, merge: str = SPOT,
                 limit_bps: Decimal | None = None, with_orders: bool = False) -> Answer:
    """Walk every venue's book for every size, then the cheapest split across the merged venues, all
    at this one instant. `terms`: each venue's fee and size rules (`terms_for`); a venue without terms
    pays no fee and has no size rule (tests of the pure walk)."""
    now = time.time() if now is None else now
    side = consumed_side(action)
    unreachable = unreachable or {}
    terms = {view.venue: (terms or {}).get(view.venue, VenueTerms()) for view in views}
    statuses = tuple(venue_status(view, now, terms[view.venue], merge, unreachable.get(view.key)) for view in views)
    spot = top_of([view for view in views if view.live and view.instrument == SPOT])
    merged_views = [view for view, status in zip(views, statuses) if status.in_merge]
    answers = []
    for size in sizes:
        order = size if isinstance(size, OrderSize) else OrderSize(size)
        outcomes = tuple(_venue_outcome(view, action, order, terms[view.venue], spot.mid, status.top)
                         for view, status in zip(views, statuses))
        merged = None
        if merged_views:
            singles = [o for o in outcomes if o.venue in {v.venue for v in merged_views}]
            merged = _merged_outcome(merged_views, action, order, terms, spot.mid, singles)
        answers.append(SizedAnswer(order, outcomes, merged))
    limit = None if limit_bps is None else _limit(views, merged_views, side, limit_bps, spot.mid)
    by_name = {view.venue: view for view in views}
    orders_at = (lambda venue, price: by_name[venue].orders_at(side, price)) if with_orders else None
    symbol = views[0].symbol if views else Symbol("BTC", "USD")
    return Answer(action, source, now, symbol, statuses, spot, tuple(answers), merge, limit, orders_at, with_orders)


def terms_for(views: Iterable[BookView], settings: Mapping[str, object],
              overrides: Mapping[str, Decimal] | None = None) -> dict[str, VenueTerms]:
    """Each view's venue terms from its configured settings, `--fee` overrides on top."""
    overrides = overrides or {}
    return {view.venue: terms_from_settings(settings.get(view.venue), overrides.get(view.venue)) for view in views}


def exit_code(answer: Answer) -> int:
    """0 all live; 3 some not live; 4 none live; 5 a shortfall on the merged answer (or, with no
    merged answer, on every venue) for any size asked."""
    code = live_exit_code(answer.statuses)
    if code != EXIT_NONE and any(_short(sized) for sized in answer.answers):
        return EXIT_SHORTFALL
    return code


def live_exit_code(statuses: Sequence[VenueStatus]) -> int:
    """0 every venue live, 3 some, 4 none."""
    live = sum(1 for status in statuses if status.live)
    return EXIT_NONE if live == 0 else EXIT_OK if live == len(statuses) else EXIT_PARTIAL


def _short(sized: SizedAnswer) -> bool:
    if sized.merged is not None:
        return sized.merged.cost is None or not sized.merged.cost.complete
    walked = [o.cost for o in sized.venues if o.cost is not None]
    return not any(cost.complete for cost in walked)


# --- depth ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DepthRow:
    """One book's liquidity per band: `bids[i]` / `asks[i]` within `bands[i]` % of `mid`."""

    venue: str
    reference: str                     # "own mid" (a venue) or "spot mid" (the merged spot book)
    mid: Decimal | None
    bids: tuple[Within, ...]
    asks: tuple[Within, ...]


@dataclass(frozen=True)
class DepthReport:
    source: str
    at: float
    symbol: Symbol
    bands: tuple[Decimal, ...]         # percent of mid
    statuses: tuple[VenueStatus, ...]
    spot: Top
    venues: tuple[DepthRow, ...]
    merged: DepthRow | None


def build_depth(views: Sequence[BookView], percents: Sequence[Decimal], source: str,
                unreachable: Mapping[FeedKey, str | None] | None = None, now: float | None = None,
                terms: Mapping[str, VenueTerms] | None = None) -> DepthReport:
    """Per venue (against its own mid) and for the merged spot book (against the spot mid)."""
    now = time.time() if now is None else now
    unreachable = unreachable or {}
    terms = terms or {}
    statuses = tuple(venue_status(v, now, terms.get(v.venue, VenueTerms()), SPOT, unreachable.get(v.key)) for v in views)
    spot_views = [v for v in views if v.live and v.instrument == SPOT]
    spot = top_of(spot_views)
    rows = tuple(_depth_row(view.venue, "own mid", status.top.mid, [view], percents)
                 for view, status in zip(views, statuses))
    merged = _depth_row("merged", "spot mid", spot.mid, spot_views, percents) if spot_views else None
    symbol = views[0].symbol if views else Symbol("BTC", "USD")
    return DepthReport(source, now, symbol, tuple(percents), statuses, spot, rows, merged)


def _depth_row(name: str, reference: str, mid: Decimal | None, views: Sequence[BookView],
               percents: Sequence[Decimal]) -> DepthRow:
    if mid is None:
        empty = tuple(Within() for _ in percents)
        return DepthRow(name, reference, None, empty, empty)
    sides = {side: tuple(bands(merged_levels(side, [v.levels(side) for v in views]), side, mid, percents))
             for side in Side}
    return DepthRow(name, reference, mid, sides[Side.BID], sides[Side.ASK])
