"""Publish: apply a run's workspace to the warehouse in one transaction, or not at all.

Readers and BI keep seeing the previous state until the commit. Runs take turns through the warehouse
lock (`lock.py`); as a second guard the transaction checks that the warehouse is still at the version the
run started from, so a run computed on a stale state fails instead of overwriting newer data.
"""

from __future__ import annotations

from functools import partial

import pandas as pd
from sqlalchemy import Connection, and_, update

from pipeline.runs import lock
from pipeline.runs.suppression import erase_in_transaction
from pipeline.runs.workspace import RunPlan, Workspace
from pipeline.settings import Settings
from pipeline.warehouse import tables as t
from pipeline.warehouse.engines import get_engine, transaction
from pipeline.warehouse.reader_counts import refresh_reader_tables
from pipeline.warehouse.rows import IN_CHUNK, BulkRows, delete_where_in, insert_frame, read_where_in
from pipeline.warehouse.state import current_version, utc_now

READER_TABLES = ("contact_sessions", "conversions", "contacts")


class StaleRunError(RuntimeError):
    """Another run published after this one started; this run must be started again."""


def _delete_replaced(conn: Connection, workspace: Workspace, plan: RunPlan, touched: pd.Series) -> None:
    """Delete what the run recomputed (a full refresh empties every published table)."""
    n = plan.buckets
    if plan.full_refresh:
        for table in reversed(t.PUBLISHED_TABLES):
            conn.execute(table.delete())
        return
    delete_where_in(conn, t.events, "event_id", workspace.read("event_deletes")["event_id"])
    conn.execute(t.quarantined_events.delete().where(t.quarantined_events.c.load_date.in_(plan.days)))
    delete_where_in(conn, t.sessions, "session_id", workspace.read_buckets("session_deletes", n)["session_id"])
    delete_where_in(conn, t.conversions, "event_id", workspace.read_buckets("conversion_deletes", n)["event_id"])
    delete_where_in(conn, t.identities, "anonymous_id", workspace.read("changes")["anonymous_id"])
    for table in t.CONTACT_TABLES:
        delete_where_in(conn, table, "email", touched)


def _new_rows(bulk: BulkRows, workspace: Workspace, plan: RunPlan, contacts: pd.DataFrame) -> None:
    """Queue the run's new rows, table by table; one bucket of events in memory at a time."""
    n = plan.buckets
    for bucket in range(n):
        bulk.add(t.events, partial(workspace.read, f"events-{bucket}"))
    bulk.add(t.quarantined_events, partial(workspace.read, "quarantine"))
    bulk.add(t.sessions, partial(workspace.read_buckets, "sessions", n))
    bulk.add(t.conversions, partial(workspace.read_buckets, "conversions", n))
    bulk.add(t.identities, partial(workspace.read, "identities"))
    for table in t.CONTACT_TABLES:
        bulk.add(table, (lambda: contacts) if table is t.contacts else partial(workspace.read_buckets, table.name, n))


def _record_history(conn: Connection, contacts: pd.DataFrame, touched: pd.Series, plan: RunPlan) -> None:
    """SCD-2: close the open row of each contact whose summary changed (or vanished) and open a new one."""
    now = utc_now()
    h = t.contacts_history
    current = read_where_in(conn, h, "email", touched, where=h.c.valid_to.is_(None))
    before = current.set_index("email")["summary"]
    after = contacts.set_index("email")["summary"] if len(contacts) else pd.Series(dtype=str)
    emails = pd.Index(touched.unique())
    changed = [e for e in emails if before.get(e) != after.get(e)]
    closing = [e for e in changed if e in before.index]
    for start in range(0, len(closing), IN_CHUNK):
        chunk = closing[start : start + IN_CHUNK]
        conn.execute(update(h).where(and_(h.c.email.in_(chunk), h.c.valid_to.is_(None))).values(valid_to=now))
    insert_frame(conn, h, contacts[contacts["email"].isin(changed)].assign(valid_from=now))  # run_id set by the caller


def publish(settings: Settings, run_id: str, *, erase: tuple | None = None) -> dict:
    """Step last: the run's changes become visible at once, with its pipeline_runs row set to success."""
    workspace = Workspace(settings, run_id)
    plan = workspace.plan()
    engine = get_engine(settings.warehouse_url)
    touched = workspace.read_buckets("contact_deletes", plan.buckets)["email"]
    contacts = workspace.read_buckets("contacts", plan.buckets).assign(updated_at=plan.started_at, run_id=plan.run_id)
    bulk = BulkRows(engine, workspace.root / "new-rows.sqlite")
    _new_rows(bulk, workspace, plan, contacts)
    with transaction(engine) as conn:
        version = current_version(conn)
        if version != plan.base_version:
            raise StaleRunError(
                f"the warehouse changed since run {run_id} started (version {plan.base_version} → {version}); start the run again"
            )
        _delete_replaced(conn, workspace, plan, touched)
        written = bulk.insert(conn)
        refresh_reader_tables(conn, touched)
        _record_history(conn, contacts, touched, plan)
        if erase is not None:
            email, visitors = erase
            erase_in_transaction(conn, email, visitors, settings, utc_now())
        manifest = workspace.read("manifest").assign(run_id=run_id)
        insert_frame(conn, t.run_manifest, manifest)
        figures = {**plan.stats, "sessions_written": written.get("sessions", 0), "contacts_updated": len(touched)}
        conn.execute(
            update(t.pipeline_runs)
            .where(t.pipeline_runs.c.run_id == run_id)
            .values(status="success", finished_at=utc_now(), validation=workspace.validation_summary(), **figures)
        )
        conn.execute(
            update(t.warehouse_state).where(t.warehouse_state.c.id == 1).values(version=version + 1, published_at=utc_now(), run_id=run_id)
        )
        lock.release(conn, run_id)
    refresh_planner_statistics(engine)
    workspace.remove()
    return figures


def refresh_planner_statistics(engine) -> None:
    """Fresh statistics after a publish, so the reader's queries pick the filter indexes (cheap: sampled)."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":  # PRAGMA optimize (before 3.46) skips tables this connection never read
            conn.exec_driver_sql("PRAGMA analysis_limit=1000")
            for table in READER_TABLES:
                conn.exec_driver_sql(f"ANALYZE {table}")
        else:
            conn.exec_driver_sql(f"ANALYZE {', '.join(READER_TABLES)}")
        conn.commit()
