"""Kraken v2 `book` processor, sans-I/O: recorded captures replayed through the test driver and checked
against a plain-dict reference replay (one pair, and ten pairs on one connection), plus hand-built
frames for checksum, truncation, routing, hostile numbers, malformed and crossed cases, and the
connection's requests (instrument first, then one book subscribe for every pair, pings)."""
from __future__ import annotations

import json
import re
import tracemalloc
import zlib
from decimal import Decimal
from pathlib import Path

import pytest

from data_manager.book import Side
from data_manager.errors import BadLevel, ChecksumMismatch, CrossedBook, MessageError
from data_manager.feed import FeedState
from data_manager.registry import venue
from data_manager.symbols import Symbol
from data_manager.venues.kraken import (INSTRUMENT_WAIT_SECONDS, VALID_DEPTHS, VENUE, KrakenProcessor,
                                        KrakenSettings, native_symbol)
from tests.driver import Driver, FakeClock

CAPTURES = Path(__file__).resolve().parents[2] / "shared" / "captures"
BTC_USD_HEAD = CAPTURES / "kraken_v2_book_BTC-USD_d10_2026-08-16_head.ndjson"
MINA_GBP = CAPTURES / "kraken_v2_book_MINA-GBP_d25_2026-08-16.ndjson"
DEPTH_1000 = CAPTURES / "kraken_v2_book_depth1000_2021-04-17.ndjson"

INSTRUMENT_REFUSED = '{"method":"subscribe","req_id":2,"success":false,"error":"Channel not supported"}'


# --- an independent reference: plain dicts, sorted only when read --------------------------------
class ReferenceBook:
    """What the book must hold, written as naively as possible (no sorted containers, no caches)."""

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self.sides: dict[str, dict[Decimal, Decimal]] = {"bids": {}, "asks": {}}

    def load(self, entry: dict, snapshot: bool) -> None:
        for name, levels in self.sides.items():
            if snapshot:
                levels.clear()
            for row in entry[name]:
                price, qty = Decimal(row["price"]), Decimal(row["qty"])
                if qty == 0:
                    levels.pop(price, None)
                else:
                    levels[price] = qty
        for name in self.sides:  # Kraken sends no delete for levels pushed out of the depth
            self.sides[name] = dict(self.best_first(name)[: self.depth])

    def best_first(self, name: str) -> list[tuple[Decimal, Decimal]]:
        return sorted(self.sides[name].items(), reverse=(name == "bids"))


def reference_replay(lines: list[str], depth: int) -> dict[str, ReferenceBook]:
    books: dict[str, ReferenceBook] = {}
    for line in lines:
        message = json.loads(line, parse_float=Decimal, parse_int=Decimal)
        if message.get("channel") == "book":
            entry = message["data"][0]
            book = books.setdefault(entry["symbol"], ReferenceBook(depth))
            book.load(entry, snapshot=message["type"] == "snapshot")
    return books


def reference_checksum(bids, asks, price_precision: int = 1, qty_precision: int = 8) -> int:
    """The docs' algorithm, written out again for hand-built frames."""
    def digits(value, precision: int) -> str:
        return f"{Decimal(value):.{precision}f}".replace(".", "").lstrip("0")
    top_asks = sorted(asks, key=lambda level: Decimal(level[0]))[:10]
    top_bids = sorted(bids, key=lambda level: Decimal(level[0]), reverse=True)[:10]
    text = "".join(digits(p, price_precision) + digits(q, qty_precision) for p, q in top_asks + top_bids)
    return zlib.crc32(text.encode())


def book_frame(kind: str, bids, asks, checksum: int, symbol: str = "BTC/USD") -> str:
    """A v2 book frame with numbers written as JSON numbers, as Kraken writes them."""
    def rows(levels) -> str:
        return "[" + ",".join(f'{{"price":{p},"qty":{q}}}' for p, q in levels) + "]"
    return (f'{{"channel":"book","type":"{kind}","data":[{{"symbol":"{symbol}","bids":{rows(bids)},'
            f'"asks":{rows(asks)},"checksum":{checksum},"timestamp":"2026-08-16T23:37:05.376419Z"}}]}}')


