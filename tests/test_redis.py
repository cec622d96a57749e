"""Publishing to Redis, against a real `redis-server` on a free 127.0.0.1 port (no mock).

`.ci/run` installs redis-server (Debian package) and the `redis` package (requirements-redis.txt); a
machine with neither skips these tests and says why in the skip reason (`pytest -rs`).

What a reader of Redis receives is asserted: the order events on the pub/sub channel, the top-N
snapshot equal to the client's book, the changes stream that rebuilds that snapshot, the registry entry
naming the server; and a dead Redis that never stalls ingest and is reconnected when it comes back."""
from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import replace
from decimal import Decimal as D

import pytest

from data_manager.book import Side
from data_manager.feed import FeedKey
from data_manager.publish import RedisKeys, RedisPublisher, RedisSettings, changed_levels, redis_settings, shown_url
from data_manager.redis_books import RedisBooksError, views_from_redis
from data_manager.symbols import Symbol
from tests.simrun import sim_feed

redis = pytest.importorskip("redis.asyncio", reason="the redis package is not installed "
                                                     "(pip install -r requirements-redis.txt)")
SERVER = "http://127.0.0.1:1"
KEY = FeedKey("kumex", "BTC-USD")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RedisServer:
    """A throw-away redis-server on 127.0.0.1 (no persistence), stopped by `stop()`."""

    def __init__(self, port: int | None = None) -> None:
        executable = shutil.which("redis-server")
        if executable is None:
            pytest.skip("redis-server is not installed and could not be: apt-get install -y redis-server "
                        "(.ci/run does it)")
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._dir = tempfile.TemporaryDirectory()
        self.process = subprocess.Popen([executable, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                         "--appendonly", "no", "--dir", self._dir.name],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.02)

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)
        self._dir.cleanup()


@pytest.fixture(scope="module")
def redis_url():
    server = RedisServer()
    yield server.url
    server.stop()


def fast(url: str, **changes) -> RedisSettings:
    return replace(RedisSettings(enabled=True, url=url, interval=0.05, ttl=5.0), **changes)


async def until(condition, what: str, timeout: float = 15.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not (result := await condition()):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)
    return result


async def received(pubsub, count: int) -> list[dict]:
    """The next `count` JSON messages a pub/sub subscriber gets."""
    out = []
    while len(out) < count:
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5)
        if message is not None:
            out.append(json.loads(message["data"]))
    return out


# --- pure pieces ----------------------------------------------------------------------------------
def test_settings_from_a_plain_mapping_name_the_bad_key():
    assert redis_settings(None) == RedisSettings()
    assert redis_settings({"enabled": True, "ttl": 30}).ttl == 30.0
    with pytest.raises(ValueError, match="redis.tll: unknown key"):
        redis_settings({"tll": 3})
    with pytest.raises(ValueError, match="redis.top: expected int"):
        redis_settings({"top": "many"})
    with pytest.raises(ValueError, match="redis.interval: expected 0.01 to 60"):
        redis_settings({"interval": 0})
    with pytest.raises(ValueError, match="redis.url"):
        redis_settings({"url": "http://x"})
    assert shown_url("redis://user:secret@h:6379/0") == "redis://user:***@h:6379/0"


def test_changed_levels_is_what_turns_one_top_into_the_next():
    before = [["100", "1"], ["99", "2"], ["98", "3"]]
    after = [["100", "1"], ["99", "5"], ["97", "1"]]
    assert changed_levels(before, after) == [["99", "5"], ["97", "1"], ["98", "0"]]
    assert changed_levels(after, after) == []
    assert changed_levels([["59982.0", "1.50"]], [["59982", "1.5"]]) == [], "the same level, written otherwise"


