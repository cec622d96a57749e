"""Reading venue text, once for every venue: one JSON decoder and one checked number and level parser.

Hostile input is refused here, before it becomes a Decimal or reaches a book:
- every number that becomes a price or a size is checked for shape and magnitude (at most
  `MAX_NUMBER_CHARS` characters, an exponent within +-`MAX_EXPONENT`), so `1e999999999` can never make a
  later quantize or format allocate gigabytes; NaN and Infinity are refused by the decoder (json would
  turn them into binary floats);
- nesting deeper than Python's recursion limit is a `MessageError`, not a RecursionError;
- a price must be finite and 0 < price < `MAX_PRICE`; a size finite and 0 <= size < `MAX_SIZE`, with at
  most `MAX_DECIMALS` decimals (so a size of 1e-30 never leaves a level that sums to nothing).
Every refusal is a `MessageError` (unreadable) or a `BadLevel` (readable but impossible), with an
excerpt of the frame. Nothing here catches a broad exception class: a bug of ours stays a bug.

Two decoders, one answer: with the optional extra installed (`requirements-fast.txt`: msgspec) `decode`
tries msgspec first (1.1-1.3x faster per frame), built with `float_hook=Decimal` so every non-integer
reaches `Decimal` as its own text, never via a binary float, and integers stay `int`. It is strict JSON:
NaN and Infinity are not JSON to it, and nesting deeper than Python's recursion limit raises
RecursionError, as in the stdlib. Whatever msgspec refuses (those, a lone surrogate, a BOM, bytes that
are not UTF-8...) goes to the stdlib decoder, which decides and words the refusal, so the two paths
answer every input alike: msgspec only ever speeds up what the stdlib accepts (tests/test_parse.py).
"""
from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Any, Callable, Mapping

from data_manager.errors import BadLevel, MessageError

MAX_NUMBER_CHARS = 40
MAX_EXPONENT = 30
MAX_DECIMALS = 18
MAX_PRICE = Decimal("1E12")
MAX_SIZE = Decimal("1E12")
_ZERO = Decimal(0)
_MISSING = object()


def _constant_hook(name: str) -> Any:
    raise ValueError(f"non-finite number {name}")


DECODER = json.JSONDecoder(parse_float=Decimal, parse_constant=_constant_hook)
"""Built once (json.loads with hooks builds a decoder per call). Non-integers become exact Decimals
(the C type itself is the hook: no Python call per number). A Decimal of any exponent is cheap to make;
only arithmetic on it is not, so magnitudes are checked where numbers become levels (`price`, `size`).
Integers are bounded by Python's own limit on integer digits (4300)."""


def _msgspec_decoder() -> tuple[Callable[[Any], Any] | None, tuple[type[BaseException], ...]]:
    """msgspec's decode with Decimal for every non-integer, and what it raises on input it refuses;
    (None, ()) when the optional extra is not installed."""
    try:
        import msgspec
    except ImportError:
        return None, ()
    refusals = (msgspec.DecodeError, RecursionError, ArithmeticError, UnicodeEncodeError)
    # DecodeError: malformed or not UTF-8 (ValidationError, an int beyond 4300 digits, is a DecodeError);
    # ArithmeticError: Decimal refused an exponent; UnicodeEncodeError: a str holding a lone surrogate
    return msgspec.json.Decoder(float_hook=Decimal).decode, refusals


FAST_DECODE, _FAST_REFUSALS = _msgspec_decoder()
"""msgspec's decoder (built once) if installed, else None; `use_decoder` switches it for benchmarks."""
_fast = FAST_DECODE


def use_decoder(name: str) -> str:
    """Select "msgspec" (the default when installed) or "stdlib" for every later `decode`; returns the
    name in use before. For benchmarks and tests that compare the two: production never calls it."""
    global _fast
    previous = decoder_name()
    if name == "stdlib":
        _fast = None
    elif name == "msgspec" and FAST_DECODE is not None:
        _fast = FAST_DECODE
    else:
        raise ValueError(f"decoder {name!r} is not available (msgspec installed: {FAST_DECODE is not None})")
    return previous


def decoder_name() -> str:
    return "stdlib" if _fast is None else "msgspec"


def decode(venue: str, text: str | bytes) -> Any:
    """One frame as JSON, or a `MessageError`.

    msgspec first when installed (see the module docstring); anything it refuses, and every frame
    without it, goes to the stdlib. There the common case, a str that is exactly one JSON value, goes
    straight to `raw_decode`, skipping the two whitespace scans `decode` adds; anything else goes
    through the full decoder, which words its errors as `json.loads` does."""
    fast = _fast
    if fast is not None:
        try:
            return fast(text)
        except _FAST_REFUSALS:
            pass  # the stdlib decides (it accepts a few texts msgspec does not) and words the refusal
    return decode_stdlib(venue, text)


