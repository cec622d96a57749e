"""The service (`serve`): routes and their refusals, the push channel, access rules, over real sockets.

Books here are real `FeedBook`s filled by hand (the route tests) or fed by a simulator through the real
shell (the push channel); the server is the real one on 127.0.0.1:0. The subprocess comparison with
the CLI is in test_service_cli.py."""
from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from decimal import Decimal as D

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from data_manager.book import L2Book, Side
from data_manager.feed import BookView, FeedBook, FeedKey, FeedState, Health
from data_manager.symbols import Symbol
from l2_manager.answer import build_answer, exit_code
from l2_manager.depletion import Action
from l2_manager.document import answer_json
from l2_manager.numbers import plain
from l2_manager.service.api import Api, Feeds
from l2_manager.service.push import PushHub
from l2_manager.service.server import BindRefused, Service, authorized, check_bind
from tests.simrun import sim_feed

NOW = 1_790_000_000.0
TOKEN = "t0ken-for-tests-0123456789"


def live_view(venue: str, bids, asks, symbol: str = "BTC-USD") -> BookView:
    key = FeedKey(venue, symbol)
    book = L2Book()
    book.replace([(D(p), D(s)) for p, s in bids], [(D(p), D(s)) for p, s in asks])
    feed = FeedBook(key, symbol, book, Health(key, lambda action: None))
    feed.health.to(FeedState.SYNCING, NOW)
    feed.health.to(FeedState.LIVE, NOW)
    feed.health.last_data = NOW
    return BookView(feed, "spot", Symbol.parse(symbol))


def two_venues() -> Feeds:
    views = [live_view("alpha", [("100", "1"), ("99", "2"), ("98", "5")], [("101", "1"), ("102", "3")]),
             live_view("beta", [("100.5", "0.5"), ("99.5", "4")], [("101.5", "2")])]
    return Feeds("test", {view.key: view for view in views}, {})


API = Api(two_venues(), clock=lambda: NOW)


def error_of(path: str, query: str = "") -> tuple[int, str | None, str]:
    reply = API.handle(path, query)
    error = reply.body["error"]
    assert error["status"] == reply.status
    return reply.status, error["parameter"], error["message"]


# --- routes ----------------------------------------------------------------------------------------
def test_depletion_is_the_json_answer_for_the_same_books():
    reply = API.handle("/v1/depletion", "action=sell&size=2.5")
    views = list(API.feeds.views.values())
    answer = build_answer(Action.SELL, [D("2.5")], views, "test", {}, NOW, terms={})
    assert reply.status == 200
    assert reply.body == answer_json(answer, exit_code(answer))
    assert dict(reply.headers)["X-Exit-Code"] == str(exit_code(answer))
    merged = reply.body["orders"][0]["merged"]
    assert merged["filled"] == "2.50000000" and set(merged["venues"]) == {"alpha", "beta"}


@pytest.mark.parametrize("query, parameter, words", [
    ("size=1", "action", "missing"),
    ("action=hold&size=1", "action", "expected one of buy, sell"),
    ("action=sell", "size", "missing"),
    ("action=sell&size=abc", "size", "must be a number"),
    ("action=sell&size=-3", "size", "positive"),
    ("action=sell&size=0", "size", "positive"),
    ("action=sell&size=1&merge=some", "merge", "expected one of spot, all"),
    ("action=sell&size=1&merge=all&merge=spot", "merge", "given 2 times"),
    ("action=sell&size=1&sise=2", "sise", "unknown parameter"),
    ("action=sell&size=1&limit_bps=0", "limit_bps", "basis points"),
    ("action=sell&size=1&fee=alpha", "fee", "VENUE=RATE"),
    ("action=sell&size=1&fee=gamma=0.1%", "fee", "gamma"),
    ("action=sell&size=1&symbol=BTC/USD", "symbol", "BTC-USD"),
    ("action=sell&size=1&venues=gamma", "venues", "gamma"),
    ("action=sell&size=1&format=xml", "format", "json, text"),
    ("action=sell&size=1&format=text&width=5", "width", "from 40 to 400"),
    ("action=sell&size=1&quote=maybe", "quote", "1 or 0"),
])
def test_a_bad_parameter_is_a_400_naming_it(query, parameter, words):
    status, named, message = error_of("/v1/depletion", query)
    assert (status, named) == (400, parameter)
    assert words in message and message.startswith(f"{parameter}: ")


