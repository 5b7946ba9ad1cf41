"""Right to erasure: `forget EMAIL` removes a contact everywhere, and keeps it out of every later run.

Erasing is a run like any other: the contact's events are the run's deletions, the usual steps
re-derive the sessions, identities and summaries they touched, and publish applies it all in one
transaction, together with the quarantine and history rows that carry the email and the suppression
hashes. Staging then turns away suppressed events (as quarantine rows with the text redacted), so
neither a rerun nor a full refresh from the landing files brings the contact back.
"""

from __future__ import annotations

import uuid
from datetime import date

import pandas as pd

from pipeline.contract.staging import EVENT_COLUMNS, ORIGIN
from pipeline.runs.nightly import run_steps
from pipeline.runs.start import start_run
from pipeline.runs.suppression import VALID_EMAIL, contact_events
from pipeline.runs.workspace import Workspace
from pipeline.settings import Settings
from pipeline.warehouse import tables as t
from pipeline.warehouse.engines import create_tables, get_engine
from pipeline.warehouse.rows import read_where_in


def forget(settings: Settings, email: str) -> dict:
    """Erase one contact in a single run; returns what was removed (counts only, never the email)."""
    email = email.strip().lower()
    if not VALID_EMAIL.match(email):
        raise ValueError(f"not an email address: {email!r}")
    engine = get_engine(settings.warehouse_url)
    create_tables(engine)
    with engine.connect() as conn:
        visitors = read_where_in(conn, t.identities, "email", [email], ["anonymous_id"])["anonymous_id"].tolist()
        doomed = contact_events(conn, email, visitors)
    today = date.today()
    run_id = start_run(settings, [], run_id=f"forget_{uuid.uuid4().hex[:12]}", interval=(today, today))
    workspace = Workspace(settings, run_id)
    plan = workspace.plan()
    empty = pd.DataFrame({c: pd.Series(dtype="str") for c in [*EVENT_COLUMNS, *ORIGIN]}).assign(is_bot=pd.Series(dtype=bool))
    empty["timestamp"] = pd.Series(dtype="datetime64[us, UTC]")
    workspace.write_buckets("events", empty, "anonymous_id", plan.buckets)
    workspace.write("event_deletes", doomed[["event_id"]])
    workspace.write("quarantine", pd.DataFrame(columns=["load_date", "source_file", "line_number", "raw", "reason", "event_id", "email"]))
    workspace.write("manifest", pd.DataFrame(columns=["load_date", "source_file", "bytes", "sha256", "lines_read"]))
    changes = doomed.groupby("anonymous_id", as_index=False)["timestamp"].min().rename(columns={"timestamp": "change_at"})
    workspace.write("changes", changes)
    plan.stats = {"events_read": 0, "events_loaded": 0, "events_duplicate": 0, "events_quarantined": 0, "events_bot": 0}
    workspace.save_plan(plan)
    figures = run_steps(settings, run_id, erase=(email, visitors))
    return {"events_erased": len(doomed), "devices_suppressed": len(visitors), **figures}
