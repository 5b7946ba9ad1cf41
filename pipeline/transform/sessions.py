"""Sessions (SPEC section 4): a visitor's events cut into visits, each with its traffic source, exit and conversions.

Everything is vectorised: sort, gap flags, new-source flags and a cumulative sum. The one sequential rule
(a page view splits only when its campaign or referrer source differs from the *current session's*) is
resolved in rounds: each round accepts, per unresolved stretch, the first page view that splits against
the stretch's own first event, which is exact because nothing before it in the stretch split.

Pages and traffic sources travel as integer codes into small dictionaries (`traffic.traffic_codes`); text is
made only for the rows that are output (a session's first and last event, the conversions).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.settings import Settings
from pipeline.transform.keys import md5_hex
from pipeline.transform.traffic import Coded, canonical, joint, string_column, traffic_codes

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


def _in_order(events: pd.DataFrame, stamp: np.ndarray, kind: np.ndarray) -> bool:
    """Whether each visitor's events are already together and in (timestamp, page_view before conversion, event_id)
    order: a reader that sorts (the event store's, by visitor key) spares the sort. Compared in Arrow, pair by pair."""
    if len(events) < 2:
        return True
    visitor = pa.array(events["anonymous_id"], type=pa.large_string(), from_pandas=True)
    event = pa.array(events["event_id"], type=pa.large_string(), from_pandas=True)
    same_visitor = pc.equal(visitor[:-1], visitor[1:]).to_numpy(zero_copy_only=False)
    if len(events) - same_visitor.sum() != pc.count_distinct(visitor).as_py():
        return False  # some visitor's events are not together
    t, u, k, m = stamp[:-1], stamp[1:], kind[:-1], kind[1:]
    events_before = pc.less_equal(event[:-1], event[1:]).to_numpy(zero_copy_only=False)
    within = (t < u) | ((t == u) & ((k < m) | ((k == m) & events_before)))
    return bool(np.all(~same_visitor | within))


def order_events(events: pd.DataFrame) -> pd.DataFrame:
    """Events per visitor by (timestamp, page_view before conversion, event_id), on a fresh 0..n-1 index.

    Sorting integer codes (strings factorized in sorted order) is several times faster than sorting strings.
    """
    stamp = events["timestamp"].to_numpy(dtype="datetime64[us]").view("int64")
    kind = (events["event_type"] == "conversion").to_numpy(dtype="int8")  # TYPE_RANK (staged events have no other type)
    if _in_order(events, stamp, kind):
        return events.reset_index(drop=True)
    visitor = pd.factorize(events["anonymous_id"], sort=True)[0]
    event = pd.factorize(events["event_id"], sort=True)[0]
    order = np.lexsort((event, kind, stamp, visitor))
    return events.take(order).reset_index(drop=True)


def hard_breaks(visitor: np.ndarray, stamp: np.ndarray, timeout_minutes: int) -> np.ndarray:
    """A visitor's first event, or more than the timeout since the visitor's previous event."""
    new_visitor = np.r_[True, visitor[1:] != visitor[:-1]]
    gap = np.r_[False, np.diff(stamp) > timeout_minutes * 60_000_000]
    return new_visitor | gap


def _splits_against_stretch_start(key: np.ndarray, referrer: np.ndarray, source: np.ndarray, starts: np.ndarray, none: int) -> np.ndarray:
    """Candidates whose source differs from the first event of their stretch (between known starts)."""
    stretch = np.cumsum(starts) - 1
    first_rows = np.flatnonzero(starts)
    start_key, start_source = key[first_rows][stretch], source[first_rows][stretch]
    new_campaign = (key != none) & (key != start_key)
    new_referrer = (key == none) & (referrer >= 0) & (referrer != start_source)
    return new_campaign | new_referrer


def session_starts(breaks: np.ndarray, page_view: np.ndarray, key: np.ndarray, referrer: np.ndarray, source: np.ndarray, none: int) -> np.ndarray:
    """Whether each ordered event starts a session (SPEC section 4), from the hard breaks and, per event, the codes of
    its campaign parameters (`none`: it has none), its referrer's source (-1: no external referrer) and its source
    (referrer and source codes share one code space)."""
    starts = breaks.copy()
    candidates = page_view & ((key != none) | (referrer >= 0)) & ~starts
    while candidates.any():
        splits = _splits_against_stretch_start(key, referrer, source, starts, none) & candidates
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


def previous_different_page(page: np.ndarray, page_view: np.ndarray, session: np.ndarray) -> np.ndarray:
    """Per event: the code of the latest earlier page view in its session whose page differs from the event's own
    page (-1: none).

    Consecutive page views of one page form a run; the answer is the latest earlier page view, or, when
    that one shows the event's own page, the page of the run before it.
    """
    rows = np.arange(len(page))
    views = pd.DataFrame({"session": session[page_view], "page": page[page_view]}, index=rows[page_view])
    same_session = views["session"].eq(views["session"].shift())
    run_start = ~same_session | views["page"].ne(views["page"].shift())
    before_run = views["page"].shift().where(same_session & run_start).groupby(views["session"]).ffill()
    view_row = pd.Series(np.where(page_view, rows, np.nan))
    last_view = view_row.groupby(session).shift().groupby(session).ffill()
    has_last = last_view.notna().to_numpy()
    last = last_view.fillna(0).astype(np.int64).to_numpy()
    last_page = page[last]
    fallback = before_run.reindex(rows).fillna(-1).astype(np.int64).to_numpy()[last]
    return np.where(has_last, np.where(last_page != page, last_page, fallback), -1)


def session_ids(anonymous_ids: pd.Series, first_event_ids: pd.Series) -> np.ndarray:
    """Deterministic ids from the visitor and the session's first event: reruns give the same ids."""
    return md5_hex(anonymous_ids, first_event_ids)


def build_sessions(*, events: pd.DataFrame, settings: Settings) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Staged events (bots already removed) → (sessions, conversions) for every visitor in the frame."""
    if events.empty:
        return _empty(SESSION_COLUMNS), _empty(CONVERSION_COLUMNS)
    ordered = order_events(events)
    traffic = traffic_codes(ordered, settings)
    page_view = (ordered["event_type"] == "page_view").to_numpy(dtype=bool)
    visitor = pd.factorize(ordered["anonymous_id"])[0]
    stamp = ordered["timestamp"].to_numpy(dtype="datetime64[us]").view("int64")
    key_codes, key_values = canonical(traffic["campaign_key"])
    none = int(np.flatnonzero(key_values == "")[0]) if (key_values == "").any() else -2
    source, referrer = joint(traffic["source"], traffic["referrer_source"])
    breaks = hard_breaks(visitor, stamp, settings.session_timeout_minutes)
    starts = session_starts(breaks, page_view, key_codes, referrer, source, none)
    session = np.cumsum(starts) - 1
    page = canonical(traffic["page"])
    previous = previous_different_page(page[0], page_view, session)
    first = np.flatnonzero(starts)
    ids = session_ids(ordered["anonymous_id"].iloc[first], ordered["event_id"].iloc[first])
    rows = _session_rows(ordered, traffic, page, previous, session, first, ids, page_view)
    return rows, _conversion_rows(ordered, page, previous, ids[session], page_view)


def _text(coded: Coded, rows: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """The text of a coded column at some rows only."""
    return string_column((coded[0][rows], coded[1]))


def _session_rows(ordered, traffic, page, previous, session, first, ids, page_view) -> pd.DataFrame:
    """One row per session: first-event attribution, duration, counts and the exit (by positions, no groupby)."""
    last = np.r_[first[1:] - 1, len(session) - 1]
    views = page_view.astype(np.int64)
    exits = page_view[last]
    rows = pd.DataFrame(
        {
            "session_id": pd.array(ids, dtype="str"),
            "anonymous_id": ordered["anonymous_id"].array.take(first),
            "timestamp": ordered["timestamp"].array.take(first),
            "end_timestamp": ordered["timestamp"].array.take(last),
            "first_event_id": ordered["event_id"].array.take(first),
            "page_views": np.add.reduceat(views, first),
            "conversions": np.add.reduceat(1 - views, first),
            **{column: _text(traffic[column], first) for column in ATTRIBUTION},
            "landing_page": _text(page, first),
            "exit_page": _text((np.where(exits, page[0][last], -1), page[1]), np.arange(len(last))),
            "exit_previous_page": _text((np.where(exits, previous[last], -1), page[1]), np.arange(len(last))),
        }
    )
    rows["session_duration"] = ((rows["end_timestamp"] - rows["timestamp"]) // pd.Timedelta(seconds=1)).astype("int64")
    rows["exit_timestamp"] = rows["end_timestamp"].where(exits)
    for column in ("anonymous_id", "first_event_id"):
        rows[column] = rows[column].astype("str")
    return rows[SESSION_COLUMNS]


def _conversion_rows(ordered: pd.DataFrame, page: Coded, previous: np.ndarray, session_id: np.ndarray, page_view: np.ndarray) -> pd.DataFrame:
    """One row per conversion event with its session, page and previous page."""
    at = np.flatnonzero(~page_view)
    rows = ordered.iloc[at][["event_id", "email", "anonymous_id", "timestamp", "conversion_type", "conversion_id"]].reset_index(drop=True)
    rows["session_id"] = pd.array(session_id[at], dtype="str")
    rows["conversion_page"] = _text(page, at)
    rows["previous_page"] = _text((previous[at], page[1]), np.arange(len(at)))
    return rows[CONVERSION_COLUMNS]


def _empty(columns: list[str]) -> pd.DataFrame:
    """A typed frame with no rows, so empty buckets concatenate without losing dtypes."""
    stamps = {"timestamp", "end_timestamp", "exit_timestamp"}
    counts = {"session_duration", "page_views", "conversions"}
    return pd.DataFrame(
        {c: pd.Series(dtype="datetime64[us, UTC]" if c in stamps else "int64" if c in counts else "str") for c in columns}
    )
