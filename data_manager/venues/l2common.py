"""What the Coinbase and Gemini processors share: both speak "a list of (side, price, absolute size)
changes, size 0 deletes", and both must turn a wrong frame into a `FeedError`, never a traceback.

Each venue only says how its rows are shaped and how it names its sides ("bid"/"offer",
"buy"/"sell"); reading the numbers, validating them and handing them to the book is written once, here.
A frame is parsed and validated completely before the book is touched, so a frame that fails halfway
never leaves half of itself in the book.
"""
from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Any, Iterable, Mapping, Sequence

from data_manager.book import L2Book, Level, Side
from data_manager.errors import BadLevel, MessageError

Change = tuple[Side, Decimal, Decimal]
"""(side, price, new absolute size); size 0 deletes the level."""

_MISSING = object()
_ZERO = Decimal(0)
_INFINITY = Decimal("Infinity")
_BID = Side.BID


def _reject_constant(name: str) -> Any:
    """json accepts NaN/Infinity by default and would turn them into binary floats: refuse them."""
    raise ValueError(f"non-finite number {name}")


_DECODER = json.JSONDecoder(parse_float=Decimal, parse_constant=_reject_constant)
"""Built once: `json.loads(text, parse_float=...)` builds a new decoder for every frame."""


def decode_json(venue: str, decoder: json.JSONDecoder, text: str | bytes) -> Any:
    """`decoder.decode(text)` as `json.loads` would, or a `MessageError`.

    The common case, a str that is exactly one JSON value, goes straight to `raw_decode`, skipping the
    two whitespace regex scans `decode` adds; anything else (surrounding whitespace, bytes, an error)
    goes through the full decoder, which accepts and words errors exactly as `json.loads` does."""
    if type(text) is str:
        try:
            value, end = decoder.raw_decode(text)
            if end == len(text):
                return value
        except (ValueError, RecursionError):
            pass
    try:
        return decoder.decode(text if type(text) is str else _bytes_to_text(text))
    except (ValueError, TypeError, RecursionError) as exc:
        raise MessageError(venue, f"not JSON ({exc})", text) from exc


def _bytes_to_text(data: Any) -> str:
    """Binary frames decoded as `json.loads` does (UTF-8, or UTF-16/32 detected from the first bytes)."""
    data = bytes(data)
    return data.decode(json.detect_encoding(data), "surrogatepass")


def load_frame(venue: str, text: str | bytes) -> dict[str, Any]:
    """One frame as a JSON object, with every non-integer number as an exact `Decimal`."""
    message = decode_json(venue, _DECODER, text)
    if type(message) is not dict:
        raise MessageError(venue, "not a JSON object", text)
    return message


def require(venue: str, message: Mapping[str, Any], key: str, kind: type | tuple[type, ...],
            text: str | bytes) -> Any:
    """`message[key]` if present and of `kind`; a bool never passes for an int (JSON true is not 1)."""
    value = message.get(key, _MISSING)
    if value is _MISSING:
        raise MessageError(venue, f"missing {key!r}", text)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise MessageError(venue, f"{key!r} has the wrong type ({type(value).__name__})", text)
    return value


def to_decimal(venue: str, value: Any, what: str, text: str | bytes) -> Decimal:
    """A price or size as sent (a string like "62317.89", or a JSON number), as an exact Decimal."""
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
        raise MessageError(venue, f"{what} {value!r} is not a number", text)
    try:
        number = Decimal(value)
    except InvalidOperation as exc:
        raise MessageError(venue, f"{what} {value!r} is not a number", text) from exc
    if not number.is_finite():
        raise MessageError(venue, f"{what} {value!r} is not finite", text)
    return number


def parse_change(venue: str, sides: Mapping[str, Side], side: Any, price: Any, size: Any,
                 text: str | bytes) -> Change:
    """Validate one level change. An unknown side is a malformed frame; a non-positive price or a
    negative size is a bad level (the venue said something impossible, not something unreadable)."""
    if not isinstance(side, str) or side not in sides:
        raise MessageError(venue, f"unknown side {side!r}", text)
    book_side = sides[side]
    price_value = to_decimal(venue, price, "price", text)
    size_value = to_decimal(venue, size, "size", text)
    if price_value <= 0 or size_value < 0:
        raise BadLevel(venue, book_side.value, price_value, size_value)
    return book_side, price_value, size_value


class ChangeSet:
    """One frame's level changes, validated and split by side, before the book sees any of them.

    A whole book arrives as rows, so each row's documented form (a known side name, price and size as
    JSON strings of finite numbers, price > 0, size >= 0) takes one straight branch; anything else goes
    through `parse_change`, which accepts what it accepted before and words the error for the rest. Within a side the
    order sent is kept (one frame may touch a price twice: the last one wins); the two sides never share
    a level, so applying all bids, then all asks, is the same as applying the frame in order.
    """

    __slots__ = ("venue", "sides", "text", "bids", "asks")

    def __init__(self, venue: str, sides: Mapping[str, Side], text: str | bytes) -> None:
        self.venue = venue
        self.sides = sides
        self.text = text
        self.bids: list[Level] = []
        self.asks: list[Level] = []

    def add(self, side: Any, price: Any, size: Any) -> None:
        self.extend(((side, price, size),))

    def extend(self, changes: Iterable[Sequence[Any]]) -> None:
        """`add` each (side, price, size), in one loop; a row of another shape is a MessageError."""
        try:
            self._extend(changes)
        except (TypeError, ValueError) as exc:  # a row that does not unpack into three values
            raise MessageError(self.venue, f"a change is not [side, price, size] ({exc})", self.text) from exc

    def _extend(self, changes: Iterable[Sequence[Any]]) -> None:
        sides, bids, asks = self.sides, self.bids, self.asks
        for side, price, size in changes:
            book_side = sides.get(side) if type(side) is str else None
            if book_side is not None and type(price) is str and type(size) is str:
                try:
                    price_value, size_value = Decimal(price), Decimal(size)
                    if _ZERO < price_value < _INFINITY and _ZERO <= size_value < _INFINITY:
                        (bids if book_side is _BID else asks).append((price_value, size_value))
                        continue
                except InvalidOperation:  # not a number, or a NaN compared (Decimal refuses to order NaN)
                    pass
            book_side, price_value, size_value = parse_change(self.venue, sides, side, price, size, self.text)
            (bids if book_side is _BID else asks).append((price_value, size_value))

    def apply_to(self, book: L2Book) -> None:
        book.update(self.bids, self.asks)

    def replace(self, book: L2Book) -> None:
        """Load a whole book sent as a list of changes: the old book is discarded, never merged."""
        book.replace(self.bids, self.asks)
