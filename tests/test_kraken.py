"""Kraken v2 `book` processor: recorded captures replayed into `receive()`, checked against a plain-dict
reference replay, plus hand-built frames for checksum, truncation, malformed and crossed cases."""
from __future__ import annotations

import json
import zlib
from decimal import Decimal
from pathlib import Path

import pytest

from data_manager.book import Side
from data_manager.errors import BadLevel, ChecksumMismatch, CrossedBook, MessageError
from data_manager.venues.base import BookState
from data_manager.venues.kraken import VALID_DEPTHS, KrakenProcessor

CAPTURES = Path(__file__).resolve().parents[2] / "shared" / "captures"
BTC_USD_HEAD = CAPTURES / "kraken_v2_book_BTC-USD_d10_2026-08-16_head.ndjson"
MINA_GBP = CAPTURES / "kraken_v2_book_MINA-GBP_d25_2026-08-16.ndjson"
DEPTH_1000 = CAPTURES / "kraken_v2_book_depth1000_2021-04-17.ndjson"


# --- an independent reference: plain dicts, sorted only when read --------------------------------
class ReferenceBook:
    """What the book must hold, written as naively as possible (no SortedDict, no caches)."""

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


def reference_replay(path: Path, depth: int) -> dict[str, ReferenceBook]:
    books: dict[str, ReferenceBook] = {}
    for line in path.read_text().splitlines():
        message = json.loads(line, parse_float=Decimal, parse_int=Decimal)
        if message.get("channel") == "book":
            entry = message["data"][0]
            book = books.setdefault(entry["symbol"], ReferenceBook(depth))
            book.load(entry, snapshot=message["type"] == "snapshot")
    return books


def reference_checksum(bids, asks, price_precision: int, qty_precision: int) -> int:
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


def levels_of(processor: KrakenProcessor, side: Side) -> list[tuple[Decimal, Decimal]]:
    return list(processor.levels(side))


def replay(processor: KrakenProcessor, path: Path) -> int:
    """Feed every frame, check the book after each; return how many book frames were ours."""
    ours = 0
    for line in path.read_text().splitlines():
        processor.receive(line)
        processor.book.check()
        message = json.loads(line)
        ours += message.get("channel") == "book" and message["data"][0]["symbol"] == processor.symbol
    return ours


# --- recorded captures ----------------------------------------------------------------------------
def test_btc_usd_head_every_checksum_verifies_and_book_matches_reference():
    processor = KrakenProcessor("BTC/USD", depth=10)
    frames = replay(processor, BTC_USD_HEAD)

    assert frames == 54
    assert processor.integrity.checksums_verified == 54
    assert processor.integrity.messages == 54
    assert processor.state is BookState.LIVE
    reference = reference_replay(BTC_USD_HEAD, 10)["BTC/USD"]
    assert levels_of(processor, Side.BID) == reference.best_first("bids")
    assert levels_of(processor, Side.ASK) == reference.best_first("asks")
    assert processor.best(Side.BID) == reference.best_first("bids")[0]
    assert processor.best(Side.ASK) == reference.best_first("asks")[0]
    assert processor.book.depth(Side.BID) == processor.book.depth(Side.ASK) == 10


def test_mina_gbp_depth_25_with_its_precision():
    processor = KrakenProcessor("MINA/GBP", depth=25, price_precision=4, qty_precision=8)
    assert replay(processor, MINA_GBP) == 30
    assert processor.integrity.checksums_verified == 30
    reference = reference_replay(MINA_GBP, 25)["MINA/GBP"]
    assert levels_of(processor, Side.BID) == reference.best_first("bids")
    assert levels_of(processor, Side.ASK) == reference.best_first("asks")


def test_mina_gbp_precision_from_an_instrument_frame():
    """Constructed with BTC/USD's 1/8, the instrument channel's 4/8 makes every checksum verify."""
    processor = KrakenProcessor("MINA/GBP", depth=25)
    processor.receive('{"channel":"instrument","type":"snapshot","data":{"assets":[],"pairs":['
                      '{"symbol":"MINA/GBP","base":"MINA","quote":"GBP","status":"online",'
                      '"price_precision":4,"qty_precision":8}]}}')
    assert (processor.price_precision, processor.qty_precision) == (4, 8)
    replay(processor, MINA_GBP)
    assert processor.integrity.checksums_verified == 30