def instrument_frame(precisions: dict[str, tuple[int, int]], kind: str = "snapshot") -> str:
    pairs = [{"symbol": symbol, "base": symbol.split("/")[0], "quote": symbol.split("/")[1], "status": "online",
              "price_precision": pp, "qty_precision": qp} for symbol, (pp, qp) in precisions.items()]
    return json.dumps({"channel": "instrument", "type": kind, "data": {"assets": [], "pairs": pairs}})


def driver(*natives: str, clock: FakeClock | None = None, processor_class=KrakenProcessor, **settings) -> Driver:
    """A connected processor for `natives` (BTC/USD by default)."""
    symbols = [(Symbol.parse(n.replace("/", "-")), n) for n in natives or ("BTC/USD",)]
    settings.setdefault("depth", 10)
    processor = processor_class(KrakenSettings(**settings), symbols, clock or FakeClock())
    d = Driver(processor)
    d.connect()
    return d


def replay(d: Driver, lines: list[str]) -> None:
    """Feed every frame, check every book after each one; no frame may fault."""
    for line in lines:
        d.feed(line)
        for feed in d.processor.books.values():
            feed.book.check()
    assert d.reconnects == [], d.reconnects


def integrity(d: Driver, native: str = "BTC/USD"):
    return d.feed_book(native).health.integrity


def lines_of(path: Path) -> list[str]:
    return path.read_text().splitlines()


def assert_book_is(d: Driver, native: str, reference: ReferenceBook) -> None:
    assert d.levels(Side.BID, native) == reference.best_first("bids"), native
    assert d.levels(Side.ASK, native) == reference.best_first("asks"), native


# --- recorded captures ----------------------------------------------------------------------------
def test_btc_usd_head_every_checksum_verifies_and_book_matches_reference():
    d = driver()
    d.feed(instrument_frame({"BTC/USD": (1, 8)}))
    lines = lines_of(BTC_USD_HEAD)
    replay(d, lines)

    assert integrity(d).checksums_verified == 54
    assert integrity(d).messages == 54
    assert integrity(d).snapshots == 1
    assert d.state() is FeedState.LIVE
    reference = reference_replay(lines, 10)["BTC/USD"]
    assert_book_is(d, "BTC/USD", reference)
    book = d.feed_book().book
    assert book.best(Side.BID) == reference.best_first("bids")[0]
    assert book.best(Side.ASK) == reference.best_first("asks")[0]
    assert book.depth(Side.BID) == book.depth(Side.ASK) == 10
    assert d.changed == ["kraken BTC-USD"] * 54
    assert d.feed_book().notes == ()


def test_mina_gbp_depth_25_with_configured_precision():
    d = driver("MINA/GBP", depth=25, price_precision=4, qty_precision=8)
    d.feed(INSTRUMENT_REFUSED)
    lines = lines_of(MINA_GBP)
    replay(d, lines)
    assert integrity(d, "MINA/GBP").checksums_verified == 30
    assert_book_is(d, "MINA/GBP", reference_replay(lines, 25)["MINA/GBP"])
    assert d.feed_book().notes == (
        "checksum precision 4/8 assumed: instrument channel refused (Channel not supported)",)


def test_mina_gbp_precision_from_an_instrument_frame():
    """Configured with BTC/USD's 1/8, the instrument channel's 4/8 makes every checksum verify; the book
    is subscribed only once the precision is known."""
    d = driver("MINA/GBP", depth=25)
    assert [json.loads(text)["params"]["channel"] for text in d.sent] == ["instrument"]
    d.feed(instrument_frame({"MINA/GBP": (4, 8), "BTC/USD": (1, 8)}))
    assert json.loads(d.sent[-1])["params"] == {"channel": "book", "symbol": ["MINA/GBP"], "depth": 25,
                                                "snapshot": True}
    assert d.processor.precision("MINA/GBP") == (4, 8)
    replay(d, lines_of(MINA_GBP))
    assert integrity(d, "MINA/GBP").checksums_verified == 30


