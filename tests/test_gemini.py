"""Gemini processors through the one test driver: the WebSocket API (the note's frames, update ids, gaps,
overlaps, unsorted diffs, empty sides, several symbols, pings, error replies) and market data v2 (the 2021
capture of 10 symbols, whole books only from marked frames), hostile numbers and a fuzz run of each."""
import json
from decimal import Decimal as D
from pathlib import Path

import pytest

from data_manager.book import Side
from data_manager.errors import BadLevel, MessageError, SequenceGap
from data_manager.feed import FeedState
from data_manager.symbols import Symbol
from data_manager.venues.gemini import (GeminiProcessor, GeminiSettings, VENUE, full_book_url, native_symbol)
from data_manager.venues.gemini_v2 import GeminiV2Processor
from tests.driver import Driver, FakeClock
from tests.fuzz import run_fuzz

SHARED = Path(__file__).resolve().parents[2] / "shared"
NOTE_FRAMES = SHARED / "venues-2026" / "gemini_ws_frames.ndjson"
CAPTURE = SHARED / "captures" / "gemini_v2_l2_2021-06-24.jsonl"
BID, ASK = Side.BID, Side.ASK


def driver(pairs=(("BTC-USD", "btcusd"),), **settings) -> Driver:
    clock = FakeClock()
    symbols = [(Symbol.parse(unified), native) for unified, native in pairs]
    return Driver(VENUE.processor(GeminiSettings(**settings), symbols, clock), clock=clock)


def connected(pairs=(("BTC-USD", "btcusd"),), **settings) -> Driver:
    run = driver(pairs, **settings)
    run.connect()
    return run


def depth(first: int, last: int, bids=(), asks=(), symbol: str = "btcusd") -> str:
    return json.dumps({"e": "depthUpdate", "E": 1796083200123456789, "s": symbol, "U": first, "u": last,
                       "b": [list(row) for row in bids], "a": [list(row) for row in asks]})


def levels(run: Driver, side: Side, native: str | None = None) -> list[tuple[str, str]]:
    return [(str(p), str(s)) for p, s in run.levels(side, native)]


def note_frames(direction: str) -> list[dict]:
    rows = [json.loads(line) for line in NOTE_FRAMES.read_text().splitlines()]
    return [row["frame"] for row in rows if row["_dir"] == direction and "frame" in row]


def note_frame(**fields) -> str:
    """The one received frame of the note with these field values, as text."""
    found = [frame for frame in note_frames("in") if all(frame.get(k) == v for k, v in fields.items())]
    assert len(found) == 1, fields
    return json.dumps(found[0])


def note_depth_updates() -> dict[str, list[str]]:
    """The note's depthUpdate frames by symbol, as text, in file order."""
    found: dict[str, list[str]] = {}
    for frame in note_frames("in"):
        if frame.get("e") == "depthUpdate":
            found.setdefault(frame["s"], []).append(json.dumps(frame))
    return found


BOOK = depth(100, 100, bids=[("100.00", "1.5"), ("99.50", "2")], asks=[("100.50", "0.25"), ("101.00", "3")])


def live(**settings) -> Driver:
    run = connected(**settings)
    run.feed(BOOK)
    return run


# --- registry and settings -----------------------------------------------------------------------

def test_the_venue_spec_declares_settings_limits_and_symbols():
    assert VENUE.name == "gemini" and VENUE.instrument == "spot" and VENUE.multiplexed
    assert (VENUE.limits.attempts, VENUE.limits.per_seconds) == (300, 300.0) and "1.6" in VENUE.limits.source
    settings = GeminiSettings()
    assert (settings.url, settings.protocol, settings.v2_url) == (
        "wss://ws.gemini.com?snapshot=-1", "new", "wss://api.gemini.com/v2/marketdata")
    assert native_symbol(Symbol("BTC", "USD")) == "btcusd" and native_symbol(Symbol("ETH", "BTC")) == "ethbtc"
    for unknown in (Symbol("BTC", "XYZ"), Symbol("NOPE", "USD"), Symbol("BTC", "BTC")):
        with pytest.raises(ValueError, match="gemini"):
            native_symbol(unknown)