def test_depth_1000_all_pairs_precision_from_instrument_frame():
    lines = DEPTH_1000.read_text().splitlines()
    pairs = json.loads(lines[1])["data"]["pairs"]
    processors = {pair["symbol"]: KrakenProcessor(pair["symbol"], depth=1000) for pair in pairs}
    assert len(processors) == 10

    for number, line in enumerate(lines):
        for processor in processors.values():  # every frame to every processor: other pairs ignored
            processor.receive(line)
        message = json.loads(line)
        if message.get("channel") == "book":
            symbol = message["data"][0]["symbol"]
            if symbol == "BTC/CHF" or number % 50 == 0:  # check() on 1000-level books is costly
                processors[symbol].book.check()

    for symbol, pair in ((p["symbol"], p) for p in pairs):
        assert processors[symbol].price_precision == pair["price_precision"]
    assert sum(p.integrity.checksums_verified for p in processors.values()) == 4279
    assert sum(p.integrity.messages for p in processors.values()) == 4279
    btc_chf = processors["BTC/CHF"]
    assert btc_chf.book.depth(Side.BID) == 500
    assert btc_chf.book.depth(Side.ASK) == 315
    reference = reference_replay(DEPTH_1000, 1000)
    for symbol, processor in processors.items():
        processor.book.check()
        assert processor.state is BookState.LIVE
        assert levels_of(processor, Side.BID) == reference[symbol].best_first("bids"), symbol
        assert levels_of(processor, Side.ASK) == reference[symbol].best_first("asks"), symbol


# --- checksum, truncation, crossed ----------------------------------------------------------------
def test_corrupted_checksum_raises_with_both_values():
    lines = BTC_USD_HEAD.read_text().splitlines()
    processor = KrakenProcessor("BTC/USD", depth=10)
    for line in lines[:5]:
        processor.receive(line)
    true_checksum = json.loads(lines[5])["data"][0]["checksum"]
    wrong = (true_checksum + 1) % 2**32
    corrupted = lines[5].replace(f'"checksum":{true_checksum}', f'"checksum":{wrong}')

    with pytest.raises(ChecksumMismatch) as caught:
        processor.receive(corrupted)
    assert caught.value.expected == wrong
    assert caught.value.computed == true_checksum
    assert caught.value.venue == "kraken"

    assert processor.fault(caught.value) is False  # the shell reconnects
    assert processor.state is BookState.RESYNCING
    assert processor.book.depth(Side.BID) == 0
    with pytest.raises(MessageError, match="before a snapshot"):
        processor.receive(lines[6])


def snapshot_levels(count: int = 10):
    bids = [(f"{100 - i}.0", "1.00000000") for i in range(count)]
    asks = [(f"{101 + i}.0", "2.00000000") for i in range(count)]
    return bids, asks


def live_processor(depth: int = 10) -> KrakenProcessor:
    processor = KrakenProcessor("BTC/USD", depth=depth)
    bids, asks = snapshot_levels()
    processor.receive(book_frame("snapshot", bids, asks, reference_checksum(bids, asks, 1, 8)))
    assert processor.state is BookState.LIVE
    return processor


def test_update_inserting_above_depth_drops_the_worst_level():
    processor = live_processor(depth=10)
    bids, asks = snapshot_levels()
    new_bids = [("100.5", "0.50000000")] + bids[:9]  # 91.0 falls out of the 10 levels: no delete sent
    processor.receive(book_frame("update", [("100.5", "0.50000000")], [],
                                 reference_checksum(new_bids, asks, 1, 8)))
    processor.book.check()
    assert processor.book.depth(Side.BID) == 10
    assert processor.best(Side.BID) == (Decimal("100.5"), Decimal("0.5"))
    assert processor.book.size_at(Side.BID, Decimal("91.0")) is None
    assert levels_of(processor, Side.BID)[-1] == (Decimal("92.0"), Decimal("1"))

    # a delete inside the window: the book holds 9 bids until Kraken sends the level that enters
    processor.receive(book_frame("update", [("100.5", "0.00000000"), ("91.0", "1.00000000")], [],
                                 reference_checksum(bids, asks, 1, 8)))
    assert levels_of(processor, Side.BID) == [(Decimal(p), Decimal(q)) for p, q in bids]
    assert processor.integrity.checksums_verified == 3


