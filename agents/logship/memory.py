"""logship's memory: glibc's malloc tuned at start, and the freed heap handed back to the
system once a burst (a catch-up, an outage's backlog) is over.

A sidecar runs in every pod, and its idle RSS is what it costs there. glibc keeps memory
freed at the top of its heaps and in its arenas' free lists; after a catch-up that is
megabytes an idle logship holds for nothing. `give_back_when_quiet` calls `malloc_trim`
once each time logship becomes quiet (nothing read, nothing waiting for an
acknowledgement, for `QUIET_S`): cheap (a walk of the free lists, ~1 ms), and never while
lines flow.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import sys
from collections.abc import Callable, Hashable

QUIET_S = 5.0

# glibc's mallopt parameters, and the environment variables that set them instead
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8
MALLOC_SETTINGS = {
    # glibc gives each thread that allocates its own 64 MiB arena; with gzip and file reads
    # in worker threads, memory freed in one arena is not reused by another, and a
    # catch-up peaked ~5 MiB higher. Two: the main arena and one for the threads.
    M_ARENA_MAX: ("MALLOC_ARENA_MAX", 2),
    # Bulk bodies and their gzip are 128 KiB to 5 MiB, allocated and freed over and over.
    # glibc raises its mmap threshold to the size of each such block freed, after which
    # they come from the heap and its top is kept: a fixed threshold keeps them mmapped
    # (returned at free) and the trim threshold low. With 120 KiB reads, the catch-up's
    # peak RSS went 57.7 -> 56.6 MiB (mean of 3), CPU unchanged.
    M_MMAP_THRESHOLD: ("MALLOC_MMAP_THRESHOLD_", 128 * 1024),
    M_TRIM_THRESHOLD: ("MALLOC_TRIM_THRESHOLD_", 128 * 1024),
}


def tune_malloc() -> None:
    """What the MALLOC_* variables in MALLOC_SETTINGS would set, unless they are set (they
    win). A no-op off glibc."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    with contextlib.suppress(OSError, AttributeError):  # musl and others: no mallopt
        mallopt = ctypes.CDLL(None).mallopt
        for parameter, (variable, value) in MALLOC_SETTINGS.items():
            if variable not in os.environ:
                mallopt(parameter, value)


def trim() -> bool:
    """Collect cycles, then give the heap's free memory back (glibc's `malloc_trim(0)`):
    True when glibc released some; False where there is no malloc_trim (musl)."""
    gc.collect()
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        return bool(ctypes.CDLL(None).malloc_trim(0))
    except (OSError, AttributeError):
        return False


async def give_back_when_quiet(
    activity: Callable[[], Hashable],
    busy: Callable[[], bool],
    *,
    every: float = QUIET_S,
    give_back: Callable[[], object] = trim,
) -> None:
    """Forever: every `every` seconds, look at `activity()` (a value that changes whenever
    logship reads or ships) and `busy()` (events held unacknowledged); once both have been
    still for a whole period, `give_back()` once, then not again until there was activity."""
    last: Hashable = None
    given_back_at: Hashable = None
    while True:
        await asyncio.sleep(every)
        now = activity()
        if now == last and not busy() and now != given_back_at:
            give_back()
            given_back_at = now
        last = now
