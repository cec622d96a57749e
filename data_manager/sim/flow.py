"""Seeded synthetic level-2 order flow: the book of one simulated venue and the changes that move it.

Prices are kept in integer ticks and sizes in integer lots (exact, fast to compare); they become
`Decimal` only when a venue server writes a frame. Activity is concentrated near the touch, as on real
books: most updates change a level among the best few dozen, some add or remove one, trades shave the
best level, and when the common mid moves the book follows it without ever crossing itself.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import Decimal

from sortedcontainers import SortedList

BID, ASK = "bid", "ask"


@dataclass(frozen=True)
class FlowSpec:
    """How one venue's book looks: tick, lot, how many levels and how far apart, how big."""

    tick: Decimal
    lot: Decimal
    levels: int = 300
    mean_gap_ticks: float = 3.0
    half_spread_ticks: int = 1


def _draw_lots(rng: random.Random, lot: Decimal) -> int:
    """A BTC size in lots: mostly small orders, some medium, a few large (0.0001 to 5 BTC)."""
    roll = rng.random()
    btc = rng.uniform(0.0001, 0.1) if roll < 0.7 else rng.uniform(0.1, 1.0) if roll < 0.95 else rng.uniform(1, 5)
    return max(1, int(Decimal(str(round(btc, 8))) / lot))


class LevelFlow:
    """One venue's synthetic L2 book. `step()` returns the changes of one update, already applied."""

    def __init__(self, rng: random.Random, spec: FlowSpec, mid: Decimal) -> None:
        self.rng = rng
        self.spec = spec
        self.book: dict[str, dict[int, int]] = {BID: {}, ASK: {}}
        self._ticks = {BID: SortedList(key=lambda t: -t), ASK: SortedList()}
        mid_tick = int(mid / spec.tick)
        self._fill(BID, mid_tick - spec.half_spread_ticks)
        self._fill(ASK, mid_tick + spec.half_spread_ticks)

    # --- reading ----------------------------------------------------------------------------
    def price(self, tick: int) -> Decimal:
        return tick * self.spec.tick

    def size(self, lots: int) -> Decimal:
        return lots * self.spec.lot

    def levels(self, side: str, count: int | None = None) -> list[tuple[Decimal, Decimal]]:
        """Best first, as exact decimals."""
        ticks = self._ticks[side] if count is None else self._ticks[side][:count]
        return [(self.price(t), self.size(self.book[side][t])) for t in ticks]

    def best_tick(self, side: str) -> int | None:
        ticks = self._ticks[side]
        return ticks[0] if ticks else None

    # --- changing ---------------------------------------------------------------------------
    def step(self, mid: Decimal) -> list[tuple[str, Decimal, Decimal]]:
        """One update's changes as (side, price, new size); size 0 deletes."""
        changes: list[tuple[str, int, int]] = []
        self._follow(int(mid / self.spec.tick), changes)
        side = BID if self.rng.random() < 0.5 else ASK
        roll = self.rng.random()
        if roll < 0.5:
            self._resize_near_touch(side, changes)
        elif roll < 0.7:
            self._add_near_touch(side, changes)
        elif roll < 0.9:
            self._remove_near_touch(side, changes)
        else:
            self._trade_at_touch(side, changes)
        for s in (BID, ASK):
            self._refill(s, changes)
        return [(s, self.price(t), self.size(lots)) for s, t, lots in changes]

    def _set(self, side: str, tick: int, lots: int, changes: list) -> None:
        levels = self.book[side]
        if lots > 0:
            if tick not in levels:
                self._ticks[side].add(tick)
            levels[tick] = lots
        elif tick in levels:
            del levels[tick]
            self._ticks[side].remove(tick)
        else:
            return
        changes.append((side, tick, lots))

    def _fill(self, side: str, start: int) -> None:
        tick = start
        direction = -1 if side == BID else 1
        while len(self.book[side]) < self.spec.levels:
            self._set(side, tick, _draw_lots(self.rng, self.spec.lot), [])
            tick += direction * self._gap()

    def _near_index(self, side: str) -> int:
        count = len(self._ticks[side])
        return min(count - 1, int(self.rng.expovariate(1 / 8)))

    def _resize_near_touch(self, side: str, changes: list) -> None:
        tick = self._ticks[side][self._near_index(side)]
        self._set(side, tick, _draw_lots(self.rng, self.spec.lot), changes)

    def _add_near_touch(self, side: str, changes: list) -> None:
        best = self._ticks[side][0]
        other = self.best_tick(ASK if side == BID else BID)
        offset = int(self.rng.expovariate(1 / 10)) - 1  # -1: improve the touch by one tick
        tick = best - offset if side == BID else best + offset
        crosses = tick >= other if side == BID else tick <= other
        if not crosses and tick not in self.book[side]:
            self._set(side, tick, _draw_lots(self.rng, self.spec.lot), changes)

    def _remove_near_touch(self, side: str, changes: list) -> None:
        if len(self._ticks[side]) > 1:
            self._set(side, self._ticks[side][self._near_index(side)], 0, changes)

    def _trade_at_touch(self, side: str, changes: list) -> None:
        tick = self._ticks[side][0]
        lots = self.book[side][tick]
        taken = self.rng.randint(1, max(1, lots))
        self._set(side, tick, lots - taken, changes)

    def _follow(self, mid_tick: int, changes: list) -> None:
        """Keep the book on its own side of the mid: levels the mid passed are traded away."""
        half = self.spec.half_spread_ticks
        while self._ticks[BID] and self._ticks[BID][0] > mid_tick - half:
            self._set(BID, self._ticks[BID][0], 0, changes)
        while self._ticks[ASK] and self._ticks[ASK][0] < mid_tick + half:
            self._set(ASK, self._ticks[ASK][0], 0, changes)
        slack = max(2, int(2 * self.spec.mean_gap_ticks))
        for side, touch in ((BID, mid_tick - half), (ASK, mid_tick + half)):
            best = self.best_tick(side)
            if best is None or abs(touch - best) > slack:  # the mid moved away: quote up to it again
                self._quote_towards(side, touch, best, changes)

    def _quote_towards(self, side: str, touch: int, best: int | None, changes: list) -> None:
        """Fill the empty stretch between the mid and the old best level, as market makers would."""
        direction = -1 if side == BID else 1
        tick = touch
        while best is None or (tick - best) * direction < 0:
            self._set(side, tick, _draw_lots(self.rng, self.spec.lot), changes)
            tick += direction * self._gap()
            if best is None:
                break

    def _refill(self, side: str, changes: list) -> None:
        """Keep at least `levels` per side by adding far levels behind the worst one."""
        direction = -1 if side == BID else 1
        while len(self.book[side]) < self.spec.levels:
            worst = self._ticks[side][-1]
            self._set(side, worst + direction * self._gap(), _draw_lots(self.rng, self.spec.lot), changes)
        while len(self.book[side]) > self.spec.levels * 3 // 2:  # far orders get cancelled too
            self._set(side, self._ticks[side][-1], 0, changes)

    def _gap(self) -> int:
        return 1 + int(self.rng.expovariate(1 / max(self.spec.mean_gap_ticks - 1, 0.01)))
