"""Gemini v2 l2 processor: the 2021 capture (10 symbols on one connection) against a plain-dict replay,
then the whole-book rule (no ghost levels), the crossed-book check and malformed frames."""
import json
from decimal import Decimal as D
from pathlib import Path

import pytest

from data_manager.book import Side
from data_manager.errors import BadLevel, CrossedBook
from data_manager.venues.base import BookState
from data_manager.venues.gemini import GeminiProcessor
from tests.feed_checks import assert_refused_untouched

CAPTURES = Path(__file__).resolve().parents[2] / "shared" / "captures"
CAPTURE = CAPTURES / "gemini_v2_l2_2021-06-24.jsonl"


def received() -> list[str]:
    records = [json.loads(line) for line in CAPTURE.read_text().splitlines()]
    return [record["data"] for record in records if record["dir"] == "in"]


def subscribed_symbols() -> list[str]:
    for line in CAPTURE.read_text().splitlines():
        record = json.loads(line)
        if record["dir"] == "out":
            return json.loads(record["data"])["subscriptions"][0]["symbols"]
    raise AssertionError("no subscribe in the capture")


def fresh(symbol: str = "BTCUSD", clock=lambda: 1000.0) -> GeminiProcessor:
    processor = GeminiProcessor(symbol, clock=clock)
    processor.reset()
    return processor


def updates(changes: list[list[str]], symbol: str = "BTCUSD", first: bool = False) -> str:
    message = {"type": "l2_updates", "symbol": symbol, "changes": changes}
    if first:
        message |= {"trades": [{"type": "trade", "symbol": symbol, "event_id": 1, "timestamp": 1655330221424,
                                "price": "100.50", "quantity": "0.1", "side": "buy"}], "auction_events": []}
    return json.dumps(message)


BOOK = [["buy", "100.00", "1.5"], ["buy", "99.50", "2"], ["sell", "100.50", "0.25"], ["sell", "101.00", "3"]]


def live(book=BOOK, clock=lambda: 1000.0) -> GeminiProcessor:
    processor = fresh(clock=clock)
    processor.receive(updates(book, first=True))
    return processor


# --- the capture ------------------------------------------------------------------------------

def test_capture_replay_equals_a_plain_dict_replay_for_every_symbol():
    symbols = subscribed_symbols()
    processors = {symbol: fresh(symbol) for symbol in symbols}
    reference: dict[str, dict[str, dict[D, D]]] = {}
    for text in received():
        for processor in processors.values():
            processor.receive(text)
            processor.book.check()
        message = json.loads(text)
        if message["type"] != "l2_updates":
            continue
        if message["symbol"] not in reference:  # the first one is the whole book
            reference[message["symbol"]] = {"buy": {}, "sell": {}}
        book = reference[message["symbol"]]
        for side, price, size in message["changes"]:
            if D(size):
                book[side][D(price)] = D(size)
            else:
                book[side].pop(D(price), None)
    assert sorted(reference) == sorted(symbols)
    for symbol, processor in processors.items():
        assert processor.state is BookState.LIVE
        assert processor.integrity.snapshots == 1
        assert dict(processor.levels(Side.BID)) == reference[symbol]["buy"], symbol
        assert dict(processor.levels(Side.ASK)) == reference[symbol]["sell"], symbol
        assert not processor.book.crossed()
    btcgbp = processors["BTCGBP"]
    assert btcgbp.integrity.messages == 153
    assert btcgbp.book.depth(Side.BID) + btcgbp.book.depth(Side.ASK) > 200


# --- one frame at a time ----------------------------------------------------------------------

def test_subscribes_to_l2_for_the_symbol():
    assert [json.loads(m) for m in GeminiProcessor("ETHUSD").subscribe_messages()] == [
        {"type": "subscribe", "subscriptions": [{"name": "l2", "symbols": ["ETHUSD"]}]}]


def test_first_message_is_the_book_then_changes_apply():
    processor = fresh()
    assert processor.state is BookState.SYNCING
    processor.receive(updates(BOOK))  # first after reset(): the whole book, even without the markers
    assert processor.state is BookState.LIVE and processor.integrity.snapshots == 1
    processor.receive(updates([["sell", "100.50", "0"], ["buy", "100.25", "0.1"], ["sell", "100.75", "4"]]))
    processor.book.check()
    assert processor.book.as_dict() == {"bid": [["100.25", "0.1"], ["100.00", "1.5"], ["99.50", "2"]],
                                        "ask": [["100.75", "4"], ["101.00", "3"]]}
    assert processor.integrity.snapshots == 1 and processor.integrity.messages == 2