def decode_stdlib(venue: str, text: str | bytes) -> Any:
    """`decode` with the standard library's decoder only."""
    try:
        if type(text) is str:
            try:
                value, end = DECODER.raw_decode(text)
                if end == len(text):
                    return value
            except (ValueError, RecursionError, ArithmeticError):
                pass
            return DECODER.decode(text)
        return DECODER.decode(_bytes_to_text(text))
    except (ValueError, RecursionError, ArithmeticError) as exc:
        # json.JSONDecodeError is a ValueError; a number whose exponent does not fit makes Decimal raise
        # InvalidOperation (an ArithmeticError) from inside the decoder
        raise MessageError(venue, f"not JSON ({type(exc).__name__}: {exc})", text) from exc


def _bytes_to_text(data: Any) -> str:
    """Binary frames decoded as `json.loads` does (UTF-8, or UTF-16/32 detected from the first bytes)."""
    data = bytes(data)
    try:
        return data.decode(json.detect_encoding(data), "surrogatepass")
    except UnicodeDecodeError as exc:
        raise ValueError(f"undecodable bytes ({exc.reason})") from exc


def decode_object(venue: str, text: str | bytes) -> dict[str, Any]:
    message = decode(venue, text)
    if type(message) is not dict:
        raise MessageError(venue, "not a JSON object", text)
    return message


def require(venue: str, message: Mapping[str, Any], key: str, kind: type | tuple[type, ...],
            text: str | bytes) -> Any:
    """`message[key]` if present and of `kind`; a bool never passes for an int (JSON true is not 1)."""
    value = message.get(key, _MISSING) if type(message) is dict else _MISSING
    if value is _MISSING:
        raise MessageError(venue, f"missing {key!r}", text)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise MessageError(venue, f"{key!r} has the wrong type ({type(value).__name__})", text)
    return value


def integer(venue: str, value: Any, what: str, text: str | bytes) -> int:
    """Sequences and nanosecond times: exact JSON integers (or their decimal string)."""
    if type(value) is int:
        return value
    if type(value) is str and value.isascii() and value.isdigit() and len(value) <= MAX_NUMBER_CHARS:
        return int(value)
    raise MessageError(venue, f"{what} {value!r} is not an integer", text)


def number(venue: str, value: Any, what: str, text: str | bytes) -> Decimal:
    """A price or size as sent (a string like "62317.89", or a JSON number), as an exact, bounded Decimal."""
    if type(value) is str:
        if len(value) > MAX_NUMBER_CHARS:
            raise MessageError(venue, f"{what} of {len(value)} characters", text)
        try:
            result = Decimal(value)
        except InvalidOperation:
            raise MessageError(venue, f"{what} {value!r} is not a number", text) from None
    elif type(value) is Decimal:
        result = value
    elif type(value) is int:
        result = Decimal(value)
    else:
        raise MessageError(venue, f"{what} {value!r} is not a number", text)
    if not result.is_finite() or not -MAX_EXPONENT <= result.adjusted() <= MAX_EXPONENT:
        raise MessageError(venue, f"{what} {value!r} is not a finite number in range", text)
    return result


def price(venue: str, side: object, value: Any, text: str | bytes) -> Decimal:
    result = number(venue, value, "price", text)
    if not _ZERO < result < MAX_PRICE:
        raise BadLevel(venue, side, result, "-")
    return result


def size(venue: str, side: object, at_price: object, value: Any, text: str | bytes) -> Decimal:
    result = number(venue, value, "size", text)
    if not _ZERO <= result < MAX_SIZE or (result and result.as_tuple().exponent < -MAX_DECIMALS):
        raise BadLevel(venue, side, at_price, result)
    return result


def level(venue: str, side: object, price_value: Any, size_value: Any, text: str | bytes) -> tuple[Decimal, Decimal]:
    """A checked (price, size): the slow, fully worded path; hot loops try a fast path first and
    fall back to this for anything unusual."""
    p = price(venue, side, price_value, text)
    return p, size(venue, side, p, size_value, text)


def fast_level(price_text: Any, size_text: Any) -> tuple[Decimal, Decimal] | None:
    """The common case, both as short plain decimal strings in range: the level, else None (then
    `level()` decides, and words the refusal). No exponent notation, no sign, no NaN/Infinity."""
    if (type(price_text) is str and type(size_text) is str and len(price_text) <= 24 and len(size_text) <= 28
            and _PLAIN(price_text) and _PLAIN(size_text)):
        p, s = Decimal(price_text), Decimal(size_text)
        if p and p < MAX_PRICE and s < MAX_SIZE:
            return p, s
    return None


def _plain(text: str) -> bool:
    """Digits with at most one '.', at most MAX_DECIMALS after it: what venues write."""
    if not text.isascii():
        return False
    head, dot, tail = text.partition(".")
    return head.isdigit() and (not dot or (tail.isdigit() and len(tail) <= MAX_DECIMALS)) if head else False


_PLAIN = _plain


def checked(venue: str, side: object, p: Decimal, s: Decimal, text: str | bytes) -> tuple[Decimal, Decimal]:
    """A level already decoded as Decimals (venues that send JSON numbers): in range, or refused."""
    if (_ZERO < p < MAX_PRICE and p.adjusted() >= -MAX_EXPONENT and _ZERO <= s < MAX_SIZE
            and (not s or s.adjusted() >= -MAX_DECIMALS)):
        return p, s
    return level(venue, side, p, s, text)
