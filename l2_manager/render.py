"""Rendering for people: the headline first, then the split, then the per-venue trees.

The only module that imports rich. Layout, top to bottom:
1. the summary line and the spot reference (mid, spread);
2. the headline table: one row per venue and one for the merged book (filled, net VWAP, cost in bps
   against the spot mid, fee, levels, state), perpetuals in a section of their own;
3. the cheapest split (allocation after fees) with the saving against the best single venue;
4. the per-venue trees (unless brief), each with its consumed levels as a table.

Tables are `rich` Tables whose columns are dropped by priority until they fit the console width
(`fit`), so nothing wraps mid-row at 60 columns. Only the rows shown are built: a walk of 1,000 levels
shown as 12 rows costs 12 rows. A console that cannot encode the separator gets ASCII (`glyphs`).
Numbers are rounded here (`numbers.py`); styles are named once, in `STYLES`.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from itertools import islice
from typing import Any, Sequence

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from l2_manager.answer import PERPETUAL, Answer, MergedOutcome, SizedAnswer, VenueOutcome, VenueStatus, last_fills
from l2_manager.cost import Cost
from l2_manager.depletion import Action
from l2_manager.numbers import clock, duration, grouped, plain, signed

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
    "perpetual": "bold blue",
}
DEFAULT_MAX_LEVELS = 12
SIZE_DECIMALS = 8


@dataclass(frozen=True)
class Glyphs:
    sep: str
    star: str

    @classmethod
    def for_console(cls, console: Console) -> "Glyphs":
        """UTF-8 (or any encoding that has it): the middle dot; otherwise plain ASCII."""
        try:
            "\u00b7".encode(console.encoding or "ascii")
        except (UnicodeEncodeError, LookupError):
            return cls(" | ", "*")
        return cls(" \u00b7 ", "*")


def plural(count: int, word: str) -> str:
    return f"{count:,} {word}" if count == 1 else f"{count:,} {word}s"


def size(value: Decimal | None) -> str:
    return grouped(value, SIZE_DECIMALS)


def money(value: Decimal | None) -> str:
    return grouped(value, 2)


def bps(value: Decimal | None) -> str:
    return "n/a" if value is None else f"{signed(value)} bps"


# --- tables that fit ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Column:
    name: str
    justify: str = "right"
    priority: int = 0          # dropped first: the highest number; 0 is never dropped


def fit(columns: Sequence[Column], rows: Sequence[Sequence[Any]], width: int, styles: Sequence[str | None] = (),
        header_style: str = STYLES["header"]) -> Table:
    """A borderless table of `rows` with the columns that fit `width`: the lowest-priority columns go
    first, so a narrow terminal loses detail, never alignment. Cells are str or Text."""
    keep = list(range(len(columns)))
    cells = [row for row in rows if not (row and row[0] is SECTION)]
    natural = _natural(columns, cells)

    def total(indexes: list[int]) -> int:
        return sum(natural[i] for i in indexes) + 2 * (len(indexes) - 1)

    while total(keep) > width and any(columns[i].priority for i in keep):
        drop = max(keep, key=lambda i: (columns[i].priority, i))
        keep.remove(drop)
    table = Table(box=None, padding=(0, 1), pad_edge=False, show_edge=False, header_style=header_style,
                  expand=False, collapse_padding=True)
    for i in keep:
        table.add_column(columns[i].name, justify=columns[i].justify, no_wrap=True, overflow="crop")
    for index, row in enumerate(rows):
        style = styles[index] if index < len(styles) else None
        if row and row[0] is SECTION:
            table.add_section()
            continue
        table.add_row(*[row[i] for i in keep], style=style)
    return table


SECTION = object()
"""A row that is only a section break (`fit` keeps the styles list aligned with the rows)."""


def _natural(columns: Sequence[Column], rows: Sequence[Sequence[Any]]) -> list[int]:
    """Each column's width with nothing cut: its widest cell (or its name)."""
    return [max([len(column.name)] + [_cell_len(row[i]) for row in rows]) for i, column in enumerate(columns)]


