"""KuMEX processor, sans-I/O through the test driver: the bullet token and the handshake, the level-2 book
bridged with its REST snapshot, the level-2-first / level-3-upgrade / fallback state machine, liveness
from pongs, the documented-shape level-3 fixture (captures/kumex_l3_XBTUSDM_documented) replayed to its
expected final book, the 2026 example frames, hostile input and a fuzz run."""
from __future__ import annotations

import json
from decimal import Decimal as D
from pathlib import Path

import pytest

from data_manager.book import L2Book, L3Book, Side
from data_manager.feed import BookView, FeedState
from data_manager.parse import MAX_DECIMALS
from data_manager.symbols import Symbol
from data_manager.venues.kumex import (LEVEL3_SILENCE_SECONDS, VENUE, KumexProcessor, KumexSettings, Level3,
                                       native_symbol)
from data_manager.venues.kumex_parse import in_base_units, level2_change, level3_event
from tests.driver import Driver, FakeClock
from tests.fuzz import run_fuzz

SHARED = Path(__file__).resolve().parents[2] / "shared"
FIXTURE = SHARED / "captures" / "kumex_l3_XBTUSDM_documented"
MANIFEST = json.loads((FIXTURE / "manifest.json").read_text())
EXPECTED = json.loads((FIXTURE / "expected_final_book.json").read_text())
STREAM = (FIXTURE / "stream.ndjson").read_text().splitlines()
GAP_STREAM = (FIXTURE / "gap_variant.ndjson").read_text().splitlines()
SNAPSHOT = (FIXTURE / "snapshot_v2.json").read_text()
RESYNC_SNAPSHOT = (FIXTURE / "snapshot_v2_resync.json").read_text()
EXAMPLES = [json.loads(line) for line in (SHARED / "venues-2026" / "kucoin_ws_frames.ndjson").read_text().splitlines()]
BULLET_2026 = json.dumps(EXAMPLES[0]["frame"])   # K-USDK example: pingInterval 18000, wss://ws-api-futures...
L2_TOPIC = "/contractMarket/level2:XBTUSDM"
L3_TOPIC = "/contractMarket/level3v2:XBTUSDM"
BTC = Symbol("BTC", "USD")
NOW_MS = 1_796_083_200_000


def example(source_part: str) -> dict:
    return next(e["frame"] for e in EXAMPLES if source_part in e["_src"] and "frame" in e)


# --- a venue for the driver ----------------------------------------------------------------------
class Kumex:
    """The venue's side of the conversation around a `Driver`: frames in KuCoin's own shapes."""

    def __init__(self, level3: bool = False, token: str = BULLET_2026, clock: FakeClock | None = None,
                 **settings) -> None:
        self.clock = clock or FakeClock()
        self.processor = KumexProcessor(KumexSettings(level3=level3, **settings), [(BTC, "XBTUSDM")], self.clock)
        self.driver = Driver(self.processor, http={"token": (200, token)}, clock=self.clock)
        self.feed = self.processor.feed

    def connect(self, welcome: bool = True, ack: bool = True) -> "Kumex":
        self.driver.connect()
        if welcome:
            self.driver.feed(json.dumps({"id": self.processor.connect_id, "type": "welcome"}))
        if ack:
            self.ack(L2_TOPIC)
        return self

    def subscribe_id(self, topic: str, kind: str = "subscribe") -> str:
        return next(m["id"] for m in map(json.loads, reversed(self.driver.sent))
                    if m.get("type") == kind and m.get("topic") == topic)

    def subscribed(self, topic: str, kind: str = "subscribe") -> bool:
        return any(m.get("type") == kind and m.get("topic") == topic for m in map(json.loads, self.driver.sent))

    def ack(self, topic: str) -> None:
        self.driver.feed(json.dumps({"id": self.subscribe_id(topic), "type": "ack"}))

    def level2(self, sequence: int, change: str) -> None:
        self.driver.feed(l2_frame(sequence, change))

    def level3(self, sequence: int, subject: str, **data) -> None:
        self.driver.feed(l3_frame(sequence, subject, **data))

    def answer(self, tag: str, body: str, status: int = 200) -> None:
        self.driver.answer(tag, status, body)

    def live_on_level2(self, sequence: int = 100) -> None:
        """First delta, then its snapshot: the book of L2_BOOK, live."""
        self.level2(sequence + 1, "60000.5,sell,7")
        self.answer("level2-snapshot", l2_snapshot(sequence, *L2_BOOK))

    def pong_every_ping(self, seconds: float) -> None:
        """Let time pass the way a healthy quiet connection does: every ping gets its pong."""
        end = self.clock.now + seconds
        while self.clock.now < end:
            pings = len(self.driver.sent)
            self.driver.advance(0.25)
            for text in self.driver.sent[pings:]:
                message = json.loads(text)
                if message["type"] == "ping":
                    self.driver.feed(json.dumps({"id": message["id"], "type": "pong", "timestamp": 1}))

    @property
    def state(self) -> FeedState:
        return self.feed.health.state

    def states(self) -> list[FeedState]:
        return [state for _, state in self.driver.health]


