"""Exact rendered text of a small answer, and the JSON document's shape and numbers."""
import io
import json
from decimal import Decimal as D

from rich.console import Console

from l2_manager.answer import Answer, VenueStatus
from l2_manager.depletion import Action, deplete_liquidity, deplete_merged
from l2_manager.render import answer_json, render

ALPHA = [(D("100"), D("1")), (D("99"), D("2")), (D("98"), D("2"))]
BETA = [(D("99.5"), D("0.5"))]


def _answer() -> Answer:
    alpha = VenueStatus("alpha", "live", True, None, "L2", checks={"checksums_verified": 3}, age_ms=12,
                        depth={"bid": 3, "ask": 0})
    beta = VenueStatus("beta", "stale", False, "book is stale", "L2", age_ms=20000, depth={"bid": 1, "ask": 0})
    size = D("4.5")
    return Answer(Action.SELL, size, "sim", 0.0,
                  ((alpha, deplete_liquidity("alpha", Action.SELL, size, ALPHA)),
                   (beta, deplete_liquidity("beta", Action.SELL, size, BETA))),
                  deplete_merged(Action.SELL, size, {"alpha": ALPHA}))


EXPECTED = """\
SELL 4.5 BTC · consumes bids · 1/2 venues live · source sim · 00:00:00 UTC
alpha · L2 · live · age 12 ms · 0 resyncs
├── checks: book 3/0 levels · 3 checksums ok
├── filled 4.50000000 of 4.5 BTC · VWAP 98.89 · slippage 111.11 bps
├── best 100.00 · worst 98.00
└── 3 levels   price      size taken       cumulative  running VWAP
    ├──       100.00      1.00000000       1.00000000        100.00
    ├── ... 1 more level (all of them in --json) ...
    └──        98.00      1.50000000       4.50000000         98.89
beta · L2 · stale · age 20000 ms · 0 resyncs
├── EXCLUDED from the merged book: book is stale
├── checks: book 1/0 levels
├── filled 0.50000000 of 4.5 BTC · VWAP 99.50 · slippage 0.00 bps
├── best 99.50 · worst 99.50
├── SHORTFALL 4.00000000 BTC: the book as held ran out after 1 level
└── 1 level    price      size taken       cumulative  running VWAP
    └──        99.50      0.50000000       0.50000000         99.50
merged book · 1 live venue: alpha
├── filled 4.50000000 of 4.5 BTC · VWAP 98.89 · slippage 111.11 bps
├── best 100.00 · worst 98.00
└── 3 levels   price      size taken       cumulative  running VWAP  venue
    ├──       100.00      1.00000000       1.00000000        100.00  alpha
    ├── ... 1 more level (all of them in --json) ...
    └──        98.00      1.50000000       4.50000000         98.89  alpha
allocation of the merged order: venue, size, share, VWAP of its part
└── alpha         4.50000000 BTC  100.00 %  VWAP 98.89
"""


def test_rendered_text_is_exact():
    out = io.StringIO()
    render(_answer(), Console(width=100, color_system=None, file=out), max_levels=2)
    assert out.getvalue() == EXPECTED


def test_all_levels_are_shown_when_they_fit():
    out = io.StringIO()
    render(_answer(), Console(width=100, color_system=None, file=out), max_levels=12)
    assert "more level" not in out.getvalue()
    assert "        99.00      2.00000000       3.00000000         99.33  alpha" in out.getvalue()


def test_json_carries_every_level_as_exact_strings():
    doc = json.loads(json.dumps(answer_json(_answer())))
    alpha = doc["venues"]["alpha"]
    assert alpha["filled"] == "4.5" and alpha["state"] == "live" and alpha["included"] is True
    assert [(lvl["price"], lvl["size"]) for lvl in alpha["levels"]] == [("100", "1"), ("99", "2"), ("98", "1.5")]
    # 100 + 198 + 147 = 445 for 4.5 BTC
    assert D(alpha["vwap"]) == D(445) / D("4.5")
    assert doc["venues"]["beta"]["included"] is False and doc["venues"]["beta"]["shortfall"] == "4.0"
    assert doc["merged"]["allocation"] == {"alpha": "4.5"}
    assert doc["merged"]["venues"] == ["alpha"]
    assert [lvl["venue"] for lvl in doc["merged"]["levels"]] == ["alpha"] * 3
    assert (doc["action"], doc["side"], doc["size"]) == ("sell", "bid", "4.5")


def test_level_counts_of_any_width_keep_the_column_names_readable():
    from l2_manager.render import _levels_label

    assert _levels_label(3, False) == "3 levels   price      size taken       cumulative  running VWAP"
    assert _levels_label(100, True) == "100 levels price      size taken       cumulative  running VWAP  venue"
    assert _levels_label(1000, False) == "1000 levels: price      size taken       cumulative  running VWAP"