def test_depth_1000_ten_pairs_on_one_connection_each_routed_to_its_book():
    """The converted capture is one connection carrying ten pairs: status, instrument, ten acks, then the
    pairs' frames interleaved. Each pair's precision comes from the instrument frame."""
    lines = lines_of(DEPTH_1000)
    pairs = json.loads(lines[1])["data"]["pairs"]
    natives = [pair["symbol"] for pair in pairs]
    d = driver(*natives, depth=1000)
    for number, line in enumerate(lines):
        d.feed(line)
        if number % 200 == 0:  # check() on 1000-level books is costly
            for feed in d.processor.books.values():
                feed.book.check()
    assert d.reconnects == []

    subscribe = json.loads(d.sent[-1])
    assert subscribe["params"]["symbol"] == natives and subscribe["params"]["depth"] == 1000
    for pair in pairs:
        assert d.processor.precision(pair["symbol"]) == (pair["price_precision"], pair["qty_precision"])
    assert sum(integrity(d, n).checksums_verified for n in natives) == 4279
    assert sum(integrity(d, n).messages for n in natives) == 4279
    btc_chf = d.feed_book("BTC/CHF").book
    assert btc_chf.depth(Side.BID) == 500 and btc_chf.depth(Side.ASK) == 315
    reference = reference_replay(lines, 1000)
    for native in natives:
        d.feed_book(native).book.check()
        assert d.state(native) is FeedState.LIVE
        assert_book_is(d, native, reference[native])


TWO_PAIRS = ("BTC/CHF", "ETH/CHF")


def interleaved() -> list[str]:
    """BTC/CHF and ETH/CHF book frames, interleaved as recorded, at depth 1000."""
    return [line for line in lines_of(DEPTH_1000) if line.startswith('{"channel":"book"')
            and json.loads(line)["data"][0]["symbol"] in TWO_PAIRS]


def two_pairs() -> Driver:
    d = driver(*TWO_PAIRS, depth=1000)
    d.feed(lines_of(DEPTH_1000)[1])  # the capture's instrument frame: precision 5/8 for both
    return d


def test_two_pairs_interleaved_on_one_connection_each_book_exact():
    d = two_pairs()
    lines = interleaved()
    symbols = [json.loads(line)["data"][0]["symbol"] for line in lines]
    assert symbols[:2] == ["BTC/CHF", "ETH/CHF"] or symbols[:2] == ["ETH/CHF", "BTC/CHF"]
    replay(d, lines)
    reference = reference_replay(lines, 1000)
    for native in TWO_PAIRS:
        assert_book_is(d, native, reference[native])
        assert integrity(d, native).checksums_verified == symbols.count(native)
        assert d.changed.count(f"kraken {native.replace('/', '-')}") == symbols.count(native)


def test_a_checksum_mismatch_on_one_pair_resyncs_every_pair_of_the_connection():
    d = two_pairs()
    lines = interleaved()
    replay(d, lines[:40])
    bad = json.loads(lines[40])["data"][0]
    true_checksum = bad["checksum"]
    d.feed(lines[40].replace(f'"checksum":{true_checksum}', f'"checksum":{true_checksum ^ 1}'))

    assert len(d.reconnects) == 1 and d.reconnects[0].startswith("checksum:")
    for native in TWO_PAIRS:
        health = d.feed_book(native).health
        assert health.last_fault.kind == "checksum"
        assert health.state is FeedState.RESYNCING
        assert d.feed_book(native).book.depth(Side.BID) == 0

    # the new connection subscribes at once (precision known) and both pairs come back from snapshots
    d.sent.clear()
    d.connect()
    assert [json.loads(text)["params"]["channel"] for text in d.sent] == ["instrument", "book"]
    d.reconnects.clear()
    replay(d, lines)
    reference = reference_replay(lines, 1000)
    for native in TWO_PAIRS:
        assert d.state(native) is FeedState.LIVE
        assert_book_is(d, native, reference[native])