def natural_width(columns: Sequence[Column], rows: Sequence[Sequence[Any]]) -> int:
    return sum(_natural(columns, rows)) + 2 * (len(columns) - 1)


def _cell_len(cell: Any) -> int:
    return max(len(line) for line in str(cell).split("\n")) if cell else 0


# --- the headline --------------------------------------------------------------------------------
def summary_line(answer: Answer, g: Glyphs) -> Text:
    side = "asks" if answer.action is Action.BUY else "bids"
    live = sum(1 for s in answer.statuses if s.live)
    sizes = ", ".join(_order_text(sized, answer) for sized in answer.answers)
    return Text(g.sep.join([f"{answer.action.value.upper()} {sizes}", side,
                            f"{live}/{len(answer.statuses)} venues live", f"merge {answer.merge}",
                            f"source {answer.source}", clock(answer.at)]), style=STYLES["summary"])


def _order_text(sized: SizedAnswer, answer: Answer) -> str:
    unit = answer.symbol.quote if sized.order.in_quote else answer.symbol.base
    return f"{plain(sized.order.amount)} {unit}"


def reference_line(answer: Answer, g: Glyphs) -> Text:
    spot = answer.spot
    venues = [s.name for s in answer.statuses if s.live and s.instrument != PERPETUAL]
    if spot.mid is None:
        return Text("spot mid n/a: no live spot book has both sides", style=STYLES["warning"])
    return Text(f"spot mid {money(spot.mid)}{g.sep}spread {money(spot.spread)} ({grouped(spot.spread_bps, 2)} bps)"
                f"{g.sep}{plural(len(venues), 'live spot venue')}", style=STYLES["note"])


HEADLINE = (Column("venue", "left"), Column("filled"), Column("net VWAP"), Column("bps vs mid"),
            Column("fee %", priority=2), Column("levels", priority=3), Column("state", "left"))


def headline_table(answer: Answer, sized: SizedAnswer, width: int) -> Table:
    """One row per spot venue, the merged row, then the perpetuals apart."""
    rows: list[list[Any]] = []
    styles: list[str | None] = []
    spot = [(s, o) for s, o in zip(answer.statuses, sized.venues) if s.instrument != PERPETUAL]
    perpetual = [(s, o) for s, o in zip(answer.statuses, sized.venues) if s.instrument == PERPETUAL]
    for status, outcome in spot:
        rows.append(_venue_row(status, outcome.cost))
        styles.append(None if status.live else STYLES["excluded"])
    if sized.merged is not None:
        rows.append(_merged_row(sized.merged))
        styles.append(STYLES["merged"])
    if perpetual:
        rows.append([SECTION])
        styles.append(None)
        for status, outcome in perpetual:
            rows.append(_venue_row(status, outcome.cost, marker="*"))
            styles.append(STYLES["perpetual"] if status.live else STYLES["excluded"])
    return fit(HEADLINE, rows, width, styles)


def _venue_row(status: VenueStatus, cost: Cost | None, marker: str = "") -> list[Any]:
    state = status.state
    fee = f"{status.terms.fee * 100:.2f}"
    if cost is None:
        return [status.name + marker, "n/a", "n/a", "n/a", fee, "0", state]
    filled = Text(size(cost.filled), style=None if cost.complete else STYLES["shortfall"])
    return [status.name + marker, filled, money(cost.net_vwap), signed(cost.cost_bps), fee,
            f"{cost.walk.levels_consumed:,}", state]


def _merged_row(merged: MergedOutcome) -> list[Any]:
    cost = merged.cost
    name = "merged" + ("*" if merged.includes_perpetual else "")
    if cost is None:
        return [name, "n/a", "n/a", "n/a", "", "0", plural(len(merged.venues), "venue")]
    filled = Text(size(cost.filled), style=None if cost.complete else STYLES["shortfall"])
    return [name, filled, money(cost.net_vwap), signed(cost.cost_bps), "",
            f"{cost.walk.levels_consumed:,}", plural(len(merged.venues), "venue")]


