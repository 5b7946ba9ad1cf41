"""read_where_in, delete_where_in and delete_pairs_in: the values handed over as one JSON array (SQLite) or IN lists
(PostgreSQL) find exactly their rows."""

from datetime import datetime

import numpy as np
import pandas as pd
from sqlalchemy import Column, Integer, MetaData, Table, Text, create_engine

from pipeline.warehouse import tables as t
from pipeline.warehouse.engines import create_tables, get_engine, transaction
from pipeline.warehouse.rows import delete_pairs_in, delete_where_in, insert_frame, read_table, read_where_in

metadata = MetaData()
things = Table("things", metadata, Column("id", Integer, primary_key=True), Column("name", Text, index=True))
SOURCE = ("source", "medium", "campaign", "content", "term", "channel", "landing_page")
NAMES = ["plain", "it's", 'say "hi"', "née", "a,b", "[1]", "ünïcode ✓", "  spaced  "]


def warehouse(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'rows.db'}")
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(things.insert(), [{"id": i, "name": name} for i, name in enumerate(NAMES)])
    return engine


def test_read_where_in_finds_text_and_numpy_integers_and_nothing_else(tmp_path):
    with warehouse(tmp_path).connect() as conn:
        by_name = read_where_in(conn, things, "name", pd.Series(["it's", 'say "hi"', "ünïcode ✓", "missing", None, "it's"]))
        by_id = read_where_in(conn, things, "id", np.array([0, 3, 99], dtype=np.int64))
        none = read_where_in(conn, things, "name", [])
    assert sorted(by_name["id"]) == [1, 2, 6]
    assert sorted(by_id["name"]) == ["née", "plain"]
    assert none.empty


def test_delete_where_in_deletes_exactly_the_listed_rows(tmp_path):
    engine = warehouse(tmp_path)
    with engine.begin() as conn:
        deleted = delete_where_in(conn, things, "name", ["a,b", "[1]", "  spaced  ", "spaced", "a,b"])
    with engine.connect() as conn:
        left = read_where_in(conn, things, "name", NAMES)["name"]
    assert deleted == 3
    assert sorted(left) == sorted(set(NAMES) - {"a,b", "[1]", "  spaced  "})


def test_delete_pairs_in_deletes_rows_holding_both_values_of_a_pair_through_the_first_ones_index(warehouse_url):
    engine = get_engine(warehouse_url)
    create_tables(engine)
    stamp = datetime(2025, 3, 1, 12)
    rows = [("s1", "v1"), ("s2", "v1"), ("s3", "v2"), ("s4", "it's"), ("s5", "v3")]
    sessions = pd.DataFrame(
        [{"session_id": s, "anonymous_id": v, "timestamp": stamp, "end_timestamp": stamp, "session_duration": 0,
          "first_event_id": s, "page_views": 1, "conversions": 0, **dict.fromkeys(SOURCE, "(none)")} for s, v in rows]
    )
    with transaction(engine) as conn:
        insert_frame(conn, t.sessions, sessions)
    pairs = pd.DataFrame({"anonymous_id": ["v1", "v2", "it's", "v3", "v1"], "session_id": ["s2", "s1", "s4", "s9", "s2"]})
    with transaction(engine) as conn:
        deleted = delete_pairs_in(conn, t.sessions, pairs)  # (v2, s1) and (v3, s9) hold no row; (v1, s2) twice
    with engine.connect() as conn:
        left = read_table(conn, t.sessions, columns=["session_id"])["session_id"]
        if engine.dialect.name == "sqlite":
            plan = conn.exec_driver_sql(
                "EXPLAIN QUERY PLAN DELETE FROM sessions WHERE (anonymous_id, session_id) IN (SELECT 'v1', 's1')"
            ).fetchall()
            assert any("USING INDEX ix_sessions_visitor" in row[-1] for row in plan), plan
    assert deleted == 2
    assert sorted(left) == ["s1", "s3", "s5"]
