"""One run's life: start (lock, plan) → stage → sessionize[bucket] → identify → summarise[bucket] → check →
publish, each step a function the DAG task calls; `nightly` chains them without a scheduler; `forget`
runs an erasure through the same steps."""

import ctypes
import os


def _one_malloc_arena() -> None:
    """glibc gives each thread that allocates (Arrow's, the staging pool's) an arena of its own and keeps what is
    freed in each, so a long process's resident memory crept with its runs (a 10-day backfill: 0.36 → 0.60 GB, peak
    0.81 GB). One arena, as `MALLOC_ARENA_MAX=1` would set, keeps it flat (0.33 → 0.42 GB; a 1M-event day's peak
    1.12 → 1.00 GB) at no cost in time: DuckDB has its own allocator, and the threads that share the arena are few.
    Only runs set it; the reader's threads keep glibc's default. The environment decides when it names a value; C
    libraries without mallopt keep theirs."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return
    try:
        ctypes.CDLL(None).mallopt(-8, 1)  # M_ARENA_MAX
    except (AttributeError, OSError, TypeError):  # no mallopt, or no C library that opens without a name
        pass


_one_malloc_arena()