def headline_notes(answer: Answer, sized: SizedAnswer, g: Glyphs) -> list[Text]:
    """What the table's numbers mean, shortfalls, and what each perpetual row really is."""
    lines = [Text("bps vs mid: net VWAP (fees included) against the spot mid; + is worse", style=STYLES["note"])]
    pairs = list(zip(answer.statuses, sized.venues))
    for status, outcome in pairs:
        cost = outcome.cost
        if cost is not None and not cost.complete:
            lines.append(Text(f"SHORTFALL {status.name}: {_shortfall(cost, answer)} (book ran out after "
                              f"{plural(cost.walk.levels_consumed, 'level')})", style=STYLES["shortfall"]))
    for status, outcome in pairs:
        if outcome.perpetual is not None and outcome.cost is not None:
            leg = outcome.perpetual
            lines.append(Text(f"* {status.name}: perpetual, not spot: {grouped(leg.contracts, 0)} contracts, "
                              f"opens a {leg.position}{g.sep}basis {bps(leg.basis_bps)}", style=STYLES["perpetual"]))
    merged = sized.merged
    if merged is not None and merged.cost is not None and not merged.cost.complete:
        lines.append(Text(f"SHORTFALL merged: {_shortfall(merged.cost, answer)}: every merged book ran out",
                          style=STYLES["shortfall"]))
    if merged is not None and merged.includes_perpetual:
        lines.append(Text("merged* includes a perpetual (--merge all): its fills are contracts, not spot "
                          f"{'purchases' if answer.action is Action.BUY else 'sales'}", style=STYLES["warning"]))
    return lines


def _shortfall(cost: Cost, answer: Answer) -> str:
    unit = answer.symbol.quote if cost.order is not None and cost.order.in_quote else answer.symbol.base
    return f"{size(cost.shortfall)} {unit} short"


# --- the split ------------------------------------------------------------------------------------
SPLIT = (Column("venue", "left"), Column("size"), Column("share", priority=2), Column("net VWAP"),
         Column("fee", priority=1), Column("net", priority=3))


def split_block(answer: Answer, merged: MergedOutcome, width: int, g: Glyphs) -> list[RenderableType]:
    cost = merged.cost
    if cost is None or not cost.walk.levels:
        return [Text("no split: nothing to fill on the merged books", style=STYLES["shortfall"])]
    quote = answer.symbol.quote
    receive = "spent" if cost.buy else "received"
    parts = answer.parts(cost)
    rows = []
    for part in parts:
        rows.append([part.venue, size(part.size), f"{part.size / cost.filled * 100:.2f} %",
                     money(part.net / part.size), money(part.fee), money(part.net)])
    rows.append(["total", size(cost.filled), "100.00 %", money(cost.net_vwap), money(cost.fee), money(cost.net)])
    out: list[RenderableType] = [
        Text(f"cheapest split after fees: {plural(len(parts), 'venue')}{g.sep}net {quote} {receive}",
             style=STYLES["merged"]),
        fit(SPLIT, rows, width, [None] * (len(rows) - 1) + [STYLES["result"]])]
    saving = merged.saving
    if saving is not None:
        base = ""
        if cost.order is not None and cost.order.in_quote:
            verb = "buys" if cost.buy else "sells"
            base = f" ({verb} {size(saving.base)} {answer.symbol.base} {'more' if cost.buy else 'fewer'})"
        out.append(Text(f"saving vs the best single venue ({saving.venue}): {money(saving.amount)} {quote}"
                        f"{base}{g.sep}{signed(saving.bps)} bps", style=STYLES["result"]))
    elif cost.complete:
        out.append(Text("no single venue can fill the whole order alone", style=STYLES["warning"]))
    for move in merged.reallocations:
        out.append(Text(f"moved {size(move.moved)} {answer.symbol.base} off {move.venue}: {move.reason}; "
                        "it went to the next best levels", style=STYLES["warning"]))
    return out


