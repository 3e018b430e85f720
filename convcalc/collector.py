"""Pausing Python's cyclic garbage collector around bulk work that makes no garbage cycles.

Loading and analysing a long stack allocate hundreds of thousands of objects (YAML nodes, specs,
receptive-field maps, reports) that stay alive until the work ends. While they grow, the
collector walks all of them again each time their number grows by a quarter: with 10,000
layers that was over half of `load_stack` and a quarter of `analyze` (docs/load-benchmark.md),
and it made the time grow faster than the stack. None of it needs the collector: reference
counting frees it all as usual, and the rare cycle (a recursive YAML alias) is collected once
the collector runs again.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

__all__ = ["paused"]


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """Run the body with the cyclic collector off, then turn it back on.

    The collector is process-wide: for the duration of the body no thread's cycles are
    collected. A collector that was already off (the caller's choice) stays off; nested
    pauses are free.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
