"""Reading KuCoin Futures (KuMEX) text: the bullet token, level-2 and level-3 messages, REST snapshots.

Pure functions from venue text to checked values; the processor (`kumex.py`) owns the state. Every
field is validated explicitly (`parse.require` / `integer` / `level`); anything the venue got wrong is a
`MessageError` or a `BadLevel`, and a bug of ours stays a bug (nothing here catches a broad exception).

Sizes are contracts. KuMEX contracts are whole (`lotSize` 1), so a non-zero size below `MIN_CONTRACTS`
(1e-8) can only be garbage: it is refused as a `BadLevel`, never kept as a level that sums to nothing.
A size of 0 deletes (level 2) or takes the order off the book (level 3 `update` / `match`), as documented.

Sources: venues.md section 4 (FD = Kucoin/kucoin-futures-api-docs @ffe09b4, the last text with level 3),
venues-2026.md section 2 (K-USDK = Kucoin/kucoin-universal-sdk @78c90c77, K-PROBE = a 2026-09-22 live probe).
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import Any

from data_manager.book import L3Book, Level, Side
from data_manager.errors import BadLevel, MessageError, SnapshotError
from data_manager.parse import MAX_SIZE, decode_object, fast_level, integer, level, require, size as checked_size

VENUE = "kumex"
SUCCESS = "200000"
"""KuCoin's `code` of a successful REST answer (errors often come with HTTP 200: K-PROBE rest.md 6)."""
RATE_LIMITED = "429000"
"""The `code` KuCoin puts in a 429 answer's body (K-PROBE rest.md 6)."""
SIDES = {"buy": Side.BID, "sell": Side.ASK}
MIN_CONTRACTS = Decimal("1E-8")
MAX_ORDER_ID = 64
MAX_CHANGE_CHARS = 96
BASE_QUANTUM = Decimal("1E-8")
_CONVERT = Context(prec=60)
"""Contracts -> base units with room to spare: 1e12 contracts at a price of 1e-18 still quantizes."""


# --- the bullet token ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Token:
    """What `POST /api/v1/bullet-public` gives for one connection."""

    token: str
    endpoint: str | None         # None: the answer named no server (the configured url is the fallback)
    ping_interval: float | None  # seconds, None when absent or implausible
    ping_timeout: float | None


def read_token(data: dict[str, Any], text: str) -> Token:
    """`data` of the answer -> the token. K-USDK x-response-example (2025-11), the same on the wire 2026-09-22 (K-PROBE 1):
    {"code":"200000","data":{"token":"2neAiuYvAU61ZDXA...","instanceServers":[{"endpoint":
     "wss://ws-api-futures.kucoin.com/","encrypt":true,"protocol":"websocket","pingInterval":18000,
     "pingTimeout":10000}]}}
    """
    token = require(VENUE, data, "token", str, text)
    servers = require(VENUE, data, "instanceServers", list, text)
    if not token or len(token) > 4096:
        raise MessageError(VENUE, "bullet-public token is empty or oversized", text)
    if not servers:
        return Token(token, None, None, None)
    server = servers[0]
    if type(server) is not dict:
        raise MessageError(VENUE, "instanceServers[0] is not an object", text)
    endpoint = require(VENUE, server, "endpoint", str, text)
    if not endpoint.startswith(("wss://", "ws://")):
        raise MessageError(VENUE, f"endpoint {endpoint[:80]!r} is not a WebSocket URL", text)
    return Token(token, endpoint, _seconds(server.get("pingInterval")), _seconds(server.get("pingTimeout")))


def _seconds(milliseconds: Any) -> float | None:
    """A documented millisecond figure as seconds; None (the caller's default) when it is implausible."""
    if type(milliseconds) is int and 1_000 <= milliseconds <= 600_000:
        return milliseconds / 1000
    return None


@dataclass(frozen=True)
class RestRefusal:
    """A REST answer that is JSON but not a success: its `code` and `msg`, for the caller's policy."""

    code: str
    message: str

    @property
    def rate_limited(self) -> bool:
        return self.code == RATE_LIMITED


def rest_answer(text: str, what: str) -> dict[str, Any] | RestRefusal:
    """`data` of a successful answer, or the refusal (`{"msg":"Invalid symbol.","code":"200003"}`)."""
    answer = decode_object(VENUE, text)
    code = answer.get("code")
    if code != SUCCESS:
        message = answer.get("msg")
        return RestRefusal(str(code)[:40], message[:120] if type(message) is str else "")
    data = answer.get("data")
    if type(data) is not dict:
        raise MessageError(VENUE, f"{what} answer without a data object", text)
    return data