# --- the trees ------------------------------------------------------------------------------------
def _status_header(status: VenueStatus, g: Glyphs) -> Text:
    parts = [status.name, status.book_kind, status.instrument, status.state]
    if status.age_ms is not None:
        parts.append(f"age {duration(status.age_ms / 1000)}")
    parts.append(plural(status.resyncs, "resync"))
    style = STYLES["venue"] if status.live else STYLES["excluded"]
    return Text(g.sep.join(parts), style=style)


def _checks_line(status: VenueStatus, g: Glyphs) -> Text:
    checks = status.checks
    parts = [f"book {status.depth.get('bid', 0):,}/{status.depth.get('ask', 0):,} levels",
             plural(checks.get("messages") or 0, "msg")]
    if checks.get("checksums_verified"):
        parts.append(f"{checks['checksums_verified']:,} checksums ok")
    if checks.get("sequence_first") is not None:
        parts.append(f"seq {checks['sequence_first']}..{checks['sequence_last']} gap-free")
    return Text("checks: " + g.sep.join(parts), style=STYLES["note"])


def _cost_lines(cost: Cost, answer: Answer, g: Glyphs, fee_text: str, own_mid_label: str) -> list[Text]:
    quote = answer.symbol.quote
    walk = cost.walk
    unit = answer.symbol.base
    verb = "spent" if cost.buy else "received"
    return [
        Text(f"filled {size(cost.filled)} {unit}{g.sep}gross VWAP {money(cost.gross_vwap)}{g.sep}"
             f"net VWAP {money(cost.net_vwap)}", style=STYLES["result"]),
        Text(f"notional {money(cost.notional)}{g.sep}{fee_text} {money(cost.fee)}{g.sep}"
             f"net {money(cost.net)} {quote} {verb}"),
        Text(f"slippage bps: {signed(cost.slippage_vs_best)} vs best{g.sep}{signed(cost.slippage_vs_own_mid)} "
             f"vs {own_mid_label}{g.sep}{signed(cost.slippage_vs_spot_mid)} vs spot mid"),
        Text(f"best {money(cost.best_before)}{g.sep}worst {money(walk.worst_price)}{g.sep}best after "
             f"{money(cost.best_after)}{g.sep}impact {bps(cost.impact_bps)}"),
    ]


LEVELS = (Column("price"), Column("size taken"), Column("cumulative", priority=2),
          Column("running VWAP", priority=1), Column("venue", "left", priority=3))


def levels_table(answer: Answer, cost: Cost, max_levels: int, with_venue: bool, width: int,
                 style: str | None) -> Table:
    """The consumed levels: the first `max_levels - 1` and the last, with a line for the rest. Only the
    rows shown are built (running totals from the top, the last row from the walk's totals)."""
    walk = cost.walk
    count = walk.levels_consumed
    head = count if count <= max_levels else max_levels - 1
    rows: list[list[Any]] = []
    styles: list[str | None] = []
    cumulative = notional = Decimal(0)
    last_index = last_fills(walk) if answer.orders_at is not None else {}
    for index, (venue, (price, taken)) in enumerate(islice(zip(walk.venues, walk.levels), head)):
        cumulative += taken
        notional += price * taken
        _level_row(rows, styles, answer, cost, index, venue, price, taken, cumulative, notional / cumulative,
                   style, last_index)
    if count > head:
        rows.append(["...", "", "", "", ""])
        styles.append(STYLES["note"])
        venue, (price, taken) = walk.venues[-1], walk.levels[-1]
        _level_row(rows, styles, answer, cost, count - 1, venue, price, taken, walk.filled, walk.vwap,
                   style, last_index)
    columns = LEVELS if with_venue else LEVELS[:-1]
    return fit(columns, rows if with_venue else [row[:-1] for row in rows], width, styles)


