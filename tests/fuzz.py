"""A seeded mutation fuzzer for processors: hostile frames in, nothing but recorded faults out.

`run_fuzz(make, frames, count)` builds a fresh connected processor with `make()` (a `Driver`), then feeds
`count` frames, each a real frame of `frames` mutated at random (a number replaced by a huge, tiny,
negative, non-finite or malformed one; a key dropped; a type changed; the text cut, doubled or nested;
bytes flipped). After every frame it asserts what must always hold:
- no exception leaves the processor (faults are recorded inside it and become actions);
- every book passes `check()` and holds no zero, negative or non-finite size;
- no frame takes longer than `MAX_SECONDS` of this thread's CPU time (`time.thread_time`, so another
  busy process or a preemption cannot make the test flaky; the collector is off while timing).
When a fault makes the processor reconnect, the driver connects it again and the stream goes on.
"""
from __future__ import annotations

import gc
import json
import random
import time
from decimal import Decimal
from typing import Any, Callable

from data_manager.book import Side
from tests.driver import Driver

MAX_SECONDS = 0.010
NASTY_NUMBERS = ["1E44", "1e999999999", "-1", "0", "1e-30", "NaN", "Infinity", "-0", "", "abc", "1" * 500,
                 "0.000000000000000000000000001", "99999999999999999999", "1e-999999999", "1,5", " 1"]
NASTY_VALUES: list[Any] = [None, True, [], {}, -1, 0, 1e308, "x" * 300, [[[[]]]], {"a": None}, 2 ** 70]


def _mutate_value(rng: random.Random, value: Any, depth: int = 0) -> Any:
    if isinstance(value, dict) and value:
        value = dict(value)
        key = rng.choice(list(value))
        roll = rng.random()
        if roll < 0.15:
            del value[key]
        elif roll < 0.25:
            value[key] = rng.choice(NASTY_VALUES)
        else:
            value[key] = _mutate_value(rng, value[key], depth + 1)
        return value
    if isinstance(value, list) and value:
        value = list(value)
        index = rng.randrange(len(value))
        roll = rng.random()
        if roll < 0.1:
            del value[index]
        elif roll < 0.2:
            value.insert(index, value[index])
        else:
            value[index] = _mutate_value(rng, value[index], depth + 1)
        return value
    if isinstance(value, (str, int, float, Decimal)) and not isinstance(value, bool):
        roll = rng.random()
        if roll < 0.7:
            return rng.choice(NASTY_NUMBERS)
        return rng.choice(NASTY_VALUES)
    return rng.choice(NASTY_VALUES)


def mutate(rng: random.Random, text: str) -> str:
    roll = rng.random()
    if roll < 0.08:
        return text[: rng.randrange(len(text) + 1)]
    if roll < 0.12:
        return "[" * rng.choice((10, 1000, 5000)) + text
    if roll < 0.16:
        chars = list(text)
        for _ in range(rng.randint(1, 4)):
            chars[rng.randrange(len(chars))] = chr(rng.randrange(32, 127))
        return "".join(chars)
    if roll < 0.2:
        return text.replace("0.", "1e99999999", 1)
    try:
        value = json.loads(text, parse_float=Decimal)
    except ValueError:
        return text
    return json.dumps(_mutate_value(rng, value), default=str, separators=(",", ":"))


def check_books(driver: Driver) -> None:
    for feed in driver.processor.books.values():
        feed.book.check()
        for side in Side:
            for price, size in feed.book.levels(side):
                assert price.is_finite() and price > 0, (feed.key, side, price, size)
                assert size.is_finite() and size > 0, (feed.key, side, price, size)


def run_fuzz(make: Callable[[], Driver], frames: list[str], count: int = 20_000, seed: int = 1,
             clean_every: int = 3) -> dict[str, int]:
    """Feed `count` frames (one real frame after every `clean_every - 1` mutated ones); returns what
    happened (frames fed, reconnects) for the test to report."""
    rng = random.Random(seed)
    driver = make()
    slowest = 0.0
    reconnects = 0
    gc.disable()
    try:
        for n in range(count):
            frame = frames[n % len(frames)]
            text = frame if n % clean_every == 0 else mutate(rng, frame)
            started = time.thread_time()
            driver.feed(text)
            elapsed = time.thread_time() - started
            slowest = max(slowest, elapsed)
            assert elapsed < MAX_SECONDS, f"frame {n} took {elapsed * 1000:.1f} ms: {text[:200]!r}"
            if n % 50 == 0 or elapsed > 0.001:
                check_books(driver)
            if not driver.connected:
                reconnects += 1
                driver.connect()
    finally:
        gc.enable()
    check_books(driver)
    return {"frames": count, "reconnects": reconnects, "slowest_us": int(slowest * 1e6)}
