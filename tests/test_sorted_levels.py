"""`SortedLevels`, the chunked side of an `L2Book`, against a plain dict: seeded random sets, deletes and
pops with tiny chunks, so that splitting, joining and emptying chunks all happen; check() after each."""
import random
from decimal import Decimal as D

import pytest

from data_manager.book import SortedLevels


class Tiny(SortedLevels):
    LOAD = 8  # chunks split above 16 levels and are joined to a neighbour below 2


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_random_operations_match_a_plain_dict(seed):
    rng = random.Random(seed)
    initial = [(D(rng.randint(1, 300)) / 4, D(rng.randint(1, 9))) for _ in range(rng.randint(0, 60))]
    levels, ref = Tiny(initial), {}
    for price, size in initial:
        ref[price] = (price, size)  # a repeated price: the last one wins
    levels.check()
    for _ in range(3000):
        roll = rng.random()
        price = D(rng.randint(1, 300)) / 4
        if roll < 0.5:
            level = (price, D(rng.randint(1, 9)))
            levels.set(level)
            ref[price] = level
        elif roll < 0.85:
            assert levels.delete(price) == (ref.pop(price, None) is not None)
        elif ref and roll < 0.93:
            lowest = min(ref)
            assert levels.pop_lowest() == ref.pop(lowest)
        elif ref:
            highest = max(ref)
            assert levels.pop_highest() == ref.pop(highest)
        levels.check()
        expected = [ref[p] for p in sorted(ref)]
        assert len(levels) == len(expected)
        assert levels.lowest() == (expected[0] if expected else None)
        assert levels.highest() == (expected[-1] if expected else None)
        assert levels.get(price) == ref.get(price)
    assert list(levels.ascending()) == [ref[p] for p in sorted(ref)]
    assert list(levels.descending()) == [ref[p] for p in sorted(ref, reverse=True)]


def test_levels_are_kept_as_given_and_a_replaced_level_keeps_its_place():
    levels = Tiny([(D(p), D(1)) for p in range(1, 30)])
    new = (D(7), D(5))
    levels.set(new)
    assert levels.get(D(7)) is new
    assert [p for p, _ in levels.ascending()] == [D(p) for p in range(1, 30)]
    levels.check()