def _level_row(rows: list, styles: list, answer: Answer, cost: Cost, index: int, venue: str, price: Decimal,
               taken: Decimal, cumulative: Decimal, running: Decimal | None, style: str | None,
               last_index: dict[str, int]) -> None:
    scale = answer.status(venue).price_scale
    rows.append([grouped(price, scale), size(taken), size(cumulative), money(running), venue])
    styles.append(style)
    for order, hit in answer.orders_hit(cost, index, last_index) or ():
        age = getattr(order, "at", None)
        age_text = f"age {duration(max(0.0, answer.at - age))}" if age is not None else ""
        rows.append([f"#{order.order_id[-8:]}", grouped(hit, SIZE_DECIMALS), age_text, "", ""])
        styles.append(STYLES["note"])


def venue_tree(answer: Answer, status: VenueStatus, outcome: VenueOutcome, max_levels: int, width: int,
               g: Glyphs) -> Tree:
    tree = Tree(_status_header(status, g), guide_style=STYLES["note"])
    if status.reason:
        label = "EXCLUDED from the merged answer" if not status.in_merge else "note"
        tree.add(Text(f"{label}: {status.reason}", style=STYLES["warning"]))
    tree.add(_checks_line(status, g))
    for note in status.notes:
        tree.add(Text(note, style=STYLES["note"]))
    if status.last_fault is not None:
        fault = status.last_fault
        tree.add(Text(f"last fault: {fault.kind} ({fault.detail}) at {clock(fault.at)}", style=STYLES["warning"]))
    top = status.top
    terms = status.terms
    tree.add(Text(f"mid {money(top.mid)}{g.sep}spread {money(top.spread)} ({grouped(top.spread_bps, 2)} bps)"
                  f"{g.sep}taker fee {terms.fee * 100:.2f} % ({terms.fee_source})", style=STYLES["note"]))
    cost = outcome.cost
    if cost is None:
        tree.add(Text("no levels on this side of the book", style=STYLES["shortfall"]))
        return tree
    for line in _cost_lines(cost, answer, g, "fee", "own mid"):
        tree.add(line if status.live else Text(line.plain, style=STYLES["excluded"]))
    if outcome.perpetual is not None:
        leg = outcome.perpetual
        tree.add(Text(f"perpetual: {answer.action.value}s {grouped(leg.contracts, 0)} contracts (opens a "
                      f"{leg.position}){g.sep}basis {bps(leg.basis_bps)} vs spot mid", style=STYLES["perpetual"]))
    if not cost.complete:
        tree.add(Text(f"SHORTFALL {_shortfall(cost, answer)}: the book as held ran out after "
                      f"{plural(cost.walk.levels_consumed, 'level')}", style=STYLES["shortfall"]))
    _add_levels(tree, answer, cost, max_levels, False, width, _side_style(answer) if status.live else STYLES["excluded"])
    return tree


def merged_tree(answer: Answer, merged: MergedOutcome, max_levels: int, width: int, g: Glyphs) -> Tree:
    tree = Tree(Text(f"merged book{g.sep}{plural(len(merged.venues), 'venue')}: {', '.join(merged.venues) or 'none'}"
                     f"{g.sep}levels ordered by fee-adjusted price", style=STYLES["merged"]), guide_style=STYLES["note"])
    cost = merged.cost
    if cost is None:
        tree.add(Text("no levels on this side of the merged book", style=STYLES["shortfall"]))
        return tree
    for line in _cost_lines(cost, answer, g, "fees", "merged mid"):
        tree.add(line)
    for venue, leg in merged.perpetual.items():
        tree.add(Text(f"{venue} (perpetual) part: {grouped(leg.contracts, 0)} contracts, opens a {leg.position}; "
                      "not a spot trade", style=STYLES["warning"]))
    _add_levels(tree, answer, cost, max_levels, True, width, _side_style(answer))
    return tree


def _add_levels(tree: Tree, answer: Answer, cost: Cost, max_levels: int, with_venue: bool, width: int,
                style: str | None) -> None:
    count = cost.walk.levels_consumed
    if max_levels <= 0 or not count:
        tree.add(Text(f"{plural(count, 'level')} consumed (rows hidden: --levels 0)" if count else
                      "no level consumed", style=STYLES["header"]))
        return
    hidden = count - max_levels if count > max_levels else 0
    shown = f" ({hidden:,} not shown: all in --json)" if hidden else ""
    node = tree.add(Text(f"{plural(count, 'level')} consumed{shown}", style=STYLES["header"]))
    node.add(levels_table(answer, cost, max_levels, with_venue, max(20, width - 8), style))


