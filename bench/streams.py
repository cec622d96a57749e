"""The inputs of the ingest benchmarks, one `Stream` per venue: what the venue sends on one connection.

Recorded captures where they exist (Kraken v2 converted, Gemini v2, Coinbase Advanced Trade converted:
`../shared/captures/README.md`); the simulators' own engines where none exists (KuMEX level 2 and
level 3, Bitstamp live_orders), seeded, so every run replays the same frames. Each stream carries
everything its processor needs to take it as a live connection would: the settings, the symbols on the
connection, the REST answers (tokens, snapshots) and the handshake frames that are not book data.
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable

from bench.common import CAPTURES
from data_manager.feed import FeedSettings, HttpRequest
from data_manager.registry import venue
from data_manager.symbols import Symbol
from data_manager.venues.gemini import QUOTES as GEMINI_QUOTES

KRAKEN_V2 = CAPTURES / "kraken_v2_book_depth1000_2021-04-17.ndjson"
GEMINI_V2 = CAPTURES / "gemini_v2_l2_2021-06-24.jsonl"
COINBASE_AT = CAPTURES / "coinbase_advanced_level2_2021-04-17.ndjson"
KRAKEN_DEPTH = 1000
KUMEX_NATIVE = "XBTUSDM"
KUMEX_TICK = Decimal("0.1")        # XBTUSDM's tickSize in 2026 (what the simulator serves)
BITSTAMP_NATIVE = "btcusd"
MID = Decimal(60_000)

Answer = Callable[[HttpRequest, str], tuple[int, str]]


@dataclass
class Stream:
    """One connection's worth of frames for one venue, ready for `bench.shell.BenchShell`."""

    venue: str
    settings: FeedSettings
    symbols: list[tuple[Symbol, str]]
    frames: list[str]                     # every received frame, in order (timed)
    steady_from: int                      # index of the first frame after the last whole book
    http: Answer | None = None            # REST answers (token, snapshots), asked for while timed
    handshake: Callable[[Any, list[str]], list[str]] | None = None
    """(processor, texts it sent so far) -> frames the venue answers before any data (welcome, acks):
    fed untimed, after connecting."""
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)   # what a ceiling or a check needs (snapshots, engine)

    @property
    def steady(self) -> list[str]:
        return self.frames[self.steady_from:]


def _json_value(text: str, key: str) -> str | None:
    """The first `"key":"value"` of a frame's text, without parsing it (setting up, not timed)."""
    at = text.find(f'"{key}":"')
    if at < 0:
        return None
    start = at + len(key) + 4
    return text[start:text.index('"', start)]


def _after_last(frames: list[str], is_whole_book: Callable[[str], bool]) -> int:
    last = -1
    for i, text in enumerate(frames):
        if is_whole_book(text):
            last = i
    return last + 1


def kraken() -> Stream:
    """Kraken v2 book, depth 1000, 10 pairs on one connection (the v1 recording converted to v2)."""
    frames = KRAKEN_V2.read_text().splitlines()
    natives = sorted({s for t in frames if t.startswith('{"channel":"book"') and (s := _json_value(t, "symbol"))})
    symbols = [(Symbol(*native.split("/")), native) for native in natives]
    settings = venue("kraken").settings(depth=KRAKEN_DEPTH)
    steady = _after_last(frames, lambda t: t.startswith('{"channel":"book","type":"snapshot"'))
    return Stream("kraken", settings, symbols, frames, steady,
                  notes=f"{KRAKEN_V2.name}: {len(natives)} pairs, depth {KRAKEN_DEPTH}")


def gemini() -> Stream:
    """Gemini market data v2 `l2`, 10 symbols on one connection (recorded 2021)."""
    records = [json.loads(line) for line in GEMINI_V2.read_text().splitlines()]
    frames = [r["data"] for r in records if r["dir"] == "in"]
    subscribe = next(json.loads(r["data"]) for r in records if r["dir"] == "out")
    wire = subscribe["subscriptions"][0]["symbols"]
    quotes = sorted(GEMINI_QUOTES, key=len, reverse=True)
    symbols = []
    for name in wire:
        quote = next(q for q in quotes if name.endswith(q) and len(name) > len(q))
        symbols.append((Symbol(name[:-len(quote)], quote), name.lower()))
    settings = venue("gemini").settings(protocol="v2")
    seen: set[str] = set()

    def whole_book(text: str) -> bool:  # the first l2_updates of a symbol is its whole book
        if not text.startswith('{"type":"l2_updates"'):
            return False
        symbol = _json_value(text, "symbol")
        first = symbol not in seen
        seen.add(symbol)
        return first

    return Stream("gemini", settings, symbols, frames, _after_last(frames, whole_book),
                  notes=f"{GEMINI_V2.name}: {len(symbols)} symbols (protocol v2)")


