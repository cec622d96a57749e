"""Exact rendered text at 80 and 60 columns, ASCII consoles, --levels 0, and the watch layout that fits
a terminal's height. Lines are compared with trailing spaces stripped (rich pads table cells)."""
import io
from decimal import Decimal as D

from rich.console import Console

from data_manager.feed import Fault
from l2_manager.answer import build_answer
from l2_manager.depletion import Action
from l2_manager.fees import VenueTerms
from l2_manager.render import answer_group, fit, Column, render
from tests.test_answer_fixtures import NOW, inverse, levels, make_view


def sample(sizes=(D("2.5"),), **kw):
    views = [
        make_view("alpha", levels(("100", "1"), ("99", "2"), ("98", "3")), levels(("101", "1"), ("102", "5")),
                  notes=("checksums cover the top 10",)),
        make_view("beta", levels(("100.5", "1"), ("98", "2")), levels(("101.5", "1"), ("103", "5"))),
        make_view("gamma", state="resyncing", fault=Fault("gap", "expected 5, got 7", NOW - 3)),
        make_view("perp", levels(("101", "101000")), levels(("102", "204000")), instrument="perpetual",
                  convert=inverse()),
    ]
    terms = {"alpha": VenueTerms(D("0.001"), "config"), "beta": VenueTerms(D("0.01"), "config"),
             "perp": VenueTerms(D("0.0006"), "config")}
    return build_answer(Action.SELL, list(sizes), views, "sim", now=NOW, terms=terms, **kw)


class Encoded(io.StringIO):
    """A text stream that says its encoding (rich reads it to decide on ASCII)."""

    def __init__(self, encoding: str) -> None:
        super().__init__()
        self._encoding = encoding

    @property
    def encoding(self) -> str:
        return self._encoding


def text(answer, width, levels=12, brief=False, encoding="utf-8"):
    out = Encoded(encoding)
    render(answer, Console(file=out, width=width, color_system=None, legacy_windows=False), levels, brief)
    return "\n".join(line.rstrip() for line in out.getvalue().splitlines())


