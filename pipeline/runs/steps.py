"""The steps after staging: sessionize (per visitor bucket) → identify → summarise (per contact bucket).

Each step reads the published warehouse plus the earlier steps' workspace files, and writes only to the
workspace, so any step can be retried and nothing is visible before publish. "Post-run" below means the
state the warehouse will have once this run publishes: published rows, minus what the run deletes, plus
what it writes.
"""

from __future__ import annotations

import pandas as pd

from pipeline.runs import lock
from pipeline.runs.workspace import Workspace, bucket_of
from pipeline.settings import Settings
from pipeline.transform.contacts import build_contact_tables
from pipeline.transform.frames import member
from pipeline.transform.identity import assign_identities
from pipeline.transform.sessions import TYPE_RANK, build_sessions
from pipeline.warehouse import tables as t
from pipeline.warehouse.engines import get_engine
from pipeline.warehouse.rows import read_table, read_where_in

SESSION_KEYS = ["session_id", "anonymous_id", "timestamp", "first_event_id"]


def _mine(frame: pd.DataFrame, column: str, buckets: int, bucket: int) -> pd.DataFrame:
    return frame[(bucket_of(frame[column], buckets) == bucket).to_numpy()]


def _resume_at(visitors: pd.Series, resume: pd.Series) -> pd.Series:
    """Each row's resume point (NaT: redo the visitor's whole history)."""
    values = resume.reindex(visitors.to_numpy()).to_numpy(dtype="datetime64[us]")
    return pd.Series(values, index=visitors.index).dt.tz_localize("UTC")


def resume_points(changes: pd.DataFrame, sessions: pd.DataFrame) -> pd.Series:
    """Per changed visitor, the start of its latest session that began before the earliest change (NaT: all).

    Sessions are decided from earlier events only, so everything before that session stays as it is.
    """
    none = pd.Series(pd.NaT, index=changes["anonymous_id"], dtype="datetime64[us, UTC]")
    if sessions.empty:
        return none
    change_at = sessions["anonymous_id"].map(changes.set_index("anonymous_id")["change_at"])
    before = sessions[(sessions["timestamp"] < change_at).to_numpy()]
    latest = before.groupby("anonymous_id")["timestamp"].max()
    return none.fillna(latest.reindex(none.index)).astype("datetime64[us, UTC]")


def _from_resume_point(events: pd.DataFrame, resume: pd.Series, redone: pd.DataFrame) -> pd.DataFrame:
    """Events at or after each visitor's resume point: the first event of the earliest redone session.

    Events at the resume instant that sort before that first event belong to the session before it.
    """
    at = _resume_at(events["anonymous_id"], resume)
    events = events[(at.isna() | (events["timestamp"] >= at)).to_numpy()]
    tie = (events["timestamp"] == _resume_at(events["anonymous_id"], resume)).fillna(False).to_numpy(dtype=bool)
    if not tie.any():
        return events
    tied = events[tie]
    firsts = tied[tied["event_id"].isin(redone["first_event_id"])]
    keys = {}
    for visitor, kind, event_id in zip(firsts["anonymous_id"], firsts["event_type"], firsts["event_id"]):
        keys[visitor] = min(keys.get(visitor, (9, "")), (TYPE_RANK[kind], event_id)) if visitor in keys else (TYPE_RANK[kind], event_id)
    before = [
        visitor in keys and (TYPE_RANK[kind], event_id) < keys[visitor]
        for visitor, kind, event_id in zip(tied["anonymous_id"], tied["event_type"], tied["event_id"])
    ]
    drop = tied.index[before]
    return events.drop(index=drop)


def sessionize(settings: Settings, run_id: str, bucket: int) -> dict:
    """Redo the sessions of this bucket's changed visitors from their resume points."""
    workspace = Workspace(settings, run_id)
    plan = workspace.plan()
    lock.heartbeat(settings, run_id)
    changes = _mine(workspace.read("changes"), "anonymous_id", plan.buckets, bucket)
    staged = workspace.read(f"events-{bucket}")
    staged = staged[member(staged["anonymous_id"], changes["anonymous_id"])]  # a rerun re-stages unchanged visitors too
    removed = set(workspace.read("event_deletes")["event_id"])
    with get_engine(settings.warehouse_url).connect() as conn:
        visitors = [] if plan.full_refresh else changes["anonymous_id"]
        old_sessions = read_where_in(conn, t.sessions, "anonymous_id", visitors, SESSION_KEYS)
        resume = resume_points(changes, old_sessions)
        old_events = _published_events(conn, old_sessions, resume)
        old_conversions = read_where_in(conn, t.conversions, "anonymous_id", visitors, ["event_id", "email", "session_id"])
    at = _resume_at(old_sessions["anonymous_id"], resume)
    redone = old_sessions[at.isna() | (old_sessions["timestamp"] >= at)]
    old_events = old_events[~member(old_events["event_id"], removed)]
    events = pd.concat([old_events, staged[old_events.columns]], ignore_index=True)
    events = _from_resume_point(events, resume, redone)
    sessions, conversions = build_sessions(events=events[~events["is_bot"].astype(bool)], settings=settings)
    dropped = old_conversions[member(old_conversions["session_id"], redone["session_id"])]
    workspace.write(f"sessions-{bucket}", sessions)
    workspace.write(f"conversions-{bucket}", conversions)
    workspace.write(f"session_deletes-{bucket}", redone[["session_id"]])
    workspace.write(f"conversion_deletes-{bucket}", dropped[["event_id", "email"]])
    return {"visitors": len(changes), "sessions": len(sessions), "sessions_replaced": len(redone)}


