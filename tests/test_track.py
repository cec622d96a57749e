"""`track`: one order followed from received to done by its clientOid.

The tracker alone on hand-made order events over a real L3 book; then the whole command path against
the simulated KuMEX through the real shell: an order placed with a clientOid through the simulator's
order entry, filled in two parts by market orders, followed to its fill, each step also received by a
subscriber of the Redis track channel."""
from __future__ import annotations

import asyncio
import json
from argparse import Namespace
from decimal import Decimal as D

from config import load_config
from data_manager.book import L3Book, Side
from data_manager.feed import BookView, FeedBook, FeedKey, FeedState, Health, OrderEvent
from data_manager.publish import RedisKeys
from data_manager.session import open_session
from data_manager.sim.order_entry import OrderEntry
from data_manager.symbols import Symbol
from l2_manager.track import EXIT_DONE, OrderTracker, _track_publisher, follow, level3_venues, step_line
from tests.test_redis import received, redis, redis_url  # noqa: F401  (the real redis-server fixture)

KEY = FeedKey("kumex", "BTC-USD")
PRICE = D("60000")


def l3_view() -> tuple[L3Book, BookView]:
    book = L3Book()
    feed = FeedBook(KEY, "XBTUSDM", book, Health(KEY, lambda action: None))
    feed.health.to(FeedState.SYNCING, 0)
    feed.health.to(FeedState.LIVE, 0)
    return book, BookView(feed, "perpetual", Symbol("BTC", "USD"))


def event(kind: str, order_id: str = "ours", **fields) -> OrderEvent:
    return OrderEvent(KEY, kind, order_id, at=1_790_000_000.0, **fields)


def test_the_tracker_follows_an_order_by_client_oid_with_its_queue_place():
    book, view = l3_view()
    tracker = OrderTracker("my-oid", {KEY: view})
    book.add("a", Side.BID, PRICE, D(300))
    assert tracker.on_action(event("received", "a", client_oid="someone-else")) is None
    arrived = tracker.on_action(event("received", client_oid="my-oid"))
    book.add("ours", Side.BID, PRICE, D(1000))
    opened = tracker.on_action(event("open", side="bid", price=PRICE, size=D(1000)))
    book.remove("a")
    book.set_size("ours", D(600))
    assert tracker.on_action(event("match", "a", side="bid", price=PRICE, size=D(0), filled=D(300))) is None
    partial = tracker.on_action(event("match", side="bid", price=PRICE, size=D(600), filled=D(400)))
    book.remove("ours")
    last = tracker.on_action(event("match", side="bid", price=PRICE, size=D(0), filled=D(600)))
    done = tracker.on_action(event("done", side="bid", price=PRICE, size=D(0)))
    assert (arrived.kind, arrived.order_id, arrived.client_oid) == ("received", "ours", "my-oid")
    assert (opened.remaining, opened.queue.position, opened.queue.orders, opened.queue.ahead) == (D(1000), 2, 2, D(300))
    assert (partial.filled, partial.remaining, partial.filled_total, partial.queue.position) == (D(400), D(600), D(400), 1)
    assert (last.remaining, last.queue) == (D(0), None)
    assert (done.done, done.outcome, done.filled_total, done.fills) == (True, "filled", D(1000), 2)
    assert tracker.on_action(event("open", side="bid", price=PRICE, size=D(5))) is None, "done is final"
    line = step_line(partial, "contracts")
    assert "match" in line and "filled 400 (total 400, 600 left)" in line and "queue 1 of 1, 0 contracts ahead" in line


def test_a_canceled_order_and_one_done_on_arrival_say_so():
    book, view = l3_view()
    canceled = OrderTracker("ours", {KEY: view})
    canceled.on_action(event("received"))
    book.add("ours", Side.ASK, PRICE, D(5))
    canceled.on_action(event("open", side="ask", price=PRICE, size=D(5)))
    book.remove("ours")
    assert canceled.on_action(event("done", side="ask", price=PRICE, size=D(0))).outcome == "canceled"
    taker = OrderTracker("t-1", {KEY: view})
    taker.on_action(event("received", "t", client_oid="t-1"))
    assert taker.on_action(event("done", "t")).outcome.startswith("done on arrival")


def test_track_follows_a_simulated_order_to_its_fill_and_publishes_each_step(redis_url, capsys):  # noqa: F811
    async def scenario():
        config = load_config()
        listener = redis.Redis.from_url(redis_url)
        channel = listener.pubsub()
        await channel.subscribe(RedisKeys().track("sim-oid-7"))
        async with open_session(config, level3_venues([config.venues["kumex"]]), Symbol("BTC", "USD"), "sim") as session:
            sim = session.simulator.venues["kumex"]
            view = session.views[KEY]
            args = Namespace(ident="sim-oid-7", max_wait=20.0, timeout=30.0, json=True)
            publish = await _track_publisher(redis_url, config, args.ident)
            following = asyncio.create_task(follow(session, args, publish))
            while view.book_kind != "L3":
                assert not following.done(), following.result()
                await asyncio.sleep(0.02)
            await sim.pause()          # the random flow stays away from our order from now on
            engine = sim.engines["XBTUSDM"]
            price = engine.price(engine.best_tick("bid"))
            entry = OrderEntry(sim)
            order_id = await entry.limit("XBTUSDM", "buy", price, 1000, "sim-oid-7")
            ahead = [size for oid, size in dict(engine.book_orders("bid"))[price] if oid != order_id]
            await entry.market("XBTUSDM", "sell", int(sum(ahead)) + 400)
            await entry.market("XBTUSDM", "sell", 600)
            code = await asyncio.wait_for(following, 30)
            await publish(None)
            published = await received(channel, 5)
        await channel.aclose()
        await listener.aclose()
        return code, order_id, ahead, published

    code, order_id, ahead, published = asyncio.run(scenario())
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == EXIT_DONE and printed == published
    kinds = [step["kind"] for step in printed]
    assert kinds == ["received", "open", "match", "match", "done"]
    arrived, opened, partial, filled, done = printed
    assert {step["order_id"] for step in printed} == {order_id} and arrived["client_oid"] == "sim-oid-7"
    assert opened["remaining"] == "1000" and opened["queue"] == {"position": len(ahead) + 1, "orders": len(ahead) + 1,
                                                                 "ahead": str(int(sum(ahead)))}
    assert (partial["filled"], partial["remaining"], partial["queue"]["position"]) == ("400", "600", 1)
    assert (filled["filled"], filled["remaining"], filled["filled_total"]) == ("600", "0", "1000")
    assert done["done"] and done["outcome"] == "filled" and done["fills"] == 2
