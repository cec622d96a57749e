"""Coinbase Advanced Trade level2 processor, sans-I/O: the converted 2021 capture (ten products on one
connection) against a plain-dict replay of the legacy recording it came from, then routing, the sequence,
shape and book checks one frame at a time, credentials, and a fuzz run."""
from __future__ import annotations

import base64
import json
import logging
import sys
from decimal import Decimal as D
from pathlib import Path

import pytest

from data_manager.book import Side
from data_manager.errors import BadLevel, FeedError, MessageError, SequenceGap
from data_manager.feed import FeedState, Reconnect
from data_manager.symbols import Symbol
from data_manager.venues import coinbase_jwt
from data_manager.venues.coinbase import VENUE, CoinbaseProcessor, CoinbaseSettings, make_processor
from tests.driver import Driver, FakeClock
from tests.fuzz import run_fuzz

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


def driver(*products: str, clock: FakeClock | None = None, credentials=coinbase_jwt.NONE, **settings) -> Driver:
    """A connected processor for `products` (BTC-USD by default)."""
    clock = clock or FakeClock()
    symbols = [(Symbol.parse(p), p) for p in products or ("BTC-USD",)]
    processor = CoinbaseProcessor(CoinbaseSettings(**settings), symbols, clock, credentials=credentials)
    d = Driver(processor, clock=clock)
    d.connect()
    return d


def frame(seq: int, channel: str = "l2_data", events: list | None = None) -> str:
    return json.dumps({"channel": channel, "client_id": "", "timestamp": "2026-12-01T09:10:36.120390407Z",
                       "sequence_num": seq, "events": events or []})


def event(kind: str, updates: list[tuple[str, str, str]], product: str = "BTC-USD") -> dict:
    rows = [{"side": side, "event_time": "2026-12-01T09:10:35.171517Z", "price_level": price,
             "new_quantity": size} for side, price, size in updates]
    return {"type": kind, "product_id": product, "updates": rows}


def l2(seq: int, kind: str, updates: list[tuple[str, str, str]], product: str = "BTC-USD") -> str:
    return frame(seq, events=[event(kind, updates, product)])


def heartbeat(seq: int, counter: int = 14191) -> str:
    return frame(seq, "heartbeats", [{"current_time": "2026-12-01 09:10:36.362521689 +0000 UTC m=+425760.16",
                                      "heartbeat_counter": counter}])


SNAPSHOT = [("bid", "100.00", "1.5"), ("bid", "99.50", "2"), ("offer", "100.50", "0.25"), ("offer", "101", "3")]


def live(*products: str, clock: FakeClock | None = None, **settings) -> Driver:
    """Subscribed, with SNAPSHOT loaded for every product (sequence 0 .. len(products))."""
    d = driver(*products, clock=clock, **settings)
    names = list(d.processor.books)
    d.feed(frame(0, "subscriptions", [{"subscriptions": {"level2": names}}]))
    for seq, product in enumerate(names, start=1):
        d.feed(l2(seq, "snapshot", SNAPSHOT, product))
    return d


def book(d: Driver, native: str | None = None) -> dict[str, list[list[str]]]:
    return d.feed_book(native).book.as_dict()


def faults(d: Driver) -> list[tuple[str, str]]:
    return [(f.health.last_fault.kind, f.health.last_fault.detail) for f in d.processor.books.values()
            if f.health.last_fault is not None]


def refused(d: Driver, text: str, error: type[FeedError] = MessageError) -> FeedError:
    """`on_frame` refuses the frame with `error` and leaves every book exactly as it was (validated before
    applied); through `receive` the fault is then recorded and the connection reconnects."""
    before = {native: feed.book.as_dict() for native, feed in d.processor.books.items()}
    with pytest.raises(error) as caught:
        d.processor.on_frame(text)
    assert {native: feed.book.as_dict() for native, feed in d.processor.books.items()} == before
    d.feed(text)
    assert d.reconnects and d.feed_book().health.last_fault.kind == error.kind
    return caught.value


# --- the capture ------------------------------------------------------------------------------