def l2_frame(sequence: int, change: str) -> str:
    """The 2026 wire shape (K-PROBE 6): sn == data.sequence, a ms timestamp."""
    return json.dumps({"topic": L2_TOPIC, "type": "message", "subject": "level2", "sn": sequence,
                       "data": {"sequence": sequence, "change": change, "timestamp": NOW_MS + sequence % 1000}})


def l3_frame(sequence: int, subject: str, **data) -> str:
    return json.dumps({"type": "message", "topic": L3_TOPIC, "subject": subject,
                       "data": {"symbol": "XBTUSDM", "sequence": sequence, **data, "ts": NOW_MS * 1_000_000}})


def l2_snapshot(sequence: int, bids: list, asks: list) -> str:
    return json.dumps({"code": "200000", "data": {"sequence": sequence, "symbol": "XBTUSDM", "bids": bids,
                                                  "asks": asks, "ts": NOW_MS * 1_000_000}})


def l3_snapshot(sequence: int, bids: list, asks: list) -> str:
    """Rows [orderTime, orderId, price, size, ts] as documented (FD)."""
    def rows(orders):
        return [[ts, oid, price, size, ts] for oid, price, size, ts in orders]
    return json.dumps({"code": "200000", "data": {"symbol": "XBTUSDM", "sequence": sequence,
                                                  "bids": rows(bids), "asks": rows(asks), "ts": 1}})


L2_BOOK = ([[60000, 5], [59999.5, 20]], [[60000.5, 7], [60001, 10]])
L3_ORDERS = ([("b1", "60000", "5", 3), ("b0", "60000", "3", 1), ("b2", "59999", "20", 2)],
             [("a1", "60001", "4", 5), ("a2", "60002", "9", 4)])


def levels(driver_or_feed, side: Side) -> list[tuple[D, D]]:
    return list(driver_or_feed.feed.book.levels(side))


def upgraded(level2_sequence: int = 100, level3_sequence: int = 500) -> Kumex:
    """Level 2 live, then level 3 in sync: the book is the level-3 book."""
    kumex = Kumex(level3=True).connect()
    kumex.live_on_level2(level2_sequence)
    kumex.ack(L3_TOPIC)
    kumex.level3(level3_sequence + 1, "received", orderId="x1", clientOid="c1")
    kumex.answer("level3-snapshot", l3_snapshot(level3_sequence, *L3_ORDERS))
    return kumex


# --- the link: token, connect, welcome, subscribe ------------------------------------------------
def test_a_fresh_token_per_attempt_names_the_server_the_ping_interval_and_the_timeout():
    kumex = Kumex()
    kumex.driver.connect()
    fetch = kumex.driver.fetches[0]
    assert (fetch.tag, fetch.request.method, fetch.request.url) == (
        "token", "POST", "https://api-futures.kucoin.com/api/v1/bullet-public")
    token = EXAMPLES[0]["frame"]["data"]["token"]
    first_id = kumex.processor.connect_id
    assert kumex.driver.connects == [f"wss://ws-api-futures.kucoin.com/?token={token}&connectId={first_id}"]
    assert (kumex.processor.ping_interval, kumex.processor.ping_timeout) == (18.0, 10.0)
    assert kumex.driver.sent == []  # nothing before the welcome
    kumex.driver.lose_connection()
    kumex.driver.connect()
    assert [f.tag for f in kumex.driver.fetches] == ["token", "token"]
    assert kumex.processor.connect_id != first_id and kumex.driver.connects[1].endswith(kumex.processor.connect_id)


def test_the_fixture_bullet_answer_gives_the_fixture_connect_url():
    kumex = Kumex(token=(FIXTURE / "bullet_public.json").read_text())
    kumex.driver.connect()
    expected = MANIFEST["connect_url"].replace(MANIFEST["connectId"], kumex.processor.connect_id)
    assert kumex.driver.connects == [expected] and kumex.processor.ping_interval == 50.0


@pytest.mark.parametrize("status, body, says", [
    (500, "", "HTTP 500"), (429, '{"code":"429000","msg":"Too Many Requests"}', "HTTP 429"),
    (0, "", "HTTP 0"), (200, '{"code":"400001","msg":"Invalid"}', "HTTP 200 code 400001 Invalid"),
    (200, "<html>502</html>", "not JSON"), (200, '{"code":"200000","data":{"instanceServers":[]}}', "token"),
    (200, '{"code":"200000","data":{"token":"t","instanceServers":[{"endpoint":"https://x"}]}}', "WebSocket"),
])
def test_a_failed_token_ends_the_attempt_without_touching_the_book(status, body, says):
    kumex = Kumex()
    kumex.driver.http = {"token": (status, body)}
    kumex.processor.begin()
    kumex.driver.run()
    assert kumex.driver.connects == [] and len(kumex.driver.reconnects) == 1
    assert kumex.driver.reconnects[0].startswith("bullet-public failed") and says in kumex.driver.reconnects[0]
    assert kumex.state is FeedState.CONNECTING and kumex.feed.health.last_fault is None
    kumex.driver.http = {"token": (200, BULLET_2026)}
    kumex.connect()
    assert kumex.state is FeedState.SYNCING and kumex.subscribed(L2_TOPIC)


