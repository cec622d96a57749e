"""The asyncio shell over real sockets, with the toy venue: it executes actions and nothing else."""
import asyncio
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from websockets.asyncio.server import serve

from data_manager.book import Side
from data_manager.client import AttemptWindow, Backoff, FeedConnection, http
from data_manager.feed import FeedSettings, FeedState, HttpRequest
from data_manager.registry import ConnectLimits
from data_manager.symbols import Symbol
from tests.toy import BOOK, Toy

FAST = ConnectLimits(min_interval=0.01, attempts=1000, per_seconds=1.0)


def toy_connection(url: str, **kwargs) -> FeedConnection:
    processor = Toy(FeedSettings(url=url, max_age=60), [(Symbol("BTC", "USD"), "BTC-USD")])
    return FeedConnection(processor, FAST, Backoff(0.01, 0.05), **kwargs)


async def until(condition, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


def test_backoff_is_full_jitter_below_an_exponential_ceiling_with_a_cap():
    backoff, rng = Backoff(base=0.5, cap=30.0), random.Random(1)
    for attempt in range(1, 40):
        ceiling = min(30.0, 0.5 * 2 ** attempt)
        delays = [backoff.delay(attempt, rng) for _ in range(50)]
        assert all(0 <= d <= ceiling for d in delays), attempt
        assert len(set(delays)) > 1  # jitter: reconnecting clients do not stampede in step


def test_the_attempt_window_keeps_a_venue_within_its_documented_limits():
    window = AttemptWindow(ConnectLimits(min_interval=5.0, attempts=3, per_seconds=60.0))
    assert window.earliest(100.0) == 100.0
    window.started(100.0)
    assert window.earliest(101.0) == 105.0          # at least min_interval apart
    window.started(105.0)
    window.started(110.0)
    assert window.earliest(111.0) == 160.0          # the fourth attempt waits for the window to slide
    assert window.earliest(170.0) == 170.0


def test_the_shell_subscribes_feeds_frames_and_reports_changes():
    async def scenario():
        received = []

        async def venue(ws):
            received.append(await ws.recv())
            await ws.send(BOOK)
            await ws.wait_closed()

        async with serve(venue, "127.0.0.1", 0) as server:
            url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
            seen = []
            connection = toy_connection(url, listener=lambda c, action: seen.append(type(action).__name__))
            task = asyncio.create_task(connection.run())
            book = connection._processor.books["BTC-USD"]
            await until(lambda: book.health.state is FeedState.LIVE)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        assert received == ['{"subscribe":"BTC-USD"}']
        assert "BookChanged" in seen and "HealthChanged" in seen
        assert connection.connects == 1

    asyncio.run(scenario())


def test_an_unreachable_venue_is_named_and_retried_within_its_limits():
    async def scenario():
        connection = toy_connection("ws://127.0.0.1:9/")
        task = asyncio.create_task(connection.run())
        await until(lambda: connection.failed_attempts >= 3)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert connection.last_error.startswith("cannot reach 127.0.0.1:9")
        assert connection._processor.books["BTC-USD"].health.state is FeedState.CONNECTING

    asyncio.run(scenario())


def test_after_a_fault_the_old_connection_s_frames_never_build_a_book():
    """Issue 9 defect 1, generically: the venue bursts updates after a fault; none of them is used."""
    async def scenario():
        connections = []

        async def venue(ws):
            connections.append(ws)
            await ws.recv()
            if len(connections) == 1:
                await ws.send(BOOK)
                await ws.send('{"bid":["100","bad"]}')            # a fault: the client closes
                for n in range(50):                               # leftovers in flight
                    await ws.send('{"book":[["1","1"]],"asks":[]}' if n % 10 == 0 else '{"bid":["99","3"]}')
            await ws.wait_closed()

        async with serve(venue, "127.0.0.1", 0) as server:
            url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
            connection = toy_connection(url)
            book = connection._processor.books["BTC-USD"]
            live_without_book = []
            connection.listener = lambda c, action: live_without_book.append(
                book.health.state is FeedState.LIVE and book.book.depth(Side.ASK) == 0)
            task = asyncio.create_task(connection.run())
            await until(lambda: len(connections) == 2 and book.health.state is FeedState.RESYNCING)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        assert book.health.last_fault.kind == "malformed"
        assert book.book.depth(Side.BID) == 0          # no leftover became a book
        assert not any(live_without_book)              # never live on a book without asks

    asyncio.run(scenario())


def test_our_own_bug_stops_only_that_feed_and_is_reported_as_internal():
    async def scenario():
        async def venue(ws):
            await ws.recv()
            await ws.send(BOOK)
            await ws.send('{"bug":1}')
            await ws.wait_closed()

        async with serve(venue, "127.0.0.1", 0) as server:
            url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
            connection = toy_connection(url)
            await asyncio.wait_for(connection.run(), 10)  # returns: the feed stopped, it does not retry
        assert isinstance(connection.crashed, KeyError)
        assert connection.last_error.startswith("internal error: KeyError")
        assert connection.connects == 1
        assert connection._processor.books["BTC-USD"].health.last_fault is None  # not a venue fault

    asyncio.run(scenario())


class _Drip(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        self.send_response(200)
        self.send_header("Content-Length", "100")
        self.end_headers()
        for _ in range(100):
            try:
                self.wfile.write(b"x")
                self.wfile.flush()
            except OSError:
                return
            time.sleep(0.2)

    def log_message(self, *args):
        pass


def test_a_server_that_drips_one_byte_at_a_time_cannot_hold_a_request_past_its_deadline():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Drip)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        async def scenario():
            started = asyncio.get_running_loop().time()
            status, body = await http(HttpRequest("GET", f"http://127.0.0.1:{server.server_port}/"), timeout=0.5)
            return status, body, asyncio.get_running_loop().time() - started

        status, body, took = asyncio.run(scenario())
    finally:
        server.shutdown()
    assert status == 0 and body == f"no answer from 127.0.0.1:{server.server_port} within 0.5 s"
    assert took < 5  # bounded by the deadline, not by the 20 s the server would take