EXPECTED_80 = """\
SELL 2.5 BTC · bids · 3/4 venues live · merge spot · source sim · 00:53:20 UTC
spot mid 100.75 · spread 0.50 (49.63 bps) · 2 live spot venues
venue      filled net VWAP bps vs mid fee % levels state
alpha  2.50000000    99.30    +143.86  0.10      2 live
beta   2.50000000    98.01    +271.96  1.00      2 live
gamma         n/a      n/a        n/a  0.00      0 resyncing
merged 2.50000000    99.54    +120.28            3 2 venues
perp*  2.50000000   100.94     -18.80  0.06      1 live
bps vs mid: net VWAP (fees included) against the spot mid; + is worse
* perp: perpetual, not spot: 252 contracts, opens a short · basis +74.44 bps
cheapest split after fees: 2 venues · net USD received
venue       size    share net VWAP  fee    net
alpha 1.50000000  60.00 %    99.57 0.15 149.35
beta  1.00000000  40.00 %    99.50 1.00  99.50
total 2.50000000 100.00 %    99.54 1.15 248.85
saving vs the best single venue (alpha): 0.59 USD · +23.93 bps
alpha · L2 · spot · live · age 49 ms · 0 resyncs
├── checks: book 3/2 levels · 7 msgs · seq 100..107 gap-free
├── checksums cover the top 10
├── mid 100.50 · spread 1.00 (99.50 bps) · taker fee 0.10 % (config)
├── filled 2.50000000 BTC · gross VWAP 99.40 · net VWAP 99.30
├── notional 248.50 · fee 0.25 · net 248.25 USD received
├── slippage bps: +60.00 vs best · +109.45 vs own mid · +134.00 vs spot mid
├── best 100.00 · worst 99.00 · best after 99.00 · impact +100.00 bps
└── 2 levels consumed
    └──  price size taken cumulative running VWAP
        100.00 1.00000000 1.00000000       100.00
         99.00 1.50000000 2.50000000        99.40
beta · L2 · spot · live · age 49 ms · 0 resyncs
├── checks: book 2/2 levels · 7 msgs · seq 100..107 gap-free
├── mid 101.00 · spread 1.00 (99.01 bps) · taker fee 1.00 % (config)
├── filled 2.50000000 BTC · gross VWAP 99.00 · net VWAP 98.01
├── notional 247.50 · fee 2.48 · net 245.02 USD received
├── slippage bps: +149.25 vs best · +198.02 vs own mid · +173.70 vs spot mid
├── best 100.50 · worst 98.00 · best after 98.00 · impact +248.76 bps
└── 2 levels consumed
    └──  price size taken cumulative running VWAP
        100.50 1.00000000 1.00000000       100.50
         98.00 1.50000000 2.50000000        99.00
gamma · L2 · spot · resyncing · age 49 ms · 1 resync
├── EXCLUDED from the merged answer: resyncing after gap: expected 5, got 7;
│   last live 5.0 s ago
├── checks: book 0/0 levels · 7 msgs · seq 100..107 gap-free
├── last fault: gap (expected 5, got 7) at 00:53:17 UTC
├── mid n/a · spread n/a (n/a bps) · taker fee 0.00 % (default)
└── no levels on this side of the book
perp · L2 · perpetual · live · age 49 ms · 0 resyncs
├── EXCLUDED from the merged answer: perpetual: not a spot sale, shown apart
│   (--merge all includes it)
├── checks: book 1/1 levels · 7 msgs · seq 100..107 gap-free
├── mid 101.50 · spread 1.00 (98.52 bps) · taker fee 0.06 % (config)
├── filled 2.50000000 BTC · gross VWAP 101.00 · net VWAP 100.94
├── notional 252.50 · fee 0.15 · net 252.35 USD received
├── slippage bps: 0.00 vs best · +49.26 vs own mid · -24.81 vs spot mid
├── best 101.00 · worst 101.00 · best after 101.00 · impact 0.00 bps
├── perpetual: sells 252 contracts (opens a short) · basis +74.44 bps vs spot
│   mid
└── 1 level consumed
    └──  price size taken cumulative running VWAP
        101.00 2.50000000 2.50000000       101.00
merged book · 2 venues: alpha, beta · levels ordered by fee-adjusted price
├── filled 2.50000000 BTC · gross VWAP 100.00 · net VWAP 99.54
├── notional 250.00 · fees 1.15 · net 248.85 USD received
├── slippage bps: +49.75 vs best · +74.44 vs merged mid · +74.44 vs spot mid
├── best 100.50 · worst 99.00 · best after 99.00 · impact +149.25 bps
└── 3 levels consumed (1 not shown: all in --json)
    └──  price size taken cumulative running VWAP venue
        100.00 1.00000000 1.00000000       100.00 alpha
           ...
         99.00 0.50000000 2.50000000       100.00 alpha
"""

EXPECTED_60_BRIEF = """\
SELL 2.5 BTC · bids · 3/4 venues live · merge spot · source
sim · 00:53:20 UTC
spot mid 100.75 · spread 0.50 (49.63 bps) · 2 live spot
venues
venue      filled net VWAP bps vs mid fee % state
alpha  2.50000000    99.30    +143.86  0.10 live
beta   2.50000000    98.01    +271.96  1.00 live
gamma         n/a      n/a        n/a  0.00 resyncing
merged 2.50000000    99.54    +120.28       2 venues
perp*  2.50000000   100.94     -18.80  0.06 live
bps vs mid: net VWAP (fees included) against the spot mid; +
is worse
* perp: perpetual, not spot: 252 contracts, opens a short ·
basis +74.44 bps
cheapest split after fees: 2 venues · net USD received
venue       size    share net VWAP  fee    net
alpha 1.50000000  60.00 %    99.57 0.15 149.35
beta  1.00000000  40.00 %    99.50 1.00  99.50
total 2.50000000 100.00 %    99.54 1.15 248.85
saving vs the best single venue (alpha): 0.59 USD · +23.93
bps
"""


def test_the_whole_answer_at_80_columns_is_exact():
    assert text(sample(), 80, 2) + "\n" == EXPECTED_80


