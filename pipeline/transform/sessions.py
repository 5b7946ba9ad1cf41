"""Sessions (SPEC section 4): a visitor's events cut into visits, each with its traffic source, exit and conversions.

Everything is vectorised: sort, gap flags, new-source flags and a cumulative sum. The one sequential rule
(a page view splits only when its campaign or referrer source differs from the *current session's*) is
resolved in rounds: each round accepts, per unresolved stretch, the first page view that splits against
the stretch's own first event, which is exact because nothing before it in the stretch split.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from pipeline.settings import Settings
from pipeline.transform.traffic import attribute_events

ATTRIBUTION = ["source", "medium", "campaign", "content", "term", "channel"]
TYPE_RANK = {"page_view": 0, "conversion": 1}
SESSION_COLUMNS = [
    "session_id",
    "anonymous_id",
    "timestamp",
    "end_timestamp",
    "session_duration",
    "first_event_id",
    "page_views",
    "conversions",
    *ATTRIBUTION,
    "landing_page",
    "exit_page",
    "exit_previous_page",
    "exit_timestamp",
]
CONVERSION_COLUMNS = [
    "event_id",
    "email",
    "anonymous_id",
    "session_id",
    "timestamp",
    "conversion_page",
    "previous_page",
    "conversion_type",
    "conversion_id",
]


def order_events(events: pd.DataFrame) -> pd.DataFrame:
    """Events per visitor by (timestamp, page_view before conversion, event_id), on a fresh 0..n-1 index.

    Sorting integer codes (strings factorized in sorted order) is several times faster than sorting strings.
    """
    visitor = pd.factorize(events["anonymous_id"], sort=True)[0]
    event = pd.factorize(events["event_id"], sort=True)[0]
    stamp = events["timestamp"].to_numpy(dtype="datetime64[us]").view("int64")
    kind = events["event_type"].map(TYPE_RANK).to_numpy(dtype="int8")
    order = np.lexsort((event, kind, stamp, visitor))
    return events.take(order).reset_index(drop=True)


def hard_breaks(events: pd.DataFrame, timeout_minutes: int) -> np.ndarray:
    """A visitor's first event, or more than the timeout since the visitor's previous event."""
    new_visitor = events["anonymous_id"].ne(events["anonymous_id"].shift())
    gap = events["timestamp"].diff() > pd.Timedelta(minutes=timeout_minutes)
    return (new_visitor | gap).to_numpy(dtype=bool)


def _source_candidates(events: pd.DataFrame) -> np.ndarray:
    """Page views that could bring a new traffic source: campaign parameters or an external referrer."""
    page_view = (events["event_type"] == "page_view").to_numpy(dtype=bool)
    has_campaign = (events["campaign_key"] != "").to_numpy(dtype=bool)
    return page_view & (has_campaign | events["referrer_source"].notna().to_numpy(dtype=bool))


def _splits_against_stretch_start(events: pd.DataFrame, starts: np.ndarray) -> np.ndarray:
    """Candidates whose source differs from the first event of their stretch (between known starts)."""
    stretch = np.cumsum(starts) - 1
    first_rows = np.flatnonzero(starts)
    start_key = events["campaign_key"].to_numpy(dtype=object)[first_rows][stretch]
    start_source = events["source"].to_numpy(dtype=object)[first_rows][stretch]
    key = events["campaign_key"].to_numpy(dtype=object)
    referrer_source = events["referrer_source"].to_numpy(dtype=object)
    new_campaign = (key != "") & (key != start_key)
    new_referrer = (key == "") & pd.notna(referrer_source) & (referrer_source != start_source)
    return new_campaign | new_referrer


def session_starts(events: pd.DataFrame, timeout_minutes: int) -> np.ndarray:
    """Whether each ordered event starts a session (SPEC section 4)."""
    starts = hard_breaks(events, timeout_minutes)
    candidates = _source_candidates(events) & ~starts
    while candidates.any():
        splits = _splits_against_stretch_start(events, starts) & candidates
        if not splits.any():
            break
        stretch = np.cumsum(starts)
        first_split = splits & (pd.Series(splits).groupby(stretch).cumsum().to_numpy() == 1)
        starts = starts | first_split
        # candidates before the accepted split in its stretch are settled; later ones are re-checked
        settled_before = pd.Series(first_split).groupby(stretch).cumsum().to_numpy() == 0
        touched = pd.Series(first_split).groupby(stretch).transform("any").to_numpy()
        candidates = candidates & ~first_split & ~(touched & settled_before) & touched
    return starts


def session_ids(anonymous_ids: pd.Series, first_event_ids: pd.Series) -> np.ndarray:
    """Deterministic ids from the visitor and the session's first event: reruns give the same ids."""
    pairs = zip(anonymous_ids.tolist(), first_event_ids.tolist())
    return np.array([hashlib.md5(f"{a}\x1f{e}".encode()).hexdigest() for a, e in pairs], dtype=object)


