"""The steps after staging: sessionize (per visitor bucket) → identify → summarise (per contact bucket).

Each step reads the published warehouse plus the earlier steps' workspace files, and writes only to the
workspace, so any step can be retried and nothing is visible before publish. "Post-run" below means the
state the warehouse will have once this run publishes: published rows, minus what the run deletes, plus
what it writes.
"""

from __future__ import annotations

from datetime import date

import pandas as pd

from pipeline.contract.schema import load_contract
from pipeline.runs import lock
from pipeline.runs.faults import fault_point
from pipeline.runs.scratch import as_frame, scratch_duckdb
from pipeline.runs.workspace import RunPlan, Workspace
from pipeline.settings import Settings
from pipeline.transform.contacts import build_contact_tables
from pipeline.transform.frames import member
from pipeline.transform.identity import assign_identities
from pipeline.transform.keys import buckets_of
from pipeline.transform.resume import from_resume_point, redone_sessions, resume_points
from pipeline.transform.sessions import build_sessions
from pipeline.warehouse import tables as t
from pipeline.warehouse.engines import get_engine
from pipeline.warehouse.event_store import EventStore, live_files
from pipeline.warehouse.rows import is_empty, read_table, read_where_in

SESSION_KEYS = ["session_id", "anonymous_id", "timestamp", "end_timestamp", "first_event_id"]
MAX_DAYS_LATE = load_contract().max_days_after_load_day  # an event's load day is at most this many days before its own
EVENT_READ = ["event_id", "anonymous_id", "timestamp", "event_type", "page_url", "referrer", "email", "conversion_type", "conversion_id"]


def _mine(frame: pd.DataFrame, column: str, buckets: int, bucket: int) -> pd.DataFrame:
    return frame[buckets_of(frame[column], buckets) == bucket]


