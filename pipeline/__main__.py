"""Entry point of `python -m pipeline`.

Once the command is done the process leaves without the interpreter's shutdown: collecting a run's objects and
modules took 0.3-0.4 s after a 1M-event day's result was printed. What that shutdown would still do here is done
first: the warehouse connections closed (SQLite folds its write-ahead log back in), logs and output flushed.
"""

import logging
import os
import sys

from pipeline.cli import main

code = main()
from pipeline.warehouse.engines import dispose_all  # noqa: E402 - after the command: only what it imported is loaded

dispose_all()
logging.shutdown()
try:
    sys.stdout.flush()
    sys.stderr.flush()
except BrokenPipeError:  # `… | head` stopped reading
    pass
os._exit(code or 0)
