"""Start and fail a run of one data interval: the lock, its pipeline_runs row and its plan."""

from __future__ import annotations

import math
import uuid
from datetime import date

from sqlalchemy import Connection, select, update

from pipeline.contract.landing import estimated_events, file_digest, landing_days, partition_files
from pipeline.runs import lock
from pipeline.runs.faults import START_POINT, fault_point
from pipeline.runs.workspace import RunPlan, Workspace
from pipeline.settings import Settings
from pipeline.warehouse import tables as t
from pipeline.warehouse.engines import create_tables, get_engine, transaction
from pipeline.warehouse.event_store import EventStore, live_files, remove_leftovers, write_catalog
from pipeline.warehouse.rows import is_empty
from pipeline.warehouse.state import current_version, utc_now


def new_run_id(days: list[date], full_refresh: bool) -> str:
    """A readable unique id: the interval plus a random suffix."""
    kind = "full" if full_refresh else "day"
    return f"{kind}_{days[0].isoformat()}_{uuid.uuid4().hex[:12]}"


def start_run(
    settings: Settings,
    days: list[date],
    *,
    full_refresh: bool = False,
    run_id: str | None = None,
    interval: tuple | None = None,
    owner: str | None = None,
) -> str:
    """Take the warehouse lock, record a `running` row and the run's plan (a retried start starts afresh)."""
    engine = get_engine(settings.warehouse_url)
    create_tables(engine)
    interval = interval or (days[0], days[-1])
    run_id = run_id or new_run_id([interval[0]], full_refresh)
    with engine.connect() as conn:
        if not full_refresh and is_empty(conn, t.event_files) and not is_empty(conn, t.events):
            raise ValueError("this warehouse keeps its events in the SQL table `events` (made before the event store): rebuild it once with --full-refresh")
    lock.acquire(settings, run_id, owner)
    try:
        return _record_and_plan(settings, engine, days, full_refresh, run_id, interval)
    except BaseException as exc:  # the lock is ours: give it back, or the next run waits for it to go stale
        fail_run(settings, run_id, exc)
        raise


def _record_and_plan(settings: Settings, engine, days: list[date], full_refresh: bool, run_id: str, interval: tuple) -> str:
    """Under the lock: clean up after killed runs, record the `running` row, and save the run's plan."""
    now = utc_now()
    fingerprint = settings.derived_fingerprint()
    with transaction(engine) as conn:
        version = current_version(conn)
        store = EventStore(settings.event_store_location())
        remove_leftovers(store, conn, now, settings.event_store_grace_minutes)
        write_catalog(store, live_files(conn)["path"].tolist())  # heals a catalog a killed publish left stale
        unchanged = None if full_refresh or len(days) != 1 else unchanged_since(conn, settings, days[0], fingerprint)
        conn.execute(t.pipeline_runs.delete().where(t.pipeline_runs.c.run_id == run_id))
        conn.execute(
            t.pipeline_runs.insert().values(
                run_id=run_id,
                interval_start=interval[0],
                interval_end=interval[1],
                full_refresh=full_refresh,
                started_at=now,
                status="running",
                settings_fingerprint=fingerprint,
                unchanged_since=unchanged,
            )
        )
    fault_point(settings, START_POINT)
    buckets = run_buckets(settings, days)
    plan = RunPlan(run_id, list(days), full_refresh, buckets, version, now, unchanged_since=unchanged, fingerprint=fingerprint)
    workspace = Workspace(settings, run_id)
    workspace.remove()
    workspace.save_plan(plan)
    return run_id


def run_buckets(settings: Settings, days: list[date]) -> int:
    """The run's bucket count: the setting, or more when the load is big, so a bucket holds about `bucket_events`.

    The size is estimated from the landing files (about 400 bytes a JSON line, 60 gzipped, 150 in Parquet).
    """
    estimate = sum(estimated_events(path) for day in days for path in partition_files(settings.landing, day))
    return max(settings.buckets, min(1024, math.ceil(estimate / settings.bucket_events)))