# --- checksum, truncation, crossed ----------------------------------------------------------------
def test_corrupted_checksum_is_a_fault_with_both_values_and_the_book_is_dropped():
    lines = lines_of(BTC_USD_HEAD)
    d = driver()
    d.feed(INSTRUMENT_REFUSED, *lines[:5])
    true_checksum = json.loads(lines[5])["data"][0]["checksum"]
    wrong = (true_checksum + 1) % 2**32
    corrupted = lines[5].replace(f'"checksum":{true_checksum}', f'"checksum":{wrong}')

    with pytest.raises(ChecksumMismatch) as caught:
        d.processor.on_frame(corrupted)
    assert (caught.value.expected, caught.value.computed, caught.value.venue) == (wrong, true_checksum, "kraken")

    d.feed(corrupted)
    fault = d.feed_book().health.last_fault
    assert fault.kind == "checksum" and str(wrong) in fault.detail and str(true_checksum) in fault.detail
    assert d.state() is FeedState.RESYNCING and d.reconnects
    assert d.feed_book().book.depth(Side.BID) == 0

    d.connect()  # a new connection: an update before its snapshot is refused
    with pytest.raises(MessageError, match="before a snapshot"):
        d.processor.on_frame(lines[6])


def snapshot_levels(count: int = 10):
    bids = [(f"{100 - i}.0", "1.00000000") for i in range(count)]
    asks = [(f"{101 + i}.0", "2.00000000") for i in range(count)]
    return bids, asks


def live(depth: int = 10, processor_class=KrakenProcessor) -> Driver:
    d = driver(depth=depth, processor_class=processor_class)
    d.feed(instrument_frame({"BTC/USD": (1, 8)}))
    bids, asks = snapshot_levels()
    d.feed(book_frame("snapshot", bids, asks, reference_checksum(bids, asks)))
    assert d.state() is FeedState.LIVE
    return d


def test_update_inserting_above_depth_drops_the_worst_level():
    d = live(depth=10)
    bids, asks = snapshot_levels()
    new_bids = [("100.5", "0.50000000")] + bids[:9]  # 91.0 falls out of the 10 levels: no delete sent
    d.feed(book_frame("update", [("100.5", "0.50000000")], [], reference_checksum(new_bids, asks)))
    book = d.feed_book().book
    book.check()
    assert book.depth(Side.BID) == 10
    assert book.best(Side.BID) == (Decimal("100.5"), Decimal("0.5"))
    assert book.size_at(Side.BID, Decimal("91.0")) is None
    assert d.levels(Side.BID)[-1] == (Decimal("92.0"), Decimal("1"))

    # a delete inside the window: the book holds 9 bids until Kraken sends the level that enters
    d.feed(book_frame("update", [("100.5", "0.00000000"), ("91.0", "1.00000000")], [],
                      reference_checksum(bids, asks)))
    assert d.levels(Side.BID) == [(Decimal(p), Decimal(q)) for p, q in bids]
    assert integrity(d).checksums_verified == 3
    assert d.reconnects == []


def test_same_price_twice_in_one_update_is_applied_in_order():
    d = live()
    bids, asks = snapshot_levels()
    final_asks = [("101.0", "0.25000000")] + asks[1:]
    d.feed(book_frame("update", [], [("101.0", "0.00000000"), ("101.0", "0.25000000")],
                      reference_checksum(bids, final_asks)))
    assert d.feed_book().book.best(Side.ASK) == (Decimal("101.0"), Decimal("0.25"))
    assert d.reconnects == []