def key_range(bucket: int, buckets: int) -> tuple[int, int]:
    """The visitor keys of a bucket, inclusive (the inverse of warehouse.keys.key_bucket)."""
    low = -(-bucket * 2**32 // buckets) << 31
    high = (-(-(bucket + 1) * 2**32 // buckets) << 31) - 1
    return low, high


def post_run_files(live: pd.DataFrame, plan: RunPlan, bucket: int, since: date | None) -> list[str]:
    """The store files this bucket reads: the run's new files and the live files it keeps, within the bucket's key
    range, from load day `since` on (None: the run's new files only)."""
    low, high = key_range(bucket, plan.buckets)
    new = pd.DataFrame([f.__dict__ for f in plan.event_files()], columns=live.columns)
    kept = live[~live["path"].isin(plan.retired_files)]
    kept = kept.iloc[0:0] if since is None else kept[kept["load_date"] >= since]
    files = pd.concat([kept, new], ignore_index=True)
    return files.loc[(files["min_visitor_key"] <= high) & (files["max_visitor_key"] >= low), "path"].tolist()


def visitor_events(settings: Settings, workspace: Workspace, files: list[str], resume: pd.DataFrame, bucket: int, buckets: int,
                   everyone: bool = False) -> pd.DataFrame:
    """The human events of the resumed visitors from their resume points, ordered as sessions need them: by visitor
    id, so the sessions come out in the order of the warehouse's visitor index and publish adds them to it in one pass
    (a 5M-event day's sessions: 10.6 → 6.9 s to insert). `everyone`: every visitor in the files is resumed from its
    first event (a first run, a full refresh), so no join; one file is read in its own order (by visitor key, each
    visitor's events together and in order: `order_events` checks), not sorted again (a 1M-event day's bucket: the
    query and its frame 0.25 → 0.09 s)."""
    store = EventStore(settings.event_store_location())
    low, high = key_range(bucket, buckets)
    columns = ", ".join("e." + c for c in EVENT_READ)
    in_range = f"e.visitor_key BETWEEN {low} AND {high} AND NOT e.is_bot"
    order = " ORDER BY e.anonymous_id, e.timestamp, e.event_type = 'conversion', e.event_id"
    with scratch_duckdb(settings, workspace) as con:
        if everyone:
            one_file = len(files) == 1  # already in order: read as it lies
            con.execute(f"SET preserve_insertion_order = {one_file}")
            return as_frame(con.sql(f"SELECT {columns} FROM {store.relation(con, files)} e WHERE {in_range}{'' if one_file else order}"))
        con.register("resume", resume[["anonymous_id", "resume_at"]])
        return as_frame(con.sql(
            f"""SELECT {columns} FROM {store.relation(con, files)} e JOIN resume r ON e.anonymous_id = r.anonymous_id
            WHERE {in_range} AND e.timestamp >= r.resume_at{order}"""
        ))


def sessionize(settings: Settings, run_id: str, bucket: int) -> dict:
    """Redo the sessions of this bucket's changed visitors from their resume points."""
    workspace = Workspace(settings, run_id)
    plan = workspace.plan()
    lock.heartbeat(settings, run_id)
    fault_point(settings, "sessionize.during")
    if plan.unchanged_since:
        return {"visitors": 0, "sessions": 0, "sessions_replaced": 0, "files_read": []}
    changes = workspace.read(f"changes-{bucket}")
    with get_engine(settings.warehouse_url).connect() as conn:
        everyone = plan.full_refresh or is_empty(conn, t.sessions)  # every visitor new: redone from its first event
        visitors = [] if everyone else changes["anonymous_id"]
        old_sessions = read_where_in(conn, t.sessions, "anonymous_id", visitors, SESSION_KEYS)
        old_conversions = read_where_in(conn, t.conversions, "anonymous_id", visitors, ["event_id", "email", "session_id"])
        live = live_files(conn)
    resume = resume_points(changes, old_sessions, settings.session_timeout_minutes)
    redone = redone_sessions(old_sessions, resume)
    published = resume.loc[resume["anonymous_id"].isin(old_sessions["anonymous_id"]), "resume_at"]
    since = (published.min() - pd.Timedelta(days=MAX_DAYS_LATE)).date() if len(published) else None
    files = post_run_files(live, plan, bucket, since)
    events = visitor_events(settings, workspace, files, resume, bucket, plan.buckets, everyone)
    if resume["at_session_start"].any():  # otherwise the query's join and time filter are the whole rule
        events = from_resume_point(events, resume, redone)
    sessions, conversions = build_sessions(events=events, settings=settings)
    dropped = old_conversions[member(old_conversions["session_id"], redone["session_id"])]
    workspace.write(f"sessions-{bucket}", sessions)
    workspace.write(f"conversions-{bucket}", conversions)
    workspace.write(f"session_deletes-{bucket}", redone[["anonymous_id", "session_id"]])
    workspace.write(f"conversion_deletes-{bucket}", dropped[["event_id", "email"]])
    return {"visitors": len(changes), "sessions": len(sessions), "sessions_replaced": len(redone), "files_read": files}


def identify(settings: Settings, run_id: str) -> dict:
    """Re-derive the identity of every changed visitor and list the contacts whose journey may have changed."""
    workspace = Workspace(settings, run_id)
    plan = workspace.plan()
    lock.heartbeat(settings, run_id)
    fault_point(settings, "identify.during")
    if plan.unchanged_since:
        return {"identities": 0, "contacts_touched": 0, "buckets": list(range(plan.buckets))}
    new_conversions = workspace.read_buckets("conversions", plan.buckets)
    dropped = workspace.read_buckets("conversion_deletes", plan.buckets)
    visitors = [] if plan.full_refresh else workspace.read_buckets("changes", plan.buckets)["anonymous_id"]
    with get_engine(settings.warehouse_url).connect() as conn:
        kept = read_where_in(conn, t.conversions, "anonymous_id", visitors, ["event_id", "email", "anonymous_id", "timestamp"])
        old_identities = read_where_in(conn, t.identities, "anonymous_id", visitors, ["anonymous_id", "email"])
        workspace.write("identity_deletes", old_identities[["anonymous_id"]])  # what publish replaces: few of the visitors
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
    _journey_sessions(workspace, plan, identities, new_conversions)
    return {"identities": len(identities), "contacts_touched": len(touched), "buckets": list(range(plan.buckets))}


def _journey_sessions(workspace: Workspace, plan: RunPlan, identities: pd.DataFrame, conversions: pd.DataFrame) -> None:
    """The run's new sessions that are in a contact's journey — its visitors' and those it converted in — split by
    the contact's bucket (journey_sessions-N), so each summarise task reads only its own few."""
    sessions = workspace.read_matching("sessions", plan.buckets, {"anonymous_id": identities["anonymous_id"], "session_id": conversions["session_id"]})
    owners = pd.concat([
        sessions.merge(identities[["anonymous_id", "email"]], on="anonymous_id"),
        sessions.merge(conversions[["session_id", "email"]].drop_duplicates(), on="session_id"),
    ], ignore_index=True)  # fmt: skip
    owners = owners.assign(bucket=buckets_of(owners["email"], plan.buckets)).drop_duplicates(["bucket", "session_id"])
    workspace.write_buckets("journey_sessions", owners.drop(columns=["email", "bucket"]), owners["bucket"].to_numpy(), plan.buckets)


def summarise(settings: Settings, run_id: str, bucket: int) -> dict:
    """Rebuild the summaries of this bucket's touched contacts from their post-run journeys."""
    workspace = Workspace(settings, run_id)
    plan = workspace.plan()
    lock.heartbeat(settings, run_id)
    fault_point(settings, "summarise.during")
    if plan.unchanged_since:
        return {"contacts_touched": 0, "contacts": 0}
    emails = _mine(workspace.read("touched"), "email", plan.buckets, bucket)["email"]
    mine = {"email": emails}  # each output of the run is read for this bucket's contacts and visitors only
    new_identities = workspace.read_where("identities", mine)
    new_conversions = workspace.read_matching("conversions", plan.buckets, mine)
    keys = [] if plan.full_refresh else emails
    with get_engine(settings.warehouse_url).connect() as conn:
        conversions = read_where_in(conn, t.conversions, "email", keys)
        identities = read_where_in(conn, t.identities, "email", keys)
        if not plan.full_refresh:
            changed = workspace.read_matching("changes", plan.buckets, {"anonymous_id": identities["anonymous_id"]})["anonymous_id"]
            identities = identities[~member(identities["anonymous_id"], changed)]
        identities = pd.concat([identities, new_identities], ignore_index=True)
        gone = workspace.read_matching("conversion_deletes", plan.buckets, {"event_id": conversions["event_id"]})["event_id"]
        conversions = pd.concat([conversions[~member(conversions["event_id"], gone)], new_conversions], ignore_index=True)
        visitors = [] if plan.full_refresh else identities["anonymous_id"]
        sessions = read_where_in(conn, t.sessions, "anonymous_id", visitors)
        shared = conversions[~member(conversions["session_id"], sessions["session_id"])]  # another contact's visitor
        theirs = read_where_in(conn, t.sessions, "anonymous_id", [] if plan.full_refresh else shared["anonymous_id"])
        sessions = pd.concat([sessions, theirs[member(theirs["session_id"], shared["session_id"])]])
    gone = workspace.read_matching("session_deletes", plan.buckets, {"session_id": sessions["session_id"]})["session_id"]
    sessions = sessions[~member(sessions["session_id"], gone)]
    sessions = pd.concat([sessions, workspace.read(f"journey_sessions-{bucket}")], ignore_index=True).drop_duplicates("session_id")
    tables = build_contact_tables(identities=identities, sessions=sessions, conversions=conversions, settings=settings)
    for name, frame in tables.items():
        workspace.write(f"{name}-{bucket}", frame)
    workspace.write(f"contact_deletes-{bucket}", pd.DataFrame({"email": emails.to_numpy()}))
    return {"contacts_touched": len(emails), "contacts": len(tables["contacts"])}
