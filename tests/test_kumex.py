"""KumexProcessor against the documented-shape fixture (captures/kumex_l3_XBTUSDM_documented): no socket,
frames fed to `receive()`, snapshots to `load_snapshot()`, exactly as the shell hands them over."""
from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from data_manager.book import L2Book, L3Book, Side
from data_manager.errors import BadLevel, CrossedBook, FeedError, MessageError, SequenceGap, SnapshotError
from data_manager.venues.base import BookState, HttpRequest
from data_manager.venues.kumex import L2_NOTE, KumexProcessor

FIXTURE = Path(__file__).resolve().parents[2] / "shared" / "captures" / "kumex_l3_XBTUSDM_documented"
MANIFEST = json.loads((FIXTURE / "manifest.json").read_text())
EXPECTED = json.loads((FIXTURE / "expected_final_book.json").read_text())
STREAM = (FIXTURE / "stream.ndjson").read_text().splitlines()
GAP_STREAM = (FIXTURE / "gap_variant.ndjson").read_text().splitlines()
SNAPSHOT = (FIXTURE / "snapshot_v2.json").read_text()
RESYNC_SNAPSHOT = (FIXTURE / "snapshot_v2_resync.json").read_text()
CLIENT_FRAMES = (FIXTURE / "client.ndjson").read_text().splitlines()

LEVEL3_TOPIC = "/contractMarket/level3v2:XBTUSDM"
LEVEL2_TOPIC = "/contractMarket/level2:XBTUSDM"
SNAPSHOT_URL = "https://api-futures.kucoin.com/api/v2/level3/snapshot?symbol=XBTUSDM"


class Clock:
    """A settable clock: the subscribe id is the clock in ms, as the recorded client's was."""

    def __init__(self, ms: str) -> None:
        self.now = int(ms) / 1000

    def __call__(self) -> float:
        return self.now


def new_processor(**kwargs) -> KumexProcessor:
    processor = KumexProcessor(clock=Clock(MANIFEST["subscribe_id"]), connect_id=MANIFEST["connectId"],
                               **kwargs)
    processor.reset()
    return processor


def sequence_of(line: str) -> int | None:
    frame = json.loads(line)
    return frame["data"]["sequence"] if frame.get("topic") == LEVEL3_TOPIC else None


def line_of(stream: list[str], sequence: int) -> int:
    return next(i for i, line in enumerate(stream) if sequence_of(line) == sequence)


def replay(processor: KumexProcessor, lines: list[str], snapshots: list[str], deliver_after: int = 0) -> list:
    """The shell's loop: receive, check the book, and when a snapshot is asked for, hand over the next
    one `deliver_after` frames later (none left: the request stays unanswered). Returns the requests."""
    requests, waiting = [], None
    for line in lines:
        processor.receive(line)
        processor.book.check()
        processor.take_outbox()
        if waiting is not None:
            waiting -= 1
            if waiting < 0:
                processor.load_snapshot(snapshots.pop(0))
                processor.book.check()
                waiting = None
        request = processor.snapshot_request()
        if request is not None:
            requests.append(request)
            waiting = deliver_after if snapshots else None
    return requests


def orders_view(book: L3Book, side: Side) -> list[dict]:
    return [{"price": str(price), "size": str(size),
             "orders": [[order.order_id, str(order.size)] for order in book.orders_at(side, price)]}
            for price, size in book.levels(side)]


