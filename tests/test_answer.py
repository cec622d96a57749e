"""The answer's numbers, each worked out by hand: fees and net VWAP, mid-based slippage, impact, the
fee-aware split and its saving, minimum sizes and increments, quote sizing, the ladder, --limit-bps,
depth bands, the perpetual apart, queue position and time to fill, reasons and exit codes."""
from decimal import Decimal as D

import pytest

from data_manager.book import Side
from data_manager.feed import BookChanged, Fault, OrderEvent
from l2_manager.answer import build_answer, build_depth, exit_code
from l2_manager.cost import OrderSize
from l2_manager.depletion import Action
from l2_manager.fees import VenueTerms, parse_fee_overrides, parse_rate, terms_from_settings
from l2_manager.queue import TradeFlow, estimate, orders_hit, queue_position
from l2_manager.split import Reallocation, cheapest_split
from tests.test_answer_fixtures import NOW, inverse, levels, make_view

ALPHA = dict(bids=levels(("100", "1"), ("99", "2"), ("98", "3")), asks=levels(("101", "1"), ("102", "5")))
BETA = dict(bids=levels(("100.5", "1"), ("98", "2")), asks=levels(("101.5", "1"), ("103", "5")))
TERMS = {"alpha": VenueTerms(D("0.001"), "config"), "beta": VenueTerms(D("0.01"), "config")}


def answer(action=Action.SELL, sizes=(D("2"),), views=None, terms=TERMS, **kw):
    views = views or [make_view("alpha", **ALPHA), make_view("beta", **BETA)]
    return build_answer(action, list(sizes), views, "sim", now=NOW, terms=terms, **kw)


def outcome(ans, venue, index=0):
    return next(o for o in ans.answers[index].venues if o.venue == venue).cost


def test_fees_gross_and_net_vwap_and_net_received():
    # alpha, sell 2: 1 @ 100 + 1 @ 99 = 199 gross, VWAP 99.5; fee 0.1 % = 0.199; net 198.801, VWAP 99.4005
    cost = outcome(answer(), "alpha")
    assert (cost.notional, cost.gross_vwap) == (D("199"), D("99.5"))
    assert (cost.fee, cost.net, cost.net_vwap) == (D("0.199"), D("198.801"), D("99.4005"))


def test_a_buy_pays_the_fee_on_top():
    # alpha, buy 1.5: 1 @ 101 + 0.5 @ 102 = 152; fee 0.152; spent 152.152
    cost = outcome(answer(Action.BUY, [D("1.5")]), "alpha")
    assert (cost.notional, cost.fee, cost.net) == (D("152"), D("0.152"), D("152.152"))


def test_slippage_against_the_best_the_own_mid_and_the_spot_mid_and_the_cost_after_fees():
    ans = answer()
    # spot: best bid 100.5 (beta), best ask 101 (alpha) -> mid 100.75, spread 0.5
    assert (ans.spot.mid, ans.spot.spread) == (D("100.75"), D("0.5"))
    cost = outcome(ans, "alpha")
    assert cost.own_mid == D("100.5")                                               # (100 + 101) / 2
    assert cost.slippage_vs_best == D(50)                                           # (100 - 99.5) / 100
    assert cost.slippage_vs_own_mid == (D("100.5") - D("99.5")) / D("100.5") * 10_000   # 99.50 bps
    assert cost.slippage_vs_spot_mid == (D("100.75") - D("99.5")) / D("100.75") * 10_000
    assert cost.cost_bps == (D("100.75") - D("99.4005")) / D("100.75") * 10_000       # 133.95 bps, fees in


def test_impact_is_where_the_best_would_be_after_the_fill():
    # alpha, sell 2: the 99 level is taken in part (1 of 2): the best bid after is 99, 100 bps below 100
    cost = outcome(answer(), "alpha")
    assert (cost.best_after, cost.impact_bps) == (D("99"), D(100))
    # sell 3: the 99 level is gone too: the best after is 98
    assert outcome(answer(sizes=[D("3")]), "alpha").best_after == D("98")


def test_the_split_after_fees_beats_the_best_single_venue_and_says_by_how_much():
    # fee-adjusted bids: alpha 100 -> 99.9, 99 -> 98.901; beta 100.5 -> 99.495, 98 -> 97.02.
    # Sell 2: alpha 1 @ 100 (99.9), beta 1 @ 100.5 (99.495): net 99.9 + 99.495 = 199.395.
    # Alone: alpha 198.801, beta 100.5 + 98 = 198.5 - 1.985 = 196.515. Saving vs alpha: 0.594.
    merged = answer().answers[0].merged
    assert merged.cost.walk.allocation() == {"alpha": D("1"), "beta": D("1")}
    assert merged.cost.net == D("199.395")
    assert merged.saving.venue == "alpha" and merged.saving.amount == D("0.594")
    assert merged.saving.bps == D("0.594") / D("198.801") * 10_000                   # 29.88 bps


