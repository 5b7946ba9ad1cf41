"""Publish: apply a run's workspace to the warehouse in one transaction, or not at all.

Readers and BI keep seeing the previous state until the commit. Runs take turns through the warehouse
lock (`lock.py`); as a second guard the transaction checks that the warehouse is still at the version the
run started from, so a run computed on a stale state fails instead of overwriting newer data.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, wait
from dataclasses import dataclass
from datetime import datetime
from functools import partial

import pandas as pd
from sqlalchemy import Connection, and_, select, update

from pipeline.runs import lock
from pipeline.runs.faults import fault_point
from pipeline.runs.suppression import erase_in_transaction
from pipeline.runs.threads import in_background
from pipeline.runs.workspace import RunPlan, Workspace
from pipeline.settings import Settings
from pipeline.warehouse import tables as t
from pipeline.warehouse.engines import get_engine, transaction
from pipeline.warehouse.event_store import EventStore, commit_files, live_files, remove_leftovers, write_catalog
from pipeline.warehouse.reader_counts import refresh_reader_tables
from pipeline.warehouse.bulk import BulkRows
from pipeline.warehouse.rows import IN_CHUNK, delete_pairs_in, delete_where_in, insert_frame, read_where_in
from pipeline.warehouse.state import current_version, utc_now

STAGING_FIGURES = ("events_read", "events_loaded", "events_duplicate", "events_quarantined", "events_bot")
READER_TABLES = ("contact_sessions", "conversions", "contacts")
INSERT_ORDER = {  # the order new rows go in on SQLite (BulkRows): the sort keys their indexes share (sessions come
    # from sessionize in their visitor index's order already)
    "contact_sessions": ["session_timestamp", "session_id", "email"],
    "contact_conversions": ["session_timestamp", "session_id", "email"],
}
# the scratch file each table's rows are written to (BulkRows' two lanes, two cores): the visits' tables on one, the
# contacts' on the other, about even in bytes
TABLE_LANES = {table.name: 1 for table in (*t.CONTACT_TABLES, t.contacts_history)}


class StaleRunError(RuntimeError):
    """Another run published after this one started; this run must be started again."""


def _delete_replaced(conn: Connection, settings: Settings, store: EventStore, workspace: Workspace, plan: RunPlan, touched: pd.Series) -> None:
    """Delete what the run recomputed (a full refresh empties every published table)."""
    n = plan.buckets
    if plan.full_refresh:
        for table in reversed(t.PUBLISHED_TABLES):
            conn.execute(table.delete())
        return
    if settings.events_table:
        delete_where_in(conn, t.events, "event_id", store.read(plan.retired_files, ["event_id"])["event_id"])
    conn.execute(t.quarantined_events.delete().where(t.quarantined_events.c.load_date.in_(plan.days)))
    delete_pairs_in(conn, t.sessions, workspace.read_buckets("session_deletes", n)[["anonymous_id", "session_id"]])
    delete_where_in(conn, t.conversions, "event_id", workspace.read_buckets("conversion_deletes", n)["event_id"])
    delete_where_in(conn, t.identities, "anonymous_id", workspace.read("identity_deletes")["anonymous_id"])
    published = read_where_in(conn, t.contacts, "email", touched, ["email"])["email"]  # most touched contacts are new
    for table in t.CONTACT_TABLES:  # a contact's rows in these tables exist only beside its row in `contacts`
        delete_where_in(conn, table, "email", published)


def _visit_rows(bulk: BulkRows, settings: Settings, store: EventStore, workspace: Workspace, plan: RunPlan) -> None:
    """Queue the run's new visit rows (events if kept in SQL, quarantine, sessions, conversions, identities), one
    bucket (or one event file) in memory at a time: all there once identify has run."""
    n = plan.buckets
    if settings.events_table:
        for file in plan.event_files():
            bulk.add(t.events, partial(store.read, [file.path]))
    bulk.add(t.quarantined_events, partial(workspace.read, "quarantine"))
    for bucket in range(n):
        bulk.add(t.sessions, partial(workspace.read, f"sessions-{bucket}"))
    bulk.add(t.conversions, partial(workspace.read_buckets, "conversions", n))
    bulk.add(t.identities, partial(workspace.read, "identities"))


def _contact_rows(bulk: BulkRows, workspace: Workspace, plan: RunPlan, conn: Connection, now) -> list[str]:
    """Queue the run's contact rows and the contacts' new history rows; returns the contacts whose open history row
    publish closes."""
    closing = []
    for bucket in range(plan.buckets):
        contacts = workspace.read(f"contacts-{bucket}").assign(updated_at=plan.started_at, run_id=plan.run_id)
        for table in t.CONTACT_TABLES:
            bulk.add(table, (lambda frame=contacts: frame) if table is t.contacts else partial(workspace.read, f"{table.name}-{bucket}"))
        closed, opened = history_changes(conn, contacts, workspace.read(f"contact_deletes-{bucket}")["email"])
        bulk.add(t.contacts_history, lambda frame=opened: frame.assign(valid_from=now))
        closing += closed
    return closing


def history_changes(conn: Connection, contacts: pd.DataFrame, touched: pd.Series) -> tuple[list[str], pd.DataFrame]:
    """SCD-2: the touched contacts whose summary changed or vanished (their open history row closes) and the rows
    that open for those still there. Read before publish's transaction, under the run's lock."""
    h = t.contacts_history
    current = read_where_in(conn, h, "email", touched, ["email", "summary"], where=h.c.valid_to.is_(None))
    before = current.set_index("email")["summary"].reindex(touched.unique())
    after = contacts.set_index("email")["summary"].reindex(before.index) if len(contacts) else pd.Series(pd.NA, index=before.index, dtype="str")
    changed = before.index[~((before == after).fillna(False).astype(bool) | (before.isna() & after.isna()))]
    closing = before.index[before.notna()].intersection(changed).tolist()
    return closing, contacts[contacts["email"].isin(changed)]


def _close_history(conn: Connection, emails: list[str], now) -> None:
    """Close the open history rows of these contacts (before the new rows go in)."""
    h = t.contacts_history
    for start in range(0, len(emails), IN_CHUNK):
        chunk = emails[start : start + IN_CHUNK]
        conn.execute(update(h).where(and_(h.c.email.in_(chunk), h.c.valid_to.is_(None))).values(valid_to=now))


@dataclass
class Prepared:
    """Publish's work before its transaction: the new rows (on SQLite already written ahead to a scratch file), the
    history rows to close, the touched contacts and the time the history records."""

    bulk: BulkRows
    closing: list[str]
    touched: pd.Series
    now: datetime


@dataclass
class Started:
    """Publish's visit rows on their way (`start_prepare`): the rows queued by a background thread onto their lane."""

    bulk: BulkRows
    queued: Future

    def discard(self) -> None:
        """Drop them (the run failed before `prepare`; its own error is the one to report, not the queue's)."""
        wait([self.queued])
        self.bulk.discard()


