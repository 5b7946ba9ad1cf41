"""The warehouse's published version (one row in warehouse_state) and the clock every run stamps rows with."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import select

from pipeline.warehouse import tables as t


def utc_now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def current_version(conn) -> int:
    """The published version of the warehouse (0 before the first publish)."""
    version = conn.execute(select(t.warehouse_state.c.version).where(t.warehouse_state.c.id == 1)).scalar()
    if version is None:
        conn.execute(t.warehouse_state.insert().values(id=1, version=0))
        return 0
    return int(version)