def test_a_token_without_servers_falls_back_to_the_configured_url():
    kumex = Kumex(token='{"code":"200000","data":{"token":"abc","instanceServers":[]}}', url="wss://fallback/")
    kumex.driver.connect()
    assert kumex.driver.connects[0].startswith("wss://fallback/?token=abc&connectId=")
    assert kumex.processor.ping_interval == 18.0


def test_no_welcome_within_10_s_is_a_dead_connection():
    kumex = Kumex().connect(welcome=False, ack=False)
    kumex.driver.advance(10.5)
    assert kumex.driver.reconnects == ["disconnect: no welcome within 10 s of connecting"]
    assert kumex.driver.sent == []


def test_welcome_then_one_level2_subscribe_in_the_documented_shape():
    kumex = Kumex().connect(ack=False)
    assert [json.loads(t) for t in kumex.driver.sent] == [
        {"id": kumex.subscribe_id(L2_TOPIC), "type": "subscribe", "topic": L2_TOPIC, "privateChannel": False,
         "response": True}]
    kumex.driver.feed('{"id":"someone-else","type":"ack"}', json.dumps({"id": kumex.subscribe_id(L2_TOPIC), "type": "ack"}))
    assert len(kumex.driver.sent) == 1 and not kumex.subscribed(L3_TOPIC)  # level3 is off by default
    assert kumex.feed.notes == ("L2",) and kumex.feed.book_kind == "L2"


# --- level 2: the bridge -------------------------------------------------------------------------
def test_level2_docs_example_buffer_snapshot_replay_then_plus_one():
    """venues.md 4: the snapshot holds seq 16; "3988.50,buy,44" is seq 17, "3988.61,sell,0" seq 18."""
    kumex = Kumex().connect()
    kumex.level2(15, "3988.61,sell,2")          # buffered, then covered by the snapshot
    assert kumex.driver.pending_fetches["level2-snapshot"].request.url == \
        "https://api-futures.kucoin.com/api/v1/level2/snapshot?symbol=XBTUSDM"
    kumex.level2(16, "3988.40,buy,9")
    kumex.level2(17, "3988.50,buy,44")          # after the snapshot: replayed
    assert kumex.state is FeedState.SYNCING
    kumex.answer("level2-snapshot", l2_snapshot(16, [[3988.4, 9], [3988.1, 5]], [[3988.61, 2], [3989, 3]]))
    assert kumex.state is FeedState.LIVE
    assert levels(kumex, Side.BID) == [(D("3988.50"), D(44)), (D("3988.4"), D(9)), (D("3988.1"), D(5))]
    kumex.level2(18, "3988.61,sell,0")
    assert levels(kumex, Side.ASK) == [(D(3989), D(3))]
    kumex.level2(18, "3988.61,sell,0")          # a duplicate: skipped
    health = kumex.feed.health
    assert (health.integrity.first_sequence, health.integrity.last_sequence) == (16, 18)
    assert kumex.processor.level2.duplicates == 1 and health.last_fault is None


def test_the_2026_example_frames_read_as_documented():
    probe = example("probe §6 2026-09-22 classic level2")
    sdk = example("orderbookIncrement x-response-example")
    crawler = example("real msg 2021-06-03")
    assert level2_change(probe["data"], "") == (1747821025244, Side.BID, D(83614), D(12))
    assert level2_change(sdk["data"], "") == (1709400450243, Side.ASK, D("90631.2"), D(2))
    assert level2_change(crawler["data"], "") == (1616827077941, Side.ASK, D("39006.0"), D(11450))
    opened = example("level3v2 still served")
    assert level3_event("open", opened["data"], "") == (0, "629727c9edde6b0001f422a7", Side.BID, D("31570.0"), D(3671))


def test_the_2026_rest_example_and_deltas_in_the_wire_shape_reach_the_implied_book():
    """The K-USDK snapshot example for XBTUSDM, bridged by deltas written like the 2026 wire frames."""
    rest = example("GET /api/v1/level2/snapshot x-response-example")
    sequence = rest["data"]["sequence"]
    kumex = Kumex().connect()
    for template, change in ((example("probe §6 2026-09-22 classic level2"), "66968,buy,0"),
                             (example("orderbookIncrement x-response-example"), "66968.7,sell,2000"),
                             (example("probe §6 2026-09-22 classic level2"), "66966,buy,12")):
        sequence += 1
        frame = {**template, "topic": L2_TOPIC, "sn": sequence,
                 "data": {**template["data"], "sequence": sequence, "change": change}}
        kumex.driver.feed(json.dumps(frame))
        if sequence == rest["data"]["sequence"] + 1:
            kumex.answer("level2-snapshot", json.dumps(rest))
    assert kumex.state is FeedState.LIVE
    assert levels(kumex, Side.BID) == [(D(66966), D(12)), (D("66964.8"), D(25596))]
    assert levels(kumex, Side.ASK) == [(D("66968.1"), D(13501)), (D("66968.7"), D(2000))]
    view = BookView(kumex.feed, "perpetual", BTC)
    assert view.best(Side.BID) == (D(66966), D("0.00017920"))  # 12 USD / 66966 = 0.000179195...


