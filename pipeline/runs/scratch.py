"""A run step's DuckDB scratch database: in memory up to a limit, spilling to the run's workspace beyond it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import duckdb

from pipeline.runs.workspace import Workspace
from pipeline.settings import Settings


@contextmanager
def scratch_duckdb(settings: Settings, workspace: Workspace) -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory DuckDB capped at `stage_memory_mb` (bigger sorts and joins spill to the workspace); times in UTC."""
    spill = workspace.root / "duckdb-spill"
    spill.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(config={"memory_limit": f"{settings.stage_memory_mb}MB", "temp_directory": str(spill)})
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET preserve_insertion_order = false")
        yield con
    finally:
        con.close()
