"""Benchmarks; run `python bench/throughput.py`."""
