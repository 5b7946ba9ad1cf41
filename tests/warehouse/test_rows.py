"""read_where_in and delete_where_in on SQLite: the values handed over as one JSON array find exactly their rows."""

import numpy as np
import pandas as pd
from sqlalchemy import Column, Integer, MetaData, Table, Text, create_engine

from pipeline.warehouse.rows import delete_where_in, read_where_in

metadata = MetaData()
things = Table("things", metadata, Column("id", Integer, primary_key=True), Column("name", Text, index=True))
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