def test_the_protocol_setting_picks_the_processor_and_its_url():
    new, v2 = driver(), driver(protocol="v2")
    assert type(new.processor) is GeminiProcessor and type(v2.processor) is GeminiV2Processor
    new.connect()
    v2.connect()
    assert new.connects == ["wss://ws.gemini.com?snapshot=-1"]
    assert v2.connects == ["wss://api.gemini.com/v2/marketdata"]
    assert new.feed_book().notes == ("Gemini WebSocket API, depth@100ms with update ids (U/u checked)",)
    assert "no sequence numbers" in v2.feed_book().notes[0]


@pytest.mark.parametrize("url, expected", [
    ("wss://ws.gemini.com", "wss://ws.gemini.com?snapshot=-1"),
    ("wss://ws.gemini.com?snapshot=20&x=1", "wss://ws.gemini.com?x=1&snapshot=-1"),
    ("ws://127.0.0.1:8000/?snapshot=0", "ws://127.0.0.1:8000/?snapshot=-1"),
])
def test_the_connection_always_asks_for_the_whole_book(url, expected):
    assert full_book_url(url) == expected
    run = driver(url=url)
    run.connect()
    assert run.connects == [expected]


# --- WebSocket API: the note's frames --------------------------------------------------------------

def test_the_probe_session_subscribes_as_recorded_and_the_book_arrives_before_the_ack():
    run = connected((("AVAX-GUSD", "avaxgusdperp"), ("BTC-GUSD", "btcgusdperp")))
    assert [json.loads(text) for text in run.sent] == note_frames("out")[:1]
    snapshot = note_depth_updates()["avaxgusdperp"][0]
    run.feed(snapshot)  # before {"id":1,"status":200}, as on the wire
    assert run.state("avaxgusdperp") is FeedState.LIVE
    assert levels(run, BID, "avaxgusdperp") == [("7.487000", "140.40000"), ("7.479000", "570.50000"),
                                                ("7.457000", "680.90000"), ("7.415000", "2161.00000"),
                                                ("7.407000", "56.10000"), ("0.350000", "300.00000"),
                                                ("0.160000", "10000.00000")]
    assert levels(run, ASK, "avaxgusdperp") == [("7.503000", "142.60000"), ("7.510000", "547.50000"),
                                                ("7.533000", "681.50000"), ("7.559000", "56.20000"),
                                                ("7.566000", "2110.70000")]
    assert run.feed_book("avaxgusdperp").health.integrity.last_sequence == 1764527605191349
    run.feed(json.dumps({"id": 1, "status": 200}))
    assert run.state("btcgusdperp") is FeedState.SYNCING and run.levels(BID, "btcgusdperp") == []
    assert not run.reconnects


def test_the_note_diffs_apply_in_sequence_and_an_empty_side_changes_nothing():
    run = connected((("ETH-GUSD", "ethgusdperp"),))
    diff1, diff2 = note_depth_updates()["ethgusdperp"]
    first = json.loads(diff1)["U"]
    run.feed(depth(first, first, bids=[("2482.5500", "0.512"), ("2482.0000", "3.000")],
                   asks=[("2483.5000", "0.200"), ("2484.0000", "1.000")], symbol="ethgusdperp"))
    run.feed(diff1)  # U == the book's u: deletes 2482.55 bid and 2483.50 ask, sets 2483.45
    assert levels(run, BID) == [("2482.0000", "3.000")]
    assert levels(run, ASK) == [("2483.4500", "1.047"), ("2484.0000", "1.000")]
    run.feed(diff2)  # U == diff1's u; "a": []
    assert levels(run, BID) == [("2482.5500", "1.047"), ("2482.0000", "3.000")]
    assert levels(run, ASK) == [("2483.4500", "1.047"), ("2484.0000", "1.000")]
    assert run.feed_book().health.integrity.last_sequence == json.loads(diff2)["u"]
    assert run.state() is FeedState.LIVE and not run.reconnects