def start_prepare(settings: Settings, run_id: str) -> Started | None:
    """Start writing the visit rows ahead once identify has run: a chain of runs does it while summarise computes,
    on one thread, beside the lane on the other core (a full refresh's summarise kept 1.2 cores busy). The rows are
    queued from a background thread too: `add` waits while its lane holds unfinished jobs. `prepare` then adds the
    contacts' rows; a run that fails before must `discard` what this returns."""
    workspace = Workspace(settings, run_id)
    plan = workspace.plan()
    if plan.unchanged_since:
        return None
    engine = get_engine(settings.warehouse_url)
    bulk = BulkRows(engine, workspace.root / "new-rows.sqlite", INSERT_ORDER, emptied=plan.full_refresh, lanes=TABLE_LANES)
    store = EventStore(settings.event_store_location())
    return Started(bulk, in_background(_visit_rows, bulk, settings, store, workspace, plan))


def prepare(settings: Settings, run_id: str, started: Started | None = None) -> Prepared | None:
    """Everything publish can do before its transaction; nothing in the warehouse changes. A chain of runs does it
    while the quality worker finishes the last gates (None: an unchanged rerun, nothing to prepare); `started`: the
    visit rows already on their way (`start_prepare`; otherwise started here)."""
    workspace = Workspace(settings, run_id)
    plan = workspace.plan()
    if plan.unchanged_since:
        return None
    now = utc_now()
    started = started or start_prepare(settings, run_id)
    bulk = started.bulk
    try:
        started.queued.result()
        with get_engine(settings.warehouse_url).connect() as conn:
            closing = _contact_rows(bulk, workspace, plan, conn, now)
        bulk.seal()
    except BaseException:
        bulk.discard()
        raise
    return Prepared(bulk, closing, workspace.read_buckets("contact_deletes", plan.buckets)["email"], now)