def assert_expected_final_book(processor: KumexProcessor) -> None:
    assert processor.state is BookState.LIVE
    assert processor.last_sequence == EXPECTED["sequence"]
    assert orders_view(processor.book, Side.BID) == EXPECTED["bids"]
    assert orders_view(processor.book, Side.ASK) == EXPECTED["asks"]
    for side, key in ((Side.BID, "bids"), (Side.ASK, "asks")):
        btc = [{"price": str(price), "size_btc": str(size)} for price, size in processor.levels(side)]
        assert btc == EXPECTED["btc"][key]
        assert processor.book.depth(side) == EXPECTED["totals"][key]["levels"]
        assert sum(len(level["orders"]) for level in orders_view(processor.book, side)) == \
            EXPECTED["totals"][key]["orders"]
        assert sum(size for _, size in processor.book.levels(side)) == Decimal(EXPECTED["totals"][key]["contracts"])
    best_bid, best_ask = EXPECTED["best_bid"], EXPECTED["best_ask"]
    assert processor.book.best(Side.BID) == (Decimal(best_bid["price"]), Decimal(best_bid["size"]))
    assert processor.book.best(Side.ASK) == (Decimal(best_ask["price"]), Decimal(best_ask["size"]))
    assert processor.best(Side.BID) == (Decimal(best_bid["price"]), Decimal(best_bid["size_btc"]))
    assert processor.best(Side.ASK) == (Decimal(best_ask["price"]), Decimal(best_ask["size_btc"]))
    processor.book.check()


# --- connection ---------------------------------------------------------------------------------------
def test_bullet_answer_gives_the_connect_url_and_ping_interval():
    processor = KumexProcessor(connect_id=MANIFEST["connectId"])
    assert processor.token_request() == HttpRequest("POST", "https://api-futures.kucoin.com/api/v1/bullet-public")
    url = processor.connect_url("wss://ignored", (FIXTURE / "bullet_public.json").read_text())
    assert url == MANIFEST["connect_url"]
    assert processor.ping_interval == 50.0 and processor.ping_timeout == 10.0


@pytest.mark.parametrize("answer", ['{"code":"200000","data":{"token":"t","instanceServers":[]}}',
                                    '{"code":"400001","msg":"nope"}', "<html>502</html>"])
def test_bullet_answer_without_a_server_is_a_message_error(answer):
    with pytest.raises(MessageError):
        KumexProcessor().connect_url("wss://ignored", answer)


def test_connect_ids_are_fresh_per_connection_when_not_given():
    processor = KumexProcessor()
    bullet = (FIXTURE / "bullet_public.json").read_text()
    first, second = processor.connect_url("", bullet), processor.connect_url("", bullet)
    assert first != second and processor.connect_id in second


def test_welcome_sends_the_recorded_subscribe_and_the_ack_is_matched_by_id():
    processor = new_processor()
    assert processor.subscribe_messages() == []
    processor.receive(STREAM[0])  # welcome, id = connectId
    assert processor.take_outbox() == [CLIENT_FRAMES[0]]
    assert not processor.acked
    processor.receive('{"id":"999","type":"ack"}')  # someone else's ack
    assert not processor.acked
    processor.receive(STREAM[1])
    assert processor.acked


def test_ping_message_is_json_with_a_millisecond_string_id():
    processor = new_processor()
    processor.clock.now = int(MANIFEST["ping_id"]) / 1000
    assert processor.ping_message() == CLIENT_FRAMES[1]


def test_welcome_for_another_connection_is_refused_and_reconnects():
    processor = new_processor()
    with pytest.raises(MessageError):
        processor.receive('{"id":"someone-else","type":"welcome"}')
    assert processor.fault(MessageError("kumex", "welcome")) is False  # nothing subscribed: reconnect


# --- the fixture replay -------------------------------------------------------------------------------
@pytest.mark.parametrize("deliver_after", [0, 59, 150], ids=["before-stream-reaches-it", "just-in-time", "late"])
def test_fixture_replay_ends_on_the_expected_book(deliver_after):
    processor = new_processor()
    requests = replay(processor, STREAM, [SNAPSHOT], deliver_after)
    assert requests == [HttpRequest("GET", SNAPSHOT_URL)]  # once, after the first buffered message
    assert processor.integrity.messages == MANIFEST["stream"]["messages_to_apply"]
    assert processor.integrity.first_sequence == MANIFEST["stream"]["snapshot_sequence"]
    assert processor.duplicates == 0
    assert_expected_final_book(processor)