def _side_style(answer: Answer) -> str:
    return STYLES["ask"] if answer.action is Action.BUY else STYLES["bid"]


# --- ladders, limits ------------------------------------------------------------------------------
def ladder_table(answer: Answer, width: int) -> tuple[Table, bool]:
    """`sell 1 5 15`: one row per size, each venue's net VWAP over its cost in bps vs the spot mid, the
    merged one, and the best venue. Narrower than the wide form needs: one row per size and venue.
    Returns (table, wide)."""
    names = [s.name + ("*" if s.instrument == PERPETUAL else "") for s in answer.statuses]
    wide_columns = [Column("size", "left")] + [Column(n) for n in names] + [Column("merged"), Column("best", "left")]
    rows = []
    for sized in answer.answers:
        cells = [_order_text(sized, answer)]
        cells += [_ladder_cell(o.cost) for o in sized.venues]
        cells += [_ladder_cell(sized.merged.cost if sized.merged else None), _best_venue(answer, sized)]
        rows.append(cells)
    if natural_width(wide_columns, rows) <= width:
        return fit(wide_columns, rows, width), True
    long_rows = []
    for sized in answer.answers:
        for name, outcome in zip(names, sized.venues):
            long_rows.append(_long_row(sized, answer, name, outcome.cost))
        if sized.merged is not None:
            long_rows.append(_long_row(sized, answer, "merged", sized.merged.cost))
    return fit((Column("size", "left"), Column("venue", "left"), Column("net VWAP"), Column("bps"),
                Column("filled", priority=1)), long_rows, width), False


def _ladder_cell(cost: Cost | None) -> str:
    if cost is None:
        return "n/a"
    mark = "" if cost.complete else " short"
    return f"{money(cost.net_vwap)}\n{signed(cost.cost_bps)}{mark}"


def _long_row(sized: SizedAnswer, answer: Answer, name: str, cost: Cost | None) -> list[str]:
    if cost is None:
        return [_order_text(sized, answer), name, "n/a", "n/a", "n/a"]
    return [_order_text(sized, answer), name, money(cost.net_vwap), signed(cost.cost_bps), size(cost.filled)]


def _best_venue(answer: Answer, sized: SizedAnswer) -> str:
    """The single spot venue with the best net VWAP that fills the whole size."""
    able = [(s.name, o.cost) for s, o in zip(answer.statuses, sized.venues)
            if o.cost is not None and o.cost.complete and s.in_merge]
    if not able:
        return "none"
    pick = min if answer.action is Action.BUY else max
    return pick(able, key=lambda pair: pair[1].net_vwap)[0]


LIMIT = (Column("venue", "left"), Column("size"), Column("notional", priority=1), Column("last price"),
         Column("levels", priority=2), Column("against", "left", priority=3))


def limit_block(answer: Answer, width: int) -> list[RenderableType]:
    limit = answer.limit
    rows = []
    for (venue, within), status in zip(limit.venues, answer.statuses):
        if within is None:
            rows.append([venue, "n/a", "n/a", "n/a", "0", "no mid"])
        else:
            rows.append([venue, size(within.size), money(within.notional), grouped(within.worst, status.price_scale),
                         f"{within.levels:,}", "own mid"])
    if limit.merged is not None:
        m = limit.merged
        rows.append(["merged", size(m.size), money(m.notional), money(m.worst), f"{m.levels:,}", "spot mid"])
    verb = "bought" if answer.action is Action.BUY else "sold"
    return [Text(f"what can be {verb} with no fill more than {plain(limit.bps)} bps past the mid (book prices, "
                 "before fees)", style=STYLES["merged"]),
            fit(LIMIT, rows, width, [None] * (len(rows) - 1) + [STYLES["merged"] if limit.merged else None])]


