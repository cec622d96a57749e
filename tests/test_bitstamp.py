"""BitstampProcessor, sans-I/O: real `live_orders` frames and real `group=2` snapshot rows replayed into the
book they imply (level by level, order by order), the event chain, the snapshot bridge with its
millisecond rule and refetches, aggressive orders held pending, hostile input, and the simulator's own
matching engine driven through the processor without sockets."""
from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path

import pytest

from data_manager.book import Side
from data_manager.feed import FeedState
from data_manager.registry import venue, venues
from data_manager.sim.bitstamp import BitstampSim, OrderFlow
from data_manager.sim.clock import FIXED_START, SimClock
from data_manager.sim.market import Market
from data_manager.sim.server import SimVenueSettings
from data_manager.symbols import Symbol
from data_manager.venues.bitstamp import (AGGRESSOR_GRACE_EVENTS, HEARTBEAT, STALE_RETRY_SECONDS, VENUE,
                                          BitstampProcessor, BitstampSettings, native_symbol)
from tests.driver import Driver, FakeClock
from tests.fuzz import run_fuzz

SHARED = Path(__file__).resolve().parents[2] / "shared" / "venues-bitstamp"
D = Decimal
BID, ASK = Side.BID, Side.ASK
ASKS = [["79800.00", "1.00000000", "2046839900000000"]]


def _frames(name: str) -> list[str]:
    return [line for line in (SHARED / name).read_text().splitlines() if line.startswith("{")]


REAL = (_frames("live_orders_frames_2020-2026.txt")
        + _frames("FuaadBashi_Trading-Engine_bitstamp_live_orders_sample.jsonl"))
CONTROL = _frames("control_and_book_frames.txt")


def real(event_id: str) -> str:
    """The real frame with this `event_id` (the sources quote some twice: any copy is the same event)."""
    return next(line for line in REAL if f'"event_id":"{event_id}"' in line.replace(" ", ""))


def control(fragment: str) -> str:
    return next(line for line in CONTROL if fragment in line)


def make(natives: tuple[str, ...] = ("btcusd",), start: float = 1_788_551_767.0, **settings) -> Driver:
    symbols = {"btcusd": "BTC-USD", "ethusd": "ETH-USD"}
    processor = BitstampProcessor(BitstampSettings(**settings),
                                  [(Symbol.parse(symbols[n]), n) for n in natives], FakeClock(start))
    driver = Driver(processor)
    driver.connect()
    return driver


