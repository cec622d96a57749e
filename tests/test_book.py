"""Books against a naive reference: seeded random operations, invariants checked after every mutation."""
import random
from decimal import Decimal as D

import pytest

from data_manager.book import L2Book, L3Book, Side


def _reference_levels(ref: dict, side: Side) -> list:
    return sorted(ref.items(), reverse=side is Side.BID)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_l2_random_operations_match_a_plain_dict(seed):
    rng = random.Random(seed)
    book, ref = L2Book(), {Side.BID: {}, Side.ASK: {}}
    for _ in range(2000):
        side = rng.choice(list(Side))
        price = D(rng.randint(9000, 11000)) / 100
        size = D(0) if rng.random() < 0.3 else D(rng.randint(1, 10**6)) / 10**6
        book.apply(side, price, size)
        if size:
            ref[side][price] = size
        else:
            ref[side].pop(price, None)
        book.check()
        for s in Side:
            expected = _reference_levels(ref[s], s)
            assert book.best(s) == (expected[0] if expected else None)
    for s in Side:
        assert list(book.levels(s)) == _reference_levels(ref[s], s)
        assert book.depth(s) == len(ref[s])


def test_l2_truncate_keeps_the_best_levels():
    book = L2Book()
    book.replace([(D(p), D(1)) for p in (99, 98, 97, 96)], [(D(p), D(2)) for p in (101, 103, 102)])
    book.truncate(2)
    book.check()
    assert book.as_dict() == {"bid": [["99", "1"], ["98", "1"]], "ask": [["101", "2"], ["102", "2"]]}


def test_l2_replace_discards_the_old_book_and_delete_of_absent_level_is_ignored():
    book = L2Book()
    book.apply(Side.BID, D("100"), D("1"))
    book.replace([(D("90"), D("2"))], [])
    book.apply(Side.ASK, D("500"), D("0"))
    book.check()
    assert book.as_dict() == {"bid": [["90", "2"]], "ask": []}
    assert not book.crossed()
    book.apply(Side.ASK, D("90"), D("1"))
    assert book.crossed()


@pytest.mark.parametrize("seed", [4, 5])
def test_l3_random_operations_match_a_reference_of_fifo_queues(seed):
    rng = random.Random(seed)
    book = L3Book()
    ref: dict[str, tuple[Side, D, D]] = {}  # order_id -> (side, price, size); dict order = arrival
    next_id = 0
    for _ in range(3000):
        roll = rng.random()
        if roll < 0.45 or not ref:
            next_id += 1
            oid, side = f"o{next_id}", rng.choice(list(Side))
            price, size = D(rng.randint(100, 130)), D(rng.randint(1, 50))
            book.add(oid, side, price, size)
            ref[oid] = (side, price, size)
        elif roll < 0.75:
            oid = rng.choice(list(ref))
            size = D(rng.randint(0, 50))
            assert book.set_size(oid, size)
            if size:
                side, price, _ = ref[oid]
                ref[oid] = (side, price, size)  # keeps its place in the queue
            else:
                del ref[oid]
        else:
            oid = rng.choice(list(ref))
            assert book.remove(oid)
            del ref[oid]
        book.check()
    assert not book.remove("never-seen")
    for side in Side:
        prices = sorted({p for s, p, _ in ref.values() if s is side}, reverse=side is Side.BID)
        expected_levels = [(p, sum(z for s, q, z in ref.values() if s is side and q == p)) for p in prices]
        assert list(book.levels(side)) == expected_levels
        for p in prices:
            expected_queue = [(oid, z) for oid, (s, q, z) in ref.items() if s is side and q == p]
            assert [(o.order_id, o.size) for o in book.orders_at(side, p)] == expected_queue


def test_l3_rejects_duplicate_ids_and_non_positive_orders():
    book = L3Book()
    book.add("a", Side.BID, D("10"), D("1"))
    with pytest.raises(ValueError):
        book.add("a", Side.BID, D("10"), D("1"))
    with pytest.raises(ValueError):
        book.add("b", Side.ASK, D("10"), D("0"))
    assert not book.set_size("zzz", D(3))
