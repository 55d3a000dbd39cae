"""Keeping the garbage collector's full passes short in long-lived processes.

A web or worker process holds a few hundred thousand objects from its imports and setup that
live as long as it does. CPython's full (generation 2) collection walks all of them every
time: 75 to 125 ms measured in `jobyard web` under 50 clients, during which every request
waited (the p99 of `bench/concurrent_submits.py` was such pauses). Frozen once startup is
done, they are left out of every later pass, which then walks only what the process made
since; a prefork child shares them with its parent without the collector touching (and
copying) their pages.
"""

from __future__ import annotations

import gc


def freeze_startup_objects() -> None:
    """Collect once, then leave every object alive now out of later collections."""
    gc.collect()
    gc.freeze()
