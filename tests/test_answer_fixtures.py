"""Hand-made books behind real `BookView`s, in any state, for the answer, render and JSON tests.

The views are the ones the data manager hands out (`FeedBook` + `Health` + `BookView`); only the
connection is missing: levels are loaded straight into the book and states are driven through
`Health.to`, the one place a state changes.
"""
from __future__ import annotations

from decimal import Decimal as D
from typing import Callable, Sequence

from data_manager.book import L2Book, L3Book, Level, Side
from data_manager.feed import BookView, Fault, FeedBook, FeedKey, FeedState, Health
from data_manager.symbols import Symbol

NOW = 1_796_000_000.0   # 2026-11-30T00:53:20Z
PATHS = {
    "connecting": (),
    "syncing": (FeedState.SYNCING,),
    "live": (FeedState.SYNCING, FeedState.LIVE),
    "stale": (FeedState.SYNCING, FeedState.LIVE, FeedState.STALE),
    "resyncing": (FeedState.SYNCING, FeedState.LIVE, FeedState.RESYNCING),
}
"""How a book reaches each state from `connecting`, through the transition table."""


def levels(*rows: tuple[str, str]) -> list[Level]:
    return [(D(price), D(size)) for price, size in rows]


def make_view(venue: str, bids: Sequence[Level] = (), asks: Sequence[Level] = (), state: str = "live",
              instrument: str = "spot", symbol: str = "BTC-USD", convert: Callable[[Level], Level] | None = None,
              orders: dict[Side, Sequence[tuple[str, str, str]]] | None = None, fault: Fault | None = None,
              live_at: float = NOW - 60, changed_at: float = NOW - 5, notes: tuple[str, ...] = ()) -> BookView:
    """A view of `venue` in `state`. `orders` (side -> (id, price, size) in arrival order) makes it an L3
    book; `convert` maps native levels (contracts) to base units as a perpetual's processor does."""
    key = FeedKey(venue, symbol)
    health = Health(key, lambda action: None)
    book = L3Book() if orders is not None else L2Book()
    feed = FeedBook(key, venue.upper(), book, health)
    feed.convert = convert
    feed.notes = notes
    if orders is not None:
        for side, rows in orders.items():
            for order_id, price, size in rows:
                book.add(order_id, side, D(price), D(size))
    else:
        book.replace(bids, asks)
    for step, target in enumerate(PATHS[state]):
        health.to(target, live_at if target is FeedState.LIVE else changed_at)
    if state in ("live", "stale", "resyncing"):
        health.integrity.since_snapshot(100)
        health.integrity.messages = 7
        health.integrity.last_sequence = 107
        health.last_data = NOW - (20 if state == "stale" else 0.05)
    if fault is not None:
        health.last_fault = fault
        health.resyncs = 1
    return BookView(feed, instrument, Symbol.parse(symbol))


def inverse(contract_value: D = D(1)) -> Callable[[Level], Level]:
    """An inverse perpetual's conversion: contracts x contract value / price, to 8 decimals."""
    def convert(level: Level) -> Level:
        price, contracts = level
        return price, (contracts * contract_value / price).quantize(D("0.00000001"))
    return convert


def test_every_state_is_reached_through_the_transition_table():
    for state in PATHS:
        view = make_view("v", levels(("100", "1")), levels(("101", "1")), state=state)
        assert view.state.value == state
        assert view.live is (state == "live")


def test_a_perpetual_view_reads_base_units_and_keeps_its_contracts():
    view = make_view("perp", levels(("50000", "100000")), (), instrument="perpetual", convert=inverse())
    assert list(view.levels(Side.BID)) == [(D("50000"), D("2.00000000"))]
    assert list(view.native_levels(Side.BID)) == [(D("50000"), D("100000"))]
