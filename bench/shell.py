"""The shell of a benchmark: what `client.py` does with a processor, without the socket and the event loop.

Per received frame: `processor.receive(text)`, then every action drained (`processor.actions()`) and
executed as the live shell does; a Fetch is answered at once from the stream's recorded REST answers
(its answer's actions drained too). A consumer reads the best bid and ask of the book a `BookChanged`
names, through that book's `BookView` looked up by its key (as a `DataManager` subscriber does): the
book of the frame's symbol, sizes in base units (KuMEX's contracts converted). A `Reconnect` means the
stream or the processor is broken: the benchmark stops (a fault must never be timed as throughput).
"""
from __future__ import annotations

import time
from typing import Any, Callable

from data_manager.book import Side
from data_manager.feed import BookChanged, BookView, Connect, FeedProcessor, FeedState, Fetch, HealthChanged, OrderEvent, Reconnect, Send
from data_manager.registry import venue

from bench.streams import Stream

_BID, _ASK = Side.BID, Side.ASK
Factory = Callable[..., FeedProcessor]


class BenchShell:
    def __init__(self, stream: Stream, factory: Factory | None = None, read_bbo: bool = True) -> None:
        """`factory`: (settings, symbols, clock) -> processor; default the registry's."""
        spec = venue(stream.venue)
        self.stream = stream
        self.processor = (factory or spec.processor)(stream.settings, stream.symbols, time.time)
        self.views = {}
        for symbol, native in stream.symbols:
            feed = self.processor.books[native]
            self.views[feed.key] = BookView(feed, spec.instrument, symbol)
        self.read_bbo = read_bbo
        self.sent: list[str] = []
        self.connects: list[str] = []
        self.changed = 0

    # --- untimed ------------------------------------------------------------------------------------
    def connect(self) -> "BenchShell":
        """begin -> Connect (a token first, for KuMEX) -> connection_made -> the handshake frames."""
        processor = self.processor
        processor.begin()
        self.run()
        if not self.connects:
            raise RuntimeError(f"{self.stream.venue}: the processor never asked to connect")
        processor.connection_made()
        self.run()
        handshake = self.stream.handshake
        told = 0
        while handshake is not None:
            frames = handshake(processor, self.sent[told:])
            told = len(self.sent)
            if not frames:
                break
            for text in frames:
                processor.receive(text)
                self.run()
        return self

    def check_live(self) -> None:
        for key, view in self.views.items():
            if view.state is not FeedState.LIVE:
                raise RuntimeError(f"{key}: {view.state.value} after the replay")

    # --- timed ----------------------------------------------------------------------------------------
    def play(self, frames: list[str]) -> None:
        """Every frame as the live shell takes it, the best bid and ask read after every book change."""
        receive, drain, execute = self.processor.receive, self.processor.actions, self.execute
        views = self.views
        if not self.read_bbo:
            for text in frames:
                receive(text)
                for action in drain():
                    if type(action) is not BookChanged:
                        execute(action)
            return
        for text in frames:
            receive(text)
            for action in drain():
                if type(action) is BookChanged:
                    view = views[action.key]
                    view.best(_BID)
                    view.best(_ASK)
                else:
                    execute(action)

    def run(self) -> None:
        """Drain and execute until the processor asks for nothing more."""
        actions = self.processor.actions()
        while actions:
            for action in actions:
                self.execute(action)
            actions = self.processor.actions()

    def execute(self, action: Any) -> None:
        kind = type(action)
        if kind is BookChanged:
            self.changed += 1
            if self.read_bbo:
                view = self.views[action.key]
                view.best(_BID)
                view.best(_ASK)
        elif kind is HealthChanged or kind is OrderEvent:
            pass  # a subscriber's business; the DataManager hands them on
        elif kind is Send:
            self.sent.append(action.text)
        elif kind is Fetch:
            if self.stream.http is None:
                raise RuntimeError(f"{self.stream.venue}: a Fetch ({action.tag}) the stream has no answer for")
            status, body = self.stream.http(action.request, action.tag)
            self.processor.http_response(action.tag, status, body)
            self.run()
        elif kind is Connect:
            self.connects.append(action.url)
        elif kind is Reconnect:
            raise RuntimeError(f"{self.stream.venue}: the processor reconnects during the benchmark: {action.reason}")
        else:
            raise TypeError(f"unknown action {action!r}")


def one_pass(stream: Stream, factory: Factory | None = None, read_bbo: bool = True) -> tuple[float, float]:
    """A fresh processor over the whole stream: (seconds for every frame, seconds for the steady part)."""
    shell = BenchShell(stream, factory, read_bbo).connect()
    head, tail = stream.frames[:stream.steady_from], stream.frames[stream.steady_from:]
    clock = time.perf_counter
    t0 = clock()
    shell.play(head)
    t1 = clock()
    shell.play(tail)
    t2 = clock()
    shell.check_live()
    return t2 - t0, t2 - t1
