"""JSON for machines: schema 1 (`l2_manager/schema.json`, a JSON Schema; the README describes it).

Rules every document follows, whatever the state of each venue:
- every key is always present; a value that is not known is null (never a missing key);
- decimals are strings at a fixed scale, never an exponent: sizes 8 decimals, quote amounts 8, basis
  points and percentages 2, fees (fractions) 8, prices at the venue's tick (`price_decimals`, at least 2);
- times are ISO 8601 UTC (`...Z`) with epoch milliseconds beside them (`..._ms`).
Three kinds share the envelope (`schema`, `kind`, `symbol`, `base`, `quote`, `source`, `at`, `at_ms`):
`answer` (buy / sell), `depth`, `queue`.
"""
from __future__ import annotations

from decimal import Decimal
from typing import Any, Sequence

from l2_manager.answer import Answer, MergedOutcome, SizedAnswer, VenueOutcome, VenueStatus, last_fills
from l2_manager.cost import Cost, PerpetualLeg
from l2_manager.depth import Within
from l2_manager.numbers import AMOUNT_SCALE, BPS_SCALE, SIZE_SCALE, epoch_ms, fixed, iso_utc

SCHEMA_VERSION = 1
FEE_SCALE = 8


def sized(value: Decimal | None) -> str | None:
    return fixed(value, SIZE_SCALE)


def amount(value: Decimal | None) -> str | None:
    return fixed(value, AMOUNT_SCALE)


def bps(value: Decimal | None) -> str | None:
    return fixed(value, BPS_SCALE)


def envelope(kind: str, symbol, source: str, at: float) -> dict[str, Any]:
    return {"schema": SCHEMA_VERSION, "kind": kind, "symbol": symbol.name, "base": symbol.base,
            "quote": symbol.quote, "source": source, "at": iso_utc(at), "at_ms": epoch_ms(at)}


def top_json(top, scale: int) -> dict[str, Any]:
    return {"best_bid": fixed(top.bid, scale), "best_ask": fixed(top.ask, scale), "mid": fixed(top.mid, scale),
            "spread": fixed(top.spread, scale), "spread_bps": bps(top.spread_bps)}


def status_json(status: VenueStatus) -> dict[str, Any]:
    fault = status.last_fault
    terms = status.terms
    return {
        "venue": status.name,
        "instrument": status.instrument,
        "book": status.book_kind,
        "state": status.state,
        "live": status.live,
        "in_merge": status.in_merge,
        "reason": status.reason,
        "notes": list(status.notes),
        "resyncs": status.resyncs,
        "last_fault": None if fault is None else {"kind": fault.kind, "detail": fault.detail,
                                                 "at": iso_utc(fault.at), "at_ms": epoch_ms(fault.at)},
        "last_live": iso_utc(status.last_live),
        "last_live_ms": epoch_ms(status.last_live),
        "age_ms": status.age_ms,
        "checks": {key: status.checks.get(key) for key in
                   ("messages", "checksums_verified", "sequence_first", "sequence_last")},
        "depth": {"bid": status.depth.get("bid", 0), "ask": status.depth.get("ask", 0)},
        "fee": fixed(terms.fee, FEE_SCALE),
        "fee_source": terms.fee_source,
        "min_order": sized(terms.min_order),
        "size_increment": sized(terms.size_increment),
        "price_decimals": status.price_scale,
        **top_json(status.top, status.price_scale),
    }


def _perpetual_json(leg: PerpetualLeg | None) -> dict[str, Any] | None:
    if leg is None:
        return None
    return {"contracts": fixed(leg.contracts, 0), "position": leg.position, "basis_bps": bps(leg.basis_bps)}


def _levels_json(answer: Answer, cost: Cost) -> list[dict[str, Any]]:
    walk = cost.walk
    out = []
    cumulative = notional = Decimal(0)
    last = last_fills(walk) if answer.orders_at is not None else {}
    for index, (venue, (price, taken)) in enumerate(zip(walk.venues, walk.levels)):
        cumulative += taken
        notional += price * taken
        scale = answer.status(venue).price_scale
        out.append({"venue": venue, "price": fixed(price, scale), "size": sized(taken),
                    "cumulative": sized(cumulative), "vwap": fixed(notional / cumulative, scale),
                    "orders": _orders_json(answer, answer.orders_hit(cost, index, last))})
    return out