def test_a_snapshot_older_than_the_buffer_is_fetched_again():
    kumex = Kumex().connect()
    kumex.level2(101, "60000,buy,1")
    kumex.level2(102, "60000,buy,2")
    kumex.answer("level2-snapshot", l2_snapshot(99, *L2_BOOK))     # 99 < 101 - 1: cannot bridge
    assert kumex.state is FeedState.SYNCING and "level2-snapshot" not in kumex.driver.pending_fetches
    kumex.driver.tick()                                             # asked again, never in a tight loop
    assert "level2-snapshot" in kumex.driver.pending_fetches
    kumex.answer("level2-snapshot", l2_snapshot(100, *L2_BOOK))
    assert kumex.state is FeedState.LIVE and levels(kumex, Side.BID)[0] == (D(60000), D(2))


@pytest.mark.parametrize("status, body, wait", [(429, "", 60), (200, '{"code":"429000","msg":"Too Many"}', 60),
                                                (500, "", 2), (0, "", 2)])
def test_snapshot_failures_are_asked_again_after_the_documented_wait(status, body, wait):
    kumex = Kumex().connect()
    kumex.level2(101, "60000,buy,1")
    kumex.answer("level2-snapshot", body, status)
    kumex.pong_every_ping(wait - 0.5)
    assert "level2-snapshot" not in kumex.driver.pending_fetches
    kumex.pong_every_ping(1)
    assert "level2-snapshot" in kumex.driver.pending_fetches
    assert kumex.driver.reconnects == []
    kumex.answer("level2-snapshot", l2_snapshot(100, *L2_BOOK))
    assert kumex.state is FeedState.LIVE


def test_an_unreadable_snapshot_is_a_fault_and_the_next_request_waits_2_s():
    kumex = Kumex().connect()
    kumex.level2(101, "60000,buy,1")
    kumex.answer("level2-snapshot", "<html>502 Bad Gateway</html>")
    assert kumex.feed.health.last_fault.kind == "malformed" and kumex.state is FeedState.RESYNCING
    kumex.level2(102, "60000,buy,2")
    assert "level2-snapshot" not in kumex.driver.pending_fetches
    kumex.pong_every_ping(2.25)
    assert "level2-snapshot" in kumex.driver.pending_fetches and kumex.driver.reconnects == []


def test_a_refused_level2_snapshot_is_a_recorded_fault_rebuilt_in_place_a_minute_later():
    kumex = Kumex().connect()
    kumex.level2(101, "60000,buy,1")
    kumex.answer("level2-snapshot", '{"msg":"Invalid symbol.","code":"200003"}')
    health = kumex.feed.health
    assert health.last_fault.kind == "snapshot" and "200003" in health.last_fault.detail
    assert kumex.state is FeedState.RESYNCING and kumex.driver.reconnects == []
    kumex.level2(102, "60000,buy,2")
    assert "level2-snapshot" not in kumex.driver.pending_fetches
    kumex.pong_every_ping(60)
    kumex.answer("level2-snapshot", l2_snapshot(101, *L2_BOOK))
    assert kumex.state is FeedState.LIVE and levels(kumex, Side.BID)[0] == (D(60000), D(2))


@pytest.mark.parametrize("live", [True, False], ids=["live", "buffering"])
def test_a_skipped_sequence_is_a_gap_rebuilt_in_place_from_a_fresh_snapshot(live):
    kumex = Kumex().connect()
    if live:
        kumex.live_on_level2(100)
    else:
        kumex.level2(101, "60000,buy,1")
    kumex.level2(103, "60000,buy,3")
    health = kumex.feed.health
    assert health.last_fault.kind == "gap" and health.last_fault.detail == "expected sequence 102, got 103"
    assert kumex.state is FeedState.RESYNCING and kumex.driver.reconnects == [] and levels(kumex, Side.BID) == []
    kumex.level2(104, "59999.5,buy,0")
    kumex.answer("level2-snapshot", l2_snapshot(103, [[60000, 3], [59999.5, 20]], [[60001, 1]]))
    assert kumex.state is FeedState.LIVE and health.resyncs == 1
    assert levels(kumex, Side.BID) == [(D(60000), D(3))]


def test_a_crossing_change_is_a_crossed_book_rebuilt_in_place():
    kumex = Kumex().connect()
    kumex.live_on_level2(100)
    kumex.level2(102, "60000.5,buy,3")
    assert kumex.feed.health.last_fault.kind == "crossed" and kumex.state is FeedState.RESYNCING
    assert kumex.driver.reconnects == []


# --- liveness ------------------------------------------------------------------------------------
def test_pongs_keep_a_quiet_book_live_and_pings_go_out_every_interval():
    kumex = Kumex().connect()
    kumex.live_on_level2(100)
    kumex.pong_every_ping(120)
    assert kumex.state is FeedState.LIVE and FeedState.STALE not in kumex.states()
    pings = [json.loads(t) for t in kumex.driver.sent if json.loads(t)["type"] == "ping"]
    assert len(pings) == 6 and len({p["id"] for p in pings}) == 6   # every 18 s, unique ids


def test_no_pong_within_the_ping_timeout_is_a_dead_connection():
    kumex = Kumex().connect()
    kumex.live_on_level2(100)
    kumex.driver.advance(18 + 10.5)
    assert kumex.driver.reconnects and kumex.driver.reconnects[0].startswith("disconnect: no pong")
    assert kumex.feed.health.last_fault.kind == "disconnect"


