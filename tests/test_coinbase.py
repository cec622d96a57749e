"""Coinbase Advanced Trade level2 processor: the converted 2021 capture against a plain-dict replay of the
legacy recording it came from, then the sequence, shape and book checks one frame at a time."""
import json
from decimal import Decimal as D
from pathlib import Path

import pytest

from data_manager.book import Side
from data_manager.errors import BadLevel, CrossedBook, MessageError, SequenceGap
from data_manager.venues.base import BookState
from data_manager.venues.coinbase import CoinbaseProcessor
from tests.feed_checks import assert_refused_untouched

CAPTURES = Path(__file__).resolve().parents[2] / "shared" / "captures"
ADVANCED = CAPTURES / "coinbase_advanced_level2_2021-04-17.ndjson"
LEGACY = CAPTURES / "coinbase_exchange_level2_2021-04-17.jsonl"
CHECK_EVERY_FRAME_UNTIL = 3000  # then every 10th frame: check() walks the whole book (time budget)


def advanced_lines() -> list[str]:
    return ADVANCED.read_text().splitlines()


def legacy_books() -> dict[str, dict[str, dict[D, D]]]:
    """The reference: the legacy feed replayed into plain dicts (snapshot replaces, l2update sets/deletes)."""
    books: dict[str, dict[str, dict[D, D]]] = {}
    for line in LEGACY.read_text().splitlines():
        record = json.loads(line)
        if record["dir"] != "in":
            continue
        message = json.loads(record["data"])
        if message["type"] == "snapshot":
            books[message["product_id"]] = {
                "buy": {D(p): D(s) for p, s in message["bids"] if D(s)},
                "sell": {D(p): D(s) for p, s in message["asks"] if D(s)},
            }
        elif message["type"] == "l2update":
            book = books[message["product_id"]]
            for side, price, size in message["changes"]:
                if D(size):
                    book[side][D(price)] = D(size)
                else:
                    book[side].pop(D(price), None)
    return books


def fresh(symbol: str = "BTC-USD", clock=lambda: 1000.0) -> CoinbaseProcessor:
    processor = CoinbaseProcessor(symbol, clock=clock)
    processor.reset()
    return processor


def frame(seq: int, channel: str = "l2_data", events: list | None = None) -> str:
    return json.dumps({"channel": channel, "client_id": "", "timestamp": "2024-10-08T09:10:36.120390407Z",
                       "sequence_num": seq, "events": events or []})


def l2(seq: int, kind: str, updates: list[tuple[str, str, str]], product: str = "BTC-USD") -> str:
    rows = [{"side": side, "event_time": "2024-10-08T09:10:35.171517Z", "price_level": price,
             "new_quantity": size} for side, price, size in updates]
    return frame(seq, events=[{"type": kind, "product_id": product, "updates": rows}])


SNAPSHOT = [("bid", "100.00", "1.5"), ("bid", "99.50", "2"), ("offer", "100.50", "0.25"), ("offer", "101", "3")]


def live(snapshot=SNAPSHOT, clock=lambda: 1000.0) -> CoinbaseProcessor:
    processor = fresh(clock=clock)
    processor.receive(frame(0, "subscriptions", [{"subscriptions": {"level2": ["BTC-USD"]}}]))
    processor.receive(l2(1, "snapshot", snapshot))
    return processor


# --- the capture ------------------------------------------------------------------------------