def test_the_docs_diff_example_on_btcusd():
    run = connected()
    docs_diff = note_depth_updates()["btcusd"][0]
    run.feed(depth(12345677, 12345677, bids=[("45000.25", "0.5"), ("44999.00", "2")], asks=[("45001.50", "1")]))
    run.feed(docs_diff)
    assert levels(run, BID) == [("45000.50", "1.25000000"), ("44999.00", "2")]
    assert levels(run, ASK) == [("45001.00", "0.75000000"), ("45001.50", "1")]


# --- WebSocket API: update ids --------------------------------------------------------------------

def test_a_frame_whose_first_id_skips_past_the_last_is_a_gap_and_the_reconnect_brings_a_fresh_book():
    run = live()
    run.feed(depth(100, 104, bids=[("98.00", "5")]))
    run.feed(depth(105, 107, asks=[("102.00", "1")]))  # U 105 > last u 104 (overlap rule: U must be <= 104)
    health = run.feed_book().health
    assert run.reconnects == ["gap: expected sequence 104, got 105"]
    assert health.last_fault.kind == "gap" and run.state() is FeedState.RESYNCING and run.levels(BID) == []
    run.connect()
    assert json.loads(run.sent[-1]) == {"id": 2, "method": "subscribe", "params": ["btcusd@depth@100ms"]}
    run.feed(depth(200, 200, bids=[("100.10", "1")], asks=[("100.20", "2")]))
    assert levels(run, BID) == [("100.10", "1")] and levels(run, ASK) == [("100.20", "2")]  # no ghosts
    assert run.state() is FeedState.LIVE and health.resyncs == 1


def test_frames_already_covered_are_dropped_and_the_next_in_sequence_applies():
    run = live()
    run.feed(depth(100, 103, bids=[("100.00", "1.25")]))
    before = run.processor.books["btcusd"].book.as_dict()
    run.feed(depth(98, 101, bids=[("100.00", "9")], asks=[("100.50", "0")]))   # u 101 <= 103: stale
    run.feed(depth(100, 103, bids=[("100.00", "9")]))                          # the same range again
    run.feed(depth(103, 103, bids=[("100.00", "9")]))                          # U == u == last: not a book
    assert run.processor.books["btcusd"].book.as_dict() == before
    run.feed(depth(103, 104, bids=[("99.75", "1")]))
    assert levels(run, BID) == [("100.00", "1.25"), ("99.75", "1"), ("99.50", "2")]
    assert levels(run, ASK) == [("100.50", "0.25"), ("101.00", "3")]
    assert run.feed_book().health.integrity.snapshots == 1 and not run.reconnects


def test_unsorted_diffs_apply_by_price_and_zero_padded_prices_are_one_level():
    run = live()
    run.feed(depth(100, 106, bids=[("98.00", "1"), ("100.000", "0.000"), ("99.90", "4"), ("99.500", "2.5")],
                   asks=[("103.00", "1"), ("100.75", "2"), ("101.0000", "0")]))
    assert levels(run, BID) == [("99.90", "4"), ("99.500", "2.5"), ("98.00", "1")]
    assert levels(run, ASK) == [("100.50", "0.25"), ("100.75", "2"), ("103.00", "1")]
    run.processor.books["btcusd"].book.check()


def test_a_whole_book_may_hold_zero_rows_and_comes_sorted_or_not():
    run = connected()
    run.feed(depth(7, 7, bids=[("99", "1"), ("100", "0"), ("101", "2")], asks=[("103", "1"), ("102", "0.5")]))
    assert levels(run, BID) == [("101", "2"), ("99", "1")] and levels(run, ASK) == [("102", "0.5"), ("103", "1")]


def test_a_crossed_diff_is_a_fault():
    run = live()
    run.feed(depth(100, 101, bids=[("100.50", "1")]))
    assert run.reconnects == ["crossed: best bid 100.50 >= best ask 100.50"]