def replay_capture(lines: list[str], check: bool = True) -> Driver:
    products = json.loads(lines[0])["events"][0]["subscriptions"]["level2"]
    d = driver(*products)
    by_key = {str(feed.key): feed for feed in d.processor.books.values()}
    for index, line in enumerate(lines):
        changed = len(d.changed)
        d.feed(line)
        if check and (index < CHECK_EVERY_FRAME_UNTIL or index % 10 == 0):
            for key in d.changed[changed:]:
                by_key[key].book.check()
    return d


def test_capture_replay_on_one_connection_equals_the_legacy_replay_for_every_product():
    lines = advanced_lines()
    d = replay_capture(lines)
    reference = legacy_books()
    assert sorted(reference) == sorted(d.processor.books)
    assert d.reconnects == [] and faults(d) == []
    for product, feed in d.processor.books.items():
        feed.book.check()
        assert feed.health.state is FeedState.LIVE
        assert dict(feed.book.levels(Side.BID)) == reference[product]["buy"], product
        assert dict(feed.book.levels(Side.ASK)) == reference[product]["sell"], product
        assert feed.health.integrity.snapshots == 1
    # the last frame of the capture was checked against the connection's counter
    assert max(f.health.integrity.last_sequence for f in d.processor.books.values()) == len(lines) - 1
    # spot checks that the comparison is about real books, not two empty dicts
    skl = d.feed_book("SKL-USD")
    assert skl.book.depth(Side.BID) == 816 and skl.book.depth(Side.ASK) == 1341
    assert skl.health.integrity.first_sequence == 13
    assert sum(f.health.integrity.messages for f in d.processor.books.values()) == 10 + 9719
    assert len(d.changed) == 10 + 9719 and d.changed.count("coinbase SKL-USD") == skl.health.integrity.messages


def test_the_full_path_alone_builds_the_same_books_as_the_fast_path(monkeypatch):
    lines = advanced_lines()
    fast = replay_capture(lines, check=False)
    monkeypatch.setattr(CoinbaseProcessor, "_fast_update", lambda self, message, text: False)
    full = replay_capture(lines, check=False)
    assert {n: book(full, n) for n in full.processor.books} == {n: book(fast, n) for n in fast.processor.books}
    assert full.changed == fast.changed


def test_a_deleted_line_is_a_gap_recorded_on_every_book_and_a_reconnect():
    lines = advanced_lines()
    del lines[500]
    products = json.loads(lines[0])["events"][0]["subscriptions"]["level2"]
    d = driver(*products)
    d.feed(*lines[:501])
    assert d.reconnects == ["gap: expected sequence 500, got 501"]
    assert faults(d) == [("gap", "expected sequence 500, got 501")] * len(products)
    for feed in d.processor.books.values():
        assert feed.health.state is FeedState.RESYNCING and feed.book.depth(Side.BID) == 0
    d.connect()
    d.feed(lines[501])  # the old stream's update on a new connection: no snapshot, no book
    assert len(d.reconnects) == 2 and "before its snapshot" in faults(d)[0][1]
    assert all(feed.book.depth(Side.ASK) == 0 for feed in d.processor.books.values())


def test_a_repeated_or_older_sequence_is_reported_as_a_gap():
    d = live()
    d.feed(l2(2, "update", [("bid", "99.00", "1")]))
    error = refused(d, l2(2, "update", [("bid", "99.00", "1")]), SequenceGap)
    assert (error.expected, error.got) == (3, 2)
    assert d.reconnects == ["gap: expected sequence 3, got 2"]
    d = live()
    error = refused(d, heartbeat(0), SequenceGap)  # a heartbeat counts like any frame
    assert (error.expected, error.got) == (2, 0)


# --- subscribing and credentials ---------------------------------------------------------------