def test_the_venue_ping_timeout_error_closes_the_connection():
    kumex = Kumex().connect()
    kumex.live_on_level2(100)
    kumex.driver.feed('{"type":"error","code":400,"data":"ping timeout"}')
    assert kumex.driver.reconnects == ["disconnect: venue error 400 ping timeout"]


# --- level 2 first, then level 3 -----------------------------------------------------------------
def test_level3_is_asked_only_after_level2_stands_and_is_used_once_in_sync():
    kumex = Kumex(level3=True).connect(ack=False)
    assert not kumex.subscribed(L3_TOPIC)
    kumex.ack(L2_TOPIC)
    assert kumex.subscribed(L3_TOPIC) and kumex.subscribe_id(L3_TOPIC) != kumex.subscribe_id(L2_TOPIC)
    kumex.live_on_level2(100)
    assert kumex.feed.notes == ("L2 (level 3 not in sync yet)",) and kumex.feed.book_kind == "L2"
    kumex.ack(L3_TOPIC)
    kumex.level3(501, "open", side="buy", price="59999", size="1", orderId="b3", orderTime=1)
    kumex.level3(502, "received", orderId="x1", clientOid="c1")
    assert kumex.state is FeedState.LIVE and isinstance(kumex.feed.book, L2Book)
    fetch = kumex.driver.pending_fetches["level3-snapshot"]
    assert fetch.request.url == "https://api-futures.kucoin.com/api/v2/level3/snapshot?symbol=XBTUSDM"
    kumex.answer("level3-snapshot", l3_snapshot(500, *L3_ORDERS))
    book = kumex.feed.book
    assert isinstance(book, L3Book) and kumex.feed.book_kind == "L3" and kumex.feed.notes == ("L3",)
    assert [o.order_id for o in book.orders_at(Side.BID, D(60000))] == ["b0", "b1"]   # by ts: FIFO
    assert list(book.levels(Side.BID)) == [(D(60000), D(8)), (D(59999), D(21))]
    assert kumex.states() == [FeedState.SYNCING, FeedState.LIVE]   # live the whole time
    kumex.level2(102, "60000,buy,0")                               # level 2 is not read any more
    assert list(book.levels(Side.BID))[0] == (D(60000), D(8))
    kumex.level3(503, "match", side="sell", price="60000", size="2", remainSize="1", makerOrderId="b0",
                 takerOrderId="t1", tradeId="x")
    assert [(o.order_id, o.size) for o in book.orders_at(Side.BID, D(60000))] == [("b0", D(1)), ("b1", D(5))]
    event = kumex.driver.order_events[-1]
    assert (event.kind, event.order_id, event.side, event.price, event.size, event.filled) == (
        "match", "b0", "bid", D(60000), D(1), D(2))


@pytest.mark.parametrize("echo", ["request", "connectId"])
def test_a_refused_level3_subscribe_falls_back_for_the_session_and_level2_stays_live(echo):
    kumex = Kumex(level3=True).connect()
    kumex.live_on_level2(100)
    ident = kumex.subscribe_id(L3_TOPIC) if echo == "request" else kumex.processor.connect_id
    kumex.driver.feed(json.dumps({"id": ident, "type": "error", "code": 404, "data": "topic does not exist"}))
    assert kumex.feed.notes == ("L2 (level 3 unavailable: subscribe refused: 404 topic does not exist)",)
    assert kumex.feed.book_kind == "L2" and kumex.processor.level3_state is Level3.UNAVAILABLE
    assert kumex.state is FeedState.LIVE and kumex.states() == [FeedState.SYNCING, FeedState.LIVE]
    assert kumex.driver.reconnects == [] and not kumex.subscribed(L3_TOPIC, "unsubscribe")
    kumex.level2(102, "60000,buy,9")
    assert levels(kumex, Side.BID)[0] == (D(60000), D(9))
    sent = len(kumex.driver.sent)
    kumex.driver.lose_connection()
    kumex.connect()
    assert [json.loads(t)["topic"] for t in kumex.driver.sent[sent:]] == [L2_TOPIC]   # not asked again
    assert kumex.feed.notes[0].startswith("L2 (level 3 unavailable")


def test_a_silent_level3_falls_back_after_15_s_with_level2_live_all_along():
    kumex = Kumex(level3=True).connect()
    kumex.live_on_level2(100)
    kumex.ack(L3_TOPIC)
    kumex.pong_every_ping(LEVEL3_SILENCE_SECONDS - 1)
    assert kumex.processor.level3_state is Level3.TRYING
    kumex.pong_every_ping(1.5)
    assert kumex.processor.level3_state is Level3.UNAVAILABLE
    assert kumex.feed.notes == ("L2 (level 3 unavailable: no level-3 message within 15 s (acked, then silent))",)
    assert kumex.subscribed(L3_TOPIC, "unsubscribe")
    kumex.driver.feed(json.dumps({"id": kumex.subscribe_id(L3_TOPIC, "unsubscribe"), "type": "ack"}))
    kumex.level3(501, "done", orderId="b1", reason="canceled")     # a leftover: ignored
    assert kumex.states() == [FeedState.SYNCING, FeedState.LIVE] and kumex.driver.reconnects == []