def test_the_cheapest_gross_venue_can_lose_after_fees():
    # beta's 100.5 is the best gross bid, but at 1 % it nets 99.495, below alpha's 100 at 0.1 % (99.9)
    terms = {"alpha": VenueTerms(D("0.001")), "beta": VenueTerms(D("0.01"))}
    merged = answer(sizes=[D("1")], terms=terms).answers[0].merged
    assert merged.cost.walk.allocation() == {"alpha": D("1")}
    without_fees = answer(sizes=[D("1")], terms={}).answers[0].merged
    assert without_fees.cost.walk.allocation() == {"beta": D("1")}


def test_a_share_below_a_venue_minimum_moves_to_the_next_best_levels_and_is_said():
    # buy 1: a's 100 x 0.00005 is the best ask, then b's 100.5; a's share 0.00005 is below its
    # minimum 0.0001, so a is capped at 0 and b takes the whole 1 @ 100.5
    sides = {"a": lambda: iter(levels(("100", "0.00005"), ("101", "10"))), "b": lambda: iter(levels(("100.5", "10")))}
    terms = {"a": VenueTerms(min_order=D("0.0001")), "b": VenueTerms()}
    free = cheapest_split(Action.BUY, D("1"), sides, {"a": VenueTerms(), "b": VenueTerms()})
    assert free.walk.allocation() == {"a": D("0.00005"), "b": D("0.99995")}
    split = cheapest_split(Action.BUY, D("1"), sides, terms)
    assert split.walk.allocation() == {"b": D("1")}
    assert split.reallocations == (Reallocation("a", D("0.00005"), "below its minimum order of 0.0001"),)


def test_a_share_off_a_venue_increment_is_cut_to_the_increment_and_the_rest_moves_on():
    # buy 1.005: a 0.5 @ 100, then b (increment 0.01) 0.505 @ 100.2 -> cut to 0.50; the 0.005 left goes to
    # a's next level, 101
    sides = {"a": lambda: iter(levels(("100", "0.5"), ("101", "10"))), "b": lambda: iter(levels(("100.2", "10")))}
    terms = {"a": VenueTerms(), "b": VenueTerms(size_increment=D("0.01"))}
    split = cheapest_split(Action.BUY, D("1.005"), sides, terms)
    assert split.walk.allocation() == {"a": D("0.505"), "b": D("0.50")}
    assert [(f.venue, f.price, f.size) for f in split.walk.fills][-1] == ("a", D("101"), D("0.005"))
    assert split.reallocations[0].venue == "b" and split.reallocations[0].moved == D("0.005")
    assert "size increment 0.01" in split.reallocations[0].reason


def test_an_order_sized_in_the_quote_receives_that_amount_net_of_fees():
    # alpha at 0.1 %: 99.9 net from the first BTC, then 50.1 / 98.901 = 0.50656717 BTC (rounded down)
    cost = outcome(answer(sizes=[OrderSize(D("150"), True)]), "alpha")
    assert cost.filled == D("1.50656717") and cost.complete and cost.shortfall == 0
    assert D("150") - cost.net < D("0.000001")


def test_a_ladder_answers_every_size_from_the_same_instant():
    ans = answer(sizes=[D("1"), D("2"), D("3")])
    assert [part.order.amount for part in ans.answers] == [D("1"), D("2"), D("3")]
    # merged, sell 1: alpha's 100 nets 99.9, beta's 100.5 nets 99.495: alpha alone, net VWAP 99.9
    assert ans.answers[0].merged.cost.net_vwap == D("99.9")
    # sell 3: alpha 100 (99.9), beta 100.5 (99.495), alpha 99 (98.901): 99.9 + 99.495 + 98.901 = 298.296
    assert ans.answers[2].merged.cost.net == D("298.296")


def test_limit_bps_is_what_each_book_takes_before_a_fill_goes_past_its_mid():
    # alpha's mid 100.5; 100 bps below is 99.495: only the 100 level (1 BTC). The merged book against the
    # spot mid 100.75: 99.7425: alpha's 100 and beta's 100.5 (2 BTC, 200.5 USD)
    limit = answer(limit_bps=D(100)).limit
    alpha = dict(limit.venues)["alpha"]
    assert (alpha.size, alpha.notional, alpha.worst, alpha.levels) == (D("1"), D("100"), D("100"), 1)
    assert (limit.merged.size, limit.merged.notional, limit.merged.worst) == (D("2"), D("200.5"), D("100"))


