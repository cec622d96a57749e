"""JSON schema 1: real documents validated against `l2_manager/schema.json` in every venue state (live,
stale, resyncing, excluded, never connected), every key present in every state, decimals at a fixed
scale and never an exponent, times in ISO 8601 UTC with epoch milliseconds."""
import json
import re
from decimal import Decimal as D
from pathlib import Path

import jsonschema
import pytest

from data_manager.book import Side
from data_manager.feed import Fault
from l2_manager.answer import build_answer, build_depth, exit_code, venue_status
from l2_manager.cost import OrderSize
from l2_manager.depletion import Action
from l2_manager.document import answer_json, depth_json, queue_json
from l2_manager.fees import VenueTerms
from l2_manager.queue import estimate, queue_position
from tests.test_answer_fixtures import NOW, inverse, levels, make_view

SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "l2_manager" / "schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
BIDS = levels(("60000.1", "0.5"), ("59999.5", "1"), ("59990", "3"))
ASKS = levels(("60000.3", "0.4"), ("60001", "2"))
L3 = {Side.BID: [("a1", "60000.2", "0.3"), ("a2", "60000.2", "0.2"), ("a3", "59999", "4")],
      Side.ASK: [("a4", "60000.4", "1")]}


def views(state: str):
    """A live spot venue, a live L3 venue, and a third one in `state` ("excluded": a live perpetual
    kept out of the spot merge)."""
    fault = Fault("checksum", "expected 123, got 456", NOW - 2) if state == "resyncing" else None
    if state == "excluded":
        third = make_view("perp", levels(("60010", "600100")), levels(("60011", "600110")),
                          instrument="perpetual", convert=inverse())
    else:
        empty = state in ("resyncing", "connecting")
        third = make_view("third", () if empty else BIDS, () if empty else ASKS, state=state, fault=fault)
    return [make_view("spot", BIDS, ASKS), make_view("l3", orders=L3), third]


STATES = ("live", "stale", "resyncing", "excluded", "connecting")
TERMS = {"spot": VenueTerms(D("0.004"), "config", D("0.0001")), "l3": VenueTerms(D("0.001"), "--fee")}


def errors(doc) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message[:200]}" for e in VALIDATOR.iter_errors(doc)]


def roundtrip(doc):
    return json.loads(json.dumps(doc))


def answer_doc(state: str, **kw):
    answer = build_answer(Action.SELL, [D("1"), OrderSize(D("50000"), True), D("100")], views(state), "sim",
                          now=NOW, terms=TERMS, limit_bps=D("5"), with_orders=True, **kw)
    return roundtrip(answer_json(answer, exit_code(answer)))


def test_the_schema_itself_is_a_valid_json_schema():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


@pytest.mark.parametrize("state", STATES)
def test_an_answer_validates_in_every_venue_state(state):
    doc = answer_doc(state)
    assert errors(doc) == []
    third = doc["venues"][2]
    assert third["live"] is (state in ("live", "excluded")) and third["in_merge"] is (state == "live")


@pytest.mark.parametrize("state", STATES)
def test_depth_and_queue_documents_validate_in_every_venue_state(state):
    report = build_depth(views(state), [D("0.1"), D("0.5"), D("1")], "sim", now=NOW)
    assert errors(roundtrip(depth_json(report, 0))) == []
    view = views(state)[1]
    position = queue_position(view, Action.BUY, D("60000.2"), D("0.1"))
    doc = queue_json(venue_status(view, NOW, VenueTerms()), view.symbol, position,
                     estimate(position, D("0.05"), 10.0, "test"), "sim", NOW, 0)
    assert errors(roundtrip(doc)) == []


def key_paths(value, prefix=""):
    """Every key path of a document, list items folded into `[]` (so states compare by shape)."""
    if isinstance(value, dict):
        paths = set()
        for key, item in value.items():
            paths.add(prefix + "." + key)
            if key not in ("perpetual_parts",):
                paths |= key_paths(item, prefix + "." + key)
        return paths
    if isinstance(value, list):
        return set().union(*(key_paths(item, prefix + "[]") for item in value)) if value else set()
    return set()


def test_every_venue_object_has_the_same_keys_in_every_state():
    shapes = {}
    for state in STATES:
        doc = answer_doc(state)
        status = key_paths(doc["venues"][2])
        walk = {path for path in key_paths(doc["orders"][0]["venues"][2]) if not path.startswith(".levels")}
        shapes[state] = (status - {p for p in status if p.startswith(".last_fault.")}, walk - {
            p for p in walk if p.startswith(".perpetual.")})
    assert len({(frozenset(a), frozenset(b)) for a, b in shapes.values()}) == 1


NUMBER = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")


def strings(value):
    if isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)
    elif isinstance(value, str):
        yield value


def test_no_number_is_ever_written_with_an_exponent():
    # tiny and round sizes are where Decimal's own str() writes exponents (1E-8, 0E-8, 1E+1)
    tiny = make_view("tiny", levels(("60000", "0.00000001"), ("59999", "10")), ASKS)
    answer = build_answer(Action.SELL, [D("0.00000001"), D("1E+1")], [tiny], "sim", now=NOW)
    doc = answer_json(answer, exit_code(answer))
    assert errors(roundtrip(doc)) == []
    numeric = [s for s in strings(doc) if s[:1].isdigit() or s[:1] == "-"]
    assert numeric and all(NUMBER.match(s) for s in numeric if not s.startswith("20")), numeric
    assert "E" not in json.dumps(doc).replace("BTC", "").replace("USD", "").replace("EXCLUDED", "")
    walk = doc["orders"][0]["venues"][0]
    assert (walk["filled"], walk["shortfall"], doc["orders"][0]["requested"]) == ("0.00000001", "0.00000000", "0.00000001")


def test_scales_are_fixed_prices_at_the_venue_tick_and_time_in_utc():
    doc = answer_doc("live")
    spot = doc["venues"][0]
    assert spot["price_decimals"] == 2 and spot["best_bid"] == "60000.10" and spot["mid"] == "60000.20"
    walk = doc["orders"][0]["venues"][0]
    # sell 1: 0.5 @ 60000.1 + 0.5 @ 59999.5 = 59999.8 gross; fee 0.4 % of 59999.8 = 239.9992
    assert (walk["gross_vwap"], walk["fee"], walk["net"]) == ("59999.80", "239.99920000", "59759.80080000")
    assert walk["slippage_bps"]["vs_best"] == "0.05" and walk["cost_bps"] == "40.07"
    assert doc["at"] == "2026-11-30T00:53:20.000Z" and doc["at_ms"] == 1_796_000_000_000
    assert doc["venues"][0]["fee"] == "0.00400000" and doc["venues"][1]["fee_source"] == "--fee"


def test_orders_are_listed_only_for_order_level_books():
    doc = answer_doc("live")
    walks = {w["venue"]: w for w in doc["orders"][0]["venues"]}
    assert walks["spot"]["levels"][0]["orders"] is None
    assert [o["id"] for o in walks["l3"]["levels"][0]["orders"]] == ["a1", "a2"]
