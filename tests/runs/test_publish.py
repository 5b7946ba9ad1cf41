"""Atomic publish (SPEC section 9): a failed or killed run leaves the published tables exactly as they were."""

from __future__ import annotations

import hashlib
from datetime import date

import pytest
from sqlalchemy import inspect, select, text

from pipeline.runs.faults import EVERY_STEP, InjectedFault
from pipeline.runs.nightly import Gates, compute_run, run_interval
from pipeline.runs.publish import StaleRunError, publish
from pipeline.runs.stage import stage_run
from pipeline.runs.start import start_run
from pipeline.warehouse import tables as t
from pipeline.warehouse.engines import get_engine
from tests.helpers import conversion, event, run, scalar, table, write_partition

DAY1, DAY2 = date(2025, 3, 1), date(2025, 3, 2)
WATCHED = [*t.PUBLISHED_TABLES, t.contacts_history]


def snapshot(settings) -> dict[str, list[tuple]]:
    """Every published row as the database returns it, in key order: compares byte for byte."""
    engine = get_engine(settings.warehouse_url)
    with engine.connect() as conn:
        return {
            tbl.name: [tuple(map(str, row)) for row in conn.execute(text(f'SELECT * FROM "{tbl.name}" ORDER BY 1, 2')).fetchall()]
            for tbl in WATCHED
        }


def two_days(landing) -> None:
    write_partition(landing, "2025-03-01", [event("a", "v1", "2025-03-01 10:00:00"), conversion("b", "v1", "2025-03-01 10:05:00", "/t", "a@b.co")])
    write_partition(landing, "2025-03-02", [event("c", "v1", "2025-03-02 10:00:00", referrer="https://www.bing.com/"), conversion("d", "v2", "2025-03-02 11:00:00", "/t", "c@d.co"), "{bad"])


def run_statuses(settings) -> list[str]:
    return table(settings, "pipeline_runs", order_by=["started_at"])["status"].tolist()


def lock_holder(settings) -> str | None:
    return scalar(settings, select(t.warehouse_state.c.lock_run_id))


def test_a_failure_in_any_step_leaves_the_published_tables_and_frees_the_lock(settings):
    """A step that raises (the test-only fault hook, CONTACTS_FAULT_ACTION=raise), at each step in turn: the run is
    failed with the reason, the lock is free, the published tables are as they were; then the next run publishes."""
    two_days(settings.landing)
    run(settings, "2025-03-01")
    before = snapshot(settings)
    for point in EVERY_STEP:
        failing = settings.model_copy(update={"fault_point": point, "fault_action": "raise"})
        with pytest.raises(InjectedFault, match=f"injected failure at {point}$"):
            run_interval(failing, [DAY2])
        assert snapshot(settings) == before, point
        last = table(settings, "pipeline_runs", order_by=["started_at"]).iloc[-1]
        assert (last["status"], last["error"], lock_holder(settings)) == ("failed", f"InjectedFault: injected failure at {point}", None)
    assert run_statuses(settings) == ["success"] + ["failed"] * len(EVERY_STEP)
    run(settings, "2025-03-02")
    assert run_statuses(settings)[-1] == "success" and len(table(settings, "contacts")) == 2


def test_a_failure_after_publish_started_its_visit_rows_leaves_the_published_tables(settings):
    """With the quality worker (as `pipeline run` runs), publish's visit rows start on their lane once identify has
    run; summarise failing then drops them: nothing changes, the lock is free, and the next run publishes."""
    two_days(settings.landing)
    run(settings, "2025-03-01")
    before = snapshot(settings)
    failing = settings.model_copy(update={"fault_point": "summarise.during", "fault_action": "raise", "quality_worker": True})
    gates = Gates(failing)
    try:
        with pytest.raises(InjectedFault, match="summarise.during$"):
            run_interval(failing, [DAY2], gates=gates)
    finally:
        gates.close()
    assert snapshot(settings) == before
    assert (run_statuses(settings), lock_holder(settings)) == (["success", "failed"], None)
    run(settings, "2025-03-02")
    assert run_statuses(settings)[-1] == "success" and len(table(settings, "contacts")) == 2


