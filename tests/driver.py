"""The one test driver for every sans-I/O processor test: it plays the shell by executing actions.

    driver = Driver(processor, http={"snapshot": (200, body)})
    driver.connect()                 # begin -> (token fetch) -> Connect -> connection_made
    driver.feed(text)                # receive one frame, execute what it asks
    driver.sent, driver.reconnects, driver.fetches, driver.changed   # what the processor asked for

HTTP answers come from `http`: a mapping of tag -> (status, body) or a callable(request, tag) -> (status,
body). A Fetch whose tag has no answer is kept in `pending_fetches` for the test to answer later with
`driver.answer(tag, status, body)`. Time is a `FakeClock` the test moves with `driver.advance(s)`.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

from data_manager.book import Side
from data_manager.feed import (BookChanged, Connect, Fetch, FeedProcessor, FeedState, HealthChanged, OrderEvent,
                               Reconnect, Send, TICK_SECONDS)


class FakeClock:
    def __init__(self, start: float = 1_780_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


class Driver:
    def __init__(self, processor: FeedProcessor, http: Mapping[str, tuple[int, str]] | Callable | None = None,
                 clock: FakeClock | None = None) -> None:
        self.processor = processor
        self.clock = clock if clock is not None else processor.clock
        self.http = http or {}
        self.sent: list[str] = []
        self.connects: list[str] = []
        self.reconnects: list[str] = []
        self.fetches: list[Fetch] = []
        self.pending_fetches: dict[str, Fetch] = {}
        self.changed: list[str] = []                 # keys of BookChanged, in order
        self.health: list[tuple[str, FeedState]] = []
        self.order_events: list[OrderEvent] = []
        self.connected = False

    # --- playing the shell -------------------------------------------------------------------
    def connect(self) -> None:
        """A whole connection attempt: begin, answer fetches, connection_made."""
        self.processor.begin()
        self.run()
        assert self.connects, "the processor never asked to connect"
        self.processor.connection_made()
        self.connected = True
        self.run()

    def feed(self, *texts: str) -> None:
        for text in texts:
            self.processor.receive(text)
            self.run()

    def tick(self) -> None:
        self.processor.tick(self.clock())
        self.run()

    def advance(self, seconds: float) -> None:
        """Move the clock in shell-sized ticks, ticking the processor each time."""
        end = self.clock.now + seconds
        while self.clock.now < end:
            self.clock.now = min(end, self.clock.now + TICK_SECONDS)
            self.tick()

    def lose_connection(self, reason: str = "test") -> None:
        self.connected = False
        self.processor.connection_lost(reason)
        self.run()

    def answer(self, tag: str, status: int, body: str) -> None:
        self.pending_fetches.pop(tag)
        self.processor.http_response(tag, status, body)
        self.run()

    def run(self) -> None:
        """Execute every action the processor asked for, in order (answering fetches may ask more)."""
        while True:
            actions = self.processor.actions()
            if not actions:
                return
            for action in actions:
                self._execute(action)

    def _execute(self, action: Any) -> None:
        if type(action) is Send:
            self.sent.append(action.text)
        elif type(action) is Connect:
            self.connects.append(action.url)
        elif type(action) is Reconnect:
            self.reconnects.append(action.reason)
            if self.connected:  # the shell closes the socket: the processor hears connection_lost
                self.connected = False
                self.processor.connection_lost("closed by us")
        elif type(action) is Fetch:
            self.fetches.append(action)
            answer = self.http(action.request, action.tag) if callable(self.http) else self.http.get(action.tag)
            if answer is None:
                self.pending_fetches[action.tag] = action
            else:
                self.processor.http_response(action.tag, *answer)
        elif type(action) is BookChanged:
            self.changed.append(str(action.key))
        elif type(action) is HealthChanged:
            self.health.append((str(action.key), action.state))
        elif type(action) is OrderEvent:
            self.order_events.append(action)
        else:
            raise AssertionError(f"unknown action {action!r}")

    # --- reading ---------------------------------------------------------------------------------
    def feed_book(self, native: str | None = None):
        books = self.processor.books
        return books[native] if native is not None else next(iter(books.values()))

    def state(self, native: str | None = None) -> FeedState:
        return self.feed_book(native).health.state

    def levels(self, side: Side, native: str | None = None) -> list:
        return list(self.feed_book(native).book.levels(side))