def test_one_subscribe_per_channel_with_every_product():
    d = driver("ETH-USD", "BTC-USD")
    assert [json.loads(m) for m in d.sent] == [
        {"type": "subscribe", "product_ids": ["ETH-USD", "BTC-USD"], "channel": "level2"},
        {"type": "subscribe", "product_ids": ["ETH-USD", "BTC-USD"], "channel": "heartbeats"}]
    assert d.connects == ["wss://advanced-trade-ws.coinbase.com"]
    assert d.state("ETH-USD") is FeedState.SYNCING and d.feed_book().notes == ()


class FakePyJWT:
    """Stands in for PyJWT where only the key checks are under test."""

    @staticmethod
    def encode(*args, **kwargs) -> str:
        return ""


class CountingSigner:
    def __init__(self) -> None:
        self.count = 0

    def token(self) -> str:
        self.count += 1
        return f"jwt-{self.count}"


def test_with_credentials_every_subscribe_on_every_connection_carries_a_fresh_jwt():
    d = driver(credentials=coinbase_jwt.Credentials(CountingSigner()))
    d.lose_connection()
    d.connect()
    assert [json.loads(m).get("jwt") for m in d.sent] == ["jwt-1", "jwt-2", "jwt-3", "jwt-4"]


def test_an_auth_error_from_the_venue_drops_the_key_says_so_and_reconnects_unauthenticated():
    d = driver(credentials=coinbase_jwt.Credentials(CountingSigner()))
    d.feed(json.dumps({"type": "error", "message": "authentication failure"}))
    assert d.reconnects == ["malformed: venue error: 'authentication failure' in "
                            "'{\"type\": \"error\", \"message\": \"authentication failure\"}'"]
    assert d.feed_book().notes == ("coinbase: the venue refused the API key (authentication failure): "
                                   "subscribing unauthenticated",)
    d.sent.clear()
    d.connect()
    assert all("jwt" not in json.loads(m) for m in d.sent)


def test_without_keys_nothing_changes(monkeypatch):
    monkeypatch.delenv(coinbase_jwt.KEY_VARIABLE, raising=False)
    monkeypatch.delenv(coinbase_jwt.SECRET_VARIABLE, raising=False)
    assert coinbase_jwt.from_environment() == coinbase_jwt.NONE
    processor = make_processor(CoinbaseSettings(), [(Symbol.parse("BTC-USD"), "BTC-USD")], FakeClock())
    assert processor.books["BTC-USD"].notes == ()


def test_keys_without_the_extra_give_one_line_naming_requirements_jwt(monkeypatch, caplog):
    monkeypatch.setenv(coinbase_jwt.KEY_VARIABLE, "organizations/o/apiKeys/k")
    monkeypatch.setenv(coinbase_jwt.SECRET_VARIABLE, "-----BEGIN EC PRIVATE KEY-----\\nAAAA\\n-----END EC...")
    monkeypatch.setitem(sys.modules, "jwt", None)  # `import jwt` raises ImportError
    symbols = [(Symbol.parse("BTC-USD"), "BTC-USD"), (Symbol.parse("ETH-USD"), "ETH-USD")]
    with caplog.at_level(logging.WARNING, logger="data_manager.venues.coinbase"):
        d = Driver(make_processor(CoinbaseSettings(), symbols, FakeClock()))
    line = ("coinbase: API key set but PyJWT is not installed (pip install -r requirements-jwt.txt): "
            "subscribing unauthenticated")
    assert [feed.notes for feed in d.processor.books.values()] == [(line,), (line,)]
    assert [r.getMessage() for r in caplog.records] == [line]
    d.connect()
    assert len(d.sent) == 2 and all("jwt" not in json.loads(m) for m in d.sent)


@pytest.mark.parametrize("secret, says", [
    ("not a key", "COINBASE_API_SECRET is not a PEM private key"),
    ("", "COINBASE_API_SECRET is not set"),
])
def test_an_unusable_key_gives_one_line_and_runs_unauthenticated(monkeypatch, secret, says):
    pytest.importorskip("cryptography")
    monkeypatch.setitem(sys.modules, "jwt", FakePyJWT)
    environ = {coinbase_jwt.KEY_VARIABLE: "organizations/o/apiKeys/k", coinbase_jwt.SECRET_VARIABLE: secret}
    credentials = coinbase_jwt.from_environment(environ)
    assert credentials.signer is None
    assert credentials.problem.startswith(f"coinbase: {says}") and "\n" not in credentials.problem
    assert credentials.problem.endswith(": subscribing unauthenticated")


