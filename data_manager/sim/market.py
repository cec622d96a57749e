"""One seeded BTC-USD mid price that every simulated venue quotes around.

The path is indexed by simulated time (steps of `STEP_SECONDS`), not by the wall clock, so a venue that
asks for the mid at its own n-th update always gets the same number for the same seed.
"""
from __future__ import annotations

import random
from decimal import Decimal

STEP_SECONDS = 0.1


class Market:
    """A random walk of the mid in cents, a few basis points of volatility per second."""

    def __init__(self, seed: int, start_mid: Decimal = Decimal("60000"), bps_per_step: float = 0.3) -> None:
        self._rng = random.Random(f"market-{seed}")
        self._cents = [int(start_mid * 100)]
        self._sigma = bps_per_step / 10_000

    def mid_at(self, seconds: float) -> Decimal:
        """The common mid at simulated time `seconds`, exact to the cent."""
        index = max(0, int(seconds / STEP_SECONDS))
        while len(self._cents) <= index:
            last = self._cents[-1]
            self._cents.append(max(100, round(last * (1 + self._rng.gauss(0, self._sigma)))))
        return Decimal(self._cents[index]).scaleb(-2)