def test_same_price_twice_in_one_update_is_applied_in_order():
    processor = live_processor()
    bids, asks = snapshot_levels()
    final_asks = [("101.0", "0.25000000")] + asks[1:]
    processor.receive(book_frame("update", [], [("101.0", "0.00000000"), ("101.0", "0.25000000")],
                                 reference_checksum(bids, final_asks, 1, 8)))
    assert processor.best(Side.ASK) == (Decimal("101.0"), Decimal("0.25"))


def test_deep_update_reuses_cached_top_and_still_catches_a_wrong_checksum():
    processor = live_processor(depth=25)
    bids, asks = snapshot_levels()
    deep = [("80.0", "1.00000000")]  # below the 10th bid: the top 10 cannot change
    checksum = reference_checksum(bids, asks, 1, 8)
    processor.receive(book_frame("update", deep, [], checksum))
    assert processor.book.size_at(Side.BID, Decimal("80.0")) == Decimal(1)
    with pytest.raises(ChecksumMismatch):
        processor.receive(book_frame("update", [("79.0", "1.00000000")], [], checksum ^ 1))
    assert processor.checksum() == checksum


def test_crossed_update_with_a_consistent_checksum_raises_crossed_book():
    processor = live_processor()
    bids, asks = snapshot_levels()
    crossed_bids = [("101.0", "0.10000000")] + bids
    frame = book_frame("update", [("101.0", "0.10000000")], [], reference_checksum(crossed_bids, asks, 1, 8))
    with pytest.raises(CrossedBook) as caught:
        processor.receive(frame)
    assert (caught.value.bid, caught.value.ask) == (Decimal("101.0"), Decimal("101.0"))


# --- malformed frames -----------------------------------------------------------------------------
SNAPSHOT_HEAD = '{"channel":"book","type":"snapshot","data":[{"symbol":"BTC/USD",'


@pytest.mark.parametrize("text, error", [
    ("not json at all", MessageError),
    ('{"channel":"book","type":"snapshot"', MessageError),
    ("[1, 2, 3]", MessageError),
    ('{"channel":"book","type":"snapshot"}', MessageError),
    ('{"channel":"book","type":"snapshot","data":"BTC/USD"}', MessageError),
    ('{"channel":"book","type":"snapshot","data":[null]}', MessageError),
    ('{"channel":"book","type":"delta","data":[]}', MessageError),
    (SNAPSHOT_HEAD + '"bids":{},"asks":[],"checksum":1}]}', MessageError),
    (SNAPSHOT_HEAD + '"bids":[[1.0, 2.0]],"asks":[],"checksum":1}]}', MessageError),
    (SNAPSHOT_HEAD + '"bids":[{"price":"abc","qty":1.0}],"asks":[],"checksum":1}]}', MessageError),
    (SNAPSHOT_HEAD + '"bids":[{"price":NaN,"qty":1.0}],"asks":[],"checksum":1}]}', MessageError),
    (SNAPSHOT_HEAD + '"bids":[{"price":true,"qty":1.0}],"asks":[],"checksum":1}]}', MessageError),
    (SNAPSHOT_HEAD + '"bids":[{"qty":1.0}],"asks":[],"checksum":1}]}', MessageError),
    (SNAPSHOT_HEAD + '"bids":[],"asks":[]}]}', MessageError),
    (SNAPSHOT_HEAD + '"bids":[],"asks":[],"checksum":"123"}]}', MessageError),
    (SNAPSHOT_HEAD + '"bids":[{"price":-1.0,"qty":1.0}],"asks":[],"checksum":1}]}', BadLevel),
    (SNAPSHOT_HEAD + '"bids":[{"price":0,"qty":1.0}],"asks":[],"checksum":1}]}', BadLevel),
    (SNAPSHOT_HEAD + '"bids":[],"asks":[{"price":101.0,"qty":-0.5}],"checksum":1}]}', BadLevel),
    ('{"channel":"instrument","type":"snapshot","data":[]}', MessageError),
    ('{"time_in":"2026-08-16T23:37:05Z"}', MessageError),
    ('{"error":"Exceeded msg rate","success":false}', MessageError),
    ('{"method":"subscribe","req_id":1,"success":false,"error":"Currency pair not supported"}',
     MessageError),
])
def test_malformed_frames_raise_feed_errors_not_tracebacks(text, error):
    processor = KrakenProcessor("BTC/USD", depth=10)
    with pytest.raises(error) as caught:
        processor.receive(text)
    assert type(caught.value) is error
    assert processor.book.depth(Side.BID) == processor.book.depth(Side.ASK) == 0