def test_an_ed25519_or_rsa_key_is_refused_as_not_es256(monkeypatch):
    pytest.importorskip("cryptography")
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519
    monkeypatch.setitem(sys.modules, "jwt", FakePyJWT)
    pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    credentials = coinbase_jwt.from_environment({coinbase_jwt.KEY_VARIABLE: "k", coinbase_jwt.SECRET_VARIABLE: pem})
    assert credentials.signer is None and "is not an EC P-256 key" in credentials.problem


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def test_the_jwt_is_es256_as_coinbase_documents_and_verifies():
    pytest.importorskip("jwt", reason="PyJWT (requirements-jwt.txt) is not installed")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                            serialization.NoEncryption()).decode()
    environ = {coinbase_jwt.KEY_VARIABLE: "organizations/o/apiKeys/k",
               coinbase_jwt.SECRET_VARIABLE: pem.replace("\n", "\\n")}  # one-line form, as the docs allow
    credentials = coinbase_jwt.from_environment(environ, clock=lambda: 1_796_083_200.5)
    assert credentials.problem is None
    first, second = credentials.signer.token(), credentials.signer.token()
    header, claims, signature = first.split(".")
    assert json.loads(_b64(header)) | {"nonce": ""} == {"alg": "ES256", "typ": "JWT", "nonce": "",
                                                        "kid": "organizations/o/apiKeys/k"}
    assert json.loads(_b64(header))["nonce"] != json.loads(_b64(second.split(".")[0]))["nonce"]
    assert json.loads(_b64(claims)) == {"sub": "organizations/o/apiKeys/k", "iss": "cdp", "nbf": 1_796_083_200,
                                        "exp": 1_796_083_320}
    raw = _b64(signature)
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    key.public_key().verify(der, f"{header}.{claims}".encode(), ec.ECDSA(hashes.SHA256()))  # raises if wrong


# --- one frame at a time ----------------------------------------------------------------------

def test_snapshot_then_updates_offer_is_ask_and_zero_deletes():
    d = driver()
    d.feed(frame(7, "subscriptions", [{"subscriptions": {"level2": ["BTC-USD"]}}]))
    assert d.state() is FeedState.SYNCING
    d.feed(l2(8, "snapshot", SNAPSHOT))
    assert d.state() is FeedState.LIVE
    assert d.levels(Side.ASK) == [(D("100.50"), D("0.25")), (D("101"), D("3"))]
    assert d.levels(Side.BID) == [(D("100.00"), D("1.5")), (D("99.50"), D("2"))]
    d.feed(l2(9, "update", [("offer", "100.50", "0"), ("bid", "100.25", "0.1"),
                            ("bid", "99.50", "0.0"), ("offer", "100.75", "4")]))
    d.feed_book().book.check()
    assert book(d) == {"bid": [["100.25", "0.1"], ["100.00", "1.5"]], "ask": [["100.75", "4"], ["101", "3"]]}
    integrity = d.feed_book().health.integrity
    assert (integrity.first_sequence, integrity.last_sequence, integrity.messages) == (8, 9, 2)
    assert d.changed == ["coinbase BTC-USD"] * 2


def test_one_frame_touching_a_price_twice_keeps_the_last_change():
    d = live()
    d.feed(l2(2, "update", [("bid", "99.75", "1"), ("bid", "99.75", "0"), ("offer", "100.60", "0"),
                            ("offer", "100.60", "7")]))
    assert book(d) == {"bid": [["100.00", "1.5"], ["99.50", "2"]],
                       "ask": [["100.50", "0.25"], ["100.60", "7"], ["101", "3"]]}


