"""Benchmarks (not part of the test run; tests never import this package).

    pip install -r requirements-bench.txt     # cryptofeed, the rival in `bench.ingest`
    python3 -m bench.ingest [--checksum] [--rounds N] [--json]
    python3 -m bench.depletion [--json]
    python3 -m bench.l3 [--json]

Every figure is a median over rounds on one machine; compare ratios taken in one run, never absolute
times from different runs (a shared 2-core machine is noisy).
"""