def test_snapshot_is_requested_only_once_buffered_messages_exist():
    processor = new_processor()
    processor.receive(STREAM[0])
    processor.receive(STREAM[1])
    assert processor.snapshot_request() is None
    processor.receive(STREAM[2])
    assert processor.snapshot_request() == HttpRequest("GET", SNAPSHOT_URL)
    processor.receive(STREAM[3])
    assert processor.snapshot_request() is None  # one in flight


def test_snapshot_waits_for_the_stream_to_reach_it():
    processor = new_processor()
    snapshot_line = MANIFEST["stream"]["snapshot_sequence_line"] - 1  # 0-based
    replay(processor, STREAM[:10], [])
    processor.load_snapshot(SNAPSHOT)
    assert processor.state is BookState.SYNCING and len(processor.book) == 0
    replay(processor, STREAM[10:snapshot_line], [])
    assert processor.state is BookState.SYNCING
    processor.receive(STREAM[snapshot_line])  # sequence == snapshot.sequence: the buffer bridges it
    assert processor.state is BookState.LIVE
    assert processor.last_sequence == MANIFEST["stream"]["snapshot_sequence"]
    replay(processor, STREAM[snapshot_line + 1:], [])
    assert_expected_final_book(processor)


def test_gap_variant_detects_the_gap_and_resyncs_in_place():
    processor = new_processor()
    detected = line_of(GAP_STREAM, MANIFEST["gap_variant"]["gap_detected_at_sequence"])
    replay(processor, GAP_STREAM[:detected], [SNAPSHOT])
    assert processor.state is BookState.LIVE
    with pytest.raises(SequenceGap) as caught:
        processor.receive(GAP_STREAM[detected])
    assert (caught.value.expected, caught.value.got) == (3262791340, 3262791341)
    assert processor.fault(caught.value) is True  # same connection: resync in place
    assert processor.state is BookState.RESYNCING and len(processor.book) == 0
    assert processor.last_fault.kind == "gap" and processor.resyncs == 1
    assert processor.take_outbox() == []  # the subscription stands
    requests = replay(processor, GAP_STREAM[detected + 1:], [RESYNC_SNAPSHOT])
    assert requests == [HttpRequest("GET", SNAPSHOT_URL)]
    assert processor.integrity.first_sequence == MANIFEST["gap_variant"]["resync_snapshot_sequence"]
    assert_expected_final_book(processor)


def test_snapshot_older_than_the_first_buffered_message_is_fetched_again():
    processor = new_processor()
    after_snapshot = line_of(STREAM, MANIFEST["stream"]["snapshot_sequence"] + 3)
    replay(processor, STREAM[:2] + STREAM[after_snapshot:after_snapshot + 5], [])
    processor.load_snapshot(SNAPSHOT)  # sequence 3262791247 < first buffered 3262791250: cannot bridge
    assert processor.state is BookState.SYNCING and len(processor.book) == 0
    assert processor.snapshot_request() == HttpRequest("GET", SNAPSHOT_URL)  # asked for again
    replay(processor, STREAM[after_snapshot + 5:], [])
    processor.load_snapshot(RESYNC_SNAPSHOT)  # the venue's book at 3262791373 is the same in both streams
    assert processor.state is BookState.LIVE
    assert_expected_final_book(processor)


def test_snapshot_ending_just_before_the_first_buffered_message_bridges_exactly():
    processor = new_processor()
    next_line = line_of(STREAM, MANIFEST["stream"]["snapshot_sequence"] + 1)
    replay(processor, STREAM[:2] + STREAM[next_line:next_line + 3], [])
    processor.load_snapshot(SNAPSHOT)  # 3262791247, buffer starts at 3262791248: nothing is missing
    assert processor.state is BookState.LIVE
    replay(processor, STREAM[next_line + 3:], [])
    assert_expected_final_book(processor)