@pytest.mark.parametrize("status, body", [(404, '{"code":"404","msg":"Not Found","retry":false,"success":false}'),
                                          (200, '{"code":"404","msg":"not exist"}')])
def test_a_refused_level3_snapshot_falls_back(status, body):
    kumex = Kumex(level3=True).connect()
    kumex.live_on_level2(100)
    kumex.level3(501, "received", orderId="x1")
    kumex.answer("level3-snapshot", body, status)
    assert kumex.processor.level3_state is Level3.UNAVAILABLE and "level-3 snapshot refused" in kumex.feed.notes[0]
    assert kumex.state is FeedState.LIVE and kumex.subscribed(L3_TOPIC, "unsubscribe")


def test_a_fault_of_level3_before_it_is_used_restarts_level3_only():
    kumex = Kumex(level3=True).connect()
    kumex.live_on_level2(100)
    kumex.level3(501, "received", orderId="x1")
    kumex.level3(503, "received", orderId="x2")                   # a gap in the level-3 buffer
    kumex.level3(504, "open", side="buy", price="1e999", size="1", orderId="x3")   # and garbage
    assert kumex.state is FeedState.LIVE and kumex.feed.health.last_fault is None
    assert kumex.processor.level3.bridge.buffered == 0 and kumex.driver.reconnects == []
    kumex.level3(505, "received", orderId="x4")
    kumex.answer("level3-snapshot", l3_snapshot(504, *L3_ORDERS))
    assert kumex.feed.book_kind == "L3" and kumex.state is FeedState.LIVE


def test_after_the_upgrade_a_gap_rebuilds_level2_first_then_level3_again():
    kumex = upgraded()
    kumex.level3(502, "received", orderId="x2")
    kumex.level3(504, "received", orderId="x3")
    assert kumex.feed.health.last_fault.kind == "gap" and kumex.state is FeedState.RESYNCING
    assert kumex.feed.book_kind == "L2" and kumex.driver.reconnects == []
    kumex.level2(200, "60000,buy,5")
    kumex.answer("level2-snapshot", l2_snapshot(199, *L2_BOOK))
    assert kumex.state is FeedState.LIVE and kumex.feed.book_kind == "L2"
    kumex.level3(505, "received", orderId="x4")
    kumex.answer("level3-snapshot", l3_snapshot(504, *L3_ORDERS))
    assert kumex.feed.book_kind == "L3" and kumex.state is FeedState.LIVE


def test_a_reconnect_after_the_upgrade_starts_with_level2_again():
    kumex = upgraded()
    kumex.driver.lose_connection()
    assert isinstance(kumex.feed.book, L2Book) and kumex.feed.book_kind == "L2"
    kumex.connect()
    assert kumex.processor.level3_state is Level3.TRYING and kumex.subscribed(L3_TOPIC)


def test_a_refused_level2_subscribe_reconnects():
    kumex = Kumex(level3=True).connect(ack=False)
    kumex.driver.feed(json.dumps({"id": kumex.subscribe_id(L2_TOPIC), "type": "error", "code": 404,
                                  "data": "topic does not exist"}))
    assert kumex.driver.reconnects == ["malformed: level-2 subscribe refused: 404 topic does not exist in "
                                       "'{\"id\": \"%s\", \"type\": \"error\", \"code\": 404, \"data\": \"topic does "
                                       "not exist\"}'" % kumex.subscribe_id(L2_TOPIC)]


def test_an_error_nobody_asked_for_is_about_the_connection():
    kumex = Kumex().connect()
    kumex.live_on_level2(100)
    kumex.driver.feed('{"id":"7f3a","type":"error","code":400,"data":"Unrecognized token"}')
    assert kumex.driver.reconnects == ["disconnect: venue error 400 Unrecognized token"]


# --- the fixture: level 3 exactly ----------------------------------------------------------------
def orders_view(book: L3Book, side: Side) -> list[dict]:
    return [{"price": str(price), "size": str(size),
             "orders": [[order.order_id, str(order.size)] for order in book.orders_at(side, price)]}
            for price, size in book.levels(side)]


def replay_fixture(lines: list[str], snapshots: list[str], deliver_after: int) -> Kumex:
    """The fixture's frames after our own level-2 subscribe was acked; its ack answers our level-3
    subscribe (the venue echoes our id). A snapshot asked for is answered `deliver_after` frames later."""
    kumex = Kumex(level3=True, token=(FIXTURE / "bullet_public.json").read_text())
    kumex.connect(welcome=False, ack=False)
    kumex.driver.feed(lines[0])                                   # the fixture's welcome (another id)
    kumex.ack(L2_TOPIC)
    lines = [line.replace(MANIFEST["subscribe_id"], kumex.subscribe_id(L3_TOPIC)) for line in lines[1:]]
    waiting = None
    for line in lines:
        kumex.driver.feed(line)
        kumex.feed.book.check()
        if waiting is None and "level3-snapshot" in kumex.driver.pending_fetches and snapshots:
            waiting = deliver_after
        if waiting is not None:
            waiting -= 1
            if waiting < 0:
                kumex.answer("level3-snapshot", snapshots.pop(0))
                waiting = None
    return kumex