def test_several_symbols_share_the_connection_and_one_gap_resyncs_them_all():
    run = connected((("BTC-USD", "btcusd"), ("ETH-USD", "ethusd")))
    assert json.loads(run.sent[0])["params"] == ["btcusd@depth@100ms", "ethusd@depth@100ms"]
    run.feed(BOOK)
    assert run.state("btcusd") is FeedState.LIVE and run.state("ethusd") is FeedState.SYNCING
    run.feed(depth(150, 150, bids=[("3000.10", "4")], asks=[("3000.20", "5")], symbol="ETHUSD"))  # any case
    run.feed(depth(100, 160, bids=[("100.00", "2")]))   # ids of all symbols share one counter: 100 -> 160 is fine
    run.feed(depth(150, 170, asks=[("3000.20", "6")], symbol="ethusd"))
    run.feed(depth(99, 99, bids=[("1", "1")], symbol="solusd"))  # not ours: ignored
    assert levels(run, BID, "btcusd") == [("100.00", "2"), ("99.50", "2")]
    assert levels(run, ASK, "ethusd") == [("3000.20", "6")]
    run.feed(depth(171, 180, asks=[("3000.30", "1")], symbol="ethusd"))   # 171 > 170
    for native in ("btcusd", "ethusd"):
        assert run.state(native) is FeedState.RESYNCING and run.feed_book(native).health.last_fault.kind == "gap"
        assert run.levels(BID, native) == []


# --- WebSocket API: replies, pings, liveness ------------------------------------------------------

def test_pings_every_twenty_seconds_and_a_reply_keeps_an_idle_book_live():
    run = live(max_age=60.0)
    assert run.processor.ping_interval == 20.0
    for _ in range(6):   # two idle minutes: no book frame at all, only ping replies
        run.advance(20.0)
        ping = json.loads(run.sent[-1])
        assert ping["method"] == "ping"
        run.feed(json.dumps({"id": str(ping["id"]), "status": 200}))   # ids may come back as strings
    assert run.state() is FeedState.LIVE and not run.reconnects
    assert len(run.sent) == 7 and len({json.loads(text)["id"] for text in run.sent}) == 7


def test_with_a_short_max_age_pings_come_often_enough_and_revive_a_stale_book():
    run = live(max_age=4.0)
    assert run.processor.ping_interval == 2.0
    run.advance(4.5)
    assert run.state() is FeedState.STALE and json.loads(run.sent[-1])["method"] == "ping"
    run.feed(json.dumps({"id": json.loads(run.sent[-1])["id"], "status": 200}))
    assert run.state() is FeedState.LIVE


def test_a_refused_subscribe_is_a_fault_naming_the_venue_reason():
    run = connected()
    run.feed(note_frame(id=4))  # {"id":4,"status":400,"error":{"code":-1013,...}}: not an id of ours
    assert len(run.reconnects) == 1
    assert run.reconnects[0].startswith("malformed: request 4 refused: status 400, code -1013")
    run.connect()
    run.feed(json.dumps({"id": 2, "status": 400, "error": {"code": -1013, "msg": "Invalid stream name: x@depth"}}))
    assert "subscribe refused" in run.reconnects[-1] and "Invalid stream name" in run.reconnects[-1]


def test_a_refused_ping_is_logged_but_the_book_stays():
    run = live(max_age=10.0)
    run.advance(5.0)
    ping_id = json.loads(run.sent[-1])["id"]
    run.feed(json.dumps({"id": ping_id, "status": 429, "error": {"code": -1003, "msg": "rate limit exceeded"}}))
    assert run.state() is FeedState.LIVE and not run.reconnects


def test_other_frames_are_ignored_without_a_fault():
    run = live()
    before = run.processor.books["btcusd"].book.as_dict()
    for frame in (note_frame(id=7), note_frame(lastUpdateId=12345678), note_frame(u=1751505576085),
                  note_frame(id=9), note_frame(id=100)):   # conninfo, partial depth, book ticker, depth, pong
        run.feed(frame)
    assert run.processor.books["btcusd"].book.as_dict() == before and not run.reconnects


# --- hostile input --------------------------------------------------------------------------------

def assert_refused_untouched(run: Driver, text: str, error: type[Exception]) -> None:
    """The hook itself refuses the frame (the base would record the fault and reconnect) and the book is
    exactly as before: the whole frame is validated before any of it is applied."""
    book = run.feed_book().book
    before = book.as_dict()
    with pytest.raises(error):
        run.processor.on_frame(text)
    assert book.as_dict() == before