def test_duplicates_are_skipped_while_buffering_and_live():
    processor = new_processor()
    lines = STREAM[:20] + STREAM[15:200] + STREAM[199:201] + STREAM[201:]
    replay(processor, lines, [SNAPSHOT])
    assert processor.duplicates == 5 + 1
    assert_expected_final_book(processor)


def test_other_topics_and_pongs_change_nothing():
    processor = new_processor()
    replay(processor, STREAM, [SNAPSHOT])
    before = orders_view(processor.book, Side.BID), orders_view(processor.book, Side.ASK)
    numbers = MANIFEST["stream"]["ignore_lines"] + [MANIFEST["stream"]["pong_line"]]
    ignored = [STREAM[number - 1] for number in numbers]
    assert '"tickerV2"' in ignored[0] and '"pong"' in ignored[-1]
    for line in ignored:
        processor.receive(line)
    assert (orders_view(processor.book, Side.BID), orders_view(processor.book, Side.ASK)) == before
    assert processor.last_sequence == EXPECTED["sequence"]


def live_processor() -> KumexProcessor:
    processor = new_processor()
    replay(processor, STREAM, [SNAPSHOT])
    return processor


def level3(subject: str, sequence: int, **data) -> str:
    return json.dumps({"type": "message", "topic": LEVEL3_TOPIC, "subject": subject,
                       "data": {"symbol": "XBTUSDM", "sequence": sequence, **data, "ts": 1618617620000000000}})


MALFORMED = {
    "not-json": "not json at all",
    "a-list": "[1, 2, 3]",
    "a-string": '"a string"',
    "no-type": '{"no": "type"}',
    "sequence-not-int": json.dumps({"type": "message", "topic": LEVEL3_TOPIC, "subject": "open",
                                    "data": {"sequence": "3262791587"}}),
    "no-subject": json.dumps({"type": "message", "topic": LEVEL3_TOPIC, "data": {"sequence": 3262791587}}),
    "data-a-list": json.dumps({"type": "message", "topic": LEVEL3_TOPIC, "subject": "open", "data": [1]}),
    "open-no-price": level3("open", 3262791587, side="buy", size="10", orderId="x1"),
    "open-bad-side": level3("open", 3262791587, side="up", price="60990", size="10", orderId="x1"),
    "open-bad-price": level3("open", 3262791587, side="buy", price="abc", size="10", orderId="x1"),
    "open-numeric-id": level3("open", 3262791587, side="buy", price="60990", size="10", orderId=5),
    "open-known-id": level3("open", 3262791587, side="buy", price="60990", size="10",
                            orderId="607a2517ac8739bca12a55ca"),
    "match-bad-size": level3("match", 3262791587, side="buy", price="61000", size="x",
                             makerOrderId="607a2517ac8739bca12a55ca"),
    "done-no-order": level3("done", 3262791587, reason="filled"),
    "unknown-subject": level3("mystery", 3262791587, orderId="x1"),
}