def present_indexes(settings) -> set[str]:
    with get_engine(settings.warehouse_url).connect() as conn:
        found = inspect(conn)
        return {index["name"] for tbl in t.metadata.sorted_tables for index in found.get_indexes(tbl.name)}


def test_a_first_publish_keeps_every_index_and_a_failed_one_leaves_no_row(settings):
    """Rows going into an empty SQLite table come with their indexes from a twin in a scratch file (bulk.BulkRows): a
    failure after the first table's copy must leave every index and no row; a publish that lands leaves every
    declared index in place."""
    two_days(settings.landing)
    declared = {index.name for tbl in t.metadata.sorted_tables for index in tbl.indexes}
    failing = settings.model_copy(update={"fault_point": "publish.after_first_copy", "fault_action": "raise"})
    with pytest.raises(InjectedFault):
        run_interval(failing, [DAY1])
    assert declared <= present_indexes(settings) and not any(snapshot(settings).values())
    run(settings, "2025-03-01")
    assert declared <= present_indexes(settings) and len(table(settings, "sessions")) == 1


def test_publish_leaves_planner_statistics_for_the_reader_tables(settings):
    two_days(settings.landing)
    run(settings, "2025-03-01")
    stats = "SELECT DISTINCT tbl FROM sqlite_stat1" if settings.warehouse_url.startswith("sqlite") else (
        "SELECT relname FROM pg_stat_user_tables WHERE last_analyze IS NOT NULL OR last_autoanalyze IS NOT NULL")
    with get_engine(settings.warehouse_url).connect() as conn:
        analysed = {row[0] for row in conn.exec_driver_sql(stats)}
    assert {"contact_sessions", "conversions", "contacts"} <= analysed


def _compute(settings, run_id: str) -> None:
    stage_run(settings, run_id)
    compute_run(settings, run_id)


def test_run_computed_on_a_stale_state_cannot_publish(settings):
    two_days(settings.landing)
    run_id = start_run(settings, [DAY1])
    _compute(settings, run_id)
    with get_engine(settings.warehouse_url).begin() as conn:  # someone published behind the lock's back
        conn.execute(t.warehouse_state.update().values(version=t.warehouse_state.c.version + 1))
    before = snapshot(settings)
    with pytest.raises(StaleRunError, match="start the run again"):
        publish(settings, run_id)
    assert snapshot(settings) == before


def test_unchanged_rerun_adds_no_history_and_a_change_closes_the_open_row(settings):
    two_days(settings.landing)
    run(settings, "2025-03-01")
    run(settings, "2025-03-01")
    history = table(settings, "contacts_history")
    assert history["email"].tolist() == ["a@b.co"] and history["valid_to"].isna().all()
    run(settings, "2025-03-02")  # v1 gets a new session: a@b.co changes, c@d.co appears
    history = table(settings, "contacts_history", order_by=["email", "valid_from"])
    assert history["email"].tolist() == ["a@b.co", "a@b.co", "c@d.co"]
    assert history["total_sessions"].tolist() == [1, 2, 1]
    assert history["valid_to"].iloc[0] == history["valid_from"].iloc[1] and history["valid_to"].iloc[1:].isna().all()


def test_manifest_records_what_each_run_consumed(settings):
    two_days(settings.landing)
    run(settings, "2025-03-01", "2025-03-02")
    manifest = table(settings, "run_manifest", order_by=["load_date"])
    assert manifest["source_file"].tolist() == ["dt=2025-03-01/events.jsonl", "dt=2025-03-02/events.jsonl"]
    assert manifest["lines_read"].tolist() == [2, 3] and manifest["run_id"].nunique() == 2
    files = [settings.landing / name for name in manifest["source_file"]]
    assert manifest["sha256"].tolist() == [hashlib.sha256(f.read_bytes()).hexdigest() for f in files]
    assert manifest["bytes"].tolist() == [f.stat().st_size for f in files]