WS_REFUSED = {
    "size 1E44": (depth(100, 101, bids=[("100.00", "1E44")]), MessageError),
    "size 1e999999999": (depth(100, 101, asks=[("101.00", "1e999999999")]), MessageError),
    "negative size": (depth(100, 101, bids=[("100.00", "-1")]), BadLevel),
    "zero price": (depth(100, 101, bids=[("0", "1")]), BadLevel),
    "price NaN": (depth(100, 101, bids=[("NaN", "1")]), MessageError),
    "row of three": (depth(100, 101, bids=[("100.00", "1", "x")]), MessageError),
    "row a dict": ('{"e":"depthUpdate","E":1,"s":"btcusd","U":100,"u":101,"b":[{"1":"2","3":"4"}],"a":[]}',
                   MessageError),
    "no b": ('{"e":"depthUpdate","E":1,"s":"btcusd","U":100,"u":101,"a":[]}', MessageError),
    "u before U": (depth(102, 101), MessageError),
    "U a bool": ('{"e":"depthUpdate","E":1,"s":"btcusd","U":true,"u":101,"b":[],"a":[]}', MessageError),
    "s a list": ('{"e":"depthUpdate","E":1,"s":["btcusd"],"U":100,"u":101,"b":[],"a":[]}', MessageError),
    "gap": (depth(101, 102, bids=[("100.00", "2")]), SequenceGap),
}


@pytest.mark.parametrize("text, error", WS_REFUSED.values(), ids=WS_REFUSED.keys())
def test_hostile_ws_frames_are_refused_before_the_book_is_touched(text, error):
    assert_refused_untouched(live(), text, error)


def test_a_size_of_1e44_ends_as_a_recorded_fault_not_a_crash():
    run = live()
    run.feed(depth(100, 101, bids=[("100.00", "1E44")]))
    assert run.feed_book().health.last_fault.kind == "malformed" and run.reconnects


def ws_fuzz_frames() -> list[str]:
    return [BOOK, depth(100, 102, bids=[("99.75", "1"), ("100.00", "0")], asks=[]),
            depth(102, 102, bids=[], asks=[("100.60", "0.5")]), depth(101, 101, bids=[("99", "1")]),
            depth(102, 110, bids=[("99.80", "0.00000000"), ("98.00", "3.5")], asks=[("102.0000", "1.000")]),
            '{"id":1,"status":200}', '{"id":2,"status":200}',
            '{"id":4,"status":400,"error":{"code":-1013,"msg":"Invalid stream name: x@depth@100ms"}}']


def test_fuzz_ws():
    report = run_fuzz(connected, ws_fuzz_frames(), count=20_000)
    assert report["reconnects"] > 100  # mutated frames were refused as faults, not swallowed


# --- market data v2 -------------------------------------------------------------------------------

def capture_frames() -> list[str]:
    return [row["data"] for row in map(json.loads, CAPTURE.read_text().splitlines()) if row["dir"] == "in"]


def capture_subscribed() -> list[str]:
    for row in map(json.loads, CAPTURE.read_text().splitlines()):
        if row["dir"] == "out":
            return json.loads(row["data"])["subscriptions"][0]["symbols"]
    raise AssertionError("no subscribe in the capture")


CAPTURE_SYMBOLS = {"BTCGBP": "BTC-GBP", "LINKETH": "LINK-ETH", "FILUSD": "FIL-USD", "ZECLTC": "ZEC-LTC",
                   "BATBTC": "BAT-BTC", "ETHEUR": "ETH-EUR", "LTCETH": "LTC-ETH", "GRTUSD": "GRT-USD",
                   "ANKRUSD": "ANKR-USD", "ALCXUSD": "ALCX-USD"}


def v2(symbols=("BTC-USD",)) -> Driver:
    pairs = [(unified, native_symbol(Symbol.parse(unified))) for unified in symbols]
    return connected(pairs, protocol="v2")


def updates(changes, symbol: str = "BTCUSD", whole: bool = False) -> str:
    message = {"type": "l2_updates", "symbol": symbol, "changes": changes}
    if whole:
        message |= {"trades": [{"type": "trade", "symbol": symbol, "event_id": 1, "timestamp": 1655330221424,
                                "price": "100.50", "quantity": "0.1", "side": "buy"}], "auction_events": []}
    return json.dumps(message)