def test_products_are_routed_to_their_own_books_from_one_connection():
    d = live("BTC-USD", "ETH-USD")
    assert d.sent and d.state("BTC-USD") is d.state("ETH-USD") is FeedState.LIVE
    d.changed.clear()
    d.feed(l2(3, "update", [("bid", "100.25", "9")], "ETH-USD"))
    assert d.levels(Side.BID, "ETH-USD")[0] == (D("100.25"), D("9"))
    assert d.levels(Side.BID, "BTC-USD")[0] == (D("100.00"), D("1.5"))
    # one frame with events of both products: each book gets its own
    d.feed(frame(4, events=[event("update", [("offer", "100.50", "0")], "BTC-USD"),
                            event("update", [("bid", "99.50", "0")], "ETH-USD")]))
    assert book(d, "BTC-USD") == {"bid": [["100.00", "1.5"], ["99.50", "2"]], "ask": [["101", "3"]]}
    assert book(d, "ETH-USD") == {"bid": [["100.25", "9"], ["100.00", "1.5"]],
                                  "ask": [["100.50", "0.25"], ["101", "3"]]}
    assert d.changed == ["coinbase ETH-USD", "coinbase BTC-USD", "coinbase ETH-USD"]
    integrity = {n: (f.health.integrity.messages, f.health.integrity.last_sequence)
                 for n, f in d.processor.books.items()}
    assert integrity == {"BTC-USD": (2, 4), "ETH-USD": (3, 4)}


def test_a_fault_on_one_product_resyncs_every_book_of_the_connection():
    d = live("BTC-USD", "ETH-USD")
    d.feed(l2(3, "update", [("bid", "100.50", "1")], "ETH-USD"))  # crosses ETH-USD only
    assert d.reconnects == ["crossed: best bid 100.50 >= best ask 100.50"]
    assert faults(d) == [("crossed", "best bid 100.50 >= best ask 100.50")] * 2
    assert all(feed.book.depth(Side.BID) == 0 and feed.health.state is FeedState.RESYNCING
               for feed in d.processor.books.values())


def test_products_not_on_this_connection_count_for_the_sequence_but_touch_no_book():
    d = live()
    before = book(d)
    d.feed(l2(2, "update", [("bid", "100.40", "9")], product="ETH-USD"))
    d.feed(l2(3, "snapshot", [("bid", "5", "1")], product="ETH-USD"))
    assert book(d) == before and d.reconnects == []
    d.feed(heartbeat(4))
    integrity = d.feed_book().health.integrity
    assert (integrity.last_sequence, integrity.messages) == (4, 1)
    refused(d, heartbeat(4), SequenceGap)


def test_heartbeats_touch_every_book_and_bring_a_stale_one_back():
    clock = FakeClock()
    d = live("BTC-USD", "ETH-USD", clock=clock, max_age=2)
    d.advance(2.5)
    assert d.state("BTC-USD") is d.state("ETH-USD") is FeedState.STALE
    d.feed(heartbeat(3))
    assert d.state("BTC-USD") is d.state("ETH-USD") is FeedState.LIVE
    assert all(feed.health.age(clock.now + 1) == 1.0 for feed in d.processor.books.values())
    d.advance(4.5)  # stale, then twice max_age without anything: the socket is not trusted
    assert d.reconnects == ["stale: no data or heartbeat for 4.2 s (max_age 2 s) while the socket looked open"]


def test_update_before_its_snapshot_is_malformed():
    d = driver()
    d.feed(l2(0, "update", [("bid", "1", "1")], product="ETH-USD"))  # not ours: fine
    assert d.reconnects == []
    refused(d, l2(1, "update", [("bid", "100", "1")]))
    assert "update for BTC-USD before its snapshot" in faults(d)[0][1]
    # a snapshot and an update of the product in one frame: the update follows its snapshot
    d = driver()
    d.feed(frame(0, events=[event("snapshot", SNAPSHOT), event("update", [("bid", "100.00", "0")])]))
    assert d.state() is FeedState.LIVE and d.levels(Side.BID) == [(D("99.50"), D("2"))]


