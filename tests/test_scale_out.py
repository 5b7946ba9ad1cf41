"""The scale-out path, end to end: CeleryExecutor + Redis broker + PostgreSQL metadata and warehouse.

One real Airflow deployment in a temp folder (scheduler, dag-processor, API server and one Celery worker,
see scripts/airflow_celery_e2e.py and docs/scale-out.md) runs ONE triggered `contact_snapshots` run for
load day 2025-03-01. The run must succeed with 4 buckets, every task must have gone through the Celery
worker, the warehouse must hold what the landing partition says, and it must equal an in-process run.
~75-90 s; no process, database or broker message is left behind.
"""

from __future__ import annotations

import os
import re
import time
from datetime import date

import pytest

from scripts.airflow_celery_e2e import run_one_day, running_stack

DAY = date(2025, 3, 1)
BUCKETS = 4
COUNTED_TABLES = ("events", "quarantined_events", "sessions", "conversions", "identities", "contact_sessions", "contacts")

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def _services_or_skip() -> None:
    """PostgreSQL and Redis on loopback; outside CI a missing one skips with the reason, with CI set it fails."""
    import redis

    from tests.conftest import _postgres_or_skip

    _postgres_or_skip()
    url = os.environ.get("CONTACTS_E2E_REDIS_URL", "redis://127.0.0.1:6379/11")
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=3)
        client.ping()
        client.close()
    except Exception as exc:  # noqa: BLE001
        message = f"Redis not reachable at {url}: {str(exc).splitlines()[0]}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def _counts(url: str, store: str) -> dict[str, int]:
    """Rows per published table; the events are counted in the event store's live files."""
    from sqlalchemy import create_engine, func, select

    from pipeline.warehouse import tables as t
    from pipeline.warehouse.event_store import EventStore, live_files

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            counts = {name: conn.execute(select(func.count()).select_from(t.metadata.tables[name])).scalar()
                      for name in COUNTED_TABLES if name != "events"}
            counts["events"] = int(live_files(conn)["rows"].sum())
            assert sorted(EventStore(store).files_on_disk()) == sorted(live_files(conn)["path"])  # nothing left over
            return counts
    finally:
        engine.dispose()


def _rows(url: str, query) -> list[dict]:
    from sqlalchemy import create_engine

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]
    finally:
        engine.dispose()


def _in_process_reference(tmp_path, landing) -> dict:
    """The same landing partition through the same steps without Airflow (pipeline.nightly), on SQLite."""
    from sqlalchemy import select

    from pipeline.runs.nightly import run_days
    from pipeline.settings import Settings
    from pipeline.warehouse import tables as t
    from pipeline.warehouse.engines import dispose_engines

    url = f"sqlite:///{tmp_path / 'reference.db'}"
    settings = Settings(warehouse_url=url, landing=landing, workspace=tmp_path / "reference-runs", buckets=BUCKETS)
    run_days(settings, DAY, DAY)
    emails = [r["email"] for r in _rows(url, select(t.contacts.c.email).order_by(t.contacts.c.email))]
    reference = {"counts": _counts(url, settings.event_store_location()), "emails": emails}
    dispose_engines(url)
    return reference


