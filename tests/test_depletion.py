"""Depletion tables worked out by hand."""
from decimal import Decimal as D

import pytest

from l2_manager.depletion import Action, Fill, deplete_liquidity, deplete_merged

BIDS = [(D("100"), D("1")), (D("99"), D("2")), (D("97"), D("3"))]
ASKS = [(D("101"), D("0.5")), (D("102"), D("1.5")), (D("105"), D("10"))]


def test_sell_consumes_bids_with_a_partial_last_level():
    # 1 @ 100 + 2 @ 99 + 1.5 @ 97 = 100 + 198 + 145.5 = 443.5 for 4.5 BTC -> 98.5555...
    result = deplete_liquidity("v", Action.SELL, D("4.5"), BIDS)
    assert result.fills == (Fill("v", D("100"), D("1")), Fill("v", D("99"), D("2")), Fill("v", D("97"), D("1.5")))
    assert result.filled == D("4.5") and result.shortfall == 0 and result.complete
    assert result.vwap == D("443.5") / D("4.5")
    assert (result.best_price, result.worst_price, result.levels_consumed) == (D(100), D(97), 3)
    # slippage: (100 - 98.5555...) / 100 * 10000 = 144.444... bps
    assert result.slippage_bps == (D(100) - D("443.5") / D("4.5")) / D(100) * D(10000)
    steps = list(result.steps())
    assert [(s.cumulative, s.running_vwap) for s in steps] == [
        (D("1"), D("100")), (D("3"), D("298") / D("3")), (D("4.5"), D("443.5") / D("4.5"))]


def test_buy_consumes_asks_and_reports_the_shortfall():
    result = deplete_liquidity("v", Action.BUY, D("20"), ASKS)
    assert result.filled == D("12") and result.shortfall == D("8") and not result.complete
    # 0.5*101 + 1.5*102 + 10*105 = 50.5 + 153 + 1050 = 1253.5 for 12 BTC
    assert result.vwap == D("1253.5") / D("12")
    assert result.slippage_bps == (D("1253.5") / D("12") - D(101)) / D(101) * D(10000)


def test_an_empty_book_has_no_price_and_no_division_by_zero():
    result = deplete_liquidity("v", Action.BUY, D("1"), [])
    assert result.fills == () and result.vwap is None and result.slippage_bps is None
    assert result.shortfall == D("1") and result.best_price is None and result.worst_price is None


def test_an_exact_fill_stops_at_the_level_that_completes_it():
    result = deplete_liquidity("v", Action.SELL, D("3"), iter(BIDS))
    assert [f.size for f in result.fills] == [D("1"), D("2")]


@pytest.mark.parametrize("size", [D(0), D(-1)])
def test_a_non_positive_size_is_refused(size):
    with pytest.raises(ValueError):
        deplete_liquidity("v", Action.SELL, size, BIDS)


def test_merged_walk_interleaves_venues_and_keeps_each_fill_venue():
    sides = {
        "a": [(D("100"), D("1")), (D("98"), D("1"))],
        "b": [(D("99.5"), D("0.5")), (D("98"), D("2")), (D("90"), D("5"))],
    }
    result = deplete_merged(Action.SELL, D("3"), sides)
    assert result.fills == (Fill("a", D("100"), D("1")), Fill("b", D("99.5"), D("0.5")),
                            Fill("a", D("98"), D("1")), Fill("b", D("98"), D("0.5")))
    assert result.allocation() == {"a": D("2"), "b": D("1.0")}
    # 100 + 49.75 + 98 + 49 = 296.75 for 3 BTC
    assert result.vwap == D("296.75") / D("3")


def test_merged_buy_walks_asks_ascending_and_is_never_worse_than_one_venue():
    sides = {"a": [(D("101"), D("1")), (D("103"), D("5"))], "b": [(D("102"), D("1")), (D("104"), D("5"))]}
    merged = deplete_merged(Action.BUY, D("4"), sides)
    assert [f.price for f in merged.fills] == [D("101"), D("102"), D("103")]
    for venue, levels in sides.items():
        assert merged.vwap <= deplete_liquidity(venue, Action.BUY, D("4"), levels).vwap


def test_merged_walk_reads_only_what_it_consumes():
    consumed = []

    def endless(start):
        price = start
        while True:
            consumed.append(price)
            yield price, D("1")
            price -= 1

    result = deplete_merged(Action.SELL, D("3"), {"a": endless(D(100)), "b": endless(D(1000))})
    assert [f.venue for f in result.fills] == ["b", "b", "b"]
    assert len(consumed) <= 6  # lazy: a few levels read per venue, never the whole book
