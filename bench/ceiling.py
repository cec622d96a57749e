"""The pure-Python ceiling: the least a Python client can do with each venue's frames.

    python3 -m bench.ceiling [--venue NAME] [--rounds N] [--json]

`orjson.loads` per frame, then `SortedDict` books keyed by binary floats (`float(text)`), no validation
at all (`../shared/perf/README.md`, "orjson parse + SortedDict apply, float keys"). Each ceiling does
exactly the book work its venue's protocol needs and our processor does: route by symbol, snapshot
replaces, size 0 deletes, Kraken truncates to the depth (and, with `checksum`, formats the top 10 of
each side and compares the CRC32 on every book frame), KuMEX drops what its REST snapshot covers and
converts the best levels' contracts to BTC when reading them, the level-3 books keep orders by id and
a total per price. The best bid and ask of the changed book are read after every frame that changed
it, as in `bench.ingest`. Nothing is checked that a hostile venue could get wrong: this is a bound,
never a design (binary floats must never hold a price or a size in the product).

`bench.ingest` prints our processors' rates as a fraction of these (target: at least 0.7).
"""
from __future__ import annotations

import argparse
import time
import zlib
from itertools import islice
from typing import Callable

import orjson
from sortedcontainers import SortedDict

from bench import streams
from bench.common import emit, interleaved, machine, median, table
from bench.streams import Stream

loads = orjson.loads


def _bbo(bids: SortedDict, asks: SortedDict) -> None:
    if bids:
        bids.peekitem(-1)
    if asks:
        asks.peekitem(0)


def _bbo_in_base(bids: SortedDict, asks: SortedDict) -> None:
    """The best levels with contracts read as BTC (inverse, 1 USD a contract: contracts / price)."""
    if bids:
        price, size = bids.peekitem(-1)
        size / price
    if asks:
        price, size = asks.peekitem(0)
        size / price


def _set(side: SortedDict, price: float, size: float) -> None:
    if size:
        side[price] = size
    else:
        side.pop(price, None)


class KrakenCeiling:
    """v2 book frames: data[0] routed by symbol; prices and quantities are JSON numbers (floats here)."""

    def __init__(self, stream: Stream, checksum: bool = False) -> None:
        self.depth = stream.settings.depth
        self.checksum = checksum
        self.books: dict[str, tuple[SortedDict, SortedDict]] = {}
        self.formats: dict[str, tuple[str, str]] = {}
        self.mismatches = 0

    def play(self, frames: list[str]) -> None:
        books, depth, check = self.books, self.depth, self.checksum
        for text in frames:
            message = loads(text)
            channel = message.get("channel")
            if channel != "book":
                if channel == "instrument":
                    for pair in message["data"]["pairs"]:
                        self.formats[pair["symbol"]] = (f".{pair['price_precision']}f", f".{pair['qty_precision']}f")
                continue
            snapshot = message["type"] == "snapshot"
            for entry in message["data"]:
                symbol = entry["symbol"]
                if snapshot:
                    bids = SortedDict({float(r["price"]): float(r["qty"]) for r in entry["bids"] if r["qty"]})
                    asks = SortedDict({float(r["price"]): float(r["qty"]) for r in entry["asks"] if r["qty"]})
                    books[symbol] = bids, asks
                else:
                    bids, asks = books[symbol]
                    for row in entry["bids"]:
                        _set(bids, float(row["price"]), float(row["qty"]))
                    for row in entry["asks"]:
                        _set(asks, float(row["price"]), float(row["qty"]))
                while len(bids) > depth:
                    bids.popitem(0)
                while len(asks) > depth:
                    asks.popitem(-1)
                if check and self._crc(symbol, bids, asks) != entry["checksum"]:
                    self.mismatches += 1
                _bbo(bids, asks)

    def _crc(self, symbol: str, bids: SortedDict, asks: SortedDict) -> int:
        price, qty = self.formats[symbol]
        parts = [format(p, price).replace(".", "").lstrip("0") + format(asks[p], qty).replace(".", "").lstrip("0")
                 for p in islice(asks.keys(), 10)]
        parts += [format(p, price).replace(".", "").lstrip("0") + format(bids[p], qty).replace(".", "").lstrip("0")
                  for p in islice(reversed(bids.keys()), 10)]
        return zlib.crc32("".join(parts).encode())


