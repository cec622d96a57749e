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


# --- fees, quote sizes, caps, the side after a walk -------------------------------------------------
from l2_manager.depletion import after_walk, capped, deplete_after_fees, merged_levels, size_for_quote  # noqa: E402
from data_manager.book import Side  # noqa: E402

FEE_A = [(D("100"), D("1")), (D("97"), D("5"))]      # the better gross bids, fee 1 %
FEE_B = [(D("99.5"), D("1")), (D("96.5"), D("5"))]   # worse gross bids, fee 0.1 %
SELL_FACTORS = {"a": D("0.99"), "b": D("0.999")}


def test_the_fee_aware_merged_walk_orders_levels_by_what_a_seller_receives():
    # after fees: a 100 -> 99.00, 97 -> 96.03; b 99.5 -> 99.4005, 96.5 -> 96.4035.
    # So b's 99.5 comes first although a's 100 is better gross, and b's 96.5 beats a's 97.
    result = deplete_after_fees(Action.SELL, D("3"), {"a": iter(FEE_A), "b": iter(FEE_B)}, SELL_FACTORS)
    assert result.fills == (Fill("b", D("99.5"), D("1")), Fill("a", D("100"), D("1")), Fill("b", D("96.5"), D("1")))
    # net received: 99.4005 + 99.00 + 96.4035 = 294.804; the gross order (a 100, b 99.5, a 97) would
    # receive 99.00 + 99.4005 + 96.03 = 294.4305
    net = sum(price * size * SELL_FACTORS[venue] for venue, (price, size) in zip(result.venues, result.levels))
    assert net == D("294.804")
    gross_order = deplete_merged(Action.SELL, D("3"), {"a": FEE_A, "b": FEE_B})
    assert [f.venue for f in gross_order.fills] == ["a", "b", "a"]


def test_the_fee_aware_walk_keeps_gross_prices_and_reads_only_what_it_takes():
    read = []

    def side(levels):
        for level in levels:
            read.append(level)
            yield level

    result = deplete_after_fees(Action.SELL, D("1"), {"a": side(FEE_A), "b": side(FEE_B)}, SELL_FACTORS)
    assert result.fills == (Fill("b", D("99.5"), D("1")),)
    assert len(read) <= 4


def test_a_quote_amount_is_reached_at_fee_adjusted_prices_rounding_the_last_level_down():
    # receive 150 USD net at 0.1 %: 100 x 0.999 = 99.9 from the first BTC; the remaining 50.1 at
    # 99 x 0.999 = 98.901 is 0.50656717... BTC, rounded down to the satoshi: 0.50656717
    adjusted = [(D("99.9"), D("1")), (D("98.901"), D("2"))]
    size, complete = size_for_quote(D("150"), adjusted)
    assert (size, complete) == (D("1.50656717"), True)
    value = D("99.9") + D("0.50656717") * D("98.901")
    assert value <= 150 and 150 - value < D("98.901") * D("0.00000001")


def test_a_quote_amount_larger_than_the_book_takes_it_all_and_says_so():
    assert size_for_quote(D("1000"), [(D("100"), D("1")), (D("99"), D("2"))]) == (D("3"), False)


def test_a_capped_side_holds_at_most_the_cap_taking_the_last_level_in_part():
    assert list(capped(iter(BIDS), D("2.5"))) == [(D("100"), D("1")), (D("99"), D("1.5"))]
    assert list(capped(iter(BIDS), None)) == BIDS
    assert list(capped(iter(BIDS), D(0))) == []


@pytest.mark.parametrize("consumed, last_taken, expected", [
    (2, D("1.5"), (D("99"), D("2"))),      # half of the 99 level is left: the best is still 99
    (2, D("2"), (D("97"), D("2"))),        # the 99 level is gone: the next one is the best
    (3, D("3"), (None, D("3"))),           # the whole side is gone
    (0, None, (D("100"), None)),           # nothing taken: the best is unchanged
])
def test_after_a_walk_the_best_is_where_the_walk_stopped(consumed, last_taken, expected):
    assert after_walk(iter(BIDS), consumed, last_taken) == expected


def test_merged_levels_stream_every_side_best_first():
    bids = list(merged_levels(Side.BID, [iter(FEE_A), iter(FEE_B)]))
    assert [p for p, _ in bids] == [D("100"), D("99.5"), D("97"), D("96.5")]
    asks = list(merged_levels(Side.ASK, [iter(ASKS), iter([(D("101.5"), D("1"))])]))
    assert [p for p, _ in asks] == [D("101"), D("101.5"), D("102"), D("105")]