def _orders_json(answer: Answer, hits: list | None) -> list[dict[str, Any]] | None:
    """The orders hit at one level, in time priority (only with --orders, on an order-level book)."""
    if hits is None:
        return None
    rows = []
    for order, hit in hits:
        at = getattr(order, "at", None)
        rows.append({"id": order.order_id, "size": sized(order.size), "hit": sized(hit),
                     "age_ms": None if at is None else max(0, epoch_ms(answer.at) - epoch_ms(at))})
    return rows


WALK_KEYS = ("walked", "complete", "filled", "shortfall", "shortfall_unit", "gross_vwap", "net_vwap", "notional",
             "fee", "net", "best_price", "worst_price", "best_after", "impact_bps", "slippage_bps", "cost_bps",
             "levels_consumed", "levels")


def walk_json(answer: Answer, cost: Cost | None, scale: int) -> dict[str, Any]:
    if cost is None:
        empty = dict.fromkeys(WALK_KEYS)
        empty.update(walked=False, levels_consumed=0, levels=[],
                     slippage_bps={"vs_best": None, "vs_own_mid": None, "vs_spot_mid": None})
        return empty
    walk = cost.walk
    in_quote = cost.order is not None and cost.order.in_quote
    return {
        "walked": True,
        "complete": cost.complete,
        "filled": sized(cost.filled),
        "shortfall": amount(cost.shortfall) if in_quote else sized(cost.shortfall),
        "shortfall_unit": answer.symbol.quote if in_quote else answer.symbol.base,
        "gross_vwap": fixed(cost.gross_vwap, scale),
        "net_vwap": fixed(cost.net_vwap, scale),
        "notional": amount(cost.notional),
        "fee": amount(cost.fee),
        "net": amount(cost.net),
        "best_price": fixed(cost.best_before, scale),
        "worst_price": fixed(walk.worst_price, scale),
        "best_after": fixed(cost.best_after, scale),
        "impact_bps": bps(cost.impact_bps),
        "slippage_bps": {"vs_best": bps(cost.slippage_vs_best), "vs_own_mid": bps(cost.slippage_vs_own_mid),
                         "vs_spot_mid": bps(cost.slippage_vs_spot_mid)},
        "cost_bps": bps(cost.cost_bps),
        "levels_consumed": walk.levels_consumed,
        "levels": _levels_json(answer, cost),
    }


def venue_walk_json(answer: Answer, outcome: VenueOutcome) -> dict[str, Any]:
    status = answer.status(outcome.venue)
    return {"venue": outcome.venue, "instrument": status.instrument,
            **walk_json(answer, outcome.cost, status.price_scale), "perpetual": _perpetual_json(outcome.perpetual)}


def merged_json(answer: Answer, merged: MergedOutcome) -> dict[str, Any]:
    scale = max([answer.status(v).price_scale for v in merged.venues] or [2])
    cost = merged.cost
    allocation = []
    for part in answer.parts(cost) if cost is not None else ():
        venue_scale = answer.status(part.venue).price_scale
        allocation.append({"venue": part.venue, "size": sized(part.size),
                           "share_pct": bps(part.size / cost.filled * 100),
                           "gross_vwap": fixed(part.notional / part.size, venue_scale),
                           "net_vwap": fixed(part.net / part.size, venue_scale), "notional": amount(part.notional),
                           "fee": amount(part.fee), "net": amount(part.net)})
    saving = merged.saving
    return {
        "venue": "merged",
        "venues": list(merged.venues),
        "includes_perpetual": merged.includes_perpetual,
        **walk_json(answer, cost, scale),
        "allocation": allocation,
        "reallocations": [{"venue": m.venue, "moved": sized(m.moved), "reason": m.reason}
                          for m in merged.reallocations],
        "saving": None if saving is None else {"venue": saving.venue, "amount": amount(saving.amount),
                                               "bps": bps(saving.bps), "base": sized(saving.base)},
        "perpetual_parts": {venue: _perpetual_json(leg) for venue, leg in merged.perpetual.items()},
    }


def sized_json(answer: Answer, part: SizedAnswer) -> dict[str, Any]:
    order = part.order
    return {
        "requested": amount(order.amount) if order.in_quote else sized(order.amount),
        "unit": answer.symbol.quote if order.in_quote else answer.symbol.base,
        "in_quote": order.in_quote,
        "venues": [venue_walk_json(answer, outcome) for outcome in part.venues],
        "merged": None if part.merged is None else merged_json(answer, part.merged),
    }