def assert_expected_final_book(kumex: Kumex) -> None:
    book = kumex.feed.book
    assert isinstance(book, L3Book) and kumex.feed.book_kind == "L3" and kumex.state is FeedState.LIVE
    assert kumex.processor.level3.last == EXPECTED["sequence"]
    assert orders_view(book, Side.BID) == EXPECTED["bids"] and orders_view(book, Side.ASK) == EXPECTED["asks"]
    view = BookView(kumex.feed, "perpetual", BTC)
    for side, key in ((Side.BID, "bids"), (Side.ASK, "asks")):
        assert [{"price": str(p), "size_btc": str(s)} for p, s in view.levels(side)] == EXPECTED["btc"][key]
        assert sum(len(level["orders"]) for level in orders_view(book, side)) == EXPECTED["totals"][key]["orders"]
    best = EXPECTED["best_ask"]
    assert view.best(Side.ASK) == (D(best["price"]), D(best["size_btc"]))
    book.check()


@pytest.mark.parametrize("deliver_after", [0, 100])
def test_fixture_replay_reaches_the_expected_final_book(deliver_after):
    kumex = replay_fixture(STREAM, [SNAPSHOT], deliver_after)
    assert_expected_final_book(kumex)
    assert kumex.feed.health.resyncs == 0 and kumex.feed.health.integrity.first_sequence == 3262791247
    # answered at once, the snapshot is ahead of the stream: the 59 messages it holds are duplicates
    assert kumex.processor.level3.duplicates == (59 if deliver_after == 0 else 0)
    kinds = {event.kind for event in kumex.driver.order_events}
    assert kinds == {"received", "open", "update", "match", "done"}


def test_fixture_gap_variant_resyncs_in_place_to_the_same_final_book():
    kumex = replay_fixture(GAP_STREAM, [SNAPSHOT, RESYNC_SNAPSHOT], 0)
    fault = kumex.feed.health.last_fault
    assert (fault.kind, fault.detail) == ("gap", f"expected sequence {MANIFEST['gap_variant']['removed_sequence']}, "
                                                 f"got {MANIFEST['gap_variant']['gap_detected_at_sequence']}")
    assert kumex.feed.health.resyncs == 1 and kumex.driver.reconnects == []
    assert [f.tag for f in kumex.driver.fetches].count("level3-snapshot") == 2
    assert_expected_final_book(kumex)


# --- hostile input -------------------------------------------------------------------------------
@pytest.mark.parametrize("text, kind", [
    ("[" * 1000, "malformed"), ("[" * 100_000, "malformed"), ('{"type":"message","topic":"/contractMarket/level2:'
                                                                'XBTUSDM","subject":"level2","data":[]}', "malformed"),
    (l2_frame(102, "60000,buy,1E44"), "malformed"), (l2_frame(102, "60000,buy,-1"), "bad-level"),
    (l2_frame(102, "60000,buy,0.000000001"), "bad-level"), (l2_frame(102, "0,buy,1"), "bad-level"),
    (l2_frame(102, "60000,bid,1"), "malformed"), (l2_frame(102, "60000,buy"), "malformed"),
    (l2_frame(102, "1e99999999,buy,1"), "malformed"), (l2_frame(102, "NaN,buy,1"), "malformed"),
    (json.dumps({"topic": L2_TOPIC, "type": "message", "subject": "level2", "data": {"sequence": 1.5,
                                                                                     "change": "1,buy,1"}}), "malformed"),
    (json.dumps({"topic": L2_TOPIC, "type": "message", "subject": "trade", "data": {}}), "malformed"),
])
def test_hostile_level2_frames_are_refused_with_the_book_untouched_and_rebuilt_in_place(text, kind):
    kumex = Kumex().connect()
    kumex.live_on_level2(100)
    before = kumex.feed.book.as_dict()
    kumex.processor.receive(text)
    assert kumex.feed.health.last_fault.kind == kind and kumex.state is FeedState.RESYNCING
    kumex.processor.actions()
    assert before["bid"] and kumex.driver.reconnects == []


@pytest.mark.parametrize("subject, data, kind", [
    ("update", {"orderId": "b1", "size": "1e-30"}, "bad-level"),
    ("update", {"orderId": "b1", "size": "0.000000001"}, "bad-level"),
    ("update", {"orderId": "b1", "size": "-1"}, "bad-level"),
    ("update", {"orderId": "b1", "size": "1E44"}, "malformed"),
    ("match", {"makerOrderId": "b1", "size": "9", "side": "sell"}, "bad-level"),      # more than it holds
    ("match", {"makerOrderId": "b1", "size": "1", "remainSize": "1e-30"}, "bad-level"),
    ("match", {"makerOrderId": "b1", "size": "0", "remainSize": "5"}, "bad-level"),
    ("open", {"orderId": "b1", "side": "buy", "price": "59000", "size": "1"}, "malformed"),   # already on the book
    ("open", {"orderId": "n1", "side": "buy", "price": "-1", "size": "1"}, "bad-level"),
    ("open", {"orderId": "n1", "side": "up", "price": "59000", "size": "1"}, "malformed"),
    ("open", {"orderId": "n1", "side": "buy", "price": "60001", "size": "1"}, "crossed"),
    ("done", {"orderId": ["b1"]}, "malformed"), ("done", {"orderId": ""}, "malformed"),
    ("teleport", {"orderId": "b1"}, "malformed"),
])
def test_hostile_level3_events_are_refused(subject, data, kind):
    kumex = upgraded()
    kumex.level3(502, subject, **data)
    assert kumex.feed.health.last_fault.kind == kind and kumex.state is FeedState.RESYNCING