def test_capture_replay_equals_the_legacy_replay_for_every_product():
    lines = advanced_lines()
    products = json.loads(lines[0])["events"][0]["subscriptions"]["level2"]
    processors = {product: fresh(product) for product in products}
    for index, line in enumerate(lines):
        for processor in processors.values():
            before = processor.integrity.messages
            processor.receive(line)  # every frame to every processor: the sequence spans all products
            changed = processor.integrity.messages != before
            if changed and (index < CHECK_EVERY_FRAME_UNTIL or index % 10 == 0):
                processor.book.check()
    reference = legacy_books()
    assert sorted(reference) == sorted(products)
    for product, processor in processors.items():
        processor.book.check()
        assert processor.state is BookState.LIVE
        assert dict(processor.levels(Side.BID)) == reference[product]["buy"], product
        assert dict(processor.levels(Side.ASK)) == reference[product]["sell"], product
        assert processor.integrity.snapshots == 1
        assert processor.integrity.last_sequence == len(lines) - 1  # contiguous to the end
    # spot checks that the comparison is about real books, not two empty dicts
    skl = processors["SKL-USD"]
    assert skl.book.depth(Side.BID) == 816 and skl.book.depth(Side.ASK) == 1341
    assert skl.integrity.first_sequence == 13
    assert sum(p.integrity.messages for p in processors.values()) == 10 + 9719


def test_a_deleted_line_is_a_sequence_gap():
    lines = advanced_lines()
    del lines[500]
    processor = fresh("SKL-USD")
    for line in lines[:500]:
        processor.receive(line)
    with pytest.raises(SequenceGap) as caught:
        processor.receive(lines[500])
    assert (caught.value.expected, caught.value.got) == (500, 501)
    assert processor.integrity.last_sequence == 499


def test_a_repeated_or_older_sequence_is_reported_as_a_gap():
    processor = live()
    processor.receive(l2(2, "update", [("bid", "99.00", "1")]))
    with pytest.raises(SequenceGap) as caught:
        processor.receive(l2(2, "update", [("bid", "99.00", "1")]))
    assert (caught.value.expected, caught.value.got) == (3, 2)
    with pytest.raises(SequenceGap) as caught:
        live().receive(frame(0, "heartbeats", [{"heartbeat_counter": 1}]))
    assert (caught.value.expected, caught.value.got) == (2, 0)


# --- one frame at a time ----------------------------------------------------------------------

def test_subscribes_to_level2_and_heartbeats_for_the_product():
    messages = [json.loads(m) for m in CoinbaseProcessor("ETH-USD").subscribe_messages()]
    assert messages == [{"type": "subscribe", "product_ids": ["ETH-USD"], "channel": "level2"},
                        {"type": "subscribe", "product_ids": ["ETH-USD"], "channel": "heartbeats"}]


def test_snapshot_then_updates_offer_is_ask_and_zero_deletes():
    processor = fresh()
    assert processor.state is BookState.SYNCING
    processor.receive(frame(7, "subscriptions", [{"subscriptions": {"level2": ["BTC-USD"]}}]))
    processor.receive(l2(8, "snapshot", SNAPSHOT))
    assert processor.state is BookState.LIVE
    assert list(processor.levels(Side.ASK)) == [(D("100.50"), D("0.25")), (D("101"), D("3"))]
    assert list(processor.levels(Side.BID)) == [(D("100.00"), D("1.5")), (D("99.50"), D("2"))]
    processor.receive(l2(9, "update", [("offer", "100.50", "0"), ("bid", "100.25", "0.1"),
                                       ("bid", "99.50", "0.0"), ("offer", "100.75", "4")]))
    processor.book.check()
    assert processor.book.as_dict() == {"bid": [["100.25", "0.1"], ["100.00", "1.5"]],
                                        "ask": [["100.75", "4"], ["101", "3"]]}
    assert (processor.integrity.first_sequence, processor.integrity.last_sequence) == (8, 9)
    assert processor.integrity.messages == 2


def test_other_products_count_for_the_sequence_but_leave_the_book_alone():
    processor = live()
    before = processor.book.as_dict()
    processor.receive(l2(2, "update", [("bid", "100.40", "9")], product="ETH-USD"))
    processor.receive(l2(3, "snapshot", [("bid", "5", "1")], product="ETH-USD"))
    assert processor.book.as_dict() == before
    assert processor.integrity.last_sequence == 3 and processor.integrity.messages == 1


def test_heartbeats_touch_the_feed():
    now = [1000.0]
    processor = live(clock=lambda: now[0])
    now[0] = 1005.0
    processor.receive(frame(2, "heartbeats", [{"current_time": "2023-10-23 14:43:13.362521689 +0000 UTC",
                                              "heartbeat_counter": 14191}]))
    assert processor.last_data == 1005.0 and processor.age(1006.0) == 1.0


