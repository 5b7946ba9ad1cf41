"""Right to erasure: `forget EMAIL` removes a contact everywhere, and keeps it out of every later run.

Erasing is a run like any other: the contact's events are the run's deletions (its event files are written again
without them), the usual steps re-derive the sessions, identities and summaries they touched, and publish applies
it all in one transaction, together with the quarantine and history rows that carry the email and the suppression
hashes. Staging then turns away suppressed events (as quarantine rows with the text redacted), so neither a rerun
nor a full refresh from the landing files brings the contact back.
"""

from __future__ import annotations

import uuid
from datetime import date

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from pipeline.runs.nightly import run_steps
from pipeline.runs.start import fail_run, start_run
from pipeline.runs.suppression import VALID_EMAIL
from pipeline.runs.workspace import Workspace
from pipeline.settings import Settings
from pipeline.transform.keys import md5_keys
from pipeline.warehouse import tables as t
from pipeline.warehouse.engines import create_tables, get_engine
from pipeline.warehouse.event_store import EventStore, live_files
from pipeline.warehouse.rows import read_where_in

NO_FIGURES = {"events_read": 0, "events_loaded": 0, "events_duplicate": 0, "events_quarantined": 0, "events_bot": 0}


def contact_events(store: EventStore, files: list[str], email: str, visitors: list[str]) -> pd.DataFrame:
    """The events to erase, with their files: the contact's conversions, and everything of its own devices but other
    contacts' conversions."""
    columns = ["event_id", "anonymous_id", "timestamp", "email"]
    own = ds.field("anonymous_id").isin(pa.array(visitors, type=pa.string())) & (ds.field("email").is_null() | (ds.field("email") == email))
    return store.rows_where(files, (ds.field("email") == email) | own, columns)


def forget(settings: Settings, email: str) -> dict:
    """Erase one contact in a single run; returns what was removed (counts only, never the email)."""
    email = email.strip().lower()
    if not VALID_EMAIL.match(email):
        raise ValueError(f"not an email address: {email!r}")
    create_tables(get_engine(settings.warehouse_url))
    today = date.today()
    run_id = start_run(settings, [], run_id=f"forget_{uuid.uuid4().hex[:12]}", interval=(today, today))
    try:
        doomed, visitors = _plan_erasure(settings, run_id, email)
    except BaseException as exc:
        fail_run(settings, run_id, exc)
        raise
    figures = run_steps(settings, run_id, erase=(email, visitors))
    return {"events_erased": len(doomed), "devices_suppressed": len(visitors), **figures}


def _plan_erasure(settings: Settings, run_id: str, email: str) -> tuple[pd.DataFrame, list[str]]:
    """Under the run's lock: find the contact's events, rewrite their files without them, and note the visitors to redo."""
    store = EventStore(settings.event_store_location())
    with get_engine(settings.warehouse_url).connect() as conn:
        visitors = read_where_in(conn, t.identities, "email", [email], ["anonymous_id"])["anonymous_id"].tolist()
        live = live_files(conn)
    doomed = contact_events(store, live["path"].tolist(), email, visitors)
    workspace = Workspace(settings, run_id)
    plan = workspace.plan()
    new_files, replaced = store.rewrite_without(doomed, dict(zip(live["path"], live["load_date"])), run_id)
    changes = doomed.groupby("anonymous_id", as_index=False)["timestamp"].min().rename(columns={"timestamp": "change_at"})
    workspace.write_changes(changes.assign(visitor_key=md5_keys(changes["anonymous_id"])), plan.buckets)
    workspace.write("quarantine", pd.DataFrame(columns=["load_date", "source_file", "line_number", "raw", "reason", "event_id", "email"]))
    workspace.write("manifest", pd.DataFrame(columns=["load_date", "source_file", "bytes", "sha256", "lines_read"]))
    plan.new_files, plan.retired_files, plan.stats = [f.to_json() for f in new_files], replaced, dict(NO_FIGURES)
    workspace.save_plan(plan)
    return doomed, visitors
