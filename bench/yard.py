"""The jobyard side of the benchmark: one no-op job type."""

from __future__ import annotations

from jobyard import Yard

yard = Yard("bench")


@yard.job("bench.noop", pool="bench")
def noop() -> None:
    """Do nothing: the benchmark measures the platform, not the job."""
    return None