def snapshot(stamp: int | None, bids: list[list[str]], asks: list[list[str]]) -> str:
    body: dict = {"timestamp": str((stamp or 0) // 1_000_000), "bids": bids, "asks": asks}
    if stamp is not None:
        body["microtimestamp"] = str(stamp)
    return json.dumps(body)


def answer(driver: Driver, body: str, status: int = 200) -> None:
    (tag,) = list(driver.pending_fetches)
    driver.answer(tag, status, body)


def orders(driver: Driver, side: Side, native: str = "btcusd") -> dict[Decimal, list[tuple[str, Decimal]]]:
    """price -> [(order id, size)] in queue order, best price first: the book order by order."""
    book = driver.feed_book(native).book
    book.check()
    return {price: [(o.order_id, o.size) for o in book.orders_at(side, price)] for price, _ in book.levels(side)}


class Stream:
    """Synthetic `live_orders_btcusd` frames in the real shape, chained, one millisecond apart unless told."""

    def __init__(self, stamp_ms: int = 1_788_551_766_400, channel: str = "live_orders_btcusd") -> None:
        self.ms = stamp_ms
        self.count = 0
        self.last = "00065aad-0000-0000-0000-000100000020"
        self.channel = channel

    def frame(self, kind: str, order_id: str, side: Side, price: str, amount: str, traded: str = "0",
              same_ms: bool = False) -> str:
        if not same_ms:
            self.ms += 1
        self.count += 1
        stamp = self.ms * 1000
        digits = f"{stamp:016x}"
        event_id = f"{digits[:8]}-{digits[8:12]}-{digits[12:]}-{self.count:04x}-000100000020"
        previous, self.last = self.last, event_id
        return json.dumps({
            "data": {"id": int(order_id), "id_str": order_id, "order_type": 0 if side is BID else 1,
                     "order_subtype": 0, "datetime": str(stamp // 1_000_000), "microtimestamp": str(stamp),
                     "amount": float(amount), "amount_str": amount, "amount_traded": traded,
                     "amount_at_create": amount, "price": float(price), "price_str": price, "is_liquidation": False},
            "channel": self.channel, "event": kind, "event_id": event_id, "pre_event_id": previous,
            "order_source": "orderbook"}, separators=(",", ":"))

    def stamp(self) -> int:
        return self.ms * 1000


def live(bids: list[list[str]], asks: list[list[str]], stream: Stream | None = None,
         **settings) -> tuple[Driver, Stream]:
    """A processor whose btcusd book is live on this snapshot (one ghost-order delete buffered first)."""
    stream = stream or Stream()
    driver = make(**settings)
    driver.feed(stream.frame("order_deleted", "1", BID, "1.00", "0.1"))
    answer(driver, snapshot(stream.stamp() + 500, bids, asks))
    assert driver.state() is FeedState.LIVE
    return driver, stream


# --- the registry entry ---------------------------------------------------------------------------
def test_registry_entry_and_symbols() -> None:
    assert venues()["bitstamp"] is VENUE and venue("bitstamp").instrument == "spot"
    assert native_symbol(Symbol.parse("BTC-USD")) == "btcusd" and native_symbol(Symbol.parse("eth-usd")) == "ethusd"
    with pytest.raises(ValueError, match="no market"):
        native_symbol(Symbol.parse("DOGE-JPY"))
    settings = BitstampSettings()
    assert (settings.url, settings.rest_url) == ("wss://ws.bitstamp.net", "https://www.bitstamp.net")
    assert set(VENUE.sim_faults) == set(BitstampSim.supported_faults) and "checksum" not in VENUE.sim_faults
    assert "UNVERIFIED" in VENUE.limits.source and VENUE.limits.min_interval >= 1.0
    assert [len(pairs) for pairs in VENUE.connections(settings, [Symbol.parse("BTC-USD"), Symbol.parse("ETH-USD")])] \
        == [1, 1]


def test_subscribes_one_channel_a_frame_under_512_bytes_and_heartbeats() -> None:
    driver = make(("btcusd", "ethusd"))
    assert driver.sent == ['{"event":"bts:subscribe","data":{"channel":"live_orders_btcusd"}}',
                           '{"event":"bts:subscribe","data":{"channel":"live_orders_ethusd"}}']
    assert all(len(text.encode()) < 512 for text in driver.sent)
    assert driver.connects == ["wss://ws.bitstamp.net"]
    driver.advance(10.5)
    assert driver.sent[-1] == HEARTBEAT


# --- real frames into the books they imply ----------------------------------------------------------
C1, C2, C3 = ("00065aad-a8b2-3408-0000-000102000020", "00065aad-a8b2-4f60-0000-000103000020",
              "00065aad-a8b2-5348-0000-000100000020")


def test_real_consecutive_events_after_a_bridging_snapshot() -> None:
    """[C] (2026-09-04, three consecutive events, chain holds): a bid created, an ask created, a bid of the
    same size at the same price deleted (a requote). The snapshot is from the millisecond after the first
    event, so it holds that create; the two later events are replayed."""
    driver = make()
    driver.feed(real(C1))
    assert [f.request.url.split("&_=")[0] for f in driver.fetches] == \
        ["https://www.bitstamp.net/api/v2/order_book/btcusd/?group=2"]
    driver.feed(real(C2), real(C3))
    assert driver.state() is FeedState.SYNCING
    answer(driver, snapshot(1_788_551_766_358_123,
                            [["71743.85", "0.00137276", "2046839978799111"],   # listed out of queue order
                             ["71743.85", "0.00137276", "2046839978139649"]],
                            [["79800.00", "1.00000000", "2046839900000000"]]))
    assert driver.state() is FeedState.LIVE
    assert orders(driver, BID) == {D("71743.85"): [("2046839978799111", D("0.00137276"))]}
    assert orders(driver, ASK) == {D("79728.11"): [("2046839978831872", D("0.18816587"))],
                                   D("79800.00"): [("2046839900000000", D("1.00000000"))]}
    assert driver.levels(ASK) == [(D("79728.11"), D("0.18816587")), (D("79800.00"), D("1.00000000"))]
    stats = driver.processor.stats("btcusd")
    assert (stats.snapshots, stats.replayed, stats.refetches) == (1, 2, 0)
    published = [(e.kind, e.order_id, e.size) for e in driver.order_events]
    assert published == [("order_created", "2046839978831872", D("0.18816587")),
                         ("order_deleted", "2046839978139649", None)]


def test_real_snapshot_rows_newer_than_the_buffer() -> None:
    """The real group=2 head (2026-09-04 20:01:33): three orders at one price, ascending order id = queue
    order, whatever the listing order. It is newer than every buffered event ([C], 19:56): they are all
    covered; a later covered create is dropped, a covered delete still applies (remove by id)."""
    rows = json.loads(control('"microtimestamp": "1788552093805649"').replace('"...truncated here..."', ""))
    assert len(rows["bids"]) == 3 and rows["asks"] == []
    rows["asks"] = [["79829.25", "0.01000000", "2046841317056514"]]   # the source cut the asks off
    driver = make()
    driver.feed(real(C1))
    rows["bids"].reverse()
    answer(driver, json.dumps(rows))
    assert orders(driver, BID) == {D("79829.24"): [("2046841309597697", D("0.43225827")),
                                                   ("2046841312759811", D("0.00166542")),
                                                   ("2046841317056513", D("0.12500000"))]}
    driver.feed(real(C2), real(C3))
    assert orders(driver, ASK) == {D("79829.25"): [("2046841317056514", D("0.01000000"))]}
    stats = driver.processor.stats("btcusd")
    assert (stats.covered, stats.unknown_deletes, stats.replayed) == (1, 1, 0)


def test_real_order_changed_sets_the_remaining_size_in_place() -> None:
    """[A] order_changed (2026-08-09): `amount_str` is the remaining size, `amount_traded` this event's fill.
    The snapshot is from the event's own millisecond, listing the size before the fill: the event is
    replayed (its millisecond is not certainly in the snapshot) and the order keeps its queue place."""
    frame = real("0006589a-5d2d-1378-0003-000103000020")
    driver = make(start=1_786_269_872.0)
    driver.feed(frame)
    answer(driver, snapshot(1_786_269_871_707_480, [["64000.00", "1.00000000", "2037400000000000"]],
                            [["64840.12", "0.10000000", "2037472560999999"],
                             ["64840.12", "0.52162918", "2037472560562176"]]))
    assert orders(driver, ASK) == {D("64840.12"): [("2037472560562176", D("0.51590918")),
                                                   ("2037472560999999", D("0.10000000"))]}
    (event,) = driver.order_events
    assert (event.kind, event.side, event.price, event.size, event.filled) == \
        ("order_changed", "ask", D("64840.12"), D("0.51590918"), D("0.00572000"))


def test_real_chain_holds_then_breaks_and_reseeds() -> None:
    """Real 2026-08-09 lines: the delete [A], the line that followed it in the hour capture ([B]), then the
    fixture's create whose pre_event_id is [B]'s event_id: a chain. The fixture's next line was hand-picked
    from further on: its pre_event_id names an event we never saw, so the book is dropped and reseeded."""
    driver = make(start=1_786_269_863.0)
    driver.feed(real("0006589a-5c98-2678-0000-000101000020"), real("0006589a-5c98-f968-0000-000102000020"))
    answer(driver, snapshot(1_786_269_861_990_000,
                            [["64839.00", "2.31332185", "2037493293895680"],
                             ["64800.00", "0.10000000", "2037493200000000"]],
                            [["64840.12", "0.52162918", "2037472560562176"]]))
    assert list(orders(driver, BID)) == [D("64800.00")]       # [B] replayed: the order it deletes is gone
    driver.feed(real("0006589a-5c99-1c90-0000-000103000020"))
    assert orders(driver, BID) == {D("64839.06"): [("2037493298597888", D("2.31331873"))],
                                   D("64800.00"): [("2037493200000000", D("0.10000000"))]}
    assert driver.reconnects == []
    driver.feed(real("0006589a-5c99-a160-0000-000102000020"))
    (reason,) = driver.reconnects
    fault = driver.feed_book().health.last_fault
    assert fault.kind == "gap" and "0006589a-5c99-5ef8-0000-000101000020" in fault.detail
    assert "0006589a-5c99-1c90-0000-000103000020" in reason
    assert driver.state() is FeedState.RESYNCING and orders(driver, BID) == {}   # dropped, not patched
    driver.connect()                        # a new connection: a new chain, a fresh snapshot
    driver.feed(real("0006589a-5c99-a160-0000-000102000020"))
    assert len(driver.fetches) == 2 and driver.sent[-1].endswith('"live_orders_btcusd"}}')


@pytest.mark.parametrize("field, value", [("microtimestamp", "\u00b2"), ("microtimestamp", "1e6"),
                                          ("id_str", "\u0661\u0662"), ("order_type", True), ("price_str", "NaN"),
                                          ("amount_str", "1e-30"), ("amount_traded", "-1")])
def test_hostile_fields_are_venue_faults_never_exceptions(field: str, value: object) -> None:
    message = json.loads(real("0006589a-5d2d-1378-0003-000103000020"))
    message["data"][field] = value
    driver = make()
    driver.feed(json.dumps(message))
    assert driver.feed_book().health.last_fault.kind in ("malformed", "bad-level") and driver.reconnects


def test_pre_2023_frames_without_the_chain_are_refused() -> None:
    """[E]/[F] lack event_id: a lost event could not be detected, so the book could not be vouched for."""
    driver = make()
    driver.feed(next(line for line in REAL if '"id_str":"1651478886379522"' in line))
    assert driver.feed_book().health.last_fault.kind == "malformed" and driver.reconnects


def test_other_channels_and_control_frames_change_nothing() -> None:
    driver, _ = live([["100.00", "1.00000000", "10"]], [["101.00", "1.00000000", "11"]])
    before = orders(driver, BID), orders(driver, ASK)
    driver.feed(control('"live_trades_ethusd"'), control('"channel":"diff_order_book_ethusd","event":"data"'),
                control('{"event":"bts:subscription_succeeded","channel":"live_orders_btcusd"'),
                control('"bts:heartbeat", "channel"'), control('"bts:unsubscription_succeeded"'),
                real("00065b80-440c-8e58-0000-03f902000020"))   # [D]: live_orders_asterusd-perp, not ours
    assert (orders(driver, BID), orders(driver, ASK)) == before
    assert driver.reconnects == [] and driver.state() is FeedState.LIVE


@pytest.mark.parametrize("frame", [
    '{"event": "bts:request_reconnect", "channel": "", "data": null}',
    '{"event":"bts:request_reconnect","channel":"","data":""}',
    '{"event":"bts:request_reconnect","channel":"","data":{}}'])
def test_request_reconnect_with_any_payload_reseeds(frame: str) -> None:
    driver, _ = live([["100.00", "1.00000000", "10"]], [["101.00", "1.00000000", "11"]])
    driver.feed(frame)
    assert driver.feed_book().health.last_fault.kind == "request-reconnect"
    assert len(driver.reconnects) == 1 and driver.state() is FeedState.RESYNCING


@pytest.mark.parametrize("frame, kind", [
    ('{"event": "bts:error", "channel": "", "data": {"code": null, "message": "Invalid channel provided."}}',
     "malformed"),
    ('{"event":"order_replaced","channel":"live_orders_btcusd","data":{}}', "malformed"),
    ('{"event":["order_created"],"channel":"live_orders_btcusd"}', "malformed"),
    ('{"event":"order_created","channel":["live_orders_btcusd"]}', "malformed")])
def test_venue_errors_and_unknown_events_on_our_channel_reseed(frame: str, kind: str) -> None:
    driver, _ = live([["100.00", "1.00000000", "10"]], [["101.00", "1.00000000", "11"]])
    driver.feed(frame)
    assert driver.feed_book().health.last_fault.kind == kind and driver.reconnects


# --- the snapshot bridge --------------------------------------------------------------------------
def test_a_snapshot_older_than_the_first_buffered_event_is_fetched_again() -> None:
    driver = make()
    driver.feed(real(C1))
    first = driver.fetches[0].request.url
    assert re.search(r"[?&]_=\d+", first)                   # the cache-buster (§6)
    answer(driver, snapshot(1_788_551_766_356_999, [["71743.85", "1.00000000", "1"]], ASKS))  # 1 µs too old
    assert driver.state() is FeedState.SYNCING and driver.processor.stats("btcusd").refetches == 1
    driver.advance(STALE_RETRY_SECONDS - 0.25)
    assert len(driver.fetches) == 1                          # the edge would answer the same copy
    driver.advance(0.5)
    assert len(driver.fetches) == 2 and driver.fetches[1].request.url != first
    answer(driver, snapshot(1_788_551_766_357_000, [["71743.85", "1.00000000", "1"]], ASKS))  # its own ms
    assert driver.state() is FeedState.LIVE


def test_a_snapshot_without_a_microtimestamp_is_fetched_again() -> None:
    driver = make()
    driver.feed(real(C1))
    answer(driver, snapshot(None, [["71743.85", "1.00000000", "1"]], ASKS))
    assert driver.state() is FeedState.SYNCING
    driver.advance(STALE_RETRY_SECONDS + 0.25)
    assert len(driver.fetches) == 2


def test_snapshot_http_failures() -> None:
    driver = make()
    driver.feed(real(C1))
    answer(driver, "busy", status=503)
    driver.advance(2.5)
    answer(driver, '{"status":"error","reason":"Unsupported GET parameter(s): _","code":"400.018"}', status=400)
    driver.advance(0.5)
    assert "_=" not in driver.fetches[-1].request.url       # asked again without the cache-buster
    answer(driver, "slow down", status=429)
    driver.advance(5)
    assert len(driver.fetches) == 3
    driver.advance(6)
    assert len(driver.fetches) == 4 and driver.reconnects == []
    answer(driver, '{"status":"error","reason":"Not found"}', status=404)
    assert driver.feed_book().health.last_fault.kind == "snapshot" and driver.reconnects


@pytest.mark.parametrize("bids, asks, kind", [
    ([["100.00", "1.00000000"]], ASKS, "snapshot"),                                   # group=1 rows
    ([["100.00", "1.0", "5"], ["99.00", "1.0", "5"]], ASKS, "snapshot"),              # an id twice
    ([["101.00", "1.0", "5"]], [["100.00", "1.0", "6"]], "crossed"),
    ([["100.00", "1.0", "5"]], [], "snapshot"),                                       # one side only
    ([["100.00", "-1", "5"]], ASKS, "bad-level"),
    ([["100.00", "1.0", "5e3"]], ASKS, "malformed")])
def test_unusable_snapshots_reseed(bids, asks, kind) -> None:
    driver = make()
    driver.feed(real(C1))
    answer(driver, snapshot(1_788_551_766_400_000, bids, asks))
    assert driver.feed_book().health.last_fault.kind == kind and driver.reconnects


def test_a_leftover_snapshot_answer_after_a_reconnect_is_ignored() -> None:
    driver = make()
    driver.feed(real(C1))
    (old_tag,) = list(driver.pending_fetches)
    driver.lose_connection()
    driver.connect()
    driver.feed(real(C2))
    driver.answer(old_tag, 200, snapshot(1_788_551_766_999_000, [["71743.85", "1.00000000", "1"]], ASKS))
    assert driver.state() is FeedState.RESYNCING
    answer(driver, snapshot(1_788_551_766_364_500, [["71743.85", "1.00000000", "1"]], ASKS))
    assert driver.state() is FeedState.LIVE


# --- events on a live book ------------------------------------------------------------------------
def test_warm_up_deletes_of_unknown_orders_are_counted_not_faults() -> None:
    driver, stream = live([["100.00", "1.00000000", "10"]], [["101.00", "1.00000000", "11"]])
    driver.feed(stream.frame("order_deleted", "999", BID, "100.00", "0.5"),
                stream.frame("order_deleted", "998", ASK, "101.00", "0.5"))
    assert driver.processor.stats("btcusd").unknown_deletes == 3   # the ghost buffered before, and these
    assert driver.reconnects == [] and driver.state() is FeedState.LIVE
    assert orders(driver, BID) == {D("100.00"): [("10", D("1.00000000"))]}


def test_changes_create_move_and_delete_orders_by_id() -> None:
    """A change sets the remaining size in place; a price move joins the back of the new level; a change of
    an unknown order inserts it; a delete removes by id whatever (off-grid) price it carries."""
    driver, stream = live([["100.00", "1.00000000", "10"], ["100.00", "2.00000000", "12"],
                           ["99.00", "3.00000000", "13"]], [["101.00", "1.00000000", "11"]])
    driver.feed(stream.frame("order_changed", "12", BID, "100.00", "1.50000000", traded="0.50000000"),
                stream.frame("order_changed", "10", BID, "99.00", "1.00000000"),
                stream.frame("order_changed", "14", ASK, "102.00", "0.25000000"),
                stream.frame("order_created", "15", ASK, "101.00", "0.75000000"),
                stream.frame("order_deleted", "11", ASK, "100.91523761", "0"))
    assert orders(driver, BID) == {D("100.00"): [("12", D("1.50000000"))],
                                   D("99.00"): [("13", D("3.00000000")), ("10", D("1.00000000"))]}
    assert orders(driver, ASK) == {D("101.00"): [("15", D("0.75000000"))], D("102.00"): [("14", D("0.25000000"))]}
    driver.feed(stream.frame("order_changed", "15", ASK, "101.00", "0"))
    assert orders(driver, ASK) == {D("102.00"): [("14", D("0.25000000"))]}


def test_price_zero_market_orders_are_skipped_for_their_whole_lifecycle() -> None:
    driver, stream = live([["100.00", "1.00000000", "10"]], [["101.00", "1.00000000", "11"]])
    driver.feed(stream.frame("order_created", "20", BID, "0.00", "0.40000000"),
                stream.frame("order_changed", "11", ASK, "101.00", "0.60000000", traded="0.40000000", same_ms=True),
                stream.frame("order_changed", "20", BID, "101.00", "0.10000000", same_ms=True),
                stream.frame("order_deleted", "20", BID, "101.00000000", "0", traded="0.40000000", same_ms=True))
    assert orders(driver, BID) == {D("100.00"): [("10", D("1.00000000"))]}
    assert orders(driver, ASK) == {D("101.00"): [("11", D("0.60000000"))]}
    stats = driver.processor.stats("btcusd")
    assert (stats.market_orders, stats.unknown_deletes) == (1, 1)   # 1: the delete buffered before the snapshot


def test_duplicated_events_are_skipped() -> None:
    driver, stream = live([["100.00", "1.00000000", "10"]], [["101.00", "1.00000000", "11"]])
    created = stream.frame("order_created", "21", BID, "99.00", "0.5")
    changed = stream.frame("order_changed", "21", BID, "99.00", "0.2")
    driver.feed(created, changed, created, changed)
    assert orders(driver, BID)[D("99.00")] == [("21", D("0.2"))]
    assert driver.processor.stats("btcusd").duplicates == 2 and driver.reconnects == []


# --- marketable orders (open question 1) ----------------------------------------------------------------
BOOK = ([["100.00", "1.00000000", "10"]], [["101.00", "0.30000000", "11"], ["102.00", "1.00000000", "12"]])


def test_a_marketable_create_is_pending_until_its_change_shows_it_passive() -> None:
    """S3/S5: the aggressor's create comes first, at its limit; then the maker's fill; then its own change
    for the remainder. The book is never crossed meanwhile, and no fault is raised."""
    driver, stream = live(*BOOK)
    driver.feed(stream.frame("order_created", "30", BID, "101.50", "1.00000000"))
    assert driver.processor.pending("btcusd").keys() == {"30"}
    assert driver.levels(BID) == [(D("100.00"), D("1.00000000"))] and not driver.feed_book().book.crossed()
    driver.feed(stream.frame("order_deleted", "11", ASK, "101.00", "0", traded="0.30000000", same_ms=True))
    assert driver.processor.pending("btcusd").keys() == {"30"}      # its own millisecond is not over
    driver.feed(stream.frame("order_changed", "30", BID, "101.50", "0.70000000", traded="0.30000000", same_ms=True))
    assert driver.processor.pending("btcusd") == {}
    assert orders(driver, BID) == {D("101.50"): [("30", D("0.70000000"))], D("100.00"): [("10", D("1.00000000"))]}
    assert orders(driver, ASK) == {D("102.00"): [("12", D("1.00000000"))]}
    stats = driver.processor.stats("btcusd")
    assert (stats.aggressors, stats.aggressors_rested) == (1, 1)
    assert driver.reconnects == [] and driver.state() is FeedState.LIVE


def test_a_sweep_of_hundreds_of_makers_in_one_millisecond_is_not_a_crossed_book() -> None:
    """One aggressor, 600 makers, 1,200 events published in its millisecond: no grace counts inside it."""
    asks = [[f"{101 + n // 100}.{n % 100:02d}", "0.01000000", str(1000 + n)] for n in range(600)]
    driver, stream = live([["100.00", "1.00000000", "10"]], asks)
    driver.feed(stream.frame("order_created", "40", BID, "108.00", "7.00000000"))
    left = 700
    for n in range(600):
        left -= 1
        driver.feed(stream.frame("order_deleted", str(1000 + n), ASK, asks[n][0], "0", traded="0.01000000",
                                 same_ms=True),
                    stream.frame("order_changed", "40", BID, "108.00", f"{left // 100}.{left % 100:02d}000000",
                                 traded="0.01000000", same_ms=True))
    assert driver.reconnects == [] and driver.processor.pending("btcusd") == {}
    assert orders(driver, BID)[D("108.00")] == [("40", D("1.00000000"))] and orders(driver, ASK) == {}


def test_a_marketable_create_deleted_in_its_millisecond_never_shows() -> None:
    driver, stream = live(*BOOK)
    driver.feed(stream.frame("order_created", "31", ASK, "100.00", "0.5"),
                stream.frame("order_deleted", "31", ASK, "100.00", "0.5", same_ms=True),
                stream.frame("order_created", "32", BID, "99.00", "0.1"))
    assert orders(driver, BID) == {D("100.00"): [("10", D("1.00000000"))], D("99.00"): [("32", D("0.1"))]}
    assert driver.processor.pending("btcusd") == {} and driver.reconnects == []
    assert driver.processor.stats("btcusd").unknown_deletes == 1     # only the one buffered before the snapshot


def test_fills_before_the_create_of_the_remainder_need_no_holding() -> None:
    """S4's reading: the maker's fill first, then a create for the remainder, passive on arrival."""
    driver, stream = live(*BOOK)
    driver.feed(stream.frame("order_deleted", "11", ASK, "101.00", "0", traded="0.30000000"),
                stream.frame("order_created", "33", BID, "101.00", "0.70000000", same_ms=True))
    assert driver.processor.pending("btcusd") == {}
    assert orders(driver, BID)[D("101.00")] == [("33", D("0.70000000"))]


def test_a_pending_order_rests_once_its_millisecond_is_over_and_it_no_longer_crosses() -> None:
    """Its counterparty left before it traded (a cancel raced it) and no event of its own followed."""
    driver, stream = live(*BOOK)
    driver.feed(stream.frame("order_created", "34", BID, "101.00", "0.5"),
                stream.frame("order_deleted", "11", ASK, "101.00", "0.3", same_ms=True))
    assert driver.processor.pending("btcusd").keys() == {"34"}      # its millisecond is not over
    driver.feed(stream.frame("order_created", "35", ASK, "103.00", "0.1"))
    assert driver.processor.pending("btcusd") == {}
    assert orders(driver, BID)[D("101.00")] == [("34", D("0.5"))]


@pytest.mark.parametrize("by", ["time", "events"])
def test_an_order_that_stays_marketable_past_the_grace_is_a_crossed_book(by: str) -> None:
    driver, stream = live(*BOOK, aggressor_grace=0.5)
    driver.feed(stream.frame("order_created", "36", BID, "102.00", "0.5"))
    if by == "time":
        stream.ms += 400
        driver.feed(stream.frame("order_created", "37", BID, "98.00", "0.1"))
        assert driver.reconnects == []
        stream.ms += 200
        driver.feed(stream.frame("order_created", "38", BID, "98.00", "0.1"))
    else:   # the venue's clock stands still after its millisecond: events are the backstop
        driver.feed(stream.frame("order_created", "37", BID, "98.00", "0.1"))
        for n in range(AGGRESSOR_GRACE_EVENTS):
            assert driver.reconnects == []
            driver.feed(stream.frame("order_changed", "37", BID, "98.00", "0.1", same_ms=True))
    fault = driver.feed_book().health.last_fault
    assert fault.kind == "crossed" and "102.00" in fault.detail and "101.00" in fault.detail
    assert driver.reconnects and driver.state() is FeedState.RESYNCING


# --- liveness -----------------------------------------------------------------------------------------
def test_heartbeat_answers_do_not_keep_a_silent_channel_live() -> None:
    driver, _ = live([["100.00", "1.00000000", "10"]], [["101.00", "1.00000000", "11"]], max_age=2.0)
    for _ in range(3):
        driver.advance(1.0)
        driver.feed(control('"bts:heartbeat", "channel"'))
    assert driver.state() is FeedState.STALE
    driver.advance(2.0)
    assert driver.feed_book().health.last_fault.kind == "stale" and driver.reconnects


def test_an_acked_subscription_that_stays_silent_never_goes_live() -> None:
    """§2: an unknown lowercase pair is acked, then silent."""
    driver = make()
    driver.feed('{"event":"bts:subscription_succeeded","channel":"live_orders_btcusd","data":{}}')
    driver.advance(31)
    assert driver.feed_book().health.last_fault.kind == "no-book" and driver.fetches == []


# --- the simulator's matching engine through the processor, no sockets ------------------------------------
def _flows(natives: tuple[str, ...], seed: int, levels: int) -> tuple[BitstampSim, dict[str, OrderFlow]]:
    symbols = {"btcusd": "BTC-USD", "ethusd": "ETH-USD"}
    sim = BitstampSim(Market(seed), seed, SimVenueSettings(levels=levels), {n: symbols[n] for n in natives},
                      SimClock(FIXED_START))
    return sim, sim.flows


def test_the_simulated_venue_book_is_rebuilt_exactly_order_by_order() -> None:
    """Two pairs on one processor (routed by channel), thousands of events with aggressors, market orders,
    post-only refusals and orphan deletes, a mid that walks, and snapshots taken mid-stream (so events of
    the snapshot's own millisecond are replayed over it): every level and every queue equals the engine's."""
    natives = ("btcusd", "ethusd")
    sim, flows = _flows(natives, seed=3, levels=120)
    driver = make(natives, start=FIXED_START)
    clock_us = int(FIXED_START * 1e6)

    def steps(count: int, start: int) -> list[str]:
        frames = []
        for n in range(start, start + count):
            for native, flow in flows.items():
                frames += flow.step(sim.market.mid_at(n * 0.05, sim.symbols[native]), clock_us + n * 7_000)
        return frames

    frames = steps(20, 0)
    bodies = {native: json.dumps(flow.snapshot(2)) for native, flow in flows.items()}
    answer_at = len(frames) + 100          # the snapshots come back while 100 later events are buffered
    frames += steps(1500, 20)
    for n, frame in enumerate(frames):
        driver.feed(frame)
        for tag in list(driver.pending_fetches) if n >= answer_at else ():
            driver.answer(tag, 200, bodies[tag.split()[1]])
    for native in natives:
        assert driver.state(native) is FeedState.LIVE
        truth = sim.true_orders(native)
        assert orders(driver, BID, native) == truth["bid"] and orders(driver, ASK, native) == truth["ask"]
        assert driver.levels(BID, native) == sim.true_book(native)["bid"]
        stats = driver.processor.stats(native)
        assert stats.aggressors > 100 and stats.aggressors_rested > 10 and stats.market_orders > 10
        assert stats.replayed > 0
    assert driver.reconnects == []


# --- hostile input ------------------------------------------------------------------------------------
def test_fuzz() -> None:
    """Mutated real and simulated frames: faults recorded, never an exception; books always valid."""
    sim, flows = _flows(("btcusd",), seed=5, levels=25)
    flow = flows["btcusd"]
    clock_us = int(FIXED_START * 1e6)
    frames = []
    for n in range(60):
        frames += flow.step(sim.mid("btcusd"), clock_us + n * 3_000)
    body = flow.snapshot(2)
    body.update(bids=body["bids"][:6], asks=body["asks"][:6])   # a small book: reconnects are many
    frames += [real(C1), real("0006589a-5d2d-1378-0003-000103000020"), control('"bts:heartbeat", "channel"'),
               '{"event":"bts:request_reconnect","channel":"","data":""}']

    fed = [""]   # the frame being fed: the snapshot answered during it is stamped as that event

    class FuzzDriver(Driver):
        def feed(self, *texts: str) -> None:
            fed[0] = texts[-1]
            super().feed(*texts)

    def snapshot_at_the_last_event(request, tag) -> tuple[int, str]:
        found = re.search(r'"microtimestamp":\s*"(\d{1,20})"', fed[0])
        return 200, json.dumps({**body, "microtimestamp": found[1] if found else str(clock_us)})

    def make_driver() -> Driver:
        processor = BitstampProcessor(BitstampSettings(), [(Symbol.parse("BTC-USD"), "btcusd")],
                                      FakeClock(FIXED_START))
        driver = FuzzDriver(processor, http=snapshot_at_the_last_event)
        driver.connect()
        return driver

    result = run_fuzz(make_driver, frames, count=20_000)
    assert result["reconnects"] > 100