def test_depth_bands_per_venue_and_merged():
    # mid (99.9 + 100.1) / 2 = 100: the 0.1 % band reaches 99.9 / 100.1, 0.5 % 99.5 / 100.5, 1 % 99 / 101,
    # 2 % 98 / 102, 5 % 95 / 105
    view = make_view("v", levels(("99.9", "1"), ("99.5", "2"), ("99", "3"), ("97", "4")),
                     levels(("100.1", "1"), ("101", "2")))
    report = build_depth([view], [D("0.1"), D("0.5"), D("1"), D("2"), D("5")], "sim", now=NOW)
    row = report.venues[0]
    assert row.mid == D("100")
    assert [w.size for w in row.bids] == [D(1), D(3), D(6), D(6), D(10)]
    assert [w.size for w in row.asks] == [D(1), D(1), D(3), D(3), D(3)]
    assert row.bids[1].notional == D("99.9") + 2 * D("99.5")
    assert report.merged.reference == "spot mid" and [w.size for w in report.merged.bids] == [D(1), D(3), D(6), D(6), D(10)]


def test_a_perpetual_is_apart_with_its_contracts_position_and_basis():
    perp = make_view("perp", levels(("101", "101000")), levels(("102", "204000")), instrument="perpetual",
                     convert=inverse())
    ans = answer(views=[make_view("alpha", **ALPHA), make_view("beta", **BETA), perp])
    status = ans.status("perp")
    assert status.live and not status.in_merge and "perpetual" in status.reason
    assert "perp" not in ans.answers[0].merged.venues
    leg = next(o for o in ans.answers[0].venues if o.venue == "perp").perpetual
    # 1 BTC per 101,000 contracts at 101: selling 2 BTC is 202,000 contracts... at 101 x 2 / 1000 per BTC:
    # the level holds 101000 / 101 = 1000 BTC, so 2 BTC is 2 / 1000 of it: 202 contracts
    assert (leg.contracts, leg.position) == (D("202"), "short")
    assert leg.basis_bps == (D("101.5") - D("100.75")) / D("100.75") * 10_000   # +74.44 bps
    merged_all = answer(views=[make_view("alpha", **ALPHA), perp], merge="all").answers[0].merged
    assert merged_all.includes_perpetual and "perp" in merged_all.venues


def test_a_shortfall_on_the_merged_answer_exits_5():
    ans = answer(Action.BUY, [D("20")])       # alpha 6 + beta 6 asks
    assert not ans.answers[0].merged.cost.complete and ans.answers[0].merged.cost.shortfall == D("8")
    assert exit_code(ans) == 5
    assert exit_code(answer()) == 0


def test_exit_codes_for_partly_and_not_live():
    stale = make_view("beta", state="stale", **BETA)
    assert exit_code(answer(views=[make_view("alpha", **ALPHA), stale])) == 3
    assert exit_code(answer(views=[make_view("alpha", state="syncing")])) == 4


@pytest.mark.parametrize("state, fault, expected", [
    ("stale", None, "stale: no data or heartbeat for 20.0 s; last live 5.0 s ago"),
    ("resyncing", Fault("gap", "expected 5, got 7", NOW - 3), "resyncing after gap: expected 5, got 7; last live 5.0 s ago"),
    ("syncing", None, "syncing: connected, no whole book yet; never live"),
    ("connecting", None, "connecting: no connection yet; never live"),
])
def test_reasons_say_what_happened_and_since_when(state, fault, expected):
    ans = answer(views=[make_view("alpha", **ALPHA), make_view("beta", state=state, fault=fault, **BETA)])
    assert ans.status("beta").reason == expected
    assert not ans.status("beta").in_merge and ans.answers[0].merged.venues == ("alpha",)


def test_the_session_reason_comes_first_when_the_shell_has_one():
    beta = make_view("beta", state="connecting")
    ans = build_answer(Action.SELL, [D(1)], [make_view("alpha", **ALPHA), beta], "live", now=NOW,
                       unreachable={beta.key: "not live after 10 s: snapshot HTTP 500 from https://x/api"})
    assert ans.status("beta").reason == "not live after 10 s: snapshot HTTP 500 from https://x/api; never live"


def test_fees_come_from_settings_and_the_command_line_overrides_them():
    class Settings:
        taker_fee = D("0.004")
        min_order = D("0.0001")
        size_increment = D(0)

    assert terms_from_settings(Settings()) == VenueTerms(D("0.004"), "config", D("0.0001"), D(0))
    assert terms_from_settings(Settings(), D("0.0025")).fee_source == "--fee"
    assert terms_from_settings(object()) == VenueTerms()      # a settings class without the keys: none known
    assert parse_rate("0.25%") == D("0.0025") and parse_rate("0.0025") == D("0.0025")
    assert parse_fee_overrides(["kraken=0.25%"], ["kraken"]) == {"kraken": D("0.0025")}
    for bad in ("25", "-1%", "abc", "nan"):
        with pytest.raises(ValueError):
            parse_rate(bad)
    with pytest.raises(ValueError, match="unknown venue"):
        parse_fee_overrides(["binance=0.1%"], ["kraken"])


