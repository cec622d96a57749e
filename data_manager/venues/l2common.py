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
from typing import Any, Iterable, Mapping

from data_manager.book import L2Book, Side
from data_manager.errors import BadLevel, MessageError

Change = tuple[Side, Decimal, Decimal]
"""(side, price, new absolute size); size 0 deletes the level."""

_MISSING = object()


def _reject_constant(name: str) -> Any:
    """json accepts NaN/Infinity by default and would turn them into binary floats: refuse them."""
    raise ValueError(f"non-finite number {name}")


def load_frame(venue: str, text: str | bytes) -> dict[str, Any]:
    """One frame as a JSON object, with every non-integer number as an exact `Decimal`."""
    try:
        message = json.loads(text, parse_float=Decimal, parse_constant=_reject_constant)
    except (ValueError, TypeError, RecursionError) as exc:
        raise MessageError(venue, f"not JSON ({exc})", text) from exc
    if not isinstance(message, dict):
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


def apply_changes(book: L2Book, changes: Iterable[Change]) -> None:
    """Apply changes in the order sent: one frame may touch the same price twice, the last one wins."""
    for side, price, size in changes:
        book.apply(side, price, size)


def replace_book(book: L2Book, changes: Iterable[Change]) -> None:
    """Load a whole book sent as a list of changes: the old book is discarded, never merged."""
    bids: list[tuple[Decimal, Decimal]] = []
    asks: list[tuple[Decimal, Decimal]] = []
    for side, price, size in changes:
        (bids if side is Side.BID else asks).append((price, size))
    book.replace(bids, asks)
