"""What a walk costs: gross notional, the fee, the net amount, and its prices against each reference.

A `Depletion` says which levels a market order takes; a `Cost` adds the money and the references a
trader compares venues by:

- **gross VWAP** (the book's prices), **fee** (per venue's taker rate), **net VWAP** and **net**: the
  quote amount received (sell: notional - fee) or spent (buy: notional + fee);
- **slippage** of the gross VWAP against the walk's best price, the venue's own mid, and the merged spot
  mid (the one reference shared by every venue, so the one that compares them);
- **cost** of the net VWAP against the merged spot mid: fees and slippage in one number;
- **impact**: where the side's best would be after the fill, and how far that is from the best before.

Every figure is exact; rounding happens when it is shown.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from decimal import Decimal
from typing import Mapping

from l2_manager.depletion import Action, Depletion
from l2_manager.fees import VenueTerms
from l2_manager.numbers import bps_worse

_ZERO = Decimal(0)


@dataclass(frozen=True)
class OrderSize:
    """What the user asked for: an amount of the base (1.5 BTC) or of the quote (100000 USD, net of
    fees: what a sell receives or a buy spends, fee included)."""

    amount: Decimal
    in_quote: bool = False


@dataclass(frozen=True)
class Tail:
    """One venue's side after a walk: its new best price, and the full size of the last level it took
    (the last level may be taken in part; this says how much of it there was)."""

    best_after: Decimal | None
    last_full: Decimal | None


def notional_by_venue(walk: Depletion) -> dict[str, Decimal]:
    """Gross notional per venue, in the order venues first appear in the walk."""
    out: dict[str, Decimal] = {}
    for venue, (price, size) in zip(walk.venues, walk.levels):
        out[venue] = out.get(venue, _ZERO) + price * size
    return out


def fee_of(walk: Depletion, terms: Mapping[str, VenueTerms]) -> Decimal:
    """Every venue's taker fee on its part of the walk."""
    return sum((notional * terms[venue].fee for venue, notional in notional_by_venue(walk).items()), _ZERO)


@dataclass(frozen=True)
class Cost:
    walk: Depletion
    fee: Decimal                      # quote units, all venues of the walk
    own_mid: Decimal | None           # the walked book's own mid (None for the merged walk: see spot_mid)
    spot_mid: Decimal | None          # the merged spot book's mid: the shared reference
    best_after: Decimal | None        # the side's best price after the fill (None: emptied, or unknown)
    order: OrderSize | None = None
    ran_out: bool = False             # a quote-sized order: the side ran out before the amount
    tails: Mapping[str, Tail] = field(default_factory=dict)   # per venue walked: its side afterwards
    best: Decimal | None = None       # the side's best price before the walk (merged: across venues);
                                      # None: the walk's first price (one book's walk starts at its best)

    @property
    def best_before(self) -> Decimal | None:
        return self.best if self.best is not None else self.walk.best_price

    @property
    def buy(self) -> bool:
        return self.walk.action is Action.BUY

    @property
    def filled(self) -> Decimal:
        return self.walk.filled

    @cached_property
    def notional(self) -> Decimal:
        """Read by most figures below: summed over the walk once (the rest of a Cost costs O(1))."""
        return self.walk.notional

    @property
    def net(self) -> Decimal:
        """Received (sell) or spent (buy), fee included."""
        return self.notional + self.fee if self.buy else self.notional - self.fee

    @property
    def gross_vwap(self) -> Decimal | None:
        filled = self.filled
        return self.notional / filled if filled else None

    @property
    def net_vwap(self) -> Decimal | None:
        filled = self.filled
        return self.net / filled if filled else None

    @property
    def shortfall(self) -> Decimal:
        """In the order's unit: base units, or quote units for an order sized in the quote."""
        order = self.order
        if order is not None and order.in_quote:
            return max(order.amount - self.net, _ZERO) if self.ran_out else _ZERO
        return self.walk.shortfall

    @property
    def complete(self) -> bool:
        """A quote-sized walk is complete when its size was found inside the book (its net then falls
        short of the amount by less than one satoshi's worth: sizes are whole satoshis)."""
        order = self.order
        return not self.ran_out if order is not None and order.in_quote else self.walk.complete

    @property
    def slippage_vs_best(self) -> Decimal | None:
        return bps_worse(self.buy, self.gross_vwap, self.best_before)

    @property
    def slippage_vs_own_mid(self) -> Decimal | None:
        return bps_worse(self.buy, self.gross_vwap, self.own_mid)

    @property
    def slippage_vs_spot_mid(self) -> Decimal | None:
        return bps_worse(self.buy, self.gross_vwap, self.spot_mid)

    @property
    def cost_bps(self) -> Decimal | None:
        """Net VWAP against the merged spot mid: fees and slippage together, comparable across venues."""
        return bps_worse(self.buy, self.net_vwap, self.spot_mid)

    @property
    def impact_bps(self) -> Decimal | None:
        """How far the best price moves: from the best before the walk to the best left after it."""
        return bps_worse(self.buy, self.best_after, self.best_before)


@dataclass(frozen=True)
class PerpetualLeg:
    """A perpetual's answer in its own terms: it is not a sale or a purchase of the base asset."""

    contracts: Decimal                # in the venue's own units (USD contracts for an inverse perpetual)
    position: str                     # "short" or "long": what the order opens (or reduces, if held)
    basis_bps: Decimal | None         # the perpetual's mid against the merged spot mid


def position_opened(action: Action) -> str:
    return "long" if action is Action.BUY else "short"


def basis_bps(mid: Decimal | None, spot_mid: Decimal | None) -> Decimal | None:
    if mid is None or spot_mid is None or not spot_mid:
        return None
    return (mid - spot_mid) / spot_mid * Decimal(10_000)