def test_deep_update_reuses_cached_top_and_still_catches_a_wrong_checksum():
    d = live(depth=25)
    bids, asks = snapshot_levels()
    checksum = reference_checksum(bids, asks)
    d.feed(book_frame("update", [("80.0", "1.00000000")], [], checksum))  # below the 10th bid
    assert d.feed_book().book.size_at(Side.BID, Decimal("80.0")) == Decimal(1)
    assert d.processor.checksum("BTC/USD") == checksum
    with pytest.raises(ChecksumMismatch):
        d.processor.on_frame(book_frame("update", [("79.0", "1.00000000")], [], checksum ^ 1))


def test_crossed_update_with_a_consistent_checksum_is_a_crossed_fault():
    d = live()
    bids, asks = snapshot_levels()
    crossed_bids = [("101.0", "0.10000000")] + bids
    frame = book_frame("update", [("101.0", "0.10000000")], [], reference_checksum(crossed_bids, asks))
    with pytest.raises(CrossedBook) as caught:
        live().processor.on_frame(frame)
    assert (caught.value.bid, caught.value.ask) == (Decimal("101.0"), Decimal("101.0"))
    d.feed(frame)
    assert d.feed_book().health.last_fault.kind == "crossed" and d.reconnects


class UncheckedKraken(KrakenProcessor):
    """What a benchmark that measures the checksum's cost subclasses: the one overridable switch."""

    def verify_checksum(self, pair, bids, asks, expected) -> bool:
        return False


def test_a_subclass_can_switch_the_checksum_off_and_the_book_is_still_exact():
    d = driver(processor_class=UncheckedKraken)
    d.feed(INSTRUMENT_REFUSED)
    lines = lines_of(BTC_USD_HEAD)
    replay(d, [re.sub(r'"checksum":\d+', '"checksum":7', line) for line in lines])  # every checksum wrong
    assert integrity(d).checksums_verified == 0 and integrity(d).messages == 54
    assert_book_is(d, "BTC/USD", reference_replay(lines, 10)["BTC/USD"])


# --- hostile and malformed frames -----------------------------------------------------------------
SNAPSHOT_HEAD = '{"channel":"book","type":"snapshot","data":[{"symbol":"BTC/USD",'
UPDATE_HEAD = '{"channel":"book","type":"update","data":[{"symbol":"BTC/USD",'


def test_a_huge_exponent_is_refused_before_any_formatting():
    """The old client spent 7-26 s and over 2 GB formatting this ~200-byte frame for its checksum."""
    d = live()
    before = d.feed_book().book.as_dict()
    frame = UPDATE_HEAD + '"bids":[{"price":99.0,"qty":1e999999999}],"asks":[],"checksum":1}]}'
    tracemalloc.start()
    try:
        with pytest.raises(MessageError, match="not a finite number in range"):
            d.processor.on_frame(frame)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000
    assert d.feed_book().book.as_dict() == before
    d.feed(frame)
    assert d.feed_book().health.last_fault.kind == "malformed"