class _Books:
    """(bids, asks) per symbol of the connection."""

    def __init__(self, stream: Stream) -> None:
        self.books: dict[str, tuple[SortedDict, SortedDict]] = {}


class GeminiCeiling(_Books):
    """v2 l2_updates: rows [side, price, quantity]; the first frame of a symbol is its whole book."""

    def play(self, frames: list[str]) -> None:
        books = self.books
        for text in frames:
            message = loads(text)
            if message.get("type") != "l2_updates":
                continue
            symbol = message["symbol"]
            book = books.get(symbol)
            if book is None or "trades" in message:
                book = books[symbol] = SortedDict(), SortedDict()
            bids, asks = book
            for side, price, size in message["changes"]:
                _set(bids if side == "buy" else asks, float(price), float(size))
            _bbo(bids, asks)


class CoinbaseCeiling(_Books):
    """Advanced Trade l2_data: events routed by product_id; a snapshot event replaces the book."""

    def play(self, frames: list[str]) -> None:
        books = self.books
        for message in map(loads, frames):
            events = message["events"] if message.get("channel") == "l2_data" else ()
            for event in events:
                product = event["product_id"]
                if event["type"] == "snapshot":
                    book = books[product] = SortedDict(), SortedDict()
                else:
                    book = books[product]
                bids, asks = book
                for row in event["updates"]:
                    _set(bids if row["side"] == "bid" else asks, float(row["price_level"]), float(row["new_quantity"]))
                _bbo(bids, asks)


class KumexLevel2Ceiling:
    """level2 `change` "price,side,size" after the REST snapshot (loaded at the first frame, as ours
    is); what the snapshot covers is dropped; best levels read in BTC (contracts / price)."""

    def __init__(self, stream: Stream) -> None:
        self.body = stream.extra["level2_body"]
        self.bids: SortedDict | None = None
        self.asks = SortedDict()
        self.last = 0

    def _load(self) -> None:
        data = loads(self.body)["data"]
        self.bids = SortedDict({float(p): float(s) for p, s in data["bids"]})
        self.asks = SortedDict({float(p): float(s) for p, s in data["asks"]})
        self.last = data["sequence"]

    def play(self, frames: list[str]) -> None:
        for message in map(loads, frames):
            if self.bids is None:
                self._load()
            data = message["data"]
            sequence = data["sequence"]
            if sequence > self.last:   # else covered by the snapshot
                self.last = sequence
                price, side, size = data["change"].split(",")
                _set(self.bids if side == "buy" else self.asks, float(price), float(size))
                _bbo_in_base(self.bids, self.asks)


class _L3Ceiling:
    """Orders by id ([side, price, size]) and a total per price per side; best levels read after every
    change (`convert`: KuMEX's contracts to BTC)."""

    convert = False

    def __init__(self) -> None:
        self.orders: dict[str, list] = {}
        self.bids = SortedDict()
        self.asks = SortedDict()

    def add(self, order_id: str, side: SortedDict, price: float, size: float) -> None:
        self.orders[order_id] = [side, price, size]
        side[price] = side.get(price, 0.0) + size

    def remove(self, order_id: str) -> None:
        order = self.orders.pop(order_id, None)
        if order is not None:
            side, price, size = order
            left = side[price] - size
            if left > 1e-12:
                side[price] = left
            else:
                del side[price]

    def resize(self, order_id: str, size: float) -> None:
        order = self.orders.get(order_id)
        if order is None:
            return
        if not size:
            self.remove(order_id)
            return
        side, price, old = order
        side[price] += size - old
        order[2] = size

    def bbo(self) -> None:
        (_bbo_in_base if self.convert else _bbo)(self.bids, self.asks)


class KumexLevel3Ceiling(_L3Ceiling):
    """level3v2 subjects open / match / update / done / received after the level-3 snapshot."""

    convert = True

    def __init__(self, stream: Stream) -> None:
        super().__init__()
        self.body = stream.extra["level3_body"]
        self.last: int | None = None

    def _load(self) -> None:
        data = loads(self.body)["data"]
        for key, side in (("bids", self.bids), ("asks", self.asks)):
            for row in sorted(data[key], key=lambda r: r[4]):
                self.add(row[1], side, float(row[2]), float(row[3]))
        self.last = data["sequence"]

    def play(self, frames: list[str]) -> None:
        for text in frames:
            message = loads(text)
            if self.last is None:
                self._load()
            data = message["data"]
            if data["sequence"] <= self.last:
                continue
            self.last = data["sequence"]
            subject = message["subject"]
            if subject == "open":
                self.add(data["orderId"], self.bids if data["side"] == "buy" else self.asks,
                         float(data["price"]), float(data["size"]))
            elif subject == "done":
                self.remove(data["orderId"])
            elif subject == "match":
                self.resize(data["makerOrderId"], float(data["remainSize"]))
            elif subject == "update":
                self.resize(data["orderId"], float(data["size"]))
            else:
                continue  # received: the book is the same
            self.bbo()


