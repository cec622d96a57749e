"""btc-depth's data side: venue processors (sans-I/O), the asyncio shell, books, and the simulator."""

__version__ = "0.3.0"
