"""Issue 9 defect 1, through the real shell: a Gemini book built only from deltas must never be live.

A scripted server sends a whole book, pauses until the client's watchdog gives up on the feed, then bursts
deltas (bids only) into the closing connection, and on the next connection sends deltas only. Whatever the
timing, the book may be live only while it holds a whole book (both sides), and never on the second
connection. Each protocol runs several times: the invariant is checked at every health change.
"""
import asyncio
import json

import pytest
from websockets.asyncio.server import serve

from data_manager.book import Side
from data_manager.client import Backoff, FeedConnection
from data_manager.feed import FeedState, HealthChanged
from data_manager.registry import ConnectLimits, venue
from data_manager.symbols import Symbol

MAX_AGE = 0.2      # stale after 0.2 s, reconnect after 0.4 s
RUNS = 8

WHOLE = {
    "v2": json.dumps({"type": "l2_updates", "symbol": "BTCUSD", "changes": [["buy", "100", "1"], ["sell", "101", "1"]],
                      "trades": [], "auction_events": []}),
    "new": json.dumps({"e": "depthUpdate", "E": 1796083200000000000, "s": "btcusd", "U": 10, "u": 10,
                       "b": [["100", "1"]], "a": [["101", "1"]]}),
}


def delta(protocol: str, n: int) -> str:
    if protocol == "v2":
        return json.dumps({"type": "l2_updates", "symbol": "BTCUSD", "changes": [["buy", f"{90 + n % 5}", "2"]]})
    return json.dumps({"e": "depthUpdate", "E": 1796083200000000000 + n, "s": "btcusd", "U": 11 + n, "u": 11 + n,
                       "b": [[f"{90 + n % 5}", "2"]], "a": []})


async def scenario(protocol: str) -> None:
    connections = []

    async def server(ws):
        connections.append(ws)
        first = len(connections) == 1
        await ws.recv()  # the subscribe
        try:
            if first:
                await ws.send(WHOLE[protocol])
                await asyncio.sleep(2 * MAX_AGE + 0.02)        # the watchdog fires about now
            for n in range(300):                                # a burst of deltas, bids only
                await ws.send(delta(protocol, n))
                if n % 20 == 0:
                    await asyncio.sleep(0)
            await ws.wait_closed()
        except Exception:  # the client closed under the burst
            return

    async with serve(server, "127.0.0.1", 0) as running:
        url = f"ws://127.0.0.1:{running.sockets[0].getsockname()[1]}/"
        spec = venue("gemini")
        settings = spec.settings(url=url, v2_url=url, protocol=protocol, max_age=MAX_AGE)
        processor = spec.processor(settings, [(Symbol("BTC", "USD"), spec.native_symbol(Symbol("BTC", "USD")))])
        feed = next(iter(processor.books.values()))
        violations = []

        def watch(connection, action):
            if type(action) is HealthChanged and action.state is FeedState.LIVE:
                whole = feed.book.depth(Side.BID) > 0 and feed.book.depth(Side.ASK) > 0
                if not whole or len(connections) > 1:
                    violations.append((len(connections), feed.book.depth(Side.BID), feed.book.depth(Side.ASK)))

        connection = FeedConnection(processor, ConnectLimits(min_interval=0.01, attempts=100, per_seconds=1),
                                    Backoff(0.01, 0.02), listener=watch)
        task = asyncio.create_task(connection.run())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while len(connections) < 2 or connection.connects < 2:
            assert loop.time() < deadline, "the watchdog never reconnected"
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)  # let the second connection's deltas arrive: none may make a book
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert violations == []
    assert feed.health.state is not FeedState.LIVE
    assert feed.health.last_fault is not None


@pytest.mark.parametrize("protocol", ["v2", "new"])
@pytest.mark.parametrize("run", range(RUNS))
def test_gemini_is_never_live_without_a_whole_book_after_the_watchdog_fires(protocol, run):
    asyncio.run(scenario(protocol))
