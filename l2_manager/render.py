"""Rendering at the edge: rich trees for people, a JSON document for machines.

The only module that imports rich. Numbers are rounded here and nowhere else: prices to cents, sizes to
satoshis, slippage to hundredths of a basis point. Styles are named once, in `STYLES`.
"""
from __future__ import annotations

import time
from decimal import Decimal
from typing import Any, Iterable

from rich.console import Console, Group
from rich.text import Text
from rich.tree import Tree

from l2_manager.answer import Answer, VenueStatus
from l2_manager.depletion import Action, Depletion, FillStep

STYLES = {
    "summary": "bold",
    "venue": "bold cyan",
    "merged": "bold magenta",
    "excluded": "grey50",
    "result": "bold",
    "shortfall": "bold red",
    "note": "dim",
    "bid": "green",
    "ask": "red",
    "header": "dim italic",
    "warning": "yellow",
}
DEFAULT_MAX_LEVELS = 12


def price(value: Decimal | None) -> str:
    return "n/a" if value is None else f"{value:,.2f}"


def size(value: Decimal) -> str:
    return f"{value:,.8f}"


def bps(value: Decimal | None) -> str:
    return "n/a" if value is None else f"{value:,.2f} bps"


def plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def summary_line(answer: Answer) -> Text:
    side = "asks" if answer.action is Action.BUY else "bids"
    live = sum(1 for status, _ in answer.venues if status.included)
    stamp = time.strftime("%H:%M:%S UTC", time.gmtime(answer.at))
    return Text(f"{answer.action.value.upper()} {amount(answer.size)} {answer.symbol.base} · consumes {side} · "
                f"{live}/{len(answer.venues)} venues live · source {answer.source} · {stamp}",
                style=STYLES["summary"])


def amount(value: Decimal) -> str:
    """A size as the user wrote it, never in exponent notation (1E-8 -> 0.00000001)."""
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _result_lines(depletion: Depletion, unit: str) -> list[str]:
    return [f"filled {size(depletion.filled)} of {amount(depletion.requested)} {unit} · VWAP {price(depletion.vwap)} · "
            f"slippage {bps(depletion.slippage_bps)}",
            f"best {price(depletion.best_price)} · worst {price(depletion.worst_price)}"]


def _shortfall_line(depletion: Depletion, unit: str) -> str:
    return (f"SHORTFALL {size(depletion.shortfall)} {unit}: the book as held ran out after "
            f"{plural(depletion.levels_consumed, 'level')}")


GUIDE_WIDTH = 4  # rich's tree guide: a child's text starts this many columns right of its parent's


def _step_line(step: FillStep, with_venue: bool) -> str:
    venue = f"  {step.fill.venue}" if with_venue else ""
    return (f"{price(step.fill.price):>12}  {size(step.fill.size):>14}  "
            f"{size(step.cumulative):>15}  {price(step.running_vwap):>12}{venue}")


def _levels_label(count: int, with_venue: bool) -> str:
    """'N levels' with the column names laid over it, aligned with the rows one guide further in."""
    header = (f"{'price':>12}  {'size taken':>14}  {'cumulative':>15}  {'running VWAP':>12}"
              + ("  venue" if with_venue else ""))
    prefix = plural(count, "level")
    cut = len(prefix) - GUIDE_WIDTH
    if 0 <= cut and header[:cut + 1].strip() == "":  # keep a space between the count and the names
        return prefix + header[cut:]
    return f"{prefix}: {header.strip()}"


def _levels_node(parent: Tree, depletion: Depletion, max_levels: int, with_venue: bool, style: str) -> None:
    node = parent.add(Text(_levels_label(depletion.levels_consumed, with_venue), style=STYLES["header"]))
    steps = list(depletion.steps())
    shown: Iterable[FillStep | None] = steps
    if len(steps) > max_levels:
        shown = steps[: max_levels - 1] + [None] + steps[-1:]
    for step in shown:
        if step is None:
            hidden = len(steps) - max_levels
            node.add(Text(f"... {plural(hidden, 'more level')} (all of them in --json) ...", style=STYLES["note"]))
        else:
            node.add(Text(_step_line(step, with_venue), style=style))


def _add_result(tree: Tree, depletion: Depletion | None, max_levels: int, with_venue: bool, style: str,
                unit: str) -> None:
    if depletion is None or not depletion.fills:
        tree.add(Text("no levels on this side of the book", style=STYLES["shortfall"]))
        return
    for line in _result_lines(depletion, unit):
        tree.add(Text(line, style=STYLES["result"] if style != STYLES["excluded"] else style))
    if not depletion.complete:
        tree.add(Text(_shortfall_line(depletion, unit), style=STYLES["shortfall"]))
    _levels_node(tree, depletion, max_levels, with_venue, style)


def _status_header(status: VenueStatus) -> Text:
    parts = [status.name, status.book_kind, status.state]
    if status.age_ms is not None:
        parts.append(f"age {status.age_ms} ms")
    parts.append(plural(status.resyncs, "resync"))
    style = STYLES["venue"] if status.included else STYLES["excluded"]
    return Text(" · ".join(parts), style=style)


CHECK_LABELS = {
    "messages": lambda n: plural(n, "msg"),
    "checksums_verified": lambda n: f"{n} checksums ok",
    "sequence_contiguous": lambda span: f"seq {span} gap-free",
}