@pytest.mark.parametrize("text, error", [
    ('{"channel":[]}', MessageError),
    ('{"channel":{"book":1}}', MessageError),
    ('{"type":1e9999999999999999999}', MessageError),
    ('{"channel":"book","type":1e9999999999999999999,"data":[]}', MessageError),
    ('{"method":[],"success":true}', MessageError),
    ("not json at all", MessageError),
    ('{"channel":"book","type":"snapshot"', MessageError),
    ("[1, 2, 3]", MessageError),
    ('{"channel":"book","type":"snapshot"}', MessageError),
    ('{"channel":"book","type":"snapshot","data":"BTC/USD"}', MessageError),
    ('{"channel":"book","type":"snapshot","data":[]}', MessageError),
    ('{"channel":"book","type":"snapshot","data":[null]}', MessageError),
    ('{"channel":"book","type":"snapshot","data":[{"symbol":["BTC/USD"]}]}', MessageError),
    ('{"channel":"book","type":"delta","data":[]}', MessageError),
    (SNAPSHOT_HEAD + '"bids":{},"asks":[],"checksum":1}]}', MessageError),
    (SNAPSHOT_HEAD + '"bids":[[1.0, 2.0]],"asks":[],"checksum":1}]}', MessageError),
    (SNAPSHOT_HEAD + '"bids":[{"price":"abc","qty":1.0}],"asks":[],"checksum":1}]}', MessageError),
    (SNAPSHOT_HEAD + '"bids":[{"price":NaN,"qty":1.0}],"asks":[],"checksum":1}]}', MessageError),
    (SNAPSHOT_HEAD + '"bids":[{"price":Infinity,"qty":1.0}],"asks":[],"checksum":1}]}', MessageError),
    (SNAPSHOT_HEAD + '"bids":[{"price":true,"qty":1.0}],"asks":[],"checksum":1}]}', MessageError),
    (SNAPSHOT_HEAD + '"bids":[{"qty":1.0}],"asks":[],"checksum":1}]}', MessageError),
    (SNAPSHOT_HEAD + '"bids":[{"price":1e999999999,"qty":1.0}],"asks":[],"checksum":1}]}', MessageError),
    (SNAPSHOT_HEAD + '"bids":[],"asks":[]}]}', MessageError),
    (SNAPSHOT_HEAD + '"bids":[],"asks":[],"checksum":"123"}]}', MessageError),
    (SNAPSHOT_HEAD + '"bids":[],"asks":[],"checksum":true}]}', MessageError),
    (SNAPSHOT_HEAD + '"bids":[],"asks":[],"checksum":4294967296}]}', MessageError),
    (SNAPSHOT_HEAD + '"bids":[{"price":-1.0,"qty":1.0}],"asks":[],"checksum":1}]}', BadLevel),
    (SNAPSHOT_HEAD + '"bids":[{"price":0,"qty":1.0}],"asks":[],"checksum":1}]}', BadLevel),
    (SNAPSHOT_HEAD + '"bids":[],"asks":[{"price":101.0,"qty":-0.5}],"checksum":1}]}', BadLevel),
    (SNAPSHOT_HEAD + '"bids":[],"asks":[{"price":101.0,"qty":1e-30}],"checksum":1}]}', BadLevel),
    ('{"channel":"instrument","type":"snapshot","data":[]}', MessageError),
    ('{"channel":"instrument","type":"snapshot","data":{"pairs":[{"symbol":"BTC/USD",'
     '"price_precision":999999999,"qty_precision":8}]}}', MessageError),
    ('{"channel":"instrument","type":"snapshot","data":{"pairs":[{"symbol":"BTC/USD",'
     '"price_precision":1.0,"qty_precision":8}]}}', MessageError),
    ('{"channel":"status","type":"update","data":{"system":"online"}}', MessageError),
    ('{"time_in":"2026-08-16T23:37:05Z"}', MessageError),
    ('{"error":"Exceeded msg rate","success":false}', MessageError),
    ('{"method":"subscribe","req_id":1,"success":false,"error":"Currency pair not supported",'
     '"symbol":"BTC/USD"}', MessageError),
])
def test_malformed_frames_are_feed_errors_and_leave_the_book_untouched(text, error):
    d = live()
    before = d.feed_book().book.as_dict()
    with pytest.raises(error) as caught:
        d.processor.on_frame(text)
    assert type(caught.value) is error
    assert d.feed_book().book.as_dict() == before
    d.feed(text)  # through the base: recorded, then a reconnect; nothing escapes
    assert d.feed_book().health.last_fault.kind == error.kind
    assert len(d.reconnects) == 1


def test_a_refused_book_subscription_names_the_pair():
    d = driver()
    d.feed('{"error":"Currency pair not supported XYZ/USD","method":"subscribe","req_id":1,'
           '"success":false,"symbol":"BTC/USD","time_in":"2026-12-01T00:00:00.000000Z",'
           '"time_out":"2026-12-01T00:00:00.000100Z"}')
    assert "subscription of BTC/USD refused: Currency pair not supported" in d.reconnects[0]