@pytest.mark.timeout(720)
def test_celery_workers_run_one_day_of_the_dag_into_the_postgresql_warehouse(tmp_path):
    _services_or_skip()
    from sqlalchemy import select

    from pipeline.runs.start import safe_run_id
    from pipeline.warehouse import tables as t

    started = time.monotonic()
    written = {}

    def write_landing(stack):
        written["summary"] = stack.write_landing(DAY, visitors=60)

    with running_stack(tmp_path / "stack", buckets=BUCKETS, before_start=write_landing) as stack:
        print(f"\n[scale-out] stack ready after {time.monotonic() - started:.0f} s; logs: {stack.logs}")
        run = run_one_day(stack, DAY, timeout=240)
        print(f"[scale-out] run {run['dag_run_id']} {run['state']} after {time.monotonic() - started:.0f} s")
        assert run["state"] == "success", stack.task_log_tails()
        summary = written["summary"]

        # exactly one run: the triggered one (use_job_schedule=False: no catch-up runs for the days since the start date)
        runs = stack.dag_runs()
        assert [(r["dag_run_id"], r["run_type"]) for r in runs] == [(run["dag_run_id"], "manual")]
        assert run["logical_date"].startswith("2025-03-01T00:00:00") and run["conf"] == {"day": "2025-03-01"}

        # the mapped tasks ran once per bucket, everything else once; mark_failed was skipped
        tis = stack.task_instances(run["dag_run_id"])
        states = {(ti["task_id"], ti["map_index"]): ti["state"] for ti in tis}
        for mapped in ("sessionize", "summarise"):
            assert sorted(i for task, i in states if task == mapped) == list(range(BUCKETS))
        expected = {(task, -1) for task in ("start", "stage", "identify", "check", "publish", "report")}  # report: a no-op without CONTACTS_REPORT_DIR
        expected |= {(task, i) for task in ("sessionize", "summarise") for i in range(BUCKETS)}
        assert {key for key, state in states.items() if state == "success"} == expected
        assert states[("mark_failed", -1)] == "skipped"

        # every task that ran went through the Celery worker: its queue is the one only this worker consumes,
        # the worker logged executing it, and the worker wrote one SUCCESS row per task to the result backend
        ran = [ti for ti in tis if ti["state"] == "success"]
        worker_log = (stack.logs / "celery-worker.log").read_text(errors="replace")
        executed = set(re.findall(r"Executing workload in Celery: .*?TaskInstanceDTO\(id=UUID\('([0-9a-f-]+)'\)", worker_log))
        for ti in ran:
            assert ti["queue"] == stack.queue, ti
            assert ti["hostname"], ti
            assert ti["id"] in executed, f"{ti['task_id']}[{ti['map_index']}] not in the worker log"
        # (the Celery task of the last TI ends a moment after the TI reported success through the execution API)
        stack.wait_until("the Celery results", lambda: {s for _, s in stack.celery_results()} == {"SUCCESS"}, 30, 0.5)
        assert len(stack.celery_results()) == len(ran)

        # the warehouse holds what the landing partition says
        url = stack.warehouse_url
        (pipeline_run,) = _rows(url, select(t.pipeline_runs))
        assert pipeline_run["run_id"] == safe_run_id(run["dag_run_id"])
        assert pipeline_run["status"] == "success" and pipeline_run["error"] is None
        assert pipeline_run["interval_start"] == DAY and pipeline_run["interval_end"] == DAY
        assert (pipeline_run["events_read"], pipeline_run["events_loaded"], pipeline_run["events_quarantined"],
                pipeline_run["events_duplicate"]) == (summary.lines, summary.events, summary.broken_lines, summary.duplicates)
        counts = _counts(url, str(stack.event_store))  # the workers' shared store folder
        assert counts["events"] == summary.events and counts["quarantined_events"] == summary.broken_lines
        assert counts["contacts"] > 0
        emails = [r["email"] for r in _rows(url, select(t.contacts.c.email).order_by(t.contacts.c.email))]
        (state,) = _rows(url, select(t.warehouse_state))
        assert state["lock_run_id"] is None and state["version"] >= 1
        assert list(stack.workspace.iterdir()) == []  # publish removed the run's scratch folder

    assert stack.stray == [] and stack.leftovers() == []
    print(f"[scale-out] stopped and cleaned up after {time.monotonic() - started:.0f} s"
          f" (needed SIGKILL: {stack.killed or 'none'})")

    # ... and equals the same day run in-process (same steps, no Airflow, SQLite)
    reference = _in_process_reference(tmp_path, stack.landing)
    assert counts == reference["counts"]
    assert emails == reference["emails"]
    print(f"[scale-out] {counts}; total {time.monotonic() - started:.0f} s")