V2_BOOK = [["buy", "100.00", "1.5"], ["buy", "99.50", "2"], ["sell", "100.50", "0.25"], ["sell", "101.00", "3"]]


def v2_live() -> Driver:
    run = v2()
    run.feed(updates(V2_BOOK, whole=True))
    return run


def test_v2_capture_replay_reaches_every_book_the_frames_imply():
    assert list(CAPTURE_SYMBOLS) == capture_subscribed()
    run = v2(CAPTURE_SYMBOLS.values())
    assert json.loads(run.sent[0]) == {"type": "subscribe", "subscriptions": [{"name": "l2",
                                                                               "symbols": capture_subscribed()}]}
    reference: dict[str, dict[str, dict[D, D]]] = {}
    for text in capture_frames():
        run.feed(text)
        message = json.loads(text)
        if message["type"] != "l2_updates":
            continue
        book = reference.setdefault(message["symbol"], {"buy": {}, "sell": {}})  # the first is the whole book
        for side, price, size in message["changes"]:
            if D(size):
                book[side][D(price)] = D(size)
            else:
                book[side].pop(D(price), None)
    assert not run.reconnects
    for wire, unified in CAPTURE_SYMBOLS.items():
        native = wire.lower()
        feed = run.feed_book(native)
        feed.book.check()
        assert feed.health.state is FeedState.LIVE and feed.health.integrity.snapshots == 1
        assert run.levels(BID, native) == sorted(reference[wire]["buy"].items(), reverse=True), wire
        assert run.levels(ASK, native) == sorted(reference[wire]["sell"].items()), wire
    btcgbp = run.feed_book("btcgbp")
    assert btcgbp.health.integrity.messages == 153
    assert btcgbp.book.depth(BID) + btcgbp.book.depth(ASK) > 200


def test_v2_a_marked_whole_book_then_changes():
    run = v2()
    assert run.state() is FeedState.SYNCING
    run.feed(updates(V2_BOOK, whole=True))
    assert run.state() is FeedState.LIVE
    run.feed(updates([["sell", "100.50", "0"], ["buy", "100.25", "0.1"], ["sell", "100.75", "4"]]))
    assert run.processor.books["btcusd"].book.as_dict() == {
        "bid": [["100.25", "0.1"], ["100.00", "1.5"], ["99.50", "2"]], "ask": [["100.75", "4"], ["101.00", "3"]]}


def test_v2_an_ordinary_update_never_becomes_a_book_not_even_the_first_after_a_fault():
    """Issue 9, defect 1 (the old test asserted that an update after a fault was taken for the book)."""
    run = v2_live()
    run.connected = True   # the socket stays open after the Reconnect: leftovers still arrive
    run.processor.receive(updates([["buy", "100.60", "1"]]))   # crossed: a fault
    assert run.processor.actions()[-1].reason.startswith("crossed")
    run.processor.receive(updates([["buy", "98.00", "5"]]))      # a leftover of the closing connection
    run.processor.receive(updates(V2_BOOK, whole=True))          # even a whole book: never used
    assert run.state() is FeedState.CLOSING and run.levels(BID) == []
    run.lose_connection("closed by us")
    run.connect()
    run.feed(updates([["buy", "98.00", "5"]]))   # the first frame on the new connection, but no whole book
    assert run.reconnects[-1].startswith("malformed: BTCUSD l2_updates before its whole book")
    assert run.state() is FeedState.RESYNCING and run.levels(BID) == []
    run.connect()
    run.feed(updates([["buy", "100.10", "1"], ["sell", "100.20", "2"]], whole=True))
    assert run.processor.books["btcusd"].book.as_dict() == {"bid": [["100.10", "1"]], "ask": [["100.20", "2"]]}
    assert run.state() is FeedState.LIVE and run.feed_book().health.resyncs == 2


