"""The DAGs: import cleanly, wire the expected tasks; one real dag.test() run fills the warehouse, writes the report and
updates the assets the example consumer is scheduled on (queueing its run); the consumer runs and only logs."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from pipeline.warehouse.tables import ASSET_TABLES
from tests.helpers import REPO_DAGS, table

CONSUMER = "contacts_published_example"
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
    ("publish", "report"),
    ("publish", "mark_failed"),
}


@pytest.fixture(scope="module")
def bag():
    from airflow.dag_processing.dagbag import DagBag
    from airflow.utils import db

    db.initdb()
    bag = DagBag(dag_folder=str(REPO_DAGS))
    assert bag.import_errors == {}
    return bag


@pytest.fixture(scope="module")
def dag(bag):
    return bag.get_dag("contact_snapshots")


def test_dag_imports_without_errors_and_schedules_daily_intervals(dag):
    assert dag.max_active_runs == 1 and dag.catchup is True
    assert type(dag.timetable).__name__ == "CronDataIntervalTimetable"
    assert all(task.retries >= 1 for task in dag.tasks if task.task_id != "mark_failed")


def test_dag_wires_the_expected_tasks(dag):
    edges = {(up, task.task_id) for task in dag.tasks for up in task.upstream_task_ids}
    assert EXPECTED_EDGES <= edges
    assert {t.task_id for t in dag.tasks} == {"start", "stage", "sessionize", "identify", "summarise", "check", "publish", "report", "mark_failed"}
    assert dag.get_task("sessionize").is_mapped and dag.get_task("summarise").is_mapped
    assert "report" not in dag.get_task("mark_failed").upstream_task_ids  # a report failure is not a failed publish


def test_publish_updates_one_asset_per_published_table(dag):
    from pipeline.warehouse.tables import ASSET_TABLES

    outlets = dag.get_task("publish").outlets
    assert [a.name for a in outlets] == [f"contact_snapshots.{name}" for name in ASSET_TABLES]
    assert {"contact_snapshots.contacts", "contact_snapshots.contact_sessions", "contact_snapshots.contacts_history"} <= {a.name for a in outlets}
    assert {a.uri for a in outlets} == {f"contacts-warehouse://published/{name}" for name in ASSET_TABLES}


def test_the_example_consumer_is_scheduled_on_the_contacts_asset_and_only_logs(bag):
    consumer = bag.get_dag(CONSUMER)
    assert type(consumer.timetable).__name__ == "AssetTriggeredTimetable"
    assert [ref.name for ref in consumer.timetable.asset_condition.objects] == ["contact_snapshots.contacts"]
    assert [t.task_id for t in consumer.tasks] == ["announce"] and consumer.get_task("announce").outlets == []


def test_dag_run_over_generated_data_with_several_buckets_publishes_contacts(bag, dag, sqlite_url, tmp_path, monkeypatch):
    from pipeline.sample.generate import generate_landing

    landing = tmp_path / "landing"
    summary = generate_landing(landing, visitors=150, days=1, start=date(2025, 3, 1), seed=9)
    monkeypatch.setenv("CONTACTS_WAREHOUSE_URL", sqlite_url)
    monkeypatch.setenv("CONTACTS_LANDING", str(landing))
    monkeypatch.setenv("CONTACTS_WORKSPACE", str(tmp_path / "runs"))
    monkeypatch.setenv("CONTACTS_BUCKETS", "3")
    monkeypatch.setenv("CONTACTS_REPORT_DIR", str(tmp_path / "reports"))
    from pipeline.settings import Settings

    unpause_in_db(bag, CONSUMER)  # so that publishing queues a run of the asset consumer, as the scheduler would start it
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
    assert (tmp_path / "reports" / "contacts-report-2025-03-01.html").stat().st_size > 500_000  # charts and their scripts inlined
    events = published_asset_events(run)
    assert sorted(events) == sorted(f"contact_snapshots.{name}" for name in ASSET_TABLES)
    assert {e["pipeline_run"] for e in events.values()} == {runs["run_id"].iloc[0]}
    assert {e["contacts_updated"] for e in events.values()} == {len(table(settings, "contacts"))}
    assert queued_asset_runs() == [(CONSUMER, "contact_snapshots.contacts")]


def unpause_in_db(bag, dag_id: str) -> None:
    """Write the folder's DAGs to Airflow's metadata DB (as the dag-processor would) and unpause one."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import sync_bag_to_db
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session

    DagBundlesManager().sync_bundles_to_db()
    sync_bag_to_db(bag, "dags-folder", None)
    with create_session() as session:
        session.query(DagModel).filter(DagModel.dag_id == dag_id).update({"is_paused": False})