def within_json(within: Within | None, scale: int) -> dict[str, Any]:
    if within is None:
        return {"size": None, "notional": None, "last_price": None, "levels": 0}
    return {"size": sized(within.size), "notional": amount(within.notional),
            "last_price": fixed(within.worst, scale), "levels": within.levels}


def limit_json(answer: Answer) -> dict[str, Any] | None:
    limit = answer.limit
    if limit is None:
        return None
    venues = []
    for (venue, within), status in zip(limit.venues, answer.statuses):
        venues.append({"venue": venue, "reference": "own_mid", "mid": fixed(status.top.mid, status.price_scale),
                       **within_json(within, status.price_scale)})
    scale = max([s.price_scale for s in answer.statuses] or [2])
    merged = None if limit.merged is None else {"venue": "merged", "reference": "spot_mid",
                                                "mid": fixed(answer.spot.mid, scale),
                                                **within_json(limit.merged, scale)}
    return {"bps": bps(limit.bps), "venues": venues, "merged": merged}


def spot_json(spot, statuses: Sequence[VenueStatus]) -> dict[str, Any]:
    venues = [s.name for s in statuses if s.live and s.instrument == "spot"]
    scale = max([s.price_scale for s in statuses if s.name in venues] or [2])
    return {**top_json(spot, scale), "venues": venues}


def answer_json(answer: Answer, exit_code: int | None = None) -> dict[str, Any]:
    return {
        **envelope("answer", answer.symbol, answer.source, answer.at),
        "command": answer.action.value,
        "side": answer.side.value,
        "merge": answer.merge,
        "exit_code": exit_code,
        "spot": spot_json(answer.spot, answer.statuses),
        "venues": [status_json(status) for status in answer.statuses],
        "orders": [sized_json(answer, part) for part in answer.answers],
        "limit": limit_json(answer),
    }


def _within_rows(bands: Sequence[Decimal], rows: Sequence[Within], scale: int) -> list[dict[str, Any]]:
    return [{"percent": bps(band), **within_json(within, scale)} for band, within in zip(bands, rows)]


def depth_row_json(row, bands: Sequence[Decimal], scale: int) -> dict[str, Any]:
    return {"venue": row.venue, "reference": row.reference.replace(" ", "_"), "mid": fixed(row.mid, scale),
            "bid": _within_rows(bands, row.bids, scale),
            "ask": _within_rows(bands, row.asks, scale)}


def depth_json(report, exit_code: int | None = None) -> dict[str, Any]:
    scale = max([s.price_scale for s in report.statuses] or [2])
    return {
        **envelope("depth", report.symbol, report.source, report.at),
        "exit_code": exit_code,
        "bands_pct": [bps(b) for b in report.bands],
        "spot": spot_json(report.spot, report.statuses),
        "venues": [status_json(s) for s in report.statuses],
        "depth": [depth_row_json(row, report.bands, status.price_scale)
                  for row, status in zip(report.venues, report.statuses)],
        "merged": None if report.merged is None else depth_row_json(report.merged, report.bands, scale),
    }


def queue_json(status: VenueStatus, symbol, position, result, source: str, at: float,
               exit_code: int | None = None) -> dict[str, Any]:
    scale = status.price_scale
    return {
        **envelope("queue", symbol, source, at),
        "exit_code": exit_code,
        "venue": status_json(status),
        "order": {"side": position.action.value, "price": fixed(position.price, scale),
                  "size": sized(position.size), "unit": position.unit},
        "crosses": position.crosses,
        "opposite_best": fixed(position.opposite_best, scale),
        "ahead": {"at_price": sized(position.ahead_at_price), "better": sized(position.ahead_better),
                  "total": sized(position.ahead), "better_levels": position.better_levels,
                  "orders": [{"id": o.order_id, "size": sized(o.size)} for o in position.orders_ahead]
                  if position.order_level else None},
        "estimate": {"rate_per_s": sized(result.rate), "watched_s": bps(Decimal(repr(result.seconds_watched))),
                     "method": result.method,
                     "to_front_s": None if result.to_front is None else bps(Decimal(repr(result.to_front))),
                     "to_fill_s": None if result.to_fill is None else bps(Decimal(repr(result.to_fill)))},
    }
