"""Contact snapshots: raw tracking events → sessions → contacts → the /contacts reader.

The sub-packages follow the data (imports flow one way, from the entry points down):

    cli.py, dags/ ─▶ runs/ ─▶ contract/   the raw event contract: landing files read, checked, staged
                  │        ├▶ transform/  pure functions on frames: traffic sources, sessions, identity, summaries
                  │        └▶ warehouse/  tables, engines, bulk reads and writes
                  └▶ serve/ ─▶ warehouse/ the reader, its request parsing, the HTTP API and its keys
    sample/ (generated events), bench/ (the benchmark); settings.py sits below them all.
"""

import os

# Arrow's buffers from the C library's allocator, not mimalloc, which hands freed pages back to the kernel at once:
# every new buffer then faults in zeroed pages again. A 1M-event day: 7-10 s → 5-6 s of kernel time, ~1 s of wall
# (README, Benchmark). Read when Arrow first allocates, so it is set before anything imports pyarrow; the
# environment still decides when it names a pool.
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