def previous_different_page(events: pd.DataFrame, session: np.ndarray) -> pd.Series:
    """Per event: the latest earlier page view in its session whose page differs from the event's own page.

    Consecutive page views of one page form a run; the answer is the latest earlier page view, or, when
    that one shows the event's own page, the page of the run before it.
    """
    page = events["page"].to_numpy(dtype=object)
    is_view = (events["event_type"] == "page_view").to_numpy(dtype=bool)
    views = pd.DataFrame({"session": session[is_view], "page": page[is_view]}, index=np.flatnonzero(is_view))
    same_session = views["session"].eq(views["session"].shift())
    run_start = ~same_session | views["page"].ne(views["page"].shift())
    before_run = views["page"].shift().where(same_session & run_start).groupby(views["session"]).ffill()
    view_row = pd.Series(np.where(is_view, np.arange(len(events)), np.nan))
    last_view = view_row.groupby(session).shift().groupby(session).ffill()
    has_last = last_view.notna().to_numpy()
    rows = last_view.fillna(0).astype(int).to_numpy()
    last_page = page[rows]
    run_fallback = before_run.reindex(np.arange(len(events))).to_numpy(dtype=object)[rows]
    answer = np.where(has_last, np.where(last_page != page, last_page, run_fallback), None)
    return pd.Series(answer, index=events.index, dtype="str")


def build_sessions(*, events: pd.DataFrame, settings: Settings) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Staged events (bots already removed) → (sessions, conversions) for every visitor in the frame."""
    if events.empty:
        return _empty(SESSION_COLUMNS), _empty(CONVERSION_COLUMNS)
    ordered = order_events(events)
    traffic = attribute_events(ordered[["page_url", "referrer"]], settings)
    ordered = pd.concat([ordered, traffic], axis=1)
    starts = session_starts(ordered, settings.session_timeout_minutes)
    session = np.cumsum(starts) - 1
    ordered["previous_page"] = previous_different_page(ordered, session)
    firsts = ordered[starts]
    ids = session_ids(firsts["anonymous_id"], firsts["event_id"])
    ordered["session_id"] = ids[session]
    return _session_rows(ordered, session, firsts, ids), _conversion_rows(ordered)


def _session_rows(ordered: pd.DataFrame, session: np.ndarray, firsts: pd.DataFrame, ids: np.ndarray) -> pd.DataFrame:
    """One row per session: first-event attribution, duration, counts and the exit (by positions, no groupby)."""
    first_at = np.flatnonzero(np.r_[True, session[1:] != session[:-1]])
    last_at = np.r_[first_at[1:] - 1, len(session) - 1]
    is_view = (ordered["event_type"] == "page_view").to_numpy(dtype=np.int64)
    last = ordered.iloc[last_at]
    rows = pd.DataFrame(
        {
            "session_id": ids,
            "anonymous_id": firsts["anonymous_id"].to_numpy(),
            "timestamp": firsts["timestamp"].array,
            "end_timestamp": last["timestamp"].array,
            "first_event_id": firsts["event_id"].to_numpy(),
            "page_views": np.add.reduceat(is_view, first_at),
            "conversions": np.add.reduceat(1 - is_view, first_at),
            "landing_page": firsts["page"].to_numpy(),
        }
    )
    for column in ATTRIBUTION:
        rows[column] = firsts[column].to_numpy()
    rows["session_duration"] = ((rows["end_timestamp"] - rows["timestamp"]) // pd.Timedelta(seconds=1)).astype("int64")
    exits = (last["event_type"] == "page_view").to_numpy()
    rows["exit_page"] = last["page"].where(exits).to_numpy()
    rows["exit_previous_page"] = last["previous_page"].where(exits).to_numpy()
    rows["exit_timestamp"] = rows["end_timestamp"].where(exits)
    for column in ("exit_page", "exit_previous_page", "landing_page", "anonymous_id", "first_event_id", *ATTRIBUTION):
        rows[column] = rows[column].astype("str")
    return rows[SESSION_COLUMNS]


def _empty(columns: list[str]) -> pd.DataFrame:
    """A typed frame with no rows, so empty buckets concatenate without losing dtypes."""
    stamps = {"timestamp", "end_timestamp", "exit_timestamp"}
    counts = {"session_duration", "page_views", "conversions"}
    return pd.DataFrame(
        {c: pd.Series(dtype="datetime64[us, UTC]" if c in stamps else "int64" if c in counts else "str") for c in columns}
    )


def _conversion_rows(ordered: pd.DataFrame) -> pd.DataFrame:
    """One row per conversion event with its session, page and previous page."""
    conv = ordered[ordered["event_type"] == "conversion"]
    rows = conv.rename(columns={"page": "conversion_page"})
    return rows[CONVERSION_COLUMNS].reset_index(drop=True)