def test_update_before_any_snapshot_is_an_error():
    d = driver()
    with pytest.raises(MessageError, match="before a snapshot"):
        d.processor.on_frame(lines_of(BTC_USD_HEAD)[1])


def test_bad_level_in_an_update_leaves_the_book_untouched():
    d = live()
    before = d.feed_book().book.as_dict()
    frame = book_frame("update", [("100.0", "0.00000000")], [("101.0", "-1.0")], 0)
    with pytest.raises(BadLevel) as caught:
        d.processor.on_frame(frame)
    assert caught.value.side == "ask"
    assert d.feed_book().book.as_dict() == before


def test_a_frame_for_a_pair_not_subscribed_is_ignored():
    d = live()
    before = d.feed_book().book.as_dict()
    d.feed(book_frame("update", [("100.0", "0.00000000")], [], 0, symbol="ETH/USD"))
    assert d.feed_book().book.as_dict() == before and d.reconnects == []


# --- the rest of the protocol ---------------------------------------------------------------------
def test_requests_instrument_then_one_book_subscribe_for_every_pair_and_pings():
    clock = FakeClock()
    d = driver("BTC/USD", "ETH/USD", depth=25, clock=clock)
    assert d.connects == ["wss://ws.kraken.com/v2"]
    assert d.sent == ['{"method":"subscribe","params":{"channel":"instrument","snapshot":true},"req_id":2}']
    d.feed(instrument_frame({"BTC/USD": (1, 8), "ETH/USD": (2, 8)}))
    assert d.sent[1] == ('{"method":"subscribe","params":{"channel":"book","symbol":["BTC/USD","ETH/USD"],'
                         '"depth":25,"snapshot":true},"req_id":1}')
    d.feed(instrument_frame({"BTC/USD": (1, 8)}, kind="update"))
    assert len(d.sent) == 2  # an instrument update never subscribes twice
    assert d.processor.precision("ETH/USD") == (2, 8)

    d.advance(30.0)
    first, = (json.loads(text) for text in d.sent[2:])
    d.advance(30.0)
    second = json.loads(d.sent[-1])
    assert first["method"] == second["method"] == "ping" and second["req_id"] == first["req_id"] + 1


def test_without_an_instrument_answer_the_book_is_subscribed_after_a_wait_with_the_default_precision():
    d = driver("BTC/USD", "ETH/USD")
    d.advance(INSTRUMENT_WAIT_SECONDS - 0.5)
    assert len(d.sent) == 1
    d.advance(1.0)
    assert json.loads(d.sent[1])["params"]["channel"] == "book"
    assert d.feed_book("ETH/USD").notes == ("checksum precision 1/8 assumed: no instrument data in time",)


def test_a_pair_missing_from_the_instrument_snapshot_keeps_the_default_and_says_so():
    d = driver("BTC/USD", "MINA/GBP")
    d.feed(instrument_frame({"BTC/USD": (1, 8)}))
    assert json.loads(d.sent[-1])["params"]["channel"] == "book"
    assert d.feed_book("BTC/USD").notes == ()
    assert d.feed_book("MINA/GBP").notes == (
        "checksum precision 1/8 assumed: not listed by the instrument channel",)


def test_the_instrument_row_must_match_the_exact_symbol():
    """2026: US margin pairs appear as BTC/USD:BTNL (venues-2026 §3); only BTC/USD itself counts."""
    d = driver()
    d.feed(instrument_frame({"BTC/USD:BTNL": (2, 4), "BTC/USD": (1, 8)}))
    assert d.processor.precision("BTC/USD") == (1, 8)


@pytest.mark.parametrize("depth", [0, 5, 30, 2000])
def test_invalid_depth_is_refused(depth):
    assert depth not in VALID_DEPTHS
    with pytest.raises(ValueError, match="depth"):
        KrakenProcessor(KrakenSettings(depth=depth), [(Symbol.parse("BTC-USD"), "BTC/USD")])