def test_update_before_any_snapshot_is_an_error():
    processor = KrakenProcessor("BTC/USD", depth=10)
    with pytest.raises(MessageError, match="before a snapshot"):
        processor.receive(BTC_USD_HEAD.read_text().splitlines()[1])


def test_bad_level_in_an_update_leaves_the_book_untouched():
    processor = live_processor()
    before = processor.book.as_dict()
    frame = book_frame("update", [("100.0", "0.00000000")], [("101.0", "-1.0")], 0)
    with pytest.raises(BadLevel) as caught:
        processor.receive(frame)
    assert caught.value.side == "ask"
    assert processor.book.as_dict() == before


# --- the rest of the protocol ---------------------------------------------------------------------
def test_subscribe_messages_and_ping():
    processor = KrakenProcessor("BTC/USD", depth=25)
    instrument, book = (json.loads(text) for text in processor.subscribe_messages())
    assert book == {"method": "subscribe", "req_id": 1,
                    "params": {"channel": "book", "symbol": ["BTC/USD"], "depth": 25, "snapshot": True}}
    assert instrument["params"]["channel"] == "instrument"
    first, second = json.loads(processor.ping_message()), json.loads(processor.ping_message())
    assert first["method"] == "ping" and second["req_id"] == first["req_id"] + 1


@pytest.mark.parametrize("depth", [0, 5, 30, 2000])
def test_invalid_depth_is_refused(depth):
    assert depth not in VALID_DEPTHS
    with pytest.raises(ValueError, match="depth"):
        KrakenProcessor(depth=depth)


def test_acks_heartbeats_status_and_other_channels_are_harmless():
    now = [1000.0]
    processor = KrakenProcessor("BTC/USD", depth=10, clock=lambda: now[0])
    for text in (
        '{"channel":"status","type":"update","data":[{"version":"2.0.0","system":"online"}]}',
        '{"method":"subscribe","result":{"channel":"book","depth":10,"snapshot":true,"symbol":"BTC/USD"},'
        '"success":true,"time_in":"2026-08-16T23:37:04Z","time_out":"2026-08-16T23:37:04Z"}',
        '{"method":"pong","req_id":101,"time_in":"2026-08-16T23:37:04Z","time_out":"2026-08-16T23:37:04Z"}',
        '{"channel":"ticker","type":"update","data":[]}',
    ):
        processor.receive(text)
    assert processor.last_data is None
    processor.receive('{"channel":"heartbeat"}')
    assert processor.last_data == 1000.0


def test_refused_instrument_subscription_keeps_default_precision_and_says_so():
    processor = KrakenProcessor("BTC/USD", depth=10)
    processor.receive('{"method":"subscribe","req_id":2,"success":false,"error":"Channel not supported"}')
    assert processor.integrity.notes and "instrument" in processor.integrity.notes[0]
    replay(processor, BTC_USD_HEAD)
    assert processor.integrity.checksums_verified == 54


def test_reset_discards_the_book_and_a_new_snapshot_replaces_it():
    lines = BTC_USD_HEAD.read_text().splitlines()
    processor = KrakenProcessor("BTC/USD", depth=10)
    for line in lines[:20]:
        processor.receive(line)
    processor.reset()
    assert processor.state is BookState.SYNCING and processor.book.depth(Side.ASK) == 0
    with pytest.raises(MessageError):
        processor.receive(lines[20])
    replay(processor, BTC_USD_HEAD)
    assert processor.integrity.snapshots == 1 and processor.integrity.checksums_verified == 54