def test_v2_a_marked_frame_mid_stream_replaces_the_book():
    run = v2_live()
    run.feed(updates([["buy", "98.00", "5"]]))
    run.feed(updates([["buy", "100.10", "1"], ["sell", "100.20", "2"]], whole=True))
    assert run.processor.books["btcusd"].book.as_dict() == {"bid": [["100.10", "1"]], "ask": [["100.20", "2"]]}
    assert run.feed_book().health.integrity.snapshots == 2


def test_v2_several_symbols_heartbeats_trades_and_auctions():
    run = v2(("BTC-USD", "ETH-USD"))
    assert json.loads(run.sent[0])["subscriptions"][0]["symbols"] == ["BTCUSD", "ETHUSD"]
    run.feed(updates(V2_BOOK, whole=True))
    run.feed(updates([["buy", "3000", "1"], ["sell", "3001", "2"]], symbol="ETHUSD", whole=True))
    run.feed(updates([["buy", "5", "1"]], symbol="SOLUSD"))   # not ours
    run.feed(json.dumps({"type": "auction_open", "symbol": "BTCUSD", "auction_open_ms": 1}))
    run.clock.now += 3
    run.feed(json.dumps({"type": "trade", "symbol": "ETHUSD", "event_id": 3575573053, "timestamp": 151231241,
                         "price": "3001", "quantity": "0.09", "side": "buy"}))
    assert run.feed_book("ethusd").health.last_data == run.clock.now
    assert run.feed_book("btcusd").health.last_data == run.clock.now - 3
    run.clock.now += 5
    run.feed('{"timestamp":1789456747150,"type":"heartbeat"}')
    assert {run.feed_book(n).health.last_data for n in ("btcusd", "ethusd")} == {run.clock.now}
    assert levels(run, ASK, "ethusd") == [("3001", "2")] and levels(run, BID) == [("100.00", "1.5"), ("99.50", "2")]
    assert run.processor.ping_interval is None and not run.reconnects


V2_REFUSED = {
    "size 1E44": updates([["buy", "99", "1E44"]]),
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
    "error result": json.dumps({"reason": "NoValidTradingPairs", "result": "error"}),
    "error type": json.dumps({"type": "error", "reason": "InvalidSymbol", "message": "bad symbol"}),
}


@pytest.mark.parametrize("text", V2_REFUSED.values(), ids=V2_REFUSED.keys())
def test_v2_hostile_frames_are_refused_before_the_book_is_touched(text):
    assert_refused_untouched(v2_live(), text, MessageError)


@pytest.mark.parametrize("change", [["buy", "0", "1"], ["sell", "-1", "1"], ["buy", "99", "-2"]])
def test_v2_non_positive_price_or_negative_quantity_is_a_bad_level(change):
    run = v2_live()
    run.feed(updates([change]))
    assert run.feed_book().health.last_fault.kind == "bad-level"


def v2_fuzz_frames() -> list[str]:
    """BTCGBP from the capture: its whole book cut to 40 rows, then its next updates, a heartbeat, a trade."""
    frames = capture_frames()
    btcgbp = [text for text in frames if '"symbol":"BTCGBP"' in text]
    whole = json.loads(btcgbp[0])
    whole["changes"] = whole["changes"][:20] + whole["changes"][-20:]
    whole["trades"] = whole["trades"][:2]
    others = [text for text in frames if '"type":"heartbeat"' in text][:1] + \
             [text for text in frames if '"type":"trade"' in text][:1]
    return [json.dumps(whole)] + btcgbp[1:30] + others


class BookOnConnect(Driver):
    """v2 sends the whole book on subscribe: every connection of the fuzz run starts with it, so that the
    mutated updates meet a live book instead of being refused as updates before the book."""

    def __init__(self, run: Driver, book: str) -> None:
        super().__init__(run.processor, clock=run.clock)
        self.book_frame = book

    def connect(self) -> None:
        super().connect()
        self.feed(self.book_frame)


def test_fuzz_v2():
    frames = v2_fuzz_frames()

    def make() -> Driver:
        run = BookOnConnect(driver((("BTC-GBP", "btcgbp"),), protocol="v2"), frames[0])
        run.connect()
        return run

    report = run_fuzz(make, frames, count=20_000)
    assert report["reconnects"] > 100