class BitstampCeiling(_L3Ceiling):
    """live_orders order_created / order_changed / order_deleted after the group=2 snapshot (loaded at
    the first frame); price-zero (market) orders never rest."""

    def __init__(self, stream: Stream) -> None:
        super().__init__()
        self.body = stream.extra["snapshot"]
        self.loaded = False

    def _load(self) -> None:
        data = loads(self.body)
        for key, side in (("bids", self.bids), ("asks", self.asks)):
            for price, amount, order_id in data[key]:
                self.add(order_id, side, float(price), float(amount))
        self.loaded = True

    def play(self, frames: list[str]) -> None:
        for text in frames:
            message = loads(text)
            if not self.loaded:
                self._load()
            data = message["data"]
            event, order_id = message["event"], data["id_str"]
            if event == "order_deleted":
                self.remove(order_id)
            else:
                price = float(data["price_str"])
                if not price:
                    continue
                order = self.orders.get(order_id)
                if order is not None and order[1] == price:
                    self.resize(order_id, float(data["amount_str"]))
                else:
                    self.remove(order_id)
                    self.add(order_id, self.bids if data["order_type"] == 0 else self.asks, price,
                             float(data["amount_str"]))
            self.bbo()


CEILINGS: dict[str, Callable[[Stream], object]] = {
    "kraken": KrakenCeiling, "gemini": GeminiCeiling, "coinbase": CoinbaseCeiling,
    "kumex-l2": KumexLevel2Ceiling, "kumex-l3": KumexLevel3Ceiling, "bitstamp": BitstampCeiling,
}


def ceiling_pass(name: str, stream: Stream, **options: object) -> tuple[float, float]:
    """A fresh ceiling over the whole stream: (seconds for every frame, seconds for the steady part)."""
    ceiling = CEILINGS[name](stream, **options)
    clock = time.perf_counter
    t0 = clock()
    ceiling.play(stream.frames[:stream.steady_from])
    t1 = clock()
    ceiling.play(stream.frames[stream.steady_from:])
    t2 = clock()
    if getattr(ceiling, "mismatches", 0):
        raise RuntimeError(f"{name}: the ceiling's own checksum disagrees {ceiling.mismatches} times")
    return t2 - t0, t2 - t1


def stream_for(name: str, events: int = 60_000) -> Stream:
    """The stream `bench.ingest` replays for `name` (kraken, gemini, coinbase, kumex-l2, kumex-l3, bitstamp)."""
    if name == "kumex-l2":
        return streams.kumex(2, events)
    if name == "kumex-l3":
        return streams.kumex(3, events)
    if name == "bitstamp":
        return streams.bitstamp(events)
    return getattr(streams, name)()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--venue", choices=[*CEILINGS, "kraken+crc"], action="append")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    names = args.venue or [*CEILINGS, "kraken+crc"]
    results = {}
    for name in names:
        base = name.split("+")[0]
        stream = stream_for(base)
        options = {"checksum": True} if name == "kraken+crc" else {}
        rounds = interleaved({name: lambda: ceiling_pass(base, stream, **options)}, args.rounds)
        results[name] = {"frames": len(stream.frames),
                         "all": median([len(stream.frames) / a for a, _ in rounds[name]]),
                         "steady": median([len(stream.steady) / s for _, s in rounds[name]])}
    text = ("Pure-Python ceiling (orjson + SortedDict, float keys, best bid/ask read after every change), "
            f"frames/s, median of {args.rounds} rounds.\n\n"
            + table(["stream", "frames", "all/s", "steady/s"],
                    [[n, r["frames"], r["all"], r["steady"]] for n, r in results.items()]))
    emit(args.json, {"benchmark": "ceiling", "rounds": args.rounds, "machine": machine(), "results": results}, text)


if __name__ == "__main__":
    main()