def queued_asset_runs() -> list[tuple[str, str]]:
    """(DAG, asset) pairs the scheduler would start a run for, after asset events."""
    from airflow.models.asset import AssetDagRunQueue, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select as sql_select

    with create_session() as session:
        return [tuple(row) for row in session.execute(
            sql_select(AssetDagRunQueue.target_dag_id, AssetModel.name).join(AssetModel, AssetModel.id == AssetDagRunQueue.asset_id)
        ).all()]


def published_asset_events(run) -> dict[str, dict]:
    """Asset name → extra of the asset events the run's publish task emitted (from Airflow's metadata DB)."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select as sql_select

    with create_session() as session:
        rows = session.execute(
            sql_select(AssetModel.name, AssetEvent.extra).join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .where(AssetEvent.source_dag_id == "contact_snapshots", AssetEvent.source_run_id == run.run_id)
        ).all()
    return {name: extra for name, extra in rows}


def test_the_example_consumer_runs_and_does_nothing_else(bag):
    run = bag.get_dag(CONSUMER).test()
    assert run.state == "success"
    (announce,) = run.get_task_instances()
    assert announce.task_id == "announce" and announce.state == "success"


# --- failures, retries and settings in Airflow ---------------------------------------------------------


@pytest.fixture
def dag_env(tmp_path, sqlite_url, monkeypatch):
    """Two landing days and the CONTACTS_* environment a worker would have; returns the warehouse's settings."""
    from pipeline.settings import Settings
    from tests.helpers import conversion, event, write_partition

    landing = tmp_path / "landing"
    write_partition(landing, "2025-03-01", [event("a", "v1", "2025-03-01 10:00:00"), conversion("b", "v1", "2025-03-01 10:05:00", "/t", "a@b.co")])
    write_partition(landing, "2025-03-02", [event("c", "v2", "2025-03-02 10:00:00"), conversion("d", "v2", "2025-03-02 10:05:00", "/t", "c@d.co")])
    for name, value in {"WAREHOUSE_URL": sqlite_url, "LANDING": str(landing), "WORKSPACE": str(tmp_path / "runs"), "BUCKETS": "2"}.items():
        monkeypatch.setenv(f"CONTACTS_{name}", value)
    return Settings(warehouse_url=sqlite_url, landing=landing, workspace=tmp_path / "runs")


def states_of(run) -> dict[str, list[str]]:
    states: dict[str, list[str]] = {}
    for ti in run.get_task_instances():
        states.setdefault(ti.task_id, []).append(str(ti.state))
    return states


def lock_holder(settings):
    from pipeline.warehouse.tables import warehouse_state
    from tests.helpers import scalar, select

    return scalar(settings, select(warehouse_state.c.lock_run_id))


def fail_once_at(monkeypatch, tmp_path, point: str) -> None:
    monkeypatch.setenv("CONTACTS_FAULT_POINT", point)
    monkeypatch.setenv("CONTACTS_FAULT_ACTION", "raise")
    monkeypatch.setenv("CONTACTS_FAULT_MARKER", str(tmp_path / "marker"))