def test_a_reconnect_restarts_the_sequence_and_the_new_snapshot_replaces_the_book():
    d = live()
    d.feed(l2(2, "update", [("bid", "98", "7")]))
    d.lose_connection()
    assert d.state() is FeedState.RESYNCING and book(d) == {"bid": [], "ask": []}
    assert d.feed_book().health.last_fault.kind == "disconnect"
    d.connect()
    assert d.state() is FeedState.RESYNCING  # until a whole book is in again
    d.feed(frame(0, "subscriptions", []))
    refused(d, l2(1, "update", [("bid", "99", "1")]))  # the snapshot of the last connection does not count
    d.connect()
    d.feed(frame(0, "subscriptions", []), l2(1, "snapshot", [("bid", "100.00", "1"), ("offer", "101", "1")]))
    assert book(d) == {"bid": [["100.00", "1"]], "ask": [["101", "1"]]}  # no ghost 98
    assert d.state() is FeedState.LIVE


def test_after_a_fault_frames_of_the_closing_connection_are_ignored():
    d = live()
    d.processor.fault(SequenceGap("coinbase", 3, 4))
    assert [a for a in d.processor.actions() if type(a) is Reconnect] == [Reconnect("gap: expected sequence 3, got 4")]
    assert d.state() is FeedState.CLOSING
    d.processor.receive(l2(2, "update", [("bid", "98", "7")]))
    assert d.feed_book().book.depth(Side.BID) == 0 and d.processor.actions() == []


def test_crossed_update_is_a_crossed_book_fault():
    d = live()
    d.feed(l2(2, "update", [("bid", "100.50", "1")]))
    assert d.reconnects == ["crossed: best bid 100.50 >= best ask 100.50"]
    assert d.state() is FeedState.RESYNCING


@pytest.mark.parametrize("update", [("bid", "0", "1"), ("offer", "-5", "1"), ("bid", "99", "-0.1"),
                                    ("bid", "99", "1e-30")])
def test_non_positive_price_or_impossible_size_is_a_bad_level(update):
    refused(live(), l2(2, "update", [update]), BadLevel)


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
    "product not a string": frame(2, events=[{"type": "update", "product_id": ["BTC-USD"], "updates": []}]),
    "unknown event type": frame(2, events=[{"type": "delta", "product_id": "BTC-USD", "updates": []}]),
    "no updates": frame(2, events=[{"type": "update", "product_id": "BTC-USD"}]),
    "an update not an object": frame(2, events=[{"type": "update", "product_id": "BTC-USD", "updates": [[1]]}]),
    "side ask (the wire says offer)": l2(2, "update", [("ask", "101", "1")]),
    "price not a number": l2(2, "update", [("bid", "abc", "1")]),
    "size NaN": l2(2, "update", [("bid", "99", "NaN")]),
    "price huge exponent": l2(2, "update", [("bid", "1e999999999", "1")]),
    "JSON NaN constant": '{"channel":"l2_data","sequence_num":2,"events":[{"type":"update",'
                         '"product_id":"BTC-USD","updates":[{"side":"bid","price_level":NaN,"new_quantity":"1"}]}]}',
    "update missing new_quantity": frame(2, events=[{"type": "update", "product_id": "BTC-USD",
                                                    "updates": [{"side": "bid", "price_level": "99"}]}]),
    "update missing price_level": frame(2, events=[{"type": "update", "product_id": "BTC-USD",
                                                   "updates": [{"side": "bid", "new_quantity": "1"}]}]),
    "second event bad": frame(2, events=[event("update", [("bid", "99.75", "1")]),
                                         event("update", [("bid", "x", "1")])]),
    "venue error": json.dumps({"type": "error", "message": "too many L2 streams requested in a single session"}),
}