def test_a_new_whole_book_after_reset_leaves_no_ghost_levels():
    processor = live()
    processor.receive(updates([["buy", "98.00", "5"]]))
    processor.reset()
    processor.receive(updates([["buy", "100.00", "1"], ["sell", "101.00", "2"]], first=True))
    assert processor.book.as_dict() == {"bid": [["100.00", "1"]], "ask": [["101.00", "2"]]}  # 99.50, 98 gone


def test_a_message_with_trades_and_auction_events_replaces_the_book_mid_stream():
    processor = live()
    processor.receive(updates([["buy", "100.10", "1"], ["sell", "100.20", "2"]], first=True))
    assert processor.book.as_dict() == {"bid": [["100.10", "1"]], "ask": [["100.20", "2"]]}
    assert processor.integrity.snapshots == 2


def test_other_symbols_trades_heartbeats_and_auctions_leave_the_book_alone():
    now = [1000.0]
    processor = live(clock=lambda: now[0])
    before = processor.book.as_dict()
    processor.receive(updates([["buy", "100.40", "9"]], symbol="ETHUSD"))
    processor.receive(updates([["buy", "5", "1"]], symbol="ETHUSD", first=True))
    processor.receive(json.dumps({"type": "auction_open", "symbol": "BTCUSD", "auction_open_ms": 1}))
    now[0] = 1003.0
    processor.receive(json.dumps({"type": "trade", "symbol": "BTCUSD", "event_id": 3575573053,
                                  "timestamp": 151231241, "price": "100.50", "quantity": "0.09", "side": "buy"}))
    assert processor.last_data == 1003.0
    now[0] = 1008.0
    processor.receive('{"type":"heartbeat","timestamp":1624493671867}')
    assert processor.last_data == 1008.0
    assert processor.book.as_dict() == before and processor.integrity.messages == 1


def test_crossed_update_raises_crossed_book():
    processor = live()
    with pytest.raises(CrossedBook) as caught:
        processor.receive(updates([["buy", "100.60", "1"]]))
    assert (caught.value.bid, caught.value.ask) == (D("100.60"), D("100.50"))


def test_a_crossed_whole_book_is_refused_too():
    with pytest.raises(CrossedBook):
        fresh().receive(updates([["buy", "101", "1"], ["sell", "100", "1"]], first=True))


def test_after_a_fault_the_next_message_must_be_a_whole_book():
    processor = live()
    assert processor.fault(CrossedBook("gemini", D(1), D(1))) is False  # the shell reconnects
    processor.receive(updates([["buy", "98.00", "5"]]))  # treated as the whole book: nothing merged
    assert processor.book.as_dict() == {"bid": [["98.00", "5"]], "ask": []}


@pytest.mark.parametrize("change", [["buy", "0", "1"], ["sell", "-1", "1"], ["buy", "99", "-2"]])
def test_non_positive_price_or_negative_quantity_is_a_bad_level(change):
    with pytest.raises(BadLevel):
        live().receive(updates([change]))


MALFORMED = {
    "not json": '{"type": "l2_updates", ',
    "not an object": '["l2_updates"]',
    "no type": json.dumps({"symbol": "BTCUSD", "changes": []}),
    "no symbol": json.dumps({"type": "l2_updates", "changes": []}),
    "no changes": json.dumps({"type": "l2_updates", "symbol": "BTCUSD"}),
    "changes not a list": json.dumps({"type": "l2_updates", "symbol": "BTCUSD", "changes": "buy"}),
    "change too short": updates([["buy", "99"]]),
    "change not a list": updates([{"side": "buy", "price": "99", "quantity": "1"}]),
    "unknown side": updates([["bid", "99", "1"]]),
    "quantity not a number": updates([["buy", "99", "lots"]]),
    "price infinite": updates([["buy", "Infinity", "1"]]),
    "error result": json.dumps({"result": "error", "reason": "InvalidJson", "message": "Failed to parse"}),
    "error type": json.dumps({"type": "error", "reason": "InvalidSymbol", "message": "bad symbol"}),
}


@pytest.mark.parametrize("text", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_frames_raise_message_error(text):
    assert_refused_untouched(live(), text)
