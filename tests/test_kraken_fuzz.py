"""Kraken processor under hostile input: ~20,000 mutated capture frames (huge, tiny, non-finite and
malformed numbers, dropped keys, wrong types, cut and nested text). Nothing may escape the processor,
no book may hold an impossible level, and no frame may take more than a few milliseconds."""
from __future__ import annotations

from pathlib import Path

from data_manager.symbols import Symbol
from data_manager.venues.kraken import KrakenProcessor, KrakenSettings
from tests.driver import Driver, FakeClock
from tests.fuzz import run_fuzz

CAPTURES = Path(__file__).resolve().parents[2] / "shared" / "captures"
BTC_USD_HEAD = CAPTURES / "kraken_v2_book_BTC-USD_d10_2026-08-16_head.ndjson"

CONTROL_FRAMES = [
    '{"channel":"status","type":"update","data":[{"version":"2.0.0","system":"online","api_version":"v2",'
    '"connection_id":17843232920108168701}]}',
    '{"channel":"instrument","type":"snapshot","data":{"assets":[],"pairs":[{"symbol":"BTC/USD","base":"BTC",'
    '"quote":"USD","status":"online","price_precision":1,"qty_precision":8,"price_increment":0.1,'
    '"qty_increment":0.00000001}]}}',
    '{"method":"subscribe","req_id":1,"result":{"channel":"book","depth":10,"snapshot":true,"symbol":"BTC/USD"},'
    '"success":true,"time_in":"2026-08-16T23:37:04.316445Z","time_out":"2026-08-16T23:37:04.316512Z"}',
    '{"method":"pong","req_id":101,"time_in":"2026-08-16T23:37:04.316445Z","time_out":"2026-08-16T23:37:04.316512Z"}',
    '{"channel":"heartbeat"}',
]


def make_driver() -> Driver:
    symbols = [(Symbol.parse("BTC-USD"), "BTC/USD"), (Symbol.parse("ETH-USD"), "ETH/USD")]
    d = Driver(KrakenProcessor(KrakenSettings(depth=10), symbols, FakeClock()))
    d.connect()
    return d


def capture_frames() -> list[str]:
    """The capture with its snapshot again before every update: a mutated update then usually meets a
    live book, so hostile numbers reach the apply and checksum path, not only "update before snapshot"."""
    snapshot, *updates = BTC_USD_HEAD.read_text().splitlines()
    return CONTROL_FRAMES + [frame for update in updates for frame in (snapshot, update)]


def test_fuzzed_capture_frames_never_escape_and_never_corrupt_a_book():
    frames = capture_frames()
    result = run_fuzz(make_driver, frames, count=20_000)
    assert result["frames"] == 20_000
    assert result["reconnects"] > 100  # the mutations really were refused as faults, not ignored
