"""Several `serve` processes, each owning some venues, publish to one Redis; a reader with no exchange
connection of its own (`views_from_redis`, what `sell --redis URL` calls) gives the same merged answer
as one process holding every book. The simulator's books stand still (`rate: 0`), so every process
builds the same books."""
from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from decimal import Decimal as D

from config import load_config
from data_manager.redis_books import views_from_redis
from data_manager.symbols import Symbol
from l2_manager.answer import build_answer, exit_code, terms_for
from l2_manager.cost import OrderSize
from l2_manager.depletion import Action
from l2_manager.document import answer_json
from tests.test_redis import redis_url  # noqa: F401  (the real redis-server fixture)
from tests.test_service_cli import VENUES, comparable, serving, still_config, wait_live  # noqa: F401

SYMBOL = Symbol("BTC", "USD")


def read_when_live(url: str, venues: list[str]):
    """The books as Redis has them, once every venue's snapshot says live."""
    deadline = time.monotonic() + 20
    while True:
        books = asyncio.run(views_from_redis(url, SYMBOL, venues))
        if all(view.live for view in books.views) or time.monotonic() > deadline:
            return books
        time.sleep(0.05)


def test_two_servers_and_a_redis_reader_answer_as_one_process(redis_url, still_config):  # noqa: F811
    venues = VENUES.split(",")
    common = ("--source", "sim", "--symbol", "BTC-USD", "--config", still_config)
    with serving("--venues", ",".join(venues[:2]), "--redis", redis_url, *common) as first, \
            serving("--venues", venues[2], "--redis", redis_url, *common) as second, \
            serving("--venues", VENUES, *common) as alone:
        wait_live(alone, 3)
        with urllib.request.urlopen(f"{alone}/v1/depletion?action=sell&size=15&limit_bps=5", timeout=10) as answer:
            one_process = json.loads(answer.read())
        books = read_when_live(redis_url, venues)
        health = json.loads(urllib.request.urlopen(f"{first}/v1/health", timeout=10).read())
    config = load_config(still_config)
    settings = {name: venue.settings for name, venue in config.venues.items()}
    answer = build_answer(Action.SELL, [OrderSize(D(15))], books.views, "sim", books.reasons,
                          terms=terms_for(books.views, settings), limit_bps=D(5))
    from_redis = answer_json(answer, exit_code(answer))
    assert [view.venue for view in books.views] == venues and all(view.live for view in books.views)
    assert books.servers[books.views[0].key] == first and books.servers[books.views[2].key] == second
    assert comparable(from_redis) == comparable(one_process)
    assert from_redis["orders"][0]["merged"]["venues"] == venues
    assert health["redis"]["state"] == "up" and health["redis"]["dropped"] == 0