def _checks_line(status: VenueStatus) -> Text:
    parts = [f"book {status.depth.get('bid', 0)}/{status.depth.get('ask', 0)} levels"]
    parts += [CHECK_LABELS.get(key, lambda v, k=key: f"{k} {v}")(value) for key, value in status.checks.items()]
    return Text("checks: " + " · ".join(parts), style=STYLES["note"])


def venue_tree(status: VenueStatus, depletion: Depletion | None, side_style: str,
               max_levels: int = DEFAULT_MAX_LEVELS, unit: str = "BTC") -> Tree:
    tree = Tree(_status_header(status), guide_style=STYLES["note"])
    if not status.included:
        tree.add(Text(f"EXCLUDED from the merged book: {status.reason}", style=STYLES["warning"]))
        if depletion is None:
            return tree
    tree.add(_checks_line(status))
    for note in status.notes:
        tree.add(Text(note, style=STYLES["note"]))
    if status.last_fault:
        fault = status.last_fault
        tree.add(Text(f"last fault: {fault['kind']} ({fault['detail']}) at "
                      f"{time.strftime('%H:%M:%S', time.gmtime(fault['at']))} UTC", style=STYLES["warning"]))
    _add_result(tree, depletion, max_levels, False, side_style if status.included else STYLES["excluded"], unit)
    return tree


def merged_tree(answer: Answer, side_style: str, max_levels: int = DEFAULT_MAX_LEVELS) -> Tree:
    included = [status.name for status, _ in answer.venues if status.included]
    tree = Tree(Text(f"merged book · {plural(len(included), 'live venue')}: {', '.join(included) or 'none'}",
                     style=STYLES["merged"]), guide_style=STYLES["note"])
    _add_result(tree, answer.merged, max_levels, True, side_style, answer.symbol.base)
    return tree


def allocation_tree(merged: Depletion, unit: str = "BTC") -> Tree:
    tree = Tree(Text("allocation of the merged order: venue, size, share, VWAP of its part",
                     style=STYLES["merged"]), guide_style=STYLES["note"])
    for venue, part in _allocation(merged).items():
        share = part["size"] / merged.filled * 100
        tree.add(Text(f"{venue:<9} {size(part['size']):>14} {unit}  {share:6.2f} %  VWAP {price(part['vwap'])}"))
    return tree


def _allocation(merged: Depletion) -> dict[str, dict[str, Decimal]]:
    notional: dict[str, Decimal] = {}
    for fill in merged.fills:
        notional[fill.venue] = notional.get(fill.venue, Decimal(0)) + fill.price * fill.size
    return {venue: {"size": amount, "vwap": notional[venue] / amount}
            for venue, amount in merged.allocation().items()}


def answer_group(answer: Answer, max_levels: int = DEFAULT_MAX_LEVELS) -> Group:
    side_style = STYLES["ask"] if answer.action is Action.BUY else STYLES["bid"]
    parts: list[Any] = [summary_line(answer)]
    for status, depletion in answer.venues:
        parts.append(venue_tree(status, depletion, side_style, max_levels, answer.symbol.base))
    parts.append(merged_tree(answer, side_style, max_levels))
    if answer.merged is not None and answer.merged.fills:
        parts.append(allocation_tree(answer.merged, answer.symbol.base))
    return Group(*parts)


def render(answer: Answer, console: Console, max_levels: int = DEFAULT_MAX_LEVELS) -> None:
    console.print(answer_group(answer, max_levels))


# --- JSON -------------------------------------------------------------------------------------
def _decimal(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def depletion_json(depletion: Depletion | None, with_venue: bool) -> dict | None:
    if depletion is None:
        return None
    levels = []
    for step in depletion.steps():
        level = {"price": str(step.fill.price), "size": str(step.fill.size),
                 "cumulative": str(step.cumulative), "vwap": str(step.running_vwap)}
        if with_venue:
            level = {"venue": step.fill.venue, **level}
        levels.append(level)
    return {
        "requested": str(depletion.requested),
        "filled": str(depletion.filled),
        "shortfall": str(depletion.shortfall),
        "vwap": _decimal(depletion.vwap),
        "best_price": _decimal(depletion.best_price),
        "worst_price": _decimal(depletion.worst_price),
        "slippage_bps": _decimal(depletion.slippage_bps),
        "levels_consumed": depletion.levels_consumed,
        "levels": levels,
    }


def answer_json(answer: Answer) -> dict:
    venues = {}
    for status, depletion in answer.venues:
        venues[status.name] = {
            "state": status.state,
            "included": status.included,
            "reason": status.reason,
            "book": status.book_kind,
            "notes": list(status.notes),
            "resyncs": status.resyncs,
            "last_fault": status.last_fault,
            "checks": status.checks,
            "age_ms": status.age_ms,
            "depth": status.depth,
            **(depletion_json(depletion, False) or {"filled": "0", "vwap": None, "levels": []}),
        }
    merged = depletion_json(answer.merged, True) or {"filled": "0", "vwap": None, "levels": []}
    merged["venues"] = [status.name for status, _ in answer.venues if status.included]
    merged["allocation"] = ({venue: str(part["size"]) for venue, part in _allocation(answer.merged).items()}
                            if answer.merged else {})
    return {
        "action": answer.action.value,
        "size": amount(answer.size),
        "symbol": answer.symbol.name,
        "side": "ask" if answer.action is Action.BUY else "bid",
        "unit": answer.symbol.base,
        "source": answer.source,
        "at": answer.at,
        "venues": venues,
        "merged": merged,
    }