def test_at_60_columns_the_tables_lose_columns_not_alignment():
    assert text(sample(), 60, 2, brief=True) + "\n" == EXPECTED_60_BRIEF
    assert max(len(line) for line in text(sample(), 60, 2).splitlines()) <= 60


def test_the_headline_comes_first_and_the_trees_last():
    out = text(sample(), 80)
    assert out.index("venue      filled") < out.index("cheapest split") < out.index("alpha \u00b7 L2")
    assert "alpha \u00b7 L2" not in text(sample(), 80, brief=True)


def test_an_ascii_console_gets_ascii_separators_and_guides():
    out = text(sample(), 80, 2, encoding="ascii")
    assert out.isascii()
    assert "SELL 2.5 BTC | bids | 3/4 venues live" in out
    assert "+-- checks: book 3/2 levels | 7 msgs" in out or "|-- checks" in out


def test_levels_0_shows_no_level_rows():
    out = text(sample(), 80, 0)
    assert "2 levels consumed (rows hidden: --levels 0)" in out
    assert "size taken" not in out


def test_a_long_walk_builds_only_the_rows_it_shows():
    from l2_manager.render import levels_table

    deep = make_view("deep", [(D(100000 - i), D("0.01")) for i in range(1000)], levels(("100001", "1")))
    answer = build_answer(Action.SELL, [D("10")], [deep], "sim", now=NOW)
    cost = answer.answers[0].venues[0].cost
    assert cost.walk.levels_consumed == 1000
    table = levels_table(answer, cost, 12, False, 80, None)
    assert table.row_count == 13          # 12 levels (11 from the top and the last one) and the "..." row
    assert "1,000 levels consumed (988 not shown: all in --json)" in text(answer, 80)


def test_watch_keeps_the_headline_and_shows_trees_only_as_far_as_the_height_allows():
    out = io.StringIO()
    console = Console(file=out, width=80, height=30, color_system=None)
    console.print(answer_group(sample(), console, 2, height=30))
    lines = out.getvalue().splitlines()
    assert len(lines) <= 30
    assert lines[0].startswith("SELL 2.5 BTC") and any(line.startswith("merged ") for line in lines)
    assert lines[-1] == "... 4 trees left out to fit 30 lines ..."


def test_a_ladder_is_one_row_per_size_and_narrow_terminals_get_one_row_per_size_and_venue():
    ladder = sample(sizes=(D("1"), D("2.5")))
    wide = text(ladder, 80)
    assert "size      alpha    beta gamma  perp*  merged best" in wide
    assert "per-venue trees are shown for one size at a time" in wide
    narrow = text(ladder, 40)
    assert "2.5 BTC alpha     99.30 +143.86" in narrow and "2.5 BTC merged    99.54 +120.28" in narrow


def test_fit_drops_the_lowest_priority_columns_first():
    columns = (Column("a", "left"), Column("b", priority=2), Column("c", priority=1))
    rows = [["x" * 10, "y" * 10, "z" * 10]]
    assert [c.header for c in fit(columns, rows, 40).columns] == ["a", "b", "c"]
    assert [c.header for c in fit(columns, rows, 22).columns] == ["a", "c"]
    assert [c.header for c in fit(columns, rows, 5).columns] == ["a"]


def test_orders_expand_the_levels_of_an_order_level_book_and_say_when_there_is_none():
    from data_manager.book import Side

    l3 = make_view("l3", orders={Side.BID: [("order-0001", "100", "0.4"), ("order-0002", "100", "0.6"),
                                            ("order-0003", "99", "1")], Side.ASK: [("order-0004", "101", "1")]})
    out = text(build_answer(Action.SELL, [D("1.5")], [l3], "sim", now=NOW, with_orders=True), 80)
    rows = [line.split() for line in out.splitlines() if line.strip().startswith("#")]
    assert rows[:3] == [["#der-0001", "0.40000000"], ["#der-0002", "0.60000000"], ["#der-0003", "0.50000000"]]
    plain_book = text(sample(with_orders=True), 80, brief=True)
    assert "--orders: no order-level (L3) book among these venues" in plain_book
