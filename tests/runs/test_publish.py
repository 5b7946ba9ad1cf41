"""Atomic publish (SPEC section 9): a failed or killed run leaves the published tables exactly as they were."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import date

import pytest
from sqlalchemy import text

from pipeline.runs.lock import WarehouseBusy, this_process
from pipeline.runs.nightly import compute_run, run_interval
from pipeline.runs.publish import StaleRunError, publish
from pipeline.runs.stage import stage_run
from pipeline.runs.start import start_run
from pipeline.warehouse import tables as t
from pipeline.warehouse.engines import get_engine
from pipeline.warehouse.rows import BulkRows
from tests.helpers import REPO_DAGS, conversion, event, run, table, write_partition

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


@pytest.mark.parametrize(
    "target",
    ["pipeline.runs.nightly.sessionize", "pipeline.runs.nightly.identify", "pipeline.runs.nightly.summarise", "pipeline.runs.nightly.check_run",
     "pipeline.runs.publish._close_history", "pipeline.runs.publish.insert_frame", "pipeline.runs.publish.BulkRows.insert"],
)
def test_failure_in_any_step_leaves_published_tables_intact(settings, monkeypatch, target):
    two_days(settings.landing)
    run(settings, "2025-03-01")
    before = snapshot(settings)

    def boom(*args, **kwargs):
        raise RuntimeError("injected failure")

    with monkeypatch.context() as patch:
        patch.setattr(target, boom)
        with pytest.raises(RuntimeError, match="injected failure"):
            run_interval(settings, [DAY2])
    assert snapshot(settings) == before
    assert run_statuses(settings) == ["success", "failed"]
    run(settings, "2025-03-02")
    assert run_statuses(settings)[-1] == "success" and len(table(settings, "contacts")) == 2


def test_failure_between_two_bulk_copies_leaves_published_tables_intact(settings, monkeypatch):
    """One table is already copied in when the next fails: the transaction takes both back."""
    if not settings.warehouse_url.startswith("sqlite"):
        pytest.skip("the scratch-database copy is SQLite's bulk path; PostgreSQL COPYs inside the transaction")
    two_days(settings.landing)
    run(settings, "2025-03-01")
    before = snapshot(settings)
    real, calls = BulkRows._copy_in, []

    def second_fails(self, conn, table, *args):
        calls.append(table.name)
        if len(calls) == 2:
            raise RuntimeError("injected failure")
        return real(self, conn, table, *args)

    monkeypatch.setattr(BulkRows, "_copy_in", second_fails)
    with pytest.raises(RuntimeError, match="injected failure"):
        run_interval(settings, [DAY2])
    assert len(calls) == 2 and snapshot(settings) == before
    monkeypatch.undo()
    run(settings, "2025-03-02")
    assert run_statuses(settings)[-1] == "success" and len(table(settings, "contacts")) == 2


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


def test_a_second_run_waits_for_the_lock(settings):
    two_days(settings.landing)
    first = start_run(settings, [DAY1])
    with pytest.raises(WarehouseBusy, match=first):
        start_run(settings.model_copy(update={"lock_wait_seconds": 0}), [DAY2])
    _compute(settings, first)
    publish(settings, first)
    second = start_run(settings.model_copy(update={"lock_wait_seconds": 0}), [DAY2])
    _compute(settings, second)
    publish(settings, second)
    assert run_statuses(settings) == ["success", "success"]


def test_lock_of_a_dead_process_is_taken_over(settings):
    two_days(settings.landing)
    dead = start_run(settings, [DAY1], owner="some-other-host:1")
    with get_engine(settings.warehouse_url).begin() as conn:  # its owner vanished: a local pid that cannot exist
        conn.execute(t.warehouse_state.update().values(lock_owner=f"{this_process().rsplit(':', 1)[0]}:999999999"))
    run(settings, "2025-03-01")
    assert dict(zip(table(settings, "pipeline_runs")["run_id"], table(settings, "pipeline_runs")["status"]))[dead] == "failed"


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


def test_sigkill_mid_run_leaves_the_published_state_and_the_next_run_succeeds(sqlite_url, tmp_path):
    from pipeline.sample.generate import generate_landing
    from pipeline.settings import Settings

    landing = tmp_path / "landing"
    generate_landing(landing, visitors=3000, days=2, start=DAY1, seed=7)
    settings = Settings(warehouse_url=sqlite_url, landing=landing, workspace=tmp_path / "runs", buckets=2)
    run(settings, "2025-03-01")
    before = snapshot(settings)
    command = [sys.executable, "-m", "pipeline", "run", "--landing", str(landing), "--warehouse", sqlite_url, "--start", "2025-03-02", "--end", "2025-03-02"]
    env = dict(os.environ, PYTHONPATH=str(REPO_DAGS.parent), CONTACTS_WORKSPACE=str(tmp_path / "runs"), CONTACTS_BUCKETS="2")
    for delay in (0.8, 1.6, 2.4, 3.2):
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait()
        if process.returncode == -signal.SIGKILL:
            assert snapshot(settings) == before, f"killed after {delay} s"
    finished = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr
    assert run_statuses(settings)[-1] == "success"
    assert len(table(settings, "contacts")) > len(before["contacts"])


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
