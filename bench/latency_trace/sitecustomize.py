"""Loaded by every Python process started with this folder on PYTHONPATH: traces jobyard's
worker (`bench.latency_trace.install`) when `$BENCH_TRACE_DIR` is set."""

from __future__ import annotations

import os

if os.environ.get("BENCH_TRACE_DIR"):
    from bench.latency_trace import install

    install()