# --- the whole answer -----------------------------------------------------------------------------
def headline(answer: Answer, width: int, g: Glyphs) -> list[RenderableType]:
    """What is always shown, even in --watch on a small terminal."""
    parts: list[RenderableType] = [summary_line(answer, g), reference_line(answer, g)]
    if len(answer.answers) > 1:
        table, wide = ladder_table(answer, width)
        parts.append(table)
        what = "each cell: net VWAP, then bps" if wide else "bps"
        parts.append(Text(f"{what} vs the spot mid (fees included; + is worse); * perpetual (not a spot trade)",
                          style=STYLES["note"]))
        if not wide:
            best = ", ".join(f"{_order_text(s, answer)} {_best_venue(answer, s)}" for s in answer.answers)
            parts.append(Text(f"best single venue: {best}", style=STYLES["result"]))
    else:
        sized = answer.answers[0]
        parts.append(headline_table(answer, sized, width))
        parts += headline_notes(answer, sized, g)
        if sized.merged is not None:
            parts += split_block(answer, sized.merged, width, g)
    if answer.limit is not None:
        parts += limit_block(answer, width)
    if answer.with_orders and not any(s.book_kind == "L3" for s in answer.statuses):
        parts.append(Text("--orders: no order-level (L3) book among these venues: nothing to expand",
                          style=STYLES["warning"]))
    return parts


def trees(answer: Answer, max_levels: int, width: int, g: Glyphs) -> list[RenderableType]:
    """The per-venue trees (one size only: a ladder has no trees), then the merged one."""
    if len(answer.answers) != 1:
        return [Text("per-venue trees are shown for one size at a time", style=STYLES["note"])]
    sized = answer.answers[0]
    out: list[RenderableType] = [venue_tree(answer, s, o, max_levels, width, g)
                                 for s, o in zip(answer.statuses, sized.venues)]
    if sized.merged is not None:
        out.append(merged_tree(answer, sized.merged, max_levels, width, g))
    return out


def answer_group(answer: Answer, console: Console, max_levels: int = DEFAULT_MAX_LEVELS, brief: bool = False,
                 height: int | None = None) -> Group:
    """The whole answer; with `height`, the trees only as far as they fit under the headline, and a
    line saying what was left out (--watch)."""
    g = Glyphs.for_console(console)
    width = console.width
    parts = headline(answer, width, g)
    if brief:
        return Group(*parts)
    rest = trees(answer, max_levels, width, g)
    if height is None:
        return Group(*parts, *rest)
    used = _lines(console, Group(*parts))
    shown: list[RenderableType] = []
    for index, tree in enumerate(rest):
        lines = _lines(console, tree)
        if used + lines + 1 > height:
            left = len(rest) - index
            shown.append(Text(f"... {plural(left, 'tree')} left out to fit {height} lines ...",
                              style=STYLES["note"]))
            break
        shown.append(tree)
        used += lines
    return Group(*parts, *shown)


def _lines(console: Console, renderable: RenderableType) -> int:
    return len(console.render_lines(renderable, console.options, pad=False))


def render(answer: Answer, console: Console, max_levels: int = DEFAULT_MAX_LEVELS, brief: bool = False) -> None:
    console.print(answer_group(answer, console, max_levels, brief))


# --- depth and queue ------------------------------------------------------------------------------
DEPTH_SIZE_DECIMALS = 4


