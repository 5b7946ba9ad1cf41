"""The DAG: imports cleanly, wires the expected tasks, and one real dag.test() run fills the warehouse."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from tests.helpers import REPO_DAGS, table

EXPECTED_EDGES = {
    ("start", "stage"),
    ("start", "sessionize"),
    ("stage", "sessionize"),
    ("start", "identify"),
    ("sessionize", "identify"),
    ("identify", "summarise"),
    ("start", "summarise"),
    ("start", "check"),
    ("summarise", "check"),
    ("check", "publish"),
    ("publish", "mark_failed"),
}


@pytest.fixture(scope="module")
def dag():
    from airflow.dag_processing.dagbag import DagBag
    from airflow.utils import db

    db.initdb()
    bag = DagBag(dag_folder=str(REPO_DAGS))
    assert bag.import_errors == {}
    return bag.get_dag("contact_snapshots")


def test_dag_imports_without_errors_and_schedules_daily_intervals(dag):
    assert dag.max_active_runs == 1 and dag.catchup is True
    assert type(dag.timetable).__name__ == "CronDataIntervalTimetable"
    assert all(task.retries >= 1 for task in dag.tasks if task.task_id != "mark_failed")


def test_dag_wires_the_expected_tasks(dag):
    edges = {(up, task.task_id) for task in dag.tasks for up in task.upstream_task_ids}
    assert EXPECTED_EDGES <= edges
    assert {t.task_id for t in dag.tasks} == {"start", "stage", "sessionize", "identify", "summarise", "check", "publish", "mark_failed"}
    assert dag.get_task("sessionize").is_mapped and dag.get_task("summarise").is_mapped


def test_dag_run_over_generated_data_with_several_buckets_publishes_contacts(dag, sqlite_url, tmp_path, monkeypatch):
    from pipeline.sample.generate import generate_landing

    landing = tmp_path / "landing"
    summary = generate_landing(landing, visitors=150, days=1, start=date(2025, 3, 1), seed=9)
    monkeypatch.setenv("CONTACTS_WAREHOUSE_URL", sqlite_url)
    monkeypatch.setenv("CONTACTS_LANDING", str(landing))
    monkeypatch.setenv("CONTACTS_WORKSPACE", str(tmp_path / "runs"))
    monkeypatch.setenv("CONTACTS_BUCKETS", "3")
    from pipeline.settings import Settings

    run = dag.test(logical_date=datetime(2025, 3, 1, tzinfo=timezone.utc), run_conf={"day": "2025-03-01"})
    assert run.state == "success"
    mapped = [ti for ti in run.get_task_instances() if ti.task_id == "sessionize"]
    assert sorted(ti.map_index for ti in mapped) == [0, 1, 2]
    settings = Settings(warehouse_url=sqlite_url)
    assert len(table(settings, "contacts")) > 0
    runs = table(settings, "pipeline_runs")
    assert runs["status"].tolist() == ["success"] and runs["events_read"].tolist() == [summary.lines]
    assert (runs["events_read"] == runs["events_loaded"] + runs["events_duplicate"] + runs["events_quarantined"]).all()
    assert runs["events_quarantined"].tolist() == [summary.broken_lines]
