"""One seeded mid price per symbol that every simulated venue quotes around.

The path is indexed by simulated time (steps of `STEP_SECONDS`), not by the wall clock, so a venue that
asks for the mid at its own n-th update always gets the same number for the same seed.
"""
from __future__ import annotations

import random
from decimal import Decimal
from typing import Mapping

STEP_SECONDS = 0.1
DEFAULT_MIDS = {"BTC-USD": Decimal("60000"), "ETH-USD": Decimal("3000")}


class _Walk:
    """A random walk of one mid in cents, a few basis points of volatility per second."""

    def __init__(self, rng: random.Random, start_mid: Decimal, sigma: float) -> None:
        self._rng = rng
        self._cents = [int(start_mid * 100)]
        self._sigma = sigma

    def at(self, index: int) -> Decimal:
        while len(self._cents) <= index:
            last = self._cents[-1]
            self._cents.append(max(100, round(last * (1 + self._rng.gauss(0, self._sigma)))))
        return Decimal(self._cents[index]).scaleb(-2)


class Market:
    """The common mids, by unified symbol (BTC-USD). A symbol without a configured mid is refused."""

    def __init__(self, seed: int, mids: Mapping[str, Decimal] | Decimal | None = None,
                 bps_per_step: float = 0.3) -> None:
        if mids is None:
            mids = DEFAULT_MIDS
        elif isinstance(mids, Decimal):
            mids = {"BTC-USD": mids}
        self._walks = {symbol: _Walk(random.Random(f"market-{seed}" if symbol == "BTC-USD" else f"market-{seed}-{symbol}"),
                                     Decimal(mid), bps_per_step / 10_000) for symbol, mid in mids.items()}

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(self._walks)

    def mid_at(self, seconds: float, symbol: str = "BTC-USD") -> Decimal:
        """The common mid of `symbol` at simulated time `seconds`, exact to the cent."""
        return self._walks[symbol].at(max(0, int(seconds / STEP_SECONDS)))