# --- sizes ---------------------------------------------------------------------------------------
def contracts(side: Side | str, price: Decimal, size: Decimal) -> Decimal:
    """`size` if it is 0 or a plausible number of contracts; a `BadLevel` otherwise."""
    if size and not MIN_CONTRACTS <= size < MAX_SIZE:
        raise BadLevel(VENUE, side, price, size)
    return size


def in_base_units(contract_value: Decimal, level_: Level) -> Level:
    """(price, contracts) -> (price, base units): contracts x contract_value / price, 8 dp, half-even.
    Inverse XBTUSDM: 1 contract = 1 USD (K-USDK `multiplier` description; multiplier -1, isInverse)."""
    price, size = level_
    value = _CONVERT.divide(_CONVERT.multiply(size, contract_value), price)
    return price, value.quantize(BASE_QUANTUM, ROUND_HALF_EVEN, _CONVERT)


def order_id(value: Any, text: str) -> str:
    if type(value) is not str or not value or len(value) > MAX_ORDER_ID:
        raise MessageError(VENUE, f"order id {str(value)[:40]!r} is not a non-empty string", text)
    return value


def _side(value: Any, text: str) -> Side:
    side = SIDES.get(value) if type(value) is str else None
    if side is None:
        raise MessageError(VENUE, f"side {str(value)[:20]!r} is neither buy nor sell", text)
    return side


def _size(data: dict, key: str, what: str, oid: str, text: str) -> Decimal:
    """A size field of an order (a string such as "10"), checked: bounded, not negative, whole enough."""
    return contracts(what, oid, checked_size(VENUE, what, oid, data.get(key), text))


# --- level 2 -------------------------------------------------------------------------------------
def level2_change(data: dict, text: str) -> tuple[int, Side, Decimal, Decimal]:
    """(sequence, side, price, contracts) of one `/contractMarket/level2:{symbol}` message; size 0 deletes.

    K-PROBE 6, 2026-09-22: {"topic":"/contractMarket/level2:XBTUSDTM","type":"message","subject":"level2",
    "sn":1747821025244,"data":{"sequence":1747821025244,"change":"83614,buy,12","timestamp":1790113097240}}
    `change` is "price,side,size", the size absolute (venues.md 4 fact 9; the docs' prose is wrong)."""
    sequence = integer(VENUE, data.get("sequence"), "sequence", text)
    change = require(VENUE, data, "change", str, text)
    parts = change.split(",") if len(change) <= MAX_CHANGE_CHARS else ()
    if len(parts) != 3:
        raise MessageError(VENUE, "change is not \"price,side,size\"", text)
    price_text, side_text, size_text = parts
    side = _side(side_text, text)
    checked = fast_level(price_text, size_text) or level(VENUE, side, price_text, size_text, text)
    return sequence, side, checked[0], contracts(side, checked[0], checked[1])


def level2_snapshot(data: dict, native: str, text: str) -> tuple[int, list[Level], list[Level]]:
    """(sequence, bids, asks) of `GET /api/v1/level2/snapshot`; zero-size rows left out.

    K-USDK x-response-example: {"code":"200000","data":{"sequence":1697895963339,"symbol":"XBTUSDM",
    "bids":[[66968,2],[66964.8,25596]],"asks":[[66968.1,13501],[66968.7,2032]],"ts":1729168101216000000}}
    Prices and sizes are JSON numbers today (strings in older docs: both accepted)."""
    sequence = _snapshot_head(data, native, text)
    sides = []
    for key, side in (("bids", Side.BID), ("asks", Side.ASK)):
        levels = []
        for row in require(VENUE, data, key, list, text):
            if type(row) is not list or len(row) != 2:
                raise MessageError(VENUE, f"{key} row is not [price, size]", text)
            price, size = level(VENUE, side, row[0], row[1], text)
            if contracts(side, price, size):
                levels.append((price, size))
        sides.append(levels)
    return sequence, sides[0], sides[1]


def _snapshot_head(data: dict, native: str, text: str) -> int:
    symbol = data.get("symbol", native)
    if symbol != native:
        raise SnapshotError(VENUE, f"snapshot for {str(symbol)[:20]!r}, not {native}")
    return integer(VENUE, data.get("sequence"), "sequence", text)


# --- level 3 -------------------------------------------------------------------------------------
OPEN, UPDATE, MATCH, DONE, RECEIVED = range(5)
Event = tuple
"""One level3v2 message as a small tuple: (OPEN, id, side, price, size), (UPDATE, id, size),
(MATCH, maker id, filled, remain or None), (DONE, id), (RECEIVED, id, clientOid or None). Built once,
applied once; the order id is always second."""


