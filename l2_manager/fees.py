"""Taker fees and order-size rules per venue: what a market order pays, and what sizes it may have.

The rates come from each venue's settings (`taker_fee`, `min_order`, `size_increment` in config.yml,
documented there with their source); `--fee VENUE=RATE` overrides a rate for one run. A fee is a
fraction of the notional: a buy pays price x (1 + fee), a sell receives price x (1 - fee). That
fee-adjusted price is what orders levels across venues (the cheapest split after fees).
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Iterable, Mapping

MAX_FEE = Decimal("0.1")
"""10 %: no venue charges more; a larger rate is a typo (25 instead of 0.25 %)."""
_ZERO = Decimal(0)
_ONE = Decimal(1)


@dataclass(frozen=True)
class VenueTerms:
    """What one venue charges a taker and which sizes it accepts."""

    fee: Decimal = _ZERO              # fraction of the notional (0.004 = 0.40 %)
    fee_source: str = "default"       # "config", "--fee" or "default" (none configured: 0)
    min_order: Decimal = _ZERO        # smallest order in base units (0: none known)
    size_increment: Decimal = _ZERO   # sizes are multiples of this (0: none known)

    def factor(self, buy: bool) -> Decimal:
        """Multiply a price by this to get what a taker really pays (buy) or receives (sell) per unit."""
        return _ONE + self.fee if buy else _ONE - self.fee

    def allowed(self, size: Decimal) -> Decimal:
        """The largest size at most `size` that this venue accepts: a multiple of the increment, and at
        least the minimum (else nothing)."""
        if self.size_increment:
            size = (size // self.size_increment) * self.size_increment
        return size if size >= self.min_order and size > 0 else _ZERO

    def refusal(self, size: Decimal) -> str | None:
        """Why this venue would not take an order of exactly `size` (None: it would)."""
        if size < self.min_order:
            return f"below its minimum order of {self.min_order.normalize():f}"
        if self.size_increment and size % self.size_increment:
            return f"not a multiple of its size increment {self.size_increment.normalize():f}"
        return None


def terms_from_settings(settings: object, override: Decimal | None = None) -> VenueTerms:
    """A venue's terms from its settings. Read defensively (`getattr`): a settings class without a key
    means "none known" (fee 0, no minimum, no increment), and the output says the fee's source."""
    configured = getattr(settings, "taker_fee", None)
    if override is not None:
        fee, source = override, "--fee"
    elif configured is not None:
        fee, source = Decimal(configured), "config"
    else:
        fee, source = _ZERO, "default"
    return VenueTerms(fee, source, Decimal(getattr(settings, "min_order", _ZERO) or _ZERO),
                      Decimal(getattr(settings, "size_increment", _ZERO) or _ZERO))


def parse_rate(text: str) -> Decimal:
    """"0.25%" -> 0.0025; "0.0025" -> 0.0025. ValueError (one line) for anything else."""
    body = text.strip()
    percent = body.endswith("%")
    try:
        value = Decimal(body[:-1] if percent else body)
    except InvalidOperation:
        raise ValueError(f"expected a rate like 0.25% or 0.0025, got {text!r}") from None
    if not value.is_finite():
        raise ValueError(f"expected a rate like 0.25% or 0.0025, got {text!r}")
    rate = value / 100 if percent else value
    if not _ZERO <= rate <= MAX_FEE:
        raise ValueError(f"a fee must be between 0 and 10 %, got {text!r}")
    return rate


def parse_fee_overrides(texts: Iterable[str], known: Iterable[str]) -> dict[str, Decimal]:
    """`--fee kraken=0.25%` (repeatable) -> {"kraken": Decimal("0.0025")}; unknown venues refused."""
    known = list(known)
    overrides: dict[str, Decimal] = {}
    for text in texts:
        venue, sep, rate = text.partition("=")
        venue = venue.strip()
        if not sep or not venue:
            raise ValueError(f"expected VENUE=RATE (e.g. kraken=0.25%), got {text!r}")
        if venue not in known:
            raise ValueError(f"unknown venue {venue!r} in {text!r} (expected one of {', '.join(known)})")
        overrides[venue] = parse_rate(rate)
    return overrides


def schedule(settings: Mapping[str, object], overrides: Mapping[str, Decimal] | None = None) -> dict[str, VenueTerms]:
    """Terms for every venue, by name: its settings, with the run's `--fee` overrides on top."""
    overrides = overrides or {}
    return {name: terms_from_settings(s, overrides.get(name)) for name, s in settings.items()}


def percent(rate: Decimal) -> Decimal:
    return rate * 100
