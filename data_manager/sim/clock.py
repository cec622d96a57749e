"""The one clock every simulated venue stamps its frames with.

Real time by default. Tests (and `--seed` runs that want repeatable stamps) give a fixed start: the
clock then begins there and advances with the real monotonic clock, so stamps are always a plausible
current date, increasing, with the venue's own field relations (ms, µs, ns), never 1970 or 2021.
"""
from __future__ import annotations

import time

FIXED_START = 1_796_083_200.0
"""2026-12-01T00:00:00Z: the fixed start used under tests."""


class SimClock:
    """Integer nanoseconds inside, so that ns stamps (Gemini `E`, Coinbase `timestamp`) carry real ns
    digits rather than a float's rounding; ms and µs are floors of the same reading."""

    def __init__(self, start: float | None = None) -> None:
        self._offset_ns = None if start is None else round(start * 1_000_000_000) - time.monotonic_ns()

    def ns(self) -> int:
        return time.time_ns() if self._offset_ns is None else self._offset_ns + time.monotonic_ns()

    def now(self) -> float:
        """Epoch seconds."""
        return self.ns() / 1_000_000_000

    def ms(self) -> int:
        return self.ns() // 1_000_000

    def us(self) -> int:
        return self.ns() // 1_000