# --- against a real Redis ---------------------------------------------------------------------------
def test_a_subscriber_gets_order_events_and_readers_get_the_book_and_its_stream(redis_url):
    """KuMEX level 3 from the simulator: order events on the channel as they happen; paused, the
    snapshot equals the client's book, the registry names the server, and replaying the stream from
    its reset entry rebuilds the snapshot's top N exactly."""
    async def scenario():
        client = redis.Redis.from_url(redis_url)
        keys = RedisKeys()
        pubsub = client.pubsub()
        await pubsub.subscribe(keys.orders(KEY))
        async with sim_feed("kumex", settings={"level3": True}, rate=40.0) as run:
            view = run.views["BTC-USD"]
            await run.until(lambda: view.live and view.book_kind == "L3", "the level-3 book in use")
            publisher = RedisPublisher(run.manager.views, fast(redis_url, top=50), SERVER)
            run.manager.subscribe(publisher.on_action)
            publisher.start()
            events = await received(pubsub, 30)
            await run.synced()
            top = [[[format(p, "f"), format(s, "f")] for p, s in list(view.levels(side))[:50]] for side in Side]

            async def published():
                raw = await client.get(keys.book(KEY))
                document = json.loads(raw) if raw else None
                return document if document and [document["bids"], document["asks"]] == top else None
            document = await until(published, "the paused book in Redis")
            stream = await client.xrange(keys.changes(KEY))
            registry = json.loads(await client.get(keys.server(KEY)))
            feeds = await client.smembers(keys.feeds)
            books = await views_from_redis(redis_url, Symbol("BTC", "USD"))
            status = publisher.status()
            await publisher.stop()
            gone = await client.get(keys.server(KEY)), await client.get(keys.book(KEY))
        await pubsub.aclose()
        await client.aclose()
        return events, document, stream, registry, feeds, books, status, gone, view

    events, document, stream, registry, feeds, books, status, gone, view = asyncio.run(scenario())
    assert {e["kind"] for e in events} <= {"received", "open", "match", "update", "done"}
    assert {"received", "open", "done"} <= {e["kind"] for e in events}
    assert all(e["venue"] == "kumex" and e["symbol"] == "BTC-USD" and e["order_id"] for e in events)
    opened = next(e for e in events if e["kind"] == "open")
    assert opened["side"] in ("bid", "ask") and D(opened["price"]) > 0 and D(opened["size"]) > 0
    assert all(e["client_oid"] for e in events if e["kind"] == "received")
    assert (document["venue"], document["book"], document["state"], document["top"]) == ("kumex", "L3", "live", 50)
    assert document["native"] is not None, "KuMEX counts contracts: the venue's own units go too"
    assert document["depth"] == {"bid": view.depth(Side.BID), "ask": view.depth(Side.ASK)}
    assert registry["server"] == SERVER and b"kumex:BTC-USD" in feeds
    # the stream: from its reset entry on, applying each change rebuilds the snapshot
    fields = [{k.decode(): v.decode() for k, v in entry.items()} for _, entry in stream]
    assert fields[0]["reset"] == "1" and int(fields[-1]["version"]) == document["version"]
    sides = {"bids": {}, "asks": {}}
    for entry in fields:
        for name, book in sides.items():
            for price, size in json.loads(entry[name]):
                book.pop(D(price), None) if D(size) == 0 else book.__setitem__(D(price), D(size))
    rebuilt = {name: {D(p): D(s) for p, s in document[name]} for name in sides}
    assert sides == rebuilt
    # the reader sees the same book, in base units, with the server's evidence
    (read,) = books.views
    assert read.live and read.book_kind == "L3" and books.servers[KEY] == SERVER
    assert list(read.levels(Side.BID))[:50] == list(view.levels(Side.BID))[:50]
    assert list(read.native_levels(Side.ASK))[:50] == list(view.native_levels(Side.ASK))[:50]
    assert read.depth(Side.ASK) == view.depth(Side.ASK)
    assert status["state"] == "up" and status["dropped"] == 0 and status["orders_published"] >= 30
    assert gone == (None, None), "a server that stops takes its registry entry and its books with it"


def test_a_dead_redis_never_stalls_ingest_and_is_reconnected_when_back():
    """Pointed at a port where nothing listens: the feed keeps ingesting, order events beyond the queue
    are dropped and counted, /v1/health's section says down and why; a Redis started on that port is
    then used (books published) without a restart."""
    port = free_port()

    async def scenario():
        async with sim_feed("kumex", settings={"level3": True}, rate=60.0) as run:
            view = run.views["BTC-USD"]
            await run.until(lambda: view.book_kind == "L3", "the level-3 book in use")
            publisher = RedisPublisher(run.manager.views, fast(f"redis://127.0.0.1:{port}/0", queue_size=5,
                                                               timeout=0.2), SERVER)
            run.manager.subscribe(publisher.on_action)
            publisher.start()
            messages = view.health(0).messages
            await run.until(lambda: publisher.dropped > 0 and publisher.reconnects >= 2, "drops and retries")
            down = publisher.status()
            assert view.live and view.health(0).messages > messages, "ingest went on"
            server = await asyncio.to_thread(RedisServer, port)
            try:
                await run.until(lambda: publisher.state == "up" and publisher.snapshots > 0, "reconnected", 40)
                client = redis.Redis.from_url(server.url)
                stored = await client.get(RedisKeys().book(KEY))
                await client.aclose()
                await publisher.stop()
            finally:
                server.stop()
            return down, stored

    down, stored = asyncio.run(scenario())
    assert down["state"] == "down" and "Connect" in down["last_error"] and down["queued"] <= 5
    assert down["dropped"] > 0 and down["snapshots"] == 0
    assert json.loads(stored)["venue"] == "kumex"


def test_a_reader_of_an_empty_redis_says_so(redis_url):
    with pytest.raises(RedisBooksError, match="no feed of ETH-BTC in Redis"):
        asyncio.run(views_from_redis(redis_url, Symbol("ETH", "BTC")))
    with pytest.raises(RedisBooksError, match="cannot read Redis"):
        asyncio.run(views_from_redis(f"redis://127.0.0.1:{free_port()}/0", Symbol("BTC", "USD"), timeout=0.5))
    books = asyncio.run(views_from_redis(redis_url, Symbol("ETH", "BTC"), venues=["kraken"]))
    (view,) = books.views
    assert not view.live and "not published in Redis" in books.reasons[FeedKey("kraken", "ETH-BTC")]
