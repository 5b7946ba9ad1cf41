"""The event store (SPEC §8): Parquet files sorted by visitor key, listed in event_files, on any pyarrow/fsspec
filesystem, cleaned of leftovers, readable by DuckDB through its catalog."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pytest

from pipeline.transform.keys import key_bucket, md5_keys
from pipeline.warehouse.engines import create_tables, get_engine, transaction
from pipeline.warehouse.event_store import (
    ARROW_SCHEMA,
    CATALOG,
    EventStore,
    commit_files,
    live_files,
    remove_leftovers,
    write_catalog,
)
from tests.helpers import spy_fsyncs

DAY = date(2025, 3, 1)
NOW = datetime(2025, 3, 2, 12, 0)


def rows(ids: list[str], visitors: list[str]) -> pa.Table:
    """Event rows as the store keeps them, sorted by visitor key."""
    frame = pd.DataFrame(
        {
            "event_id": ids,
            "anonymous_id": visitors,
            "timestamp": pd.Timestamp("2025-03-01 10:00", tz="UTC"),
            "event_type": "page_view",
            "page_url": "https://shop.example.com/",
            "referrer": None, "email": None, "conversion_type": None, "conversion_id": None, "user_agent": None,
            "is_bot": False,
            "load_date": DAY,
            "source_file": "dt=2025-03-01/a.jsonl",
            "line_number": range(1, len(ids) + 1),
        }
    )  # fmt: skip
    frame["event_key"] = md5_keys(frame["event_id"])
    frame["visitor_key"] = md5_keys(frame["anonymous_id"])
    return pa.Table.from_pandas(frame.sort_values("visitor_key"), preserve_index=False).cast(ARROW_SCHEMA)


@pytest.fixture(params=["local", "memory"])
def store(request, tmp_path) -> EventStore:
    """A store in a local folder, and one behind fsspec's in-memory filesystem (as s3:// would be reached)."""
    return EventStore(str(tmp_path / "store") if request.param == "local" else f"memory://events-{uuid.uuid4().hex}")


def test_a_written_file_reads_back_with_its_facts(store):
    table = rows(["e1", "e2", "e3"], ["v1", "v2", "v3"])
    written = store.write(store.new_path(DAY, "run1", "b0"), table, DAY)
    assert written.path == "events/dt=2025-03-01/run1-b0.parquet"
    assert (written.rows, written.load_date) == (3, DAY) and written.bytes > 0
    assert (written.min_visitor_key, written.max_visitor_key) == (min(table["visitor_key"].to_pylist()), max(table["visitor_key"].to_pylist()))
    assert store.read([written.path])["event_id"].tolist() == table["event_id"].to_pylist()
    assert store.files_on_disk() == [written.path]


def test_make_durable_fsyncs_each_file_and_every_folder_up_to_the_root(tmp_path, monkeypatch):
    store = EventStore(str(tmp_path / "store"))
    written = store.write(store.new_path(DAY, "run1", "b0"), rows(["e1"], ["v1"]), DAY)
    synced = spy_fsyncs(monkeypatch)
    store.make_durable([written.path])
    root = Path(store.root)
    assert synced == [str(root / written.path), str(root / "events/dt=2025-03-01"), str(root / "events"), str(root)]
    EventStore(str(tmp_path / "never-written")).make_durable([])  # a run without events: no folder to sync, no error


def test_no_rows_make_no_file(store):
    assert store.write(store.new_path(DAY, "run1", "b0"), rows([], []), DAY) is None
    assert store.files_on_disk() == []


def test_duckdb_reads_the_same_rows_from_any_filesystem(store):
    written = store.write(store.new_path(DAY, "run1", "b0"), rows(["e1", "e2"], ["v1", "v2"]), DAY)
    with duckdb.connect() as con:
        found = con.sql(f"SELECT event_id FROM {store.relation(con, [written.path])} ORDER BY 1").fetchall()
    assert found == [("e1",), ("e2",)]


def test_rewrite_without_drops_exactly_the_doomed_events(store):
    first = store.write(store.new_path(DAY, "run1", "b0"), rows(["e1", "e2", "e3"], ["v1", "v1", "v2"]), DAY)
    doomed = pd.DataFrame({"path": [first.path], "event_id": ["e2"]})
    written, replaced = store.rewrite_without(doomed, {first.path: DAY}, "run2")
    assert replaced == [first.path] and len(written) == 1
    assert sorted(store.read([written[0].path])["event_id"]) == ["e1", "e3"]
    assert store.read([first.path])["event_id"].tolist() != []  # the old file stays until its retirement is published


def test_rows_where_names_each_rows_file(store):
    a = store.write(store.new_path(DAY, "run1", "b0"), rows(["e1"], ["v1"]), DAY)
    b = store.write(store.new_path(DAY, "run1", "b1"), rows(["e2"], ["v2"]), DAY)
    import pyarrow.dataset as ds

    found = store.rows_where([a.path, b.path], ds.field("event_id") == "e2", ["event_id"])
    assert found.to_dict("records") == [{"event_id": "e2", "path": b.path}]


def test_leftovers_go_and_live_files_stay(tmp_path):
    store = EventStore(str(tmp_path / "store"))
    engine = get_engine(f"sqlite:///{tmp_path / 'wh.db'}")
    create_tables(engine)
    live, retired_long_ago, retired_now, orphan = (
        store.write(store.new_path(DAY, run, "b0"), rows([run], [run]), DAY) for run in ("live", "old", "recent", "orphan")
    )
    with transaction(engine) as conn:
        commit_files(conn, "run1", [live, retired_long_ago, retired_now], [], NOW - timedelta(days=1))
        commit_files(conn, "run2", [], [retired_long_ago.path], NOW - timedelta(hours=2))
        commit_files(conn, "run3", [], [retired_now.path], NOW - timedelta(minutes=1))
        assert remove_leftovers(store, conn, NOW, grace_minutes=10) == 2  # the file retired 2 h ago and the orphan
        assert live_files(conn)["path"].tolist() == [live.path]
    assert store.files_on_disk() == sorted([live.path, retired_now.path])


def test_the_catalog_view_reads_exactly_the_live_files(tmp_path):
    store = EventStore(str(tmp_path / "store"))
    live = store.write(store.new_path(DAY, "run1", "b0"), rows(["e1", "e2"], ["v1", "v2"]), DAY)
    store.write(store.new_path(DAY, "run0", "b0"), rows(["old"], ["v9"]), DAY)  # retired, still on disk
    write_catalog(store, [live.path])
    with duckdb.connect(store.full_path(CATALOG), read_only=True) as con:
        assert con.sql("SELECT event_id FROM events ORDER BY 1").fetchall() == [("e1",), ("e2",)]
    write_catalog(store, [])
    with duckdb.connect(store.full_path(CATALOG), read_only=True) as con:
        assert con.sql("SELECT count(*) FROM events").fetchall() == [(0,)]


def test_buckets_are_contiguous_key_ranges_for_any_count():
    keys = md5_keys(pd.Series([f"visitor-{n}" for n in range(2000)]))
    for buckets in (1, 2, 3, 7, 64):
        bucket = key_bucket(keys, buckets)
        assert set(bucket) == set(range(buckets))
        order = keys.argsort()
        assert (pd.Series(bucket[order]).diff().dropna() >= 0).all()  # sorted keys never go back to a lower bucket