def depth_tables(report, width: int) -> list[RenderableType]:
    """Two tables (bids, asks): one row per venue and the merged spot book, one column per band; sizes
    in base units within that % of the row's mid (its own, or the spot mid for merged)."""
    g_rows: list[RenderableType] = []
    columns = [Column("venue", "left")] + [Column(f"{plain(b)} %", priority=rank + 1)
                                            for rank, b in enumerate(report.bands)]
    # narrow terminals lose the widest bands first (priority grows with the band's rank)
    for side, label in (("bids", "bids"), ("asks", "asks")):
        rows, styles = [], []
        for row, status in zip(report.venues, report.statuses):
            rows.append([row.venue + ("*" if status.instrument == PERPETUAL else "")]
                        + [_depth_cell(w.size) if row.mid is not None else "n/a" for w in getattr(row, side)])
            styles.append(None if status.live else STYLES["excluded"])
        if report.merged is not None:
            rows.append(["merged"] + [_depth_cell(w.size) for w in getattr(report.merged, side)])
            styles.append(STYLES["merged"])
        g_rows.append(Text(f"{report.symbol.base} resting on the {label} within x % of mid", style=STYLES["result"]))
        g_rows.append(fit(columns, rows, width, styles))
    return g_rows


def _depth_cell(value: Decimal) -> str:
    return grouped(value, DEPTH_SIZE_DECIMALS)


def render_depth(report, console: Console) -> None:
    g = Glyphs.for_console(console)
    live = sum(1 for s in report.statuses if s.live)
    parts: list[RenderableType] = [
        Text(g.sep.join([f"DEPTH {report.symbol.name}", f"{live}/{len(report.statuses)} venues live",
                         f"source {report.source}", clock(report.at)]), style=STYLES["summary"])]
    spot = report.spot
    parts.append(Text(f"spot mid {money(spot.mid)}{g.sep}each venue against its own mid, merged (spot venues) "
                      "against the spot mid; * perpetual", style=STYLES["note"]))
    parts += depth_tables(report, console.width)
    for status in report.statuses:
        if status.reason:
            parts.append(Text(f"{status.name}: {status.reason}", style=STYLES["warning"]))
    console.print(Group(*parts))


def render_queue(status, position, result, console: Console) -> None:
    g = Glyphs.for_console(console)
    unit = position.unit
    side = "bids" if position.action is Action.BUY else "asks"
    lines = [Text(g.sep.join([f"QUEUE {position.action.value.upper()} {plain(position.size)} {unit} at "
                              f"{grouped(position.price, status.price_scale)}", status.name, status.state]),
                  style=STYLES["summary"])]
    if position.crosses:
        lines.append(Text(f"the price reaches the best {'ask' if position.action is Action.BUY else 'bid'} "
                          f"({grouped(position.opposite_best, status.price_scale)}): the order would trade at "
                          "once as a taker, not rest", style=STYLES["warning"]))
    if position.order_level:
        lines.append(Text(f"ahead at this price: {plural(len(position.orders_ahead), 'order')}, "
                          f"{grouped(position.ahead_at_price, 8)} {unit} (time priority)"))
    else:
        lines.append(Text(f"ahead at this price: {grouped(position.ahead_at_price, 8)} {unit} (a level book: "
                          "the whole level, no order count)"))
    lines.append(Text(f"ahead at better prices: {grouped(position.ahead_better, 8)} {unit} on "
                      f"{plural(position.better_levels, 'level')} of the {side}"))
    for order in position.orders_ahead[:10]:
        lines.append(Text(f"  order #{order.order_id[-8:]}  {grouped(order.size, 8)} {unit}", style=STYLES["note"]))
    if len(position.orders_ahead) > 10:
        lines.append(Text(f"  ... {plural(len(position.orders_ahead) - 10, 'more order')} (all in --json)",
                          style=STYLES["note"]))
    if position.crosses:
        lines.append(Text("no time-to-fill estimate: a marketable order does not wait in the queue",
                          style=STYLES["note"]))
    elif result.rate:
        lines.append(Text(f"traded rate {grouped(result.rate, 8)} {unit}/s: to the front in about "
                          f"{duration(result.to_front)}, filled in about {duration(result.to_fill)}",
                          style=STYLES["result"]))
    else:
        lines.append(Text("no time-to-fill estimate: no traded flow seen", style=STYLES["warning"]))
    lines.append(Text(f"estimated {result.method}; assumes the rate holds and nothing new joins ahead",
                      style=STYLES["note"]))
    console.print(Group(*lines))