# --- the order-level view -------------------------------------------------------------------------
L3 = {Side.BID: [("o1", "100.5", "0.4"), ("o2", "100.5", "0.6"), ("o3", "100", "1"), ("o4", "100", "0.25"),
                 ("o5", "99", "2")],
      Side.ASK: [("o6", "101", "1")]}


def test_the_orders_hit_at_a_level_in_time_priority():
    view = make_view("l3", orders=L3)
    queue = view.orders_at(Side.BID, D("100"))
    assert [(o.order_id, size) for o, size in orders_hit(queue, D(1))] == [("o3", D("1")), ("o4", D("0.25"))]
    # 0.8 of the level's 1.25: all of o3 (1) is more than 1.0 ... 1.25 x 0.8 = 1.0: o3 whole, o4 nothing
    assert [(o.order_id, size) for o, size in orders_hit(queue, D("0.8"))] == [("o3", D("1.00"))]
    assert [(o.order_id, size) for o, size in orders_hit(queue, D("0.4"))] == [("o3", D("0.50"))]


def test_with_orders_a_walk_lists_the_orders_it_hits_the_last_level_in_part():
    ans = build_answer(Action.SELL, [D("1.5")], [make_view("l3", orders=L3)], "sim", now=NOW, with_orders=True)
    cost = ans.answers[0].venues[0].cost
    last = {"l3": 1}
    assert [(o.order_id, s) for o, s in ans.orders_hit(cost, 0, last)] == [("o1", D("0.4")), ("o2", D("0.6"))]
    # the 100 level (1.25) is taken 0.5: o3 gives 0.5
    assert [(o.order_id, s) for o, s in ans.orders_hit(cost, 1, last)] == [("o3", D("0.50"))]


def test_queue_position_counts_what_is_ahead_at_the_price_and_at_better_prices():
    view = make_view("l3", orders=L3)
    position = queue_position(view, Action.BUY, D("100"), D("0.5"))
    assert [o.order_id for o in position.orders_ahead] == ["o3", "o4"]
    assert (position.ahead_at_price, position.ahead_better, position.better_levels) == (D("1.25"), D("1.0"), 1)
    assert position.ahead == D("2.25") and not position.crosses
    # at 0.5 BTC/s: 2.25 / 0.5 = 4.5 s to the front, (2.25 + 0.5) / 0.5 = 5.5 s to be filled
    result = estimate(position, D("0.5"), 10.0, "test")
    assert (result.to_front, result.to_fill) == (4.5, 5.5)
    assert queue_position(view, Action.BUY, D("101"), D("1")).crosses
    assert queue_position(view, Action.SELL, D("101"), D("1")).ahead == D("1")


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_the_traded_rate_comes_from_order_events_when_the_feed_publishes_them():
    view = make_view("l3", orders=L3)
    clock = Clock()
    flow = TradeFlow(view, Side.BID, clock)
    flow.on_action(OrderEvent(view.key, "match", "o1", side="bid", filled=D("0.3")))
    flow.on_action(OrderEvent(view.key, "match", "o6", side="ask", filled=D("5")))    # the other side
    clock.now = 2.0
    rate, watched, method = flow.rate()
    assert rate == D("0.15") and watched == 2.0 and method.startswith("from 1 order-event fills against the bids")


def test_without_order_events_the_rate_comes_from_the_front_of_the_queue():
    view = make_view("l3", orders=L3)
    clock = Clock()
    flow = TradeFlow(view, Side.BID, clock)
    book = view._feed.book
    book.set_size("o1", D("0.1"))            # the front order shrank by 0.3
    flow.on_action(BookChanged(view.key))
    book.remove("o1")                        # then left: its last 0.1
    flow.on_action(BookChanged(view.key))
    clock.now = 4.0
    rate, _, method = flow.rate()
    assert rate == D("0.1") and "book changes" in method and "overstate" in method


def test_no_change_seen_gives_no_estimate():
    flow = TradeFlow(make_view("l3", orders=L3), Side.BID, Clock())
    rate, _, method = flow.rate()
    assert rate is None and "no change seen" in method
    result = estimate(queue_position(make_view("l3", orders=L3), Action.BUY, D("100"), D("1")), rate, 1.0, method)
    assert result.to_fill is None
