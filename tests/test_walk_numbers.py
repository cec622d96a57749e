"""The walks against a naive walk written out here: the same fills, filled, notional and VWAP, down to
how each number prints (exact decimals keep their operands' exponent: 1.5 - 1.00 is 0.50, not 0.5)."""
import random
from decimal import Decimal as D

import pytest

from l2_manager.depletion import Action, deplete_liquidity, deplete_merged


def naive_walk(size, tagged_levels):
    """Take each level in order until `size` is filled: remaining = size minus each take."""
    fills, remaining = [], size
    for venue, price, available in tagged_levels:
        take = available if available < remaining else remaining
        fills.append((venue, str(price), str(take)))
        remaining -= take
        if not remaining:
            break
    filled = sum((D(s) for _, _, s in fills), D(0))
    notional = sum((D(p) * D(s) for _, p, s in fills), D(0))
    return fills, str(filled), str(notional), str(notional / filled) if filled else None


def numbers(result):
    return ([(f.venue, str(f.price), str(f.size)) for f in result.fills], str(result.filled),
            str(result.notional), None if result.vwap is None else str(result.vwap))


def a_size(rng):
    if rng.random() < 0.5:
        return D(rng.choice(["1", "1.5", "0.50000000", "2.25", "10", "1E+1", "3.000", "0.00001"]))
    return D(rng.randint(1, 10**6)).scaleb(-rng.randint(0, 8))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_one_book_walk_prints_the_same_numbers_as_a_naive_walk(seed):
    rng = random.Random(seed)
    for _ in range(2000):
        levels = [(D(100 + i), a_size(rng)) for i in range(rng.randint(0, 12))]
        size = a_size(rng)
        result = deplete_liquidity("v", Action.BUY, size, iter(levels))
        assert numbers(result) == naive_walk(size, [("v", p, s) for p, s in levels])


@pytest.mark.parametrize("seed", [4, 5])
def test_merged_walk_prints_the_same_numbers_as_a_naive_walk_of_the_sorted_union(seed):
    rng = random.Random(seed)
    for _ in range(1000):
        sides = {}
        for venue in ("a", "b", "c"):
            prices = sorted(set(rng.randint(90, 110) for _ in range(rng.randint(0, 6))))
            sides[venue] = [(D(p), a_size(rng)) for p in prices]
        size = a_size(rng)
        for action, descending in ((Action.BUY, False), (Action.SELL, True)):
            books = {v: (levels[::-1] if descending else levels) for v, levels in sides.items()}
            union = [(v, p, s) for v, levels in books.items() for p, s in levels]
            union.sort(key=lambda level: level[1], reverse=descending)  # stable: ties keep venue order
            assert numbers(deplete_merged(action, size, books)) == naive_walk(size, union)