def test_level3_sizes_to_zero_take_the_order_off_and_unknown_ids_are_no_ops():
    kumex = upgraded()
    book = kumex.feed.book
    kumex.level3(502, "update", orderId="b1", size="0")
    kumex.level3(503, "match", makerOrderId="b0", size="3", remainSize="0", side="sell", price="60000")
    kumex.level3(504, "done", orderId="b0", reason="filled")
    kumex.level3(505, "done", orderId="taker", reason="filled")
    kumex.level3(506, "update", orderId="nobody", size="3")
    kumex.level3(507, "open", orderId="hidden", side="buy", price="59000", size="0")
    assert kumex.state is FeedState.LIVE and "b1" not in book and "b0" not in book and "hidden" not in book
    assert list(book.levels(Side.BID)) == [(D(59999), D(20))]
    book.check()


def test_contracts_convert_to_btc_per_level_half_even():
    assert in_base_units(D(1), (D(61000), D(20000))) == (D(61000), D("0.32786885"))
    price, btc = in_base_units(D(1), (D("1E-18"), D("999999999999")))   # extreme, yet no InvalidOperation
    assert price == D("1E-18") and btc == D("999999999999E+18") and btc.as_tuple().exponent == -8
    assert in_base_units(D(100), (D(50000), D(1))) == (D(50000), D("0.00200000"))
    assert MAX_DECIMALS >= 8


# --- the registry entry --------------------------------------------------------------------------
def test_venue_spec_symbols_settings_limits_and_notes():
    assert (native_symbol(BTC), native_symbol(Symbol.parse("eth-usd"))) == ("XBTUSDM", "ETHUSDM")
    with pytest.raises(ValueError, match="no inverse perpetual for BTC-EUR"):
        native_symbol(Symbol.parse("BTC-EUR"))
    assert VENUE.instrument == "perpetual" and not VENUE.multiplexed and VENUE.settings is KumexSettings
    pairs = VENUE.connections(KumexSettings(), [BTC, Symbol.parse("ETH-USD")])
    assert [[native for _, native in connection] for connection in pairs] == [["XBTUSDM"], ["ETHUSDM"]]
    settings = KumexSettings()
    assert (settings.url, settings.rest_url, settings.level3, settings.contract_value) == (
        "wss://ws-api-futures.kucoin.com/", "https://api-futures.kucoin.com", False, D(1))
    assert settings.max_age >= 2 * 18
    assert VENUE.limits.attempts == 30 and VENUE.limits.per_seconds == 60 and "30 connections/min" in VENUE.limits.source
    assert VENUE.notes(settings, BTC) == (
        "perpetual future XBTUSDM: prices carry a basis over spot",
        "sizes are contracts of 1 USD: BTC = contracts x 1 / price (8 dp, half-even, per level)")
    with pytest.raises(ValueError):
        KumexProcessor(settings, [(BTC, "XBTUSDM"), (Symbol.parse("ETH-USD"), "ETHUSDM")])


def test_the_simulator_supports_exactly_the_faults_the_venue_lists():
    from data_manager.sim.kumex import KumexSim

    assert set(KumexSim.supported_faults) == set(VENUE.sim_faults) and VENUE.simulator.endswith(":KumexSim")


# --- fuzz ----------------------------------------------------------------------------------------
def fuzz_driver() -> Driver:
    """Connected, welcomed, level 2 live and level 3 in use; snapshots answered at once, so that every
    in-place rebuild gets its book back and mutated frames keep landing on live books."""
    kumex = upgraded()
    processor = kumex.processor

    def answer(request, tag: str) -> tuple[int, str]:
        """A snapshot at the buffer's end, so that it always bridges (test-only peek at the bridge)."""
        if tag == "token":
            return 200, BULLET_2026
        if tag == "level2-snapshot":
            return 200, l2_snapshot(processor.level2.bridge.last_buffered() or 100, *L2_BOOK)
        return 200, l3_snapshot(processor.level3.bridge.last_buffered() or 500, *L3_ORDERS)
    kumex.driver.http = answer
    return kumex.driver


def fuzz_frames() -> list[str]:
    return [l3_frame(501, "open", side="buy", price="59998", size="4", orderId="f1", orderTime=1),
            l3_frame(502, "update", orderId="b2", size="7"),
            l3_frame(503, "match", side="sell", price="60000", size="1", remainSize="2", makerOrderId="b0",
                     takerOrderId="t", tradeId="x"),
            l3_frame(504, "done", orderId="f1", reason="canceled"),
            l3_frame(505, "received", orderId="r1", clientOid="c"),
            l2_frame(101, "60000,buy,4"), '{"id":"1","type":"pong","timestamp":1}',
            '{"id":"1","type":"ack"}', '{"id":"x","type":"welcome"}', '{"type":"notice","data":{}}',
            STREAM[5], STREAM[40]]


def test_fuzz():
    result = run_fuzz(fuzz_driver, fuzz_frames(), count=20_000)
    assert result["frames"] == 20_000