def _published_events(conn, old_sessions: pd.DataFrame, resume: pd.Series) -> pd.DataFrame:
    """Published events of visitors that have sessions, from their resume points on (whole history if none)."""
    columns = [c.name for c in t.events.columns if c.name not in ("load_date", "source_file", "line_number")]
    with_sessions = resume[resume.index.isin(old_sessions["anonymous_id"])]
    bounded, whole = with_sessions.dropna(), with_sessions[with_sessions.isna()]
    parts = [read_where_in(conn, t.events, "anonymous_id", whole.index, columns)]
    if len(bounded):
        since = t.events.c.timestamp >= bounded.min().to_pydatetime().replace(tzinfo=None)
        parts.append(read_where_in(conn, t.events, "anonymous_id", bounded.index, columns, where=since))
    return pd.concat(parts, ignore_index=True)


def identify(settings: Settings, run_id: str) -> dict:
    """Re-derive the identity of every changed visitor and list the contacts whose journey may have changed."""
    workspace = Workspace(settings, run_id)
    plan = workspace.plan()
    lock.heartbeat(settings, run_id)
    changes = workspace.read("changes")
    new_conversions = workspace.read_buckets("conversions", plan.buckets)
    dropped = workspace.read_buckets("conversion_deletes", plan.buckets)
    visitors = [] if plan.full_refresh else changes["anonymous_id"]
    with get_engine(settings.warehouse_url).connect() as conn:
        kept = read_where_in(conn, t.conversions, "anonymous_id", visitors, ["event_id", "email", "anonymous_id", "timestamp"])
        old_identities = read_where_in(conn, t.identities, "anonymous_id", visitors, ["anonymous_id", "email"])
        if plan.full_refresh:  # every published contact is rebuilt or removed
            old_identities = read_table(conn, t.contacts, columns=["email"])
    kept = kept[~member(kept["event_id"], dropped["event_id"])]
    conversions = pd.concat([kept, new_conversions[kept.columns]], ignore_index=True)
    identities = assign_identities(conversions=conversions)
    touched = pd.concat(
        [old_identities["email"], identities["email"], dropped["email"], new_conversions["email"]], ignore_index=True
    )
    touched = pd.DataFrame({"email": touched.dropna().drop_duplicates().sort_values().to_numpy()})
    workspace.write("identities", identities)
    workspace.write("touched", touched)
    return {"identities": len(identities), "contacts_touched": len(touched), "buckets": list(range(plan.buckets))}


def summarise(settings: Settings, run_id: str, bucket: int) -> dict:
    """Rebuild the summaries of this bucket's touched contacts from their post-run journeys."""
    workspace = Workspace(settings, run_id)
    plan = workspace.plan()
    lock.heartbeat(settings, run_id)
    emails = _mine(workspace.read("touched"), "email", plan.buckets, bucket)["email"]
    new_identities = workspace.read("identities")
    changed = set(workspace.read("changes")["anonymous_id"])
    new_sessions = workspace.read_buckets("sessions", plan.buckets)
    gone_sessions = set(workspace.read_buckets("session_deletes", plan.buckets)["session_id"])
    new_conversions = workspace.read_buckets("conversions", plan.buckets)
    gone_conversions = set(workspace.read_buckets("conversion_deletes", plan.buckets)["event_id"])
    keys = [] if plan.full_refresh else emails
    with get_engine(settings.warehouse_url).connect() as conn:
        conversions = read_where_in(conn, t.conversions, "email", keys)
        identities = read_where_in(conn, t.identities, "email", keys)
        identities = identities[~member(identities["anonymous_id"], changed)]
        identities = pd.concat([identities, new_identities[member(new_identities["email"], emails)]], ignore_index=True)
        conversions = conversions[~member(conversions["event_id"], gone_conversions)]
        conversions = pd.concat([conversions, new_conversions[member(new_conversions["email"], emails)]], ignore_index=True)
        visitors = [] if plan.full_refresh else identities["anonymous_id"]
        sessions = read_where_in(conn, t.sessions, "anonymous_id", visitors)
        shared = set(conversions["session_id"]) - set(sessions["session_id"])
        sessions = pd.concat([sessions, read_where_in(conn, t.sessions, "session_id", [] if plan.full_refresh else shared)])
    sessions = sessions[~member(sessions["session_id"], gone_sessions)]
    mine = member(new_sessions["anonymous_id"], identities["anonymous_id"]) | member(new_sessions["session_id"], shared)
    sessions = pd.concat([sessions, new_sessions[mine]], ignore_index=True).drop_duplicates("session_id")
    tables = build_contact_tables(identities=identities, sessions=sessions, conversions=conversions, settings=settings)
    for name, frame in tables.items():
        workspace.write(f"{name}-{bucket}", frame)
    workspace.write(f"contact_deletes-{bucket}", pd.DataFrame({"email": emails.to_numpy()}))
    return {"contacts_touched": len(emails), "contacts": len(tables["contacts"])}