@pytest.mark.parametrize("text", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_frames_are_refused_with_the_book_untouched(text):
    refused(live(), text)


def test_the_venue_error_message_is_kept_in_the_fault():
    d = driver()
    d.feed(MALFORMED["venue error"])
    assert "too many L2 streams requested in a single session" in faults(d)[0][1]


def test_unknown_channels_are_ignored_but_numbered():
    d = live()
    d.feed(frame(2, "ticker", [{"type": "update", "tickers": []}]))
    assert d.reconnects == []
    refused(d, l2(2, "update", [("bid", "99", "1")]), SequenceGap)


# --- the unverified sequence scope ------------------------------------------------------------

def test_product_scope_checks_each_product_and_channel_on_its_own():
    d = driver("BTC-USD", "ETH-USD", sequence_scope="product")
    d.feed(frame(0, "subscriptions", []),
           l2(0, "snapshot", SNAPSHOT, "BTC-USD"), l2(0, "snapshot", SNAPSHOT, "ETH-USD"),
           heartbeat(5), l2(1, "update", [("bid", "99", "1")], "BTC-USD"), heartbeat(6),
           l2(1, "update", [("bid", "98", "1")], "ETH-USD"))
    assert d.reconnects == [] and d.state("BTC-USD") is FeedState.LIVE
    assert d.levels(Side.BID, "ETH-USD")[-1] == (D("98"), D("1"))
    d.feed(l2(3, "update", [("bid", "97", "1")], "BTC-USD"))
    assert d.reconnects == ["gap: expected sequence 2, got 3"]


def test_connections_that_break_their_sequence_at_once_suggest_the_product_scope():
    d = driver()
    for _ in range(3):
        d.feed(frame(0, "subscriptions", []), l2(0, "snapshot", SNAPSHOT))  # numbered per stream
        d.connect()
    assert d.feed_book().notes == ("coinbase: 3 connections in a row broke sequence_num within 10 frames; it may "
                                   "count per product: try sequence_scope: product",)
    assert len(d.reconnects) == 3


def test_a_gap_after_a_healthy_stretch_is_no_hint():
    d = driver()
    for _ in range(3):
        d.feed(frame(0, "subscriptions", []), l2(1, "snapshot", SNAPSHOT), *(heartbeat(n) for n in range(2, 12)),
               heartbeat(20))
        d.connect()
    assert len(d.reconnects) == 3 and d.feed_book().notes == ()


# --- registry, fuzz ---------------------------------------------------------------------------

def test_venue_spec():
    assert VENUE.native_symbol(Symbol.parse("eth-usd")) == "ETH-USD"
    with pytest.raises(ValueError, match="no BTC-JPY market"):
        VENUE.native_symbol(Symbol.parse("BTC-JPY"))
    assert VENUE.settings is CoinbaseSettings and VENUE.multiplexed and VENUE.instrument == "spot"
    assert "8 connections/s" in VENUE.limits.source and VENUE.limits.min_interval >= 1 / 8
    pairs = VENUE.connections(CoinbaseSettings(), [Symbol.parse("BTC-USD"), Symbol.parse("ETH-USD")])
    assert len(pairs) == 1 and [native for _, native in pairs[0]] == ["BTC-USD", "ETH-USD"]


def fuzz_frames() -> list[str]:
    """Positions 0, 3, 6 are fed clean (fuzz feeds every third frame unmutated): the two snapshots and a
    heartbeat, so mutated updates keep landing on live books of both products."""
    return [l2(1, "snapshot", SNAPSHOT, "BTC-USD"), l2(2, "update", [("bid", "99.75", "1"), ("offer", "100.50", "0")]),
            l2(3, "update", [("offer", "100.75", "2")]), l2(4, "snapshot", SNAPSHOT, "ETH-USD"),
            l2(5, "update", [("bid", "99.25", "3")], "ETH-USD"),
            frame(6, events=[event("update", [("bid", "99.50", "0")]),
                             event("update", [("offer", "102", "1")], "ETH-USD")]),
            heartbeat(7), l2(8, "update", [("offer", "101", "0"), ("offer", "101.50", "5")], "ETH-USD"),
            l2(9, "update", [("bid", "99.60", "0.125")])]


def test_fuzz():
    result = run_fuzz(lambda: driver("BTC-USD", "ETH-USD"), fuzz_frames(), count=20_000)
    assert result["frames"] == 20_000 and result["reconnects"] > 100
