"""BulkRows on SQLite: rows prepared on two lanes' scratch files arrive whole, in the right columns, with every index."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import Column, Index, Integer, MetaData, String, Table

from pipeline.warehouse.bulk import BulkRows
from pipeline.warehouse.engines import get_engine, transaction

METADATA = MetaData()
VISITS = Table(
    "visits", METADATA,
    Column("visit_id", String, primary_key=True),
    Column("visitor", String, nullable=False),
    Column("pages", Integer, nullable=False),
    Index("ix_visits_visitor", "visitor"),
)  # fmt: skip
NOTES = Table("notes", METADATA, Column("note_id", Integer, primary_key=True), Column("text", String))


def frame(ids: range) -> pd.DataFrame:
    return pd.DataFrame({"visit_id": [f"v{i:03d}" for i in ids], "visitor": [f"a{i % 7}" for i in ids], "pages": list(ids)})


def read(engine, sql: str) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(row) for row in conn.exec_driver_sql(sql)]


@pytest.fixture
def engine(tmp_path):
    engine = get_engine(f"sqlite:///{tmp_path / 'warehouse.db'}")
    METADATA.create_all(engine)
    return engine


def publish(bulk: BulkRows, engine) -> dict[str, int]:
    bulk.seal()
    with transaction(engine) as conn:
        return bulk.insert(conn)


def test_rows_into_empty_and_filled_tables_arrive_whole_with_their_indexes(engine, tmp_path):
    lanes = {"notes": 1}
    first = BulkRows(engine, tmp_path / "one" / "rows.sqlite", lanes=lanes)
    first.add(VISITS, lambda: frame(range(50, 100)))  # an empty table: through its twin
    first.add(VISITS, lambda: frame(range(0, 50)))
    first.add(NOTES, lambda: pd.DataFrame({"note_id": [2, 1], "text": ["b", None]}))
    first.add(NOTES, lambda: pd.DataFrame(columns=["note_id", "text"]))
    assert publish(first, engine) == {"visits": 100, "notes": 2}
    second = BulkRows(engine, tmp_path / "two" / "rows.sqlite", lanes=lanes)
    second.add(VISITS, lambda: frame(range(100, 130)))  # a table with rows: copied in
    assert publish(second, engine) == {"visits": 30}
    assert read(engine, "SELECT visit_id, visitor, pages FROM visits ORDER BY visit_id") == list(frame(range(130)).itertuples(index=False, name=None))
    assert read(engine, "SELECT note_id, text FROM notes ORDER BY note_id") == [(1, None), (2, "b")]
    assert read(engine, "SELECT count(*) FROM visits INDEXED BY ix_visits_visitor WHERE visitor = 'a3'") == [(19,)]
    assert read(engine, "PRAGMA integrity_check") == [("ok",)]


def test_a_twin_takes_the_warehouse_tables_own_column_order(engine, tmp_path):
    """`SELECT *` lines columns up by position: a warehouse table whose columns are in another order than the metadata
    (an older warehouse, say) still gets each value in its own column."""
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE visits")
        conn.exec_driver_sql("CREATE TABLE visits (pages INTEGER NOT NULL, visitor TEXT NOT NULL, visit_id TEXT PRIMARY KEY)")
    bulk = BulkRows(engine, tmp_path / "rows.sqlite")
    bulk.add(VISITS, lambda: frame(range(3)))
    publish(bulk, engine)
    assert read(engine, "SELECT visit_id, visitor, pages FROM visits ORDER BY visit_id") == [("v000", "a0", 0), ("v001", "a1", 1), ("v002", "a2", 2)]


def test_a_failed_load_is_raised_before_the_transaction_and_nothing_stays_queued(engine, tmp_path):
    def broken() -> pd.DataFrame:
        raise ValueError("unreadable workspace file")

    bulk = BulkRows(engine, tmp_path / "rows.sqlite")
    bulk.add(VISITS, broken)
    bulk.add(VISITS, lambda: frame(range(5)))
    with pytest.raises(ValueError, match="unreadable"):
        bulk.seal()
    bulk.discard()
    assert all(job.done() for lane in bulk.lanes for job in lane.jobs)
    assert read(engine, "SELECT count(*) FROM visits") == [(0,)]
