"""The data manager: every configured feed, built from the registry, and what consumers read.

It owns the connections (one asyncio task each; one failing never cancels another), a read-only
`BookView` per (venue, symbol), one readiness signal per feed, and the change events: consumers
(the answer, a service, a publisher) call `subscribe(callback)` and are told "this feed's book changed"
and "this feed's health changed" as it happens, with no polling and no access to a processor.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

from data_manager.client import Backoff, FeedConnection, WireTap
from data_manager.feed import Action, BookView, FeedKey, FeedProcessor, FeedSettings, FeedState, HealthChanged
from data_manager.registry import VenueSpec
from data_manager.symbols import Symbol

log = logging.getLogger(__name__)

Subscriber = Callable[[Action], None]


@dataclass(frozen=True)
class FeedPlan:
    """What to run for one venue: its spec, its (validated) settings, and the symbols wanted."""

    spec: VenueSpec
    settings: FeedSettings
    symbols: tuple[Symbol, ...]


class DataManager:
    def __init__(self, plans: Sequence[FeedPlan], clock: Callable[[], float] = time.time,
                 backoff: Backoff | None = None,
                 tap: Callable[[str, int], WireTap | None] | None = None) -> None:
        """`tap(venue, connection index)` gives each connection its wire tap (a recorder), if any."""
        self.connections: list[FeedConnection] = []
        self.views: dict[FeedKey, BookView] = {}
        self._connection_of: dict[FeedKey, FeedConnection] = {}
        self._subscribers: list[Subscriber] = []
        self._changed = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self.processors: list[FeedProcessor] = []   # for tests and benchmarks; consumers read views
        for plan in plans:
            for symbols in plan.spec.connections(plan.settings, plan.symbols):
                processor = plan.spec.processor(plan.settings, symbols, clock)
                index = sum(1 for c in self.connections if c.name == processor.venue)
                connection = FeedConnection(processor, plan.spec.limits, backoff or Backoff(),
                                            listener=self._on_action,
                                            tap=tap(processor.venue, index) if tap is not None else None)
                self.connections.append(connection)
                self.processors.append(processor)
                for symbol, native in symbols:
                    feed = processor.books[native]
                    notes = plan.spec.notes(plan.settings, symbol) if plan.spec.notes else ()
                    self.views[feed.key] = BookView(feed, plan.spec.instrument, symbol, notes)
                    self._connection_of[feed.key] = connection

    # --- lifecycle --------------------------------------------------------------------------------
    def start(self) -> None:
        self._tasks = [asyncio.create_task(c.run(), name=f"feed-{c.name}") for c in self.connections]

    async def stop(self) -> None:
        for connection in self.connections:
            connection.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # --- consumers --------------------------------------------------------------------------------
    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Call `subscriber(action)` on every BookChanged / HealthChanged; returns the unsubscribe."""
        self._subscribers.append(subscriber)
        return lambda: self._subscribers.remove(subscriber)

    def _on_action(self, connection: FeedConnection, action: Action) -> None:
        if type(action) is HealthChanged:
            self._changed.set()
        for subscriber in self._subscribers:
            subscriber(action)

    def last_error(self, key: FeedKey) -> str | None:
        """Why the feed's connection is not up, in the shell's words (None while it is fine)."""
        connection = self._connection_of[key]
        return connection.last_error

    def failed(self, key: FeedKey) -> bool:
        """The feed cannot become live soon: its connection crashed, or its latest attempt never got
        a socket open. A one-shot answer stops waiting for it (and says why)."""
        connection = self._connection_of[key]
        return connection.crashed is not None or (connection.failed_attempts > 0 and not self.views[key].live)

    def crashed(self, key: FeedKey) -> bool:
        return self._connection_of[key].crashed is not None

    async def wait_ready(self, timeout: float, keys: Sequence[FeedKey] | None = None,
                         until: Callable[[], bool] | None = None) -> dict[FeedKey, bool]:
        """Wait until every feed is live or has failed (and `until()` holds, if given), or `timeout`."""
        keys = list(self.views) if keys is None else list(keys)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout

        def settled() -> bool:
            return all(self.views[k].live or self.failed(k) for k in keys) and (until is None or until())

        while not settled():
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.25))
            except asyncio.TimeoutError:
                pass
        return {k: self.views[k].live for k in keys}

    def states(self) -> Mapping[FeedKey, FeedState]:
        return {key: view.state for key, view in self.views.items()}