def test_unknown_symbols_books_and_routes_are_404():
    assert error_of("/v1/depletion", "action=sell&size=1&symbol=ETH-USD")[:2] == (404, "symbol")
    assert error_of("/v1/books/gamma/BTC-USD")[0] == 404
    assert error_of("/v1/nothing")[0] == 404
    assert error_of("/v2/health")[0] == 404
    assert error_of("/v1/books/alpha/BTC-USD", "depth=0")[:2] == (400, "depth")
    assert error_of("/v1/health", "verbose=1")[:2] == (400, "verbose")


def test_book_route_gives_the_top_levels_exactly():
    reply = API.handle("/v1/books/alpha/btc-usd", "depth=2")
    body = reply.body
    assert reply.status == 200 and body["kind"] == "book"
    assert body["bids"] == [["100", "1"], ["99", "2"]] and body["asks"] == [["101", "1"], ["102", "3"]]
    assert body["depth"] == {"bid": 3, "ask": 2} and body["state"] == "live" and body["unit"] == "BTC"


def test_health_names_every_feed_with_its_evidence():
    body = API.handle("/v1/health", "").body
    assert (body["kind"], body["live"], body["feeds_total"]) == ("health", 2, 2)
    alpha = body["feeds"][0]
    assert (alpha["venue"], alpha["symbol"], alpha["state"], alpha["resyncs"], alpha["age_ms"]) == \
        ("alpha", "BTC-USD", "live", 0, 0)
    assert set(alpha["checks"]) == {"messages", "checksums_verified", "sequence_first", "sequence_last"}


def test_depth_route_and_its_refusals():
    reply = API.handle("/v1/depth", "bands=1,5")
    assert reply.status == 200 and reply.body["kind"] == "depth" and reply.body["bands_pct"] == ["1.00", "5.00"]
    assert error_of("/v1/depth", "bands=0")[:2] == (400, "bands")


def test_text_format_is_rendered_off_the_loop_with_the_exit_code():
    reply = API.handle("/v1/depletion", "action=buy&size=1&format=text&width=100&brief=1")
    assert reply.body is None and reply.threaded and dict(reply.headers)["X-Exit-Code"] == "0"
    text = reply.text()
    assert text.startswith("BUY 1 BTC") and "merged" in text


def test_max_age_ms_reuses_an_answer_only_when_asked_and_young_enough():
    now = [NOW]
    api = Api(two_venues(), clock=lambda: now[0])
    first = api.handle("/v1/depletion", "action=sell&size=1&max_age_ms=1000")
    now[0] += 5
    again = api.handle("/v1/depletion", "size=1&max_age_ms=500&action=sell")   # the same question
    fresh = api.handle("/v1/depletion", "action=sell&size=1")
    assert again is first and again.encoded() == first.encoded()
    assert fresh.body["at_ms"] == first.body["at_ms"] + 5000
    assert api.handle("/v1/depletion", "action=sell&size=2&max_age_ms=1000").body["at_ms"] == fresh.body["at_ms"]
    assert api.handle("/v1/depletion", "action=sell&size=1&max_age_ms=0").body["at_ms"] == fresh.body["at_ms"]
    refused = api.handle("/v1/depletion", "action=sell&size=1&max_age_ms=5000")
    assert (refused.status, refused.body["error"]["parameter"]) == (400, "max_age_ms")


# --- access -----------------------------------------------------------------------------------------
def test_binding_beyond_loopback_needs_host_and_a_long_token():
    check_bind("127.0.0.1", False, None)
    check_bind("::1", True, None)
    check_bind("localhost", False, TOKEN)
    with pytest.raises(BindRefused, match="needs a token"):
        check_bind("0.0.0.0", True, None)
    with pytest.raises(BindRefused, match="explicit --host"):
        check_bind("192.0.2.7", False, TOKEN)
    with pytest.raises(BindRefused, match="at least 16"):
        check_bind("0.0.0.0", True, "short")
    check_bind("0.0.0.0", True, TOKEN)


def test_token_check():
    assert authorized(None, None) and authorized("Bearer anything", None)
    assert authorized(f"Bearer {TOKEN}", TOKEN) and authorized(f"bearer  {TOKEN}", TOKEN)
    assert not authorized(None, TOKEN) and not authorized(f"Basic {TOKEN}", TOKEN)
    assert not authorized(f"Bearer {TOKEN[:-1]}", TOKEN) and not authorized("Bearer ", TOKEN)