def test_a_task_that_keeps_failing_runs_mark_failed_which_fails_the_run_and_frees_the_lock(dag, dag_env, tmp_path, monkeypatch):
    for task in dag.tasks:
        monkeypatch.setattr(task, "retries", 0)
    fail_once_at(monkeypatch, tmp_path, "check.during")
    failed = dag.test(logical_date=datetime(2025, 3, 1, tzinfo=timezone.utc))
    assert failed.state == "failed"
    states = states_of(failed)
    assert (states["check"], states["publish"], states["mark_failed"]) == (["failed"], ["upstream_failed"], ["success"])
    runs = table(dag_env, "pipeline_runs")
    assert runs[["status", "error"]].values.tolist() == [["failed", "task check failed in Airflow; see its task log"]]
    assert lock_holder(dag_env) is None and table(dag_env, "contacts").empty
    monkeypatch.delenv("CONTACTS_FAULT_POINT")
    again = dag.test(logical_date=datetime(2025, 3, 2, tzinfo=timezone.utc), run_conf={"day": "2025-03-01"})
    assert again.state == "success" and states_of(again)["mark_failed"] == ["skipped"]
    assert table(dag_env, "pipeline_runs", order_by=["started_at"])["status"].tolist() == ["failed", "success"]
    assert table(dag_env, "contacts")["email"].tolist() == ["a@b.co"] and lock_holder(dag_env) is None


def test_the_failure_recorded_names_the_failed_tasks_mapped_ones_once():
    from pipeline.runs.start import failed_tasks

    states = {"start": "success", "summarise_0": "failed", "summarise_1": "failed", "check": "upstream_failed", "identify": "success"}
    assert failed_tasks(states) == "task summarise failed in Airflow; see its task log"
    assert failed_tasks({**states, "stage": "failed"}) == "tasks stage, summarise failed in Airflow; see their task logs"
    assert failed_tasks({"start": "running"}) == "a task failed in Airflow; see the task logs"


def test_a_task_that_fails_once_is_retried_and_the_run_succeeds(dag, dag_env, tmp_path, monkeypatch):
    from datetime import timedelta

    for task in dag.tasks:
        monkeypatch.setattr(task, "retry_delay", timedelta(0))
    fail_once_at(monkeypatch, tmp_path, "identify.during")
    run = dag.test(logical_date=datetime(2025, 3, 1, tzinfo=timezone.utc))
    assert run.state == "success" and (tmp_path / "marker").read_text() == "identify.during\n"
    (identify,) = [ti for ti in run.get_task_instances() if ti.task_id == "identify"]
    assert identify.try_number == 2 and states_of(run)["mark_failed"] == ["skipped"]
    runs = table(dag_env, "pipeline_runs")
    assert runs["status"].tolist() == ["success"] and table(dag_env, "contacts")["email"].tolist() == ["a@b.co"]


def test_airflow_variables_override_the_environment_and_full_refresh_rebuilds_every_day(dag, dag_env, tmp_path, monkeypatch):
    from airflow.models.variable import Variable

    monkeypatch.setenv("CONTACTS_LANDING", str(tmp_path / "nowhere"))  # the environment is wrong; the Variables are right
    variables = {"contacts_landing": str(dag_env.landing), "contacts_buckets": "3"}
    for name, value in variables.items():
        Variable.set(name, value)
    try:
        run = dag.test(logical_date=datetime(2025, 3, 1, tzinfo=timezone.utc), run_conf={"full_refresh": True})
    finally:
        for name in variables:
            Variable.delete(name)
    assert run.state == "success" and len(states_of(run)["sessionize"]) == 3
    runs = table(dag_env, "pipeline_runs")
    assert runs[["full_refresh", "interval_start", "interval_end"]].values.tolist() == [[True, date(2025, 3, 1), date(2025, 3, 2)]]
    assert table(dag_env, "contacts")["email"].tolist() == ["a@b.co", "c@d.co"]