def test_update_before_the_snapshot_is_malformed():
    processor = fresh()
    processor.receive(l2(0, "update", [("bid", "1", "1")], product="ETH-USD"))  # not ours: fine
    with pytest.raises(MessageError, match="before its snapshot"):
        processor.receive(l2(1, "update", [("bid", "100", "1")]))


def test_reset_starts_a_new_sequence_and_the_new_snapshot_replaces_the_book():
    processor = live()
    processor.receive(l2(2, "update", [("bid", "98", "7")]))
    processor.reset()
    assert processor.book.depth(Side.BID) == 0 and processor.state is BookState.SYNCING
    processor.receive(frame(0, "subscriptions", []))
    processor.receive(l2(1, "snapshot", [("bid", "100.00", "1"), ("offer", "101", "1")]))
    assert processor.book.as_dict() == {"bid": [["100.00", "1"]], "ask": [["101", "1"]]}  # no ghost 98


def test_after_a_fault_updates_do_not_rebuild_a_partial_book():
    processor = live()
    assert processor.fault(SequenceGap("coinbase", 3, 4)) is False  # the shell reconnects
    with pytest.raises(MessageError):
        processor.receive(l2(2, "update", [("bid", "98", "7")]))
    assert processor.book.depth(Side.BID) == 0


def test_crossed_update_raises_crossed_book():
    processor = live()
    with pytest.raises(CrossedBook) as caught:
        processor.receive(l2(2, "update", [("bid", "100.50", "1")]))
    assert (caught.value.bid, caught.value.ask) == (D("100.50"), D("100.50"))


@pytest.mark.parametrize("update", [("bid", "0", "1"), ("offer", "-5", "1"), ("bid", "99", "-0.1")])
def test_non_positive_price_or_negative_size_is_a_bad_level(update):
    with pytest.raises(BadLevel):
        live().receive(l2(2, "update", [update]))


MALFORMED = {
    "not json": '{"channel": "l2_data", ',
    "not an object": "[1, 2]",
    "no channel": json.dumps({"sequence_num": 2, "events": []}),
    "no sequence": json.dumps({"channel": "l2_data", "events": []}),
    "sequence not an int": json.dumps({"channel": "l2_data", "sequence_num": "2", "events": []}),
    "sequence is a bool": json.dumps({"channel": "l2_data", "sequence_num": True, "events": []}),
    "events not a list": json.dumps({"channel": "l2_data", "sequence_num": 2, "events": {}}),
    "event not an object": frame(2, events=["snapshot"]),
    "no product": frame(2, events=[{"type": "update", "updates": []}]),
    "unknown event type": frame(2, events=[{"type": "delta", "product_id": "BTC-USD", "updates": []}]),
    "no updates": frame(2, events=[{"type": "update", "product_id": "BTC-USD"}]),
    "side ask (the wire says offer)": l2(2, "update", [("ask", "101", "1")]),
    "price not a number": l2(2, "update", [("bid", "abc", "1")]),
    "size NaN": l2(2, "update", [("bid", "99", "NaN")]),
    "JSON NaN constant": '{"channel":"l2_data","sequence_num":2,"events":[{"type":"update",'
                         '"product_id":"BTC-USD","updates":[{"side":"bid","price_level":NaN,"new_quantity":"1"}]}]}',
    "update missing new_quantity": frame(2, events=[{"type": "update", "product_id": "BTC-USD",
                                                    "updates": [{"side": "bid", "price_level": "99"}]}]),
    "venue error": json.dumps({"type": "error", "message": "too many L2 streams requested in a single session"}),
}


@pytest.mark.parametrize("text", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_frames_raise_message_error(text):
    assert_refused_untouched(live(), text)


def test_error_message_is_kept_in_the_fault():
    with pytest.raises(MessageError, match="too many L2 streams"):
        fresh().receive(MALFORMED["venue error"])
