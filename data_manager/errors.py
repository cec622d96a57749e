"""Every error the product raises on purpose, with the evidence needed to act on it.

    Exception
     ├── FeedError(venue)                 a venue's feed can no longer be trusted: resync it
     │    ├── MessageError(venue, reason, excerpt)      not JSON, or not the documented shape
     │    ├── SequenceGap(venue, expected, got)         a sequence number was skipped
 │    │    └── EventChainBreak(venue, channel, ...)  Bitstamp: pre_event_id is not the last event_id
     │    ├── ChecksumMismatch(venue, expected, computed)
     │    ├── CrossedBook(venue, bid, ask)              best bid >= best ask after a message
     │    ├── BadLevel(venue, side, price, size)        a non-positive price or a negative size
     │    ├── SnapshotError(venue, reason)              a REST snapshot that cannot bridge the stream
     │    ├── ConnectionLost(venue, reason)             the socket closed under a live or syncing book
 │    ├── ReconnectRequested(venue, data)           the venue asked us to reconnect (bts:request_reconnect)
     │    ├── StaleFeed(venue, age, max_age)            no data and no heartbeat for too long
     │    └── NoBook(venue, seconds)                    connected, but no usable book arrived in time
     ├── ConfigError(path, key, problem)  config.yml (or a CLI value) is wrong: exit 2
 └── UsageError(message)              a bad command-line argument: exit 2

Fields are stored so tests and the integrity report read them; `__str__` is built from them.
`kind` is the short machine name used in logs, `--json` and fault-injection tests.
"""
from __future__ import annotations

EXCERPT_CHARS = 160


def excerpt(text: str | bytes, limit: int = EXCERPT_CHARS) -> str:
    """A single-line, bounded piece of a frame, for a log line that stays readable."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    flat = text.replace("\n", "\\n")
    return flat if len(flat) <= limit else flat[:limit] + f"... ({len(flat)} chars)"


class FeedError(Exception):
    """A venue's book may be wrong from here on: the caller must resync, never patch."""

    kind = "feed"

    def __init__(self, venue: str) -> None:
        super().__init__(venue)
        self.venue = venue

    def detail(self) -> str:
        return "feed error"

    def __str__(self) -> str:
        return f"{self.venue}: {self.kind}: {self.detail()}"


class MessageError(FeedError):
    kind = "malformed"

    def __init__(self, venue: str, reason: str, text: str | bytes = "") -> None:
        super().__init__(venue)
        self.reason = reason
        self.excerpt = excerpt(text) if text else ""

    def detail(self) -> str:
        return f"{self.reason} in {self.excerpt!r}" if self.excerpt else self.reason


class SequenceGap(FeedError):
    kind = "gap"

    def __init__(self, venue: str, expected: int, got: int) -> None:
        super().__init__(venue)
        self.expected = expected
        self.got = got

    def detail(self) -> str:
        return f"expected sequence {self.expected}, got {self.got}"


class ChecksumMismatch(FeedError):
    kind = "checksum"

    def __init__(self, venue: str, expected: int, computed: int) -> None:
        super().__init__(venue)
        self.expected = expected
        self.computed = computed

    def detail(self) -> str:
        return f"venue says {self.expected}, book gives {self.computed}"


class CrossedBook(FeedError):
    kind = "crossed"

    def __init__(self, venue: str, bid: object, ask: object) -> None:
        super().__init__(venue)
        self.bid = bid
        self.ask = ask

    def detail(self) -> str:
        return f"best bid {self.bid} >= best ask {self.ask}"


class BadLevel(FeedError):
    kind = "bad-level"

    def __init__(self, venue: str, side: object, price: object, size: object) -> None:
        super().__init__(venue)
        self.side = side
        self.price = price
        self.size = size

    def detail(self) -> str:
        return f"{self.side} level {self.price} with size {self.size}"


class SnapshotError(FeedError):
    kind = "snapshot"

    def __init__(self, venue: str, reason: str) -> None:
        super().__init__(venue)
        self.reason = reason

    def detail(self) -> str:
        return self.reason


class EventChainBreak(SequenceGap):
    """`pre_event_id` is not the previous event's `event_id` on the channel: an event was lost ("gap")."""

    def __init__(self, venue: str, channel: str, expected: str, got: str) -> None:
        super().__init__(venue, expected, got)  # event ids (strings), where SequenceGap has numbers
        self.channel = channel

    def detail(self) -> str:
        return f"{self.channel}: pre_event_id {self.got} does not follow event_id {self.expected}"


class ReconnectRequested(FeedError):
    """The venue asked for a reconnect (Bitstamp `bts:request_reconnect`: maintenance)."""

    kind = "request-reconnect"

    def __init__(self, venue: str, data: object) -> None:
        super().__init__(venue)
        self.data = data

    def detail(self) -> str:
        return f"the venue asked for a reconnect (bts:request_reconnect, data {excerpt(repr(self.data), 80)})"


class ConnectionLost(FeedError):
    kind = "disconnect"

    def __init__(self, venue: str, reason: str) -> None:
        super().__init__(venue)
        self.reason = reason

    def detail(self) -> str:
        return self.reason


class StaleFeed(FeedError):
    kind = "stale"

    def __init__(self, venue: str, age: float, max_age: float) -> None:
        super().__init__(venue)
        self.age = age
        self.max_age = max_age

    def detail(self) -> str:
        return f"no data or heartbeat for {self.age:.1f} s (max_age {self.max_age:g} s) while the socket looked open"


class NoBook(FeedError):
    kind = "no-book"

    def __init__(self, venue: str, seconds: float) -> None:
        super().__init__(venue)
        self.seconds = seconds

    def detail(self) -> str:
        return f"connected for {self.seconds:.0f} s without a usable book"


class ConfigError(Exception):
    """A wrong configuration value, named by its key path: one line for the user, exit 2."""

    def __init__(self, path: str, key: str, problem: str) -> None:
        super().__init__(path, key, problem)
        self.path = path
        self.key = key
        self.problem = problem

    def __str__(self) -> str:
        where = f"{self.path}: {self.key}" if self.key else self.path
        return f"{where}: {self.problem}"


class UsageError(Exception):
    """Bad command-line input: one line, exit 2. Here, not in main.py, so that a command module raising
    it and main.py run as `__main__` share one class."""
