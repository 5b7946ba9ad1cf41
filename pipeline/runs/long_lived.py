"""Objects that live as long as the process (imported modules, Great Expectations' context), kept out of the cyclic
garbage collector's way."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def kept_for_good() -> Iterator[None]:
    """No collection while the block makes its objects, which are then frozen: the collector never rescans them.

    Importing Great Expectations made the quality worker collect ~450 times over ~1M objects that are never garbage
    (0.68 → 0.12 s of a 1M-event day); the run's own imports cost its process 0.20 → 0.06 s the same way."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()