def publish(
    settings: Settings, run_id: str, *, erase: tuple | None = None, prepared: Prepared | None = None, gate: Callable[[Connection], dict] | None = None,
) -> dict:
    """Step last: the run's changes become visible at once, with its pipeline_runs row set to success. A `gate` (a chain
    of runs' quality check: `worker_gate`) is passed just before the commit, in the transaction; if it raises, the
    transaction rolls back."""
    workspace = Workspace(settings, run_id)
    plan = workspace.plan()
    if plan.unchanged_since:
        return _publish_unchanged(settings, plan)
    engine = get_engine(settings.warehouse_url)
    store = EventStore(settings.event_store_location())
    prepared = prepared or prepare(settings, run_id)
    bulk, closing, touched, now = prepared.bulk, prepared.closing, prepared.touched, prepared.now
    new_files = plan.event_files()
    durable = in_background(store.make_durable, [f.path for f in new_files])  # beside the transaction's work
    with transaction(engine) as conn:
        version = _check_version(conn, plan)
        _delete_replaced(conn, settings, store, workspace, plan, touched)
        _close_history(conn, closing, now)
        written = bulk.insert(conn, after_each=lambda _table: fault_point(settings, "publish.after_first_copy"))
        refresh_reader_tables(conn, touched)
        if erase is not None:
            email, visitors = erase
            erase_in_transaction(conn, email, visitors, settings, now)
        durable.result()  # the run's files are on disk before the commit lists them
        commit_files(conn, run_id, new_files, plan.retired_files, now)
        remove_leftovers(store, conn, now, settings.event_store_grace_minutes)
        insert_frame(conn, t.run_manifest, workspace.read("manifest").assign(run_id=run_id))
        if gate:
            gate(conn)
        figures = {**plan.stats, "sessions_written": written.get("sessions", 0), "contacts_updated": len(touched)}
        _finish(conn, plan, figures, workspace.validation_summary(), version + 1)
        fault_point(settings, "publish.before_commit")
    fault_point(settings, "publish.after_commit")
    write_catalog(store, _live_paths(engine))
    if settings.event_store_grace_minutes == 0:
        store.delete(plan.retired_files)  # no longer live; their rows go at the next clean-up
    refresh_planner_statistics(engine)
    workspace.remove()
    return figures


def _live_paths(engine) -> list[str]:
    with engine.connect() as conn:
        return live_files(conn)["path"].tolist()


def _check_version(conn: Connection, plan: RunPlan) -> int:
    """The published version, which must still be the one the run started from."""
    version = current_version(conn)
    if version != plan.base_version:
        raise StaleRunError(
            f"the warehouse changed since run {plan.run_id} started (version {plan.base_version} → {version}); start the run again"
        )
    return version


def _finish(conn: Connection, plan: RunPlan, figures: dict, validation: str | None, version: int) -> None:
    """The run's row says success, the warehouse state its new version, and the lock is free."""
    conn.execute(
        update(t.pipeline_runs)
        .where(t.pipeline_runs.c.run_id == plan.run_id)
        .values(status="success", finished_at=utc_now(), validation=validation, **figures)
    )
    conn.execute(update(t.warehouse_state).where(t.warehouse_state.c.id == 1).values(version=version, published_at=utc_now(), run_id=plan.run_id))
    lock.release(conn, plan.run_id)


def _publish_unchanged(settings: Settings, plan: RunPlan) -> dict:
    """A rerun whose files and settings are those of an earlier run: recorded as done with that run's staging figures
    (the same lines, read then); it writes no session or contact, and the tables stay as they are."""
    runs = t.pipeline_runs
    with transaction(get_engine(settings.warehouse_url)) as conn:
        version = _check_version(conn, plan)
        staged = conn.execute(select(*(runs.c[name] for name in STAGING_FIGURES)).where(runs.c.run_id == plan.unchanged_since)).mappings().one()
        figures = {**staged, "sessions_written": 0, "contacts_updated": 0}
        _finish(conn, plan, figures, f"unchanged since {plan.unchanged_since}", version)
    Workspace(settings, plan.run_id).remove()
    return {**figures, "unchanged_since": plan.unchanged_since}


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
