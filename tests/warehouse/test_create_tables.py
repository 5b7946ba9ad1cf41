"""create_tables: an older warehouse is brought to this version's indexes, its rows untouched."""

from datetime import datetime

from sqlalchemy import inspect

from pipeline.warehouse import tables as t
from pipeline.warehouse.engines import create_tables, get_engine
from pipeline.warehouse.rows import read_where_in

OLD_INDEXES = {  # as the previous version created them
    "ix_sessions_visitor_time": "sessions (anonymous_id, timestamp)",
    "ix_conversions_page": "conversions (conversion_page, email, session_id)",
    "ix_conversions_type": "conversions (conversion_type, email, session_id)",
    "ix_conversions_point": "conversions (conversion_id, email, session_id)",
}
CONVERSION = {"event_id": "e1", "email": "a@x.io", "anonymous_id": "v1", "session_id": "s" * 32, "conversion_page": "/thanks"}


def index_names(engine, table: str) -> set[str]:
    return {index["name"] for index in inspect(engine).get_indexes(table)}


def test_an_older_warehouse_loses_the_retired_indexes_gains_the_new_one_and_keeps_its_rows(warehouse_url):
    engine = get_engine(warehouse_url)
    create_tables(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP INDEX ix_sessions_visitor")
        for name, target in OLD_INDEXES.items():
            conn.exec_driver_sql(f"CREATE INDEX {name} ON {target}")
        conn.execute(t.conversions.insert().values(timestamp=datetime(2025, 3, 1, 12), **CONVERSION))
    create_tables(engine)
    create_tables(engine)  # idempotent
    for table in (t.sessions, t.conversions):
        assert index_names(engine, table.name) == {index.name for index in table.indexes}
    with engine.connect() as conn:
        assert read_where_in(conn, t.conversions, "anonymous_id", ["v1"])["event_id"].tolist() == ["e1"]


def test_a_visitors_sessions_are_found_through_the_visitor_index(sqlite_url):
    engine = get_engine(sqlite_url)
    create_tables(engine)
    with engine.connect() as conn:
        plan = conn.exec_driver_sql("EXPLAIN QUERY PLAN SELECT session_id FROM sessions WHERE anonymous_id IN ('a', 'b')").fetchall()
    assert any("USING INDEX ix_sessions_visitor" in row[-1] for row in plan), plan


def test_the_sessions_key_has_no_index_of_its_own(warehouse_url):
    """Sessions are found through their visitor's index; an index of random md5 keys would cost each publish a
    rewrite of all its pages."""
    engine = get_engine(warehouse_url)
    create_tables(engine)
    catalog = inspect(engine)
    assert catalog.get_pk_constraint("sessions")["constrained_columns"] == []
    assert catalog.get_unique_constraints("sessions") == []
    assert [index["column_names"] for index in catalog.get_indexes("sessions")] == [["anonymous_id"]]
