"""One unified name per instrument, `BASE-QUOTE` (e.g. "BTC-USD"), mapped to each venue's own spelling
by that venue's module. Units and labels come from the symbol, never a hard-coded "BTC"."""
from __future__ import annotations

import re
from dataclasses import dataclass

_NAME = re.compile(r"^([A-Z0-9]{2,10})-([A-Z0-9]{2,10})$")


@dataclass(frozen=True, order=True)
class Symbol:
    base: str
    quote: str

    @property
    def name(self) -> str:
        return f"{self.base}-{self.quote}"

    def __str__(self) -> str:
        return self.name

    @classmethod
    def parse(cls, text: str) -> "Symbol":
        """`BTC-USD` (case-insensitive) -> Symbol("BTC", "USD"); anything else is a ValueError."""
        match = _NAME.match(text.strip().upper()) if isinstance(text, str) else None
        if match is None:
            raise ValueError(f"expected a symbol like BTC-USD, got {text!r}")
        return cls(match[1], match[2])