def http_get(url: str, token: str | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_with_a_token_every_request_must_carry_it():
    async def scenario():
        service = Service(Api(two_venues()), PushHub({}), "127.0.0.1", 0, TOKEN)
        await service.start()
        try:
            url = f"{service.url}/v1/health"
            results = [await asyncio.to_thread(http_get, url, token) for token in (None, "wrong" * 5, TOKEN)]
            with pytest.raises(InvalidStatus) as refused:
                async with connect(f"ws://127.0.0.1:{service.port}/v1/stream"):
                    pass
            async with connect(f"ws://127.0.0.1:{service.port}/v1/stream",
                               additional_headers={"Authorization": f"Bearer {TOKEN}"}) as ws:
                hello = json.loads(await ws.recv())
            return results, refused.value.response.status_code, hello
        finally:
            await service.close()

    (no_token, wrong, right), ws_status, hello = asyncio.run(scenario())
    assert no_token[0] == wrong[0] == 401 and "token" in no_token[1]["error"]["message"]
    assert right[0] == 200 and right[1]["kind"] == "health"
    assert ws_status == 401 and hello["type"] == "hello"


# --- the push channel -------------------------------------------------------------------------------
def test_push_channel_sends_the_top_n_as_it_changes_and_health_changes():
    """A subscriber gets hello, the book now, then changed tops; after the simulator's checksum fault,
    the feed's health goes resyncing and back to live; paused, the last top it got is the book's."""
    async def scenario():
        async with sim_feed("kraken", faults=("checksum@40",), rate=80.0) as run:
            hub = PushHub(run.manager.views, interval=0.02)
            run.manager.subscribe(hub.on_action)
            service = Service(Api(Feeds("sim", run.manager.views, {})), hub, "127.0.0.1", 0)
            await service.start()
            pushing = asyncio.create_task(hub.run())
            got = []
            try:
                async with connect(f"ws://127.0.0.1:{service.port}/v1/stream?depth=5&venues=kraken") as ws:
                    got.append(json.loads(await ws.recv()))
                    await run.ready()
                    states = []
                    while "resyncing" not in states or states[-1] != "live":
                        message = json.loads(await asyncio.wait_for(ws.recv(), 15))
                        got.append(message)
                        if message["type"] == "health":
                            states.append(message["state"])
                    await run.synced()
                    view = run.views["BTC-USD"]
                    expected = [[[plain(p), plain(s)] for p, s in list(view.levels(side))[:5]] for side in Side]
                    def last_top():
                        book = next(m for m in reversed(got) if m["type"] == "book")
                        return [book["bids"], book["asks"]]
                    while last_top() != expected:  # the flow is paused: the last change comes, then nothing
                        got.append(json.loads(await asyncio.wait_for(ws.recv(), 15)))
            finally:
                pushing.cancel()
                await service.close()
            return got, states

    got, states = asyncio.run(scenario())
    hello, books = got[0], [m for m in got if m["type"] == "book"]
    assert hello == {"type": "hello", "depth": 5, "orders": False, "feeds": [{"venue": "kraken", "symbol": "BTC-USD"}]}
    assert "resyncing" in states and states[-1] == "live"
    assert all(len(m["bids"]) <= 5 and len(m["asks"]) <= 5 for m in books)
    versions = [m["version"] for m in books]
    assert versions == sorted(versions) and len(set(versions)) == len(versions)
    assert all(a["bids"] != b["bids"] or a["asks"] != b["asks"] or a["state"] != b["state"]
               for a, b in zip(books, books[1:])), "a top is pushed only when it changed"
    assert books[-1]["state"] == "live"


@pytest.mark.parametrize("query, reason", [("depth=0", "depth"), ("depth=5&colour=red", "colour"),
                                           ("orders=yes", "orders")])
def test_push_channel_refuses_bad_parameters_with_1008(query, reason):
    async def scenario():
        service = Service(Api(two_venues()), PushHub(two_venues().views), "127.0.0.1", 0)
        await service.start()
        try:
            async with connect(f"ws://127.0.0.1:{service.port}/v1/stream?{query}") as ws:
                with pytest.raises(ConnectionClosed) as closed:
                    await ws.recv()
            return closed.value.rcvd
        finally:
            await service.close()

    close = asyncio.run(scenario())
    assert close.code == 1008 and close.reason.startswith(f"{reason}: ")
