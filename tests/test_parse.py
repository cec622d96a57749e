"""The one decoder: msgspec (optional extra) and the stdlib give the same answer to every input.

Every frame of every capture and fixture in shared/ is decoded both ways and compared exactly (types
included: a Decimal must keep its own text, "0.10" stays Decimal("0.10"); an int stays an int); so are
hostile texts, where both must refuse with a `MessageError` or both accept alike. The msgspec half is
skipped when msgspec is not installed; the stdlib half always runs.
"""
from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterator

import pytest

from data_manager import parse
from data_manager.errors import MessageError

SHARED = Path(__file__).resolve().parents[2] / "shared"
FRAME_FILES = sorted(p for folder in ("captures", "venues-2026", "venues-bitstamp")
                     for p in (SHARED / folder).rglob("*") if p.suffix in (".jsonl", ".ndjson", ".json", ".txt"))
needs_msgspec = pytest.mark.skipif(parse.FAST_DECODE is None, reason="msgspec (requirements-fast.txt) not installed")

HOSTILE = [
    "NaN", "[Infinity]", '{"p":-Infinity}', '{"p":NaN}',          # not JSON; json would make binary floats
    "[" * 5000 + "]" * 5000, '{"a":' * 3000 + "1" + "}" * 3000,      # nesting beyond the recursion limit
    "1e999999999", "1e-99999999999999999999", "1" * 4301, "-" + "9" * 4300,
    '"\\ud800"', '"\ud800"', '"a\x01b"', '"\\x"', "[1,]", "01", "1.", "{\"a\":1}x", "[1] [2]", " [1] ", "",
    '{"a":1,"a":2}', '"\\u00e9"', "\ufeff[1]", "[1]\x00", "-0", "-0.0", "0.1e1", "1E5", "18446744073709551616",
    b"\xef\xbb\xbf[1]", b'"\xff"', b'"\xed\xa0\x80"', "[1]".encode("utf-16"), b'{"p":"1.5"}', bytearray(b"[2.50]"),
]


def frames() -> Iterator[tuple[str, str]]:
    """(where, text) for every line of every frame file, and the `data` of every recorded frame."""
    for path in FRAME_FILES:
        text = path.read_text(errors="surrogateescape")
        lines = [text] if path.suffix == ".json" else text.splitlines()
        for number, line in enumerate(lines, 1):
            yield f"{path.name}:{number}", line
            if path.suffix == ".jsonl" and line.startswith('{"ts"'):
                data = json.loads(line).get("data")
                if type(data) is str:
                    yield f"{path.name}:{number} data", data


def exact(value: Any) -> Any:
    """A value with every number's type and text made visible, so that == compares them exactly."""
    if type(value) is dict:
        return ("dict", [(key, exact(item)) for key, item in value.items()])
    if type(value) is list:
        return ("list", [exact(item) for item in value])
    if type(value) is Decimal:
        return ("Decimal", str(value))
    return (type(value).__name__, value)


def outcome(decode, text: Any) -> Any:
    try:
        return exact(decode("test", text))
    except MessageError:
        return "refused"


def test_every_captured_frame_decodes_exactly_with_the_stdlib() -> None:
    count = 0
    for where, text in frames():
        result = outcome(parse.decode_stdlib, text)
        if result != "refused":
            count += 1
            assert "float" not in repr(result), where   # never a binary float
    assert count > 25_000


@needs_msgspec
def test_msgspec_and_stdlib_agree_on_every_captured_frame() -> None:
    previous = parse.use_decoder("msgspec")
    try:
        for where, text in frames():
            stdlib = outcome(parse.decode_stdlib, text)
            assert outcome(parse.decode, text) == stdlib, where
            assert outcome(_msgspec_only, text) in ("refused", stdlib), where
    finally:
        parse.use_decoder(previous)


def _msgspec_only(venue: str, text: Any) -> Any:
    """msgspec without the fallback: what it accepts must be what the stdlib gives."""
    try:
        return parse.FAST_DECODE(text)
    except parse._FAST_REFUSALS as exc:
        raise MessageError(venue, str(exc), "") from exc


@pytest.mark.parametrize("text", HOSTILE, ids=lambda t: repr(t)[:40])
def test_hostile_text_is_refused_or_read_alike(text: Any) -> None:
    stdlib = outcome(parse.decode_stdlib, text)
    assert "float" not in repr(stdlib)
    if parse.FAST_DECODE is not None:
        previous = parse.use_decoder("msgspec")
        try:
            assert outcome(parse.decode, text) == stdlib
        finally:
            parse.use_decoder(previous)


@pytest.mark.parametrize("name", ["stdlib", pytest.param("msgspec", marks=needs_msgspec)])
def test_numbers_reach_decimal_as_their_own_text(name: str) -> None:
    previous = parse.use_decoder(name)
    try:
        message = parse.decode_object("test", '{"p":62317.10,"q":0.1,"e":1E-8,"n":2600,"big":123456789012345678901234567890,'
                                              '"z":0,"s":"0.00000001"}')
        assert exact(message) == exact({"p": Decimal("62317.10"), "q": Decimal("0.1"), "e": Decimal("1E-8"), "n": 2600,
                                        "big": 123456789012345678901234567890, "z": 0, "s": "0.00000001"})
        for text in ("NaN", "[Infinity]", "[" * 100_000 + "]" * 100_000, "1e-99999999999999999999"):
            with pytest.raises(MessageError):
                parse.decode("test", text)
        with pytest.raises(MessageError):
            parse.decode_object("test", "[1]")
        assert parse.decoder_name() == name
    finally:
        parse.use_decoder(previous)


def test_the_stdlib_is_always_selectable_and_an_unknown_decoder_is_refused() -> None:
    previous = parse.use_decoder("stdlib")
    try:
        assert parse.decoder_name() == "stdlib"
        with pytest.raises(ValueError):
            parse.use_decoder("orjson")
    finally:
        parse.use_decoder(previous)