def test_acks_status_and_other_channels_are_harmless_heartbeats_and_pongs_prove_life():
    clock = FakeClock()
    d = driver(clock=clock)
    for text in (
        '{"channel":"status","type":"update","data":[{"version":"2.0.0","system":"online"}]}',
        '{"method":"subscribe","result":{"channel":"book","depth":10,"snapshot":true,"symbol":"BTC/USD"},'
        '"success":true,"time_in":"2026-08-16T23:37:04Z","time_out":"2026-08-16T23:37:04Z"}',
        '{"method":"unsubscribe","result":{"channel":"book","symbol":"BTC/USD"},"success":true}',
        '{"channel":"ticker","type":"update","data":[]}',
    ):
        d.feed(text)
    health = d.feed_book().health
    assert health.last_data is None and d.reconnects == []
    d.feed('{"channel":"heartbeat"}')
    assert health.last_data == clock.now
    clock.now += 5
    d.feed('{"method":"pong","req_id":101,"time_in":"2026-08-16T23:37:04Z","time_out":"2026-08-16T23:37:04Z"}')
    assert health.last_data == clock.now


def test_a_system_status_other_than_online_is_said_beside_the_book():
    d = live()
    d.feed('{"channel":"status","type":"update","data":[{"system":"maintenance"}]}')
    assert d.feed_book().notes == ("Kraken system status: maintenance",)
    d.feed('{"channel":"status","type":"update","data":[{"system":"online"}]}')
    assert d.feed_book().notes == ()


def test_reconnect_discards_the_book_and_a_new_snapshot_replaces_it():
    lines = lines_of(BTC_USD_HEAD)
    d = driver()
    d.feed(INSTRUMENT_REFUSED, *lines[:20])
    d.lose_connection("network")
    assert d.state() is FeedState.RESYNCING and d.feed_book().book.depth(Side.ASK) == 0
    assert d.feed_book().health.last_fault.kind == "disconnect"
    d.connect()
    assert d.state() is FeedState.RESYNCING
    d.feed(lines[20])
    assert d.feed_book().health.last_fault.detail.startswith("BTC/USD book update before a snapshot")
    d.connect()
    d.reconnects.clear()
    replay(d, lines)
    assert integrity(d).snapshots == 1 and integrity(d).checksums_verified == 54
    assert d.state() is FeedState.LIVE


# --- registration ---------------------------------------------------------------------------------
def test_the_venue_registers_itself_with_the_live_defaults():
    assert venue("kraken") is VENUE
    settings = KrakenSettings()
    assert (settings.url, settings.depth, settings.price_precision, settings.qty_precision) == (
        "wss://ws.kraken.com/v2", 1000, 1, 8)
    assert VENUE.multiplexed and VENUE.instrument == "spot"
    assert VENUE.limits.min_interval == 5.0 and VENUE.limits.attempts == 150
    assert VENUE.limits.per_seconds == 600.0 and "venues-2026" in VENUE.limits.source
    assert VENUE.notes(settings, Symbol.parse("BTC-USD")) == ("top 1000 levels per side (subscribed depth)",)
    pairs = VENUE.connections(settings, [Symbol.parse("BTC-USD"), Symbol.parse("ETH-USD")])
    assert [[native for _, native in connection] for connection in pairs] == [["BTC/USD", "ETH/USD"]]


@pytest.mark.parametrize("unified, native", [("BTC-USD", "BTC/USD"), ("ETH-USD", "ETH/USD"),
                                             ("XBT-EUR", "BTC/EUR"), ("MINA-GBP", "MINA/GBP")])
def test_native_symbols_are_v2_names(unified, native):
    assert native_symbol(Symbol.parse(unified)) == native


def test_a_market_of_one_asset_against_itself_is_refused():
    with pytest.raises(ValueError, match="no market"):
        native_symbol(Symbol.parse("XBT-BTC"))