@pytest.mark.parametrize("frame", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_frames_raise_message_error_and_resync_in_place(frame):
    processor = live_processor()
    with pytest.raises(MessageError):
        processor.receive(frame)
    assert processor.fault(MessageError("kumex", "test", frame)) is True
    assert processor.state is BookState.RESYNCING and len(processor.book) == 0


def test_crossing_open_raises_crossed_book_and_resyncs_in_place():
    processor = live_processor()
    with pytest.raises(CrossedBook) as caught:
        processor.receive(level3("open", 3262791587, side="buy", price="61000", size="5", orderId="x1"))
    assert (caught.value.bid, caught.value.ask) == (Decimal("61000"), Decimal("61000"))
    assert processor.fault(caught.value) is True
    assert len(processor.book) == 0
    processor.receive(level3("received", 3262791588, orderId="x2", clientOid="c2"))
    assert processor.snapshot_request() == HttpRequest("GET", SNAPSHOT_URL)


@pytest.mark.parametrize("frame", [
    level3("open", 3262791587, side="buy", price="0", size="10", orderId="x1"),
    level3("open", 3262791587, side="sell", price="61100", size="-1", orderId="x1"),
    level3("update", 3262791587, orderId="607a2517ac8739bca12a55ca", size="-5"),
])
def test_non_positive_prices_and_negative_sizes_are_bad_levels(frame):
    with pytest.raises(BadLevel):
        live_processor().receive(frame)


def test_match_without_remain_size_subtracts_the_filled_size_and_unknown_done_is_a_no_op():
    processor = live_processor()
    maker = "607a22e688916c6bf3c4fca0"  # 1170 at 60997, head of the queue
    processor.receive(level3("match", 3262791587, side="sell", price="60997", size="170", makerOrderId=maker,
                             takerOrderId="t1", tradeId="x"))
    assert processor.book.order(maker).size == Decimal(1000)
    assert processor.book.orders_at(Side.BID, Decimal(60997))[0].order_id == maker  # keeps its place
    processor.receive(level3("done", 3262791588, reason="filled", orderId="t1"))  # the taker: never on book
    assert processor.last_sequence == 3262791588
    processor.book.check()


def test_a_late_level3_open_with_nanosecond_times_stays_exact():
    processor = live_processor()
    processor.receive(level3("open", 3262791587, side="sell", price="61000.5", size="3", orderId="x1",
                             orderTime=1618617620123456789))
    assert processor.book.order("x1").price == Decimal("61000.5")
    assert processor.levels(Side.ASK).__next__() == (Decimal(61000), Decimal("0.32786885"))


def test_reset_for_a_new_connection_discards_the_book():
    processor = live_processor()
    processor.reset()
    assert processor.state is BookState.SYNCING and len(processor.book) == 0 and not processor.acked
    processor.receive(STREAM[0])
    assert len(processor.take_outbox()) == 1  # subscribes again after the new welcome


# --- level-2 fallback ---------------------------------------------------------------------------------
def level2(sequence: int, change: str) -> str:
    return json.dumps({"type": "message", "topic": LEVEL2_TOPIC, "subject": "level2",
                       "data": {"sequence": sequence, "change": change, "timestamp": 1604643655040}})


LEVEL2_SNAPSHOT = json.dumps({"code": "200000", "data": {
    "symbol": "XBTUSDM", "sequence": 16, "asks": [["3988.61", 1000], ["3989", 500]],
    "bids": [["3988.50", 800], ["3988", 100]], "ts": 1604643655040584408}})


def subscribe_frame(frame: str) -> dict:
    message = json.loads(frame)
    assert message["privateChannel"] is False and message["response"] is True
    assert isinstance(message["id"], str)
    return {"type": message["type"], "topic": message["topic"]}


def sync_level2(processor: KumexProcessor) -> None:
    """venues.md 4, the docs' example: snapshot at 16, "3988.50,buy,44" at 17, "3988.61,sell,0" at 18."""
    processor.receive(level2(16, "3988.50,buy,800"))
    processor.receive(level2(17, "3988.50,buy,44"))
    assert processor.snapshot_request() == HttpRequest(
        "GET", "https://api-futures.kucoin.com/api/v1/level2/snapshot?symbol=XBTUSDM")
    processor.load_snapshot(LEVEL2_SNAPSHOT)
    processor.receive(level2(18, "3988.61,sell,0"))
    processor.book.check()
    assert processor.state is BookState.LIVE
    assert processor.book.as_dict() == {"bid": [["3988.50", "44"], ["3988", "100"]], "ask": [["3989", "500"]]}
    assert list(processor.levels(Side.ASK)) == [(Decimal("3989"), Decimal("0.12534470"))]


def test_level3_subscribe_refused_falls_back_to_level2():
    processor = new_processor()
    processor.receive(STREAM[0])
    subscribe = json.loads(processor.take_outbox()[0])
    processor.receive(json.dumps({"id": subscribe["id"], "type": "error", "code": 404,
                                  "data": "topic does not exist"}))
    assert processor.mode_note == L2_NOTE and isinstance(processor.book, L2Book)
    assert [subscribe_frame(f) for f in processor.take_outbox()] == [{"type": "subscribe", "topic": LEVEL2_TOPIC}]
    processor.receive(STREAM[2])  # a late level-3 message: another topic now, ignored
    sync_level2(processor)


@pytest.mark.parametrize("refusal", ["status", "code", "text"])
def test_level3_snapshot_refused_falls_back_to_level2(refusal):
    processor = new_processor()
    replay(processor, STREAM[:5], [])
    if refusal == "status":
        processor.snapshot_failed(404, '{"code":"404000","msg":"Not Found"}')
    elif refusal == "code":
        processor.load_snapshot('{"code":"404000","msg":"Not Found"}')
    else:
        processor.load_snapshot("HTTP Error 404: Not Found")
    assert processor.mode_note == L2_NOTE
    assert [subscribe_frame(f) for f in processor.take_outbox()] == [
        {"type": "unsubscribe", "topic": LEVEL3_TOPIC}, {"type": "subscribe", "topic": LEVEL2_TOPIC}]
    sync_level2(processor)


def test_level3_silent_for_ten_seconds_after_the_ack_falls_back():
    processor = new_processor()
    processor.receive(STREAM[0])
    processor.receive(STREAM[1])
    processor.take_outbox()
    processor.on_timer(1000.0)   # arms the deadline
    processor.on_timer(1009.5)
    assert processor.mode_note == ""
    processor.on_timer(1010.0)
    assert processor.mode_note == L2_NOTE
    assert [subscribe_frame(f)["topic"] for f in processor.take_outbox()] == [LEVEL3_TOPIC, LEVEL2_TOPIC]


def test_level3_data_before_the_deadline_keeps_level3():
    processor = new_processor()
    processor.on_timer(0.0)
    replay(processor, STREAM[:3], [])
    processor.on_timer(1.0)
    processor.on_timer(20.0)
    assert processor.mode_note == "" and processor.level3


def test_retryable_snapshot_failures_wait_then_ask_again():
    processor = new_processor()
    replay(processor, STREAM[:5], [])
    processor.snapshot_failed(503, "busy")
    assert processor.mode_note == "" and processor.snapshot_request() is None
    processor.clock.now += 2.5
    assert processor.snapshot_request() == HttpRequest("GET", SNAPSHOT_URL)
    processor.snapshot_failed(429, "too many requests")
    processor.clock.now += 30
    assert processor.snapshot_request() is None
    processor.clock.now += 31
    assert processor.snapshot_request() == HttpRequest("GET", SNAPSHOT_URL)


def test_level2_mode_detects_gaps_and_refused_snapshots():
    processor = new_processor(level3=False)
    assert processor.mode_note and isinstance(processor.book, L2Book)
    processor.receive(STREAM[0])
    assert subscribe_frame(processor.take_outbox()[0])["topic"] == LEVEL2_TOPIC
    sync_level2(processor)
    with pytest.raises(SequenceGap):
        processor.receive(level2(20, "3988,buy,1"))
    assert processor.fault(SequenceGap("kumex", 19, 20)) is True
    processor.receive(level2(21, "3988,buy,1"))
    assert processor.snapshot_request() is not None
    with pytest.raises(FeedError):
        processor.load_snapshot('{"code":"500000","msg":"busy"}')
    assert processor.fault(SnapshotError("kumex", "busy")) is True
    processor.receive(level2(22, "3988,buy,2"))
    assert processor.snapshot_request() is None  # not at once: the endpoint was busy
    processor.clock.now += 2.5
    assert processor.snapshot_request() is not None