def coinbase() -> Stream:
    """Coinbase Advanced Trade level2 + heartbeats, 10 products on one connection (converted 2021)."""
    frames = COINBASE_AT.read_text().splitlines()
    products = sorted({s for t in frames if (s := _json_value(t, "product_id"))})
    symbols = [(Symbol.parse(p), p) for p in products]
    return Stream("coinbase", venue("coinbase").settings(), symbols, frames,
                  _after_last(frames, lambda t: '"type":"snapshot"' in t),
                  notes=f"{COINBASE_AT.name}: {len(products)} products")


# --- streams from the simulators' engines (no recording exists) -----------------------------------
def _kumex_token() -> str:
    return json.dumps({"code": "200000", "data": {"token": "bench", "instanceServers": [
        {"endpoint": "wss://bench.invalid/", "protocol": "websocket", "encrypt": True, "pingInterval": 18000,
         "pingTimeout": 10000}]}})


def _kumex_handshake(processor: Any, sent: list[str]) -> list[str]:
    """The welcome (with our connectId) while it is awaited, else an ack for each subscribe just sent."""
    if processor.link.value == "welcome":
        return [json.dumps({"id": processor.connect_id, "type": "welcome"})]
    return [json.dumps({"id": json.loads(t)["id"], "type": "ack"}) for t in sent if '"subscribe"' in t]


def kumex(level: int, events: int = 60_000, seed: int = 1) -> Stream:
    """KuMEX XBTUSDM, level 2 (`level=2`: level3 off) or level 3 (`level=3`), from the simulator's
    matching engine (`sim/l3_engine.py`, 0.1 USD tick, 300+ levels a side, several orders at most)."""
    from data_manager.sim.kumex import level2_frame, venue_json
    from data_manager.sim.l3_engine import L3Engine

    engine = L3Engine(random.Random(seed), MID, levels=300, tick=KUMEX_TICK)
    level2_body = venue_json({"code": "200000", "data": {
        "sequence": engine.level2_sequence, "symbol": KUMEX_NATIVE,
        "bids": [[p, int(s)] for p, s in engine.levels("bid")], "asks": [[p, int(s)] for p, s in engine.levels("ask")],
        "ts": 1_618_617_600_000_000_000}})
    level3_body = json.dumps({"code": "200000", "data": engine.snapshot()})
    level2: list[str] = []
    level3: list[str] = []
    while len(level3 if level == 3 else level2) < events:
        step = engine.step()
        level3.extend(map(engine.render, step.events))
        level2.extend(level2_frame(KUMEX_NATIVE, change) for change in step.changes)
    answers = {"token": _kumex_token(), "level2-snapshot": level2_body, "level3-snapshot": level3_body}
    settings = venue("kumex").settings(level3=level == 3)
    frames = level2 if level == 2 else level3
    return Stream("kumex", settings, [(Symbol("BTC", "USD"), KUMEX_NATIVE)], frames, 1,
                  http=lambda request, tag: (200, answers[tag]), handshake=_kumex_handshake,
                  notes=f"sim engine, {len(frames):,} level-{level} frames, seed {seed}",
                  extra={"engine": engine, "level2_body": level2_body, "level3_body": level3_body, "level": level})


def bitstamp(events: int = 60_000, seed: int = 1) -> Stream:
    """Bitstamp live_orders_btcusd from the simulator's order flow (`sim/bitstamp.py`), the group=2
    snapshot taken after the first step (as the venue answers a request made once events flow)."""
    from data_manager.sim.bitstamp import OrderFlow

    rng = random.Random(seed)
    ids = iter(range(2_050_000_000_000_000, 10 ** 17, 7_919))
    now_us = 1_786_269_871_000_000
    flow = OrderFlow(rng, BITSTAMP_NATIVE, 1, MID, 300, ids.__next__, now_us)
    frames: list[str] = []
    snapshot = ""
    while len(frames) < events:
        now_us += rng.randint(2_000, 20_000)
        frames.extend(flow.step(MID, now_us))
        if not snapshot:
            snapshot = json.dumps(flow.snapshot(2))
            first_step = len(frames)
    settings = venue("bitstamp").settings()
    return Stream("bitstamp", settings, [(Symbol("BTC", "USD"), BITSTAMP_NATIVE)], frames, first_step,
                  http=lambda request, tag: (200, snapshot),
                  notes=f"sim order flow, {len(frames):,} live_orders frames, seed {seed}",
                  extra={"flow": flow, "snapshot": snapshot})
