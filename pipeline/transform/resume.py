"""Where a changed visitor's sessions must be redone from (SPEC §9: late events, reruns, sessions across midnight).

A session is decided by its own events and the ones before it, so a change can only alter the session it falls in
(or one it joins, when it lies within the timeout of that session's end) and the sessions after it. Everything
before stays as published, and a run reads only the visitor's events from the resume point on.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.transform.sessions import TYPE_RANK

RESUME_COLUMNS = ["anonymous_id", "resume_at", "at_session_start"]


def resume_points(changes: pd.DataFrame, sessions: pd.DataFrame, timeout_minutes: int) -> pd.DataFrame:
    """Per changed visitor (`anonymous_id`, `change_at`): `resume_at` and whether it is a published session's start.

    The resume point is the start of the visitor's latest session that began before the earliest change, unless the
    change lies more than the timeout after that session's end: then the session stays, and the visitor resumes at
    the change itself (as it does when no session began before the change).
    """
    points = changes[["anonymous_id", "change_at"]].rename(columns={"change_at": "resume_at"}).assign(at_session_start=False)
    if sessions.empty or points.empty:
        return points.reset_index(drop=True)[RESUME_COLUMNS]
    change_at = sessions["anonymous_id"].map(changes.set_index("anonymous_id")["change_at"])
    before = sessions[(sessions["timestamp"] < change_at).to_numpy()]
    if before.empty:
        return points.reset_index(drop=True)[RESUME_COLUMNS]
    latest = before.sort_values("timestamp").drop_duplicates("anonymous_id", keep="last").set_index("anonymous_id")
    start, end = (points["anonymous_id"].map(latest[c]) for c in ("timestamp", "end_timestamp"))
    joins = start.notna() & ~(points["resume_at"] - end > pd.Timedelta(minutes=timeout_minutes))
    points.loc[joins, "resume_at"] = start[joins]
    points.loc[joins, "at_session_start"] = True
    return points.reset_index(drop=True)[RESUME_COLUMNS]


def redone_sessions(sessions: pd.DataFrame, resume: pd.DataFrame) -> pd.DataFrame:
    """The published sessions a run replaces: those starting at or after their visitor's resume point."""
    if sessions.empty:
        return sessions
    at = sessions["anonymous_id"].map(resume.set_index("anonymous_id")["resume_at"])
    return sessions[(sessions["timestamp"] >= at).fillna(False).to_numpy(dtype=bool)]


def from_resume_point(events: pd.DataFrame, resume: pd.DataFrame, redone: pd.DataFrame) -> pd.DataFrame:
    """The events to sessionize: each visitor's events at or after its resume point.

    At a published session's start, events at the same instant that sort before the session's first event belong to
    the session before it (which stays), so they are left out.
    """
    if events.empty:
        return events
    row = pd.Index(resume["anonymous_id"]).get_indexer(events["anonymous_id"])  # -1: a visitor not resumed
    at = resume["resume_at"].to_numpy(dtype="datetime64[us]")[row]
    stamp = events["timestamp"].to_numpy(dtype="datetime64[us]")
    kept = (row >= 0) & (stamp >= at)
    tie = kept & (stamp == at) & resume["at_session_start"].to_numpy(dtype=bool)[row]
    if not tie.any():
        return events[kept] if not kept.all() else events
    tied = events[tie]
    firsts = tied[tied["event_id"].isin(redone["first_event_id"])]
    first_key = {}
    for visitor, kind, event_id in zip(firsts["anonymous_id"], firsts["event_type"], firsts["event_id"]):
        first_key[visitor] = min(first_key.get(visitor, (TYPE_RANK[kind], event_id)), (TYPE_RANK[kind], event_id))
    before = np.array([
        visitor in first_key and (TYPE_RANK[kind], event_id) < first_key[visitor]
        for visitor, kind, event_id in zip(tied["anonymous_id"], tied["event_type"], tied["event_id"])
    ], dtype=bool)  # fmt: skip
    kept[np.flatnonzero(tie)[before]] = False
    return events[kept]