def level3_event(subject: Any, data: dict, text: str) -> Event:
    """A `/contractMarket/level3v2:{symbol}` message's effect on the book (FD "Level 3 V2"); the whole
    message is checked before anything is applied. Real frame (2022-06-01, venues-2026 2.7):
    {"type":"message","topic":"/contractMarket/level3v2:XBTUSDM","subject":"open","data":{"symbol":"XBTUSDM",
    "sequence":1639148481406,"side":"buy","orderTime":1654073289118060857,"size":"3671",
    "orderId":"629727c9edde6b0001f422a7","price":"31570.0","ts":1654073289160921530}}"""
    if subject == "match":
        # FD: {"side":"buy" (taker),"price":"3634","size":"10" (filled),"makerOrderId":..., ...};
        # `remainSize` (the maker's size left) per kucoin-level3-sdk and the spot docs (UNVERIFIED here).
        maker = order_id(data.get("makerOrderId"), text)
        filled = _size(data, "size", "maker", maker, text)
        remain = data.get("remainSize")
        left = None if remain is None else _size(data, "remainSize", "maker", maker, text)
        if not filled:
            raise BadLevel(VENUE, "maker", maker, filled)
        return MATCH, maker, filled, left
    if subject == "done":
        return DONE, order_id(data.get("orderId"), text)  # FD: {"reason":"filled"|"canceled","orderId":...}
    if subject == "open":
        # FD: {"side":"buy","price":"3634.5","size":"10","orderId":...,"orderTime":...}
        side = _side(data.get("side"), text)
        price, size = level(VENUE, side, data.get("price"), data.get("size"), text)
        return OPEN, order_id(data.get("orderId"), text), side, price, contracts(side, price, size)
    if subject == "update":
        oid = order_id(data.get("orderId"), text)  # FD: {"orderId":...,"size":"100"}: the new size
        return UPDATE, oid, _size(data, "size", "order", oid, text)
    if subject == "received":
        # FD: {"orderId":...,"clientOid":"ad123ad"}: the order reached the engine, the book is the same
        client_oid = data.get("clientOid")
        return RECEIVED, order_id(data.get("orderId"), text), client_oid if type(client_oid) is str else None
    raise MessageError(VENUE, f"unknown level-3 subject {str(subject)[:30]!r}", text)


def apply_level3(book: L3Book, event: Event, text: str) -> None:
    """One event into the book. Unknown ids are no-ops (takers and rejected orders get a `done` and
    `match`es without ever resting: FD, fixture README). Size 0 takes an order off the book."""
    kind = event[0]
    if kind == MATCH:
        maker = book.order(event[1])
        if maker is not None:
            left = maker.size - event[2] if event[3] is None else event[3]
            if left < 0:
                raise BadLevel(VENUE, maker.side, maker.price, left)
            book.set_size(maker.order_id, contracts(maker.side, maker.price, left))
    elif kind == DONE:
        book.remove(event[1])
    elif kind == OPEN:
        _, oid, side, price, size = event
        if oid in book:
            raise MessageError(VENUE, f"open for order {oid}, already on the book", text)
        if size:  # an empty open (hidden order) is skipped, as kucoin-level3-sdk does
            book.add(oid, side, price, size)
    elif kind == UPDATE:
        book.set_size(event[1], event[2])


def level3_snapshot(data: dict, native: str, text: str) -> tuple[int, list[tuple[str, Side, Decimal, Decimal]]]:
    """(sequence, orders in load order) of `GET /api/v2/level3/snapshot`: best price first, then by the
    time the order entered the book (`ts`; CN docs, fixture README). The docs warn rows are unsorted.

    FD (trimmed): {"code":"200000","data":{"symbol":"XBTUSDM","sequence":100,"bids":[[5567483701231,
    "dfa123124","123.12312","10",5567483701231]],"asks":[],"ts":1590634672060667000}}
    Rows are [orderTime, orderId, price, size, ts] (docs), or [orderId, price, size, ts] as
    kucoin-level3-sdk reads them: which one futures sent is UNVERIFIED, so both are accepted."""
    sequence = _snapshot_head(data, native, text)
    orders: list[tuple[str, Side, Decimal, Decimal]] = []
    seen: set[str] = set()
    for key, side in (("bids", Side.BID), ("asks", Side.ASK)):
        rows = []
        for row in require(VENUE, data, key, list, text):
            if type(row) is not list or len(row) not in (4, 5):
                raise MessageError(VENUE, f"level-3 {key} row is not [orderTime, orderId, price, size, ts]", text)
            oid, price_value, size_value, entered = row[-4:]
            oid = order_id(oid, text)
            price, size = level(VENUE, side, price_value, size_value, text)
            if oid in seen:
                raise SnapshotError(VENUE, f"order {oid} twice in the level-3 snapshot")
            seen.add(oid)
            if contracts(side, price, size):
                rows.append((-price if side is Side.BID else price, integer(VENUE, entered, "ts", text), oid, price, size))
        rows.sort()
        orders += [(oid, side, price, size) for _, _, oid, price, size in rows]
    return sequence, orders
