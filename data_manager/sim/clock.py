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
    def __init__(self, start: float | None = None) -> None:
        self._offset = None if start is None else start - time.monotonic()

    def now(self) -> float:
        """Epoch seconds."""
        return time.time() if self._offset is None else self._offset + time.monotonic()

    def ms(self) -> int:
        return int(self.now() * 1000)

    def us(self) -> int:
        return int(self.now() * 1_000_000)

    def ns(self) -> int:
        return int(self.now() * 1_000_000_000)