def unchanged_since(conn: Connection, settings: Settings, day: date, fingerprint: str) -> str | None:
    """The last successful run that staged exactly these files of `day` with these settings, if any: a rerun then has
    nothing to redo (SPEC §9: a rerun that changes nothing costs less than the first run)."""
    last = _last_staged(conn, day)
    if last is None or last.settings_fingerprint != fingerprint:
        return None
    now = {(f"dt={day.isoformat()}/{path.name}", *file_digest(path)) for path in partition_files(settings.landing, day)}
    return last.run_id if _staged_files(conn, last.run_id, day) == now else None


def looks_unchanged(conn: Connection, settings: Settings, day: date) -> bool:
    """Whether `day`'s files have the names and sizes the last successful run staged with these settings: what
    unchanged_since would probably say, without reading the files (a read-ahead skips such a day)."""
    last = _last_staged(conn, day)
    if last is None or last.settings_fingerprint != settings.derived_fingerprint():
        return False
    now = {(f"dt={day.isoformat()}/{path.name}", path.stat().st_size) for path in partition_files(settings.landing, day)}
    return {(name, size) for name, size, _ in _staged_files(conn, last.run_id, day)} == now


def _last_staged(conn: Connection, day: date):
    """(run_id, settings_fingerprint) of the last successful run that staged files of `day`, or None."""
    runs, m = t.pipeline_runs, t.run_manifest
    return conn.execute(
        select(runs.c.run_id, runs.c.settings_fingerprint)
        .join(m, m.c.run_id == runs.c.run_id)
        .where(runs.c.status == "success", m.c.load_date == day)
        .order_by(runs.c.finished_at.desc())
        .limit(1)
    ).first()


def _staged_files(conn: Connection, run_id: str, day: date) -> set[tuple]:
    m = t.run_manifest
    return {tuple(row) for row in conn.execute(select(m.c.source_file, m.c.bytes, m.c.sha256).where(m.c.run_id == run_id, m.c.load_date == day))}


def fail_run(settings: Settings, run_id: str, error: BaseException | str) -> None:
    """Mark the run failed with a one-line reason and give the lock back; the published tables are untouched."""
    message = str(error).splitlines()[0] if str(error) else type(error).__name__
    reason = message if isinstance(error, str) else f"{type(error).__name__}: {message}"
    validation = Workspace(settings, run_id).validation_summary()
    engine = get_engine(settings.warehouse_url)
    with transaction(engine) as conn:
        conn.execute(
            update(t.pipeline_runs)
            .where(t.pipeline_runs.c.run_id == run_id)
            .values(status="failed", finished_at=utc_now(), error=reason[:2000], validation=validation)
        )
        lock.release(conn, run_id)


def failed_tasks(states: dict[str, str | None]) -> str:
    """The reason an orchestrated run failed, from its task states (task id, or task id_map index → state)."""
    failed = sorted({task.rsplit("_", 1)[0] if task.rsplit("_", 1)[-1].isdigit() else task for task, state in states.items() if state == "failed"})
    if len(failed) == 1:
        return f"task {failed[0]} failed in Airflow; see its task log"
    return f"tasks {', '.join(failed)} failed in Airflow; see their task logs" if failed else "a task failed in Airflow; see the task logs"


def start_interval(settings: Settings, day: str, run_key: str, full_refresh: bool) -> str:
    """Start the run of one load day (YYYY-MM-DD); a full refresh covers every landing partition."""
    load_day = date.fromisoformat(day)
    days = landing_days(settings.landing) if full_refresh else [load_day]
    run_id = safe_run_id(run_key)
    return start_run(settings, days or [load_day], full_refresh=full_refresh, run_id=run_id, owner=f"airflow:{run_id}")


def safe_run_id(run_key: str) -> str:
    """An orchestrator's run id made safe for a folder name, stable across task retries."""
    return "airflow_" + "".join(c if c.isalnum() or c in "-_." else "_" for c in run_key)
