"""Benchmarks (not part of the test run; tests never import this package, and nothing here is a timed
assertion).

    pip install -r requirements-bench.txt     # cryptofeed (the rival) and orjson (the ceiling)
    pip install -r requirements-fast.txt      # optional: the msgspec decoder (both columns printed)
    python3 -m bench.ingest [--venue NAME] [--rounds N] [--json]   # ours vs cryptofeed vs the ceiling
    python3 -m bench.ceiling [--json]          # the pure-Python ceiling alone
    python3 -m bench.l3 [--json]               # L3 events/s into the book (KuMEX, Bitstamp)
    python3 -m bench.depletion [--json]        # walks, against a float SortedDict walk
    python3 -m bench.memory [--json]           # bytes per L2 level and per L3 order

Every figure is a median over interleaved rounds on one machine; compare ratios taken in one run, never
absolute times from different runs (a shared 2-core machine is noisy).
"""
