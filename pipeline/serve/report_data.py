"""The numbers behind the HTML report's charts (SPEC section 15), read from the published tables.

Every function takes an open connection and the report's window (whole UTC days, both ends included) and
returns a small frame, aggregated in SQL so that a long history costs the database, not Python memory.
The report's attribution section comes from SPEC section 14's report function, through
`attribution_by_model`: the one place to wire it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import pandas as pd
from sqlalchemy import Connection, Date, and_, cast, func, select

from pipeline.serve.attribution import MODELS, attribution_report, parse_attribution_request
from pipeline.settings import Settings
from pipeline.warehouse import tables as t

DEFAULT_DAYS = 30
RUN_COLUMNS = ["run_id", "interval_start", "status", "full_refresh", "events_read", "events_loaded", "events_duplicate",
               "events_quarantined", "events_bot", "sessions_written", "contacts_updated", "started_at", "finished_at"]


@dataclass(frozen=True)
class Window:
    """The report's days, UTC, `start` and `end` both included."""

    start: date
    end: date

    @property
    def bounds(self) -> tuple[datetime, datetime]:
        """[start 00:00, the day after end 00:00): the instants a date-only window covers (as SPEC section 11)."""
        return datetime.combine(self.start, time()), datetime.combine(self.end + timedelta(days=1), time())

    @property
    def days(self) -> list[str]:
        return [(self.start + timedelta(days=n)).isoformat() for n in range((self.end - self.start).days + 1)]


def _as_date(value) -> date | None:
    """A day from a warehouse value (SQLite gives text, PostgreSQL datetimes)."""
    return None if value is None else date.fromisoformat(str(value)[:10])


def report_window(conn: Connection, start: date | None, end: date | None) -> Window:
    """The window asked for. A missing end is the day of the latest session (today with none); a missing start
    is 30 days before the end, but no earlier than the first session's day. An end before the start is a ValueError."""
    first, last = conn.execute(select(func.min(t.sessions.c.timestamp), func.max(t.sessions.c.timestamp))).one()
    if end is None:
        end = _as_date(last) or date.today()
        end = max(end, start) if start else end
    if start is None:
        start = max(end - timedelta(days=DEFAULT_DAYS - 1), min(_as_date(first) or end, end))
    if end < start:
        raise ValueError(f"--end-date {end} is before --start-date {start}")
    return Window(start, end)


def _day(conn: Connection, column):
    """The UTC day of a timestamp column as `YYYY-MM-DD` text, on either backend."""
    if conn.dialect.name == "sqlite":
        return func.date(column)
    return func.to_char(cast(column, Date), "YYYY-MM-DD")


def _in(column, window: Window):
    low, high = window.bounds
    return and_(column >= low, column < high)


def _frame(conn: Connection, query, columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame([tuple(row) for row in conn.execute(query)], columns=columns)


def sessions_by_channel(conn: Connection, window: Window) -> pd.DataFrame:
    """Sessions started per day and channel: `day`, `channel`, `sessions`, by day then channel."""
    s = t.sessions
    day = _day(conn, s.c.timestamp).label("day")
    query = (select(day, s.c.channel, func.count().label("sessions")).where(_in(s.c.timestamp, window))
             .group_by(day, s.c.channel).order_by(day, s.c.channel))
    return _frame(conn, query, ["day", "channel", "sessions"]).astype({"sessions": "int64"})


def conversions_by_channel(conn: Connection, window: Window) -> pd.DataFrame:
    """Contact conversions per day and the channel of the session they happened in: `day`, `channel`, `conversions`."""
    c, s = t.conversions, t.sessions
    day = _day(conn, c.c.timestamp).label("day")
    query = (select(day, s.c.channel, func.count().label("conversions"))
             .select_from(c.join(s, (s.c.anonymous_id == c.c.anonymous_id) & (s.c.session_id == c.c.session_id))).where(_in(c.c.timestamp, window))
             .group_by(day, s.c.channel).order_by(day, s.c.channel))
    return _frame(conn, query, ["day", "channel", "conversions"]).astype({"conversions": "int64"})


def new_contacts(conn: Connection, window: Window) -> pd.DataFrame:
    """Contacts whose first conversion fell on each day (the day they became contacts): `day`, `contacts`."""
    c = t.contacts
    day = _day(conn, c.c.first_conversion_at).label("day")
    query = select(day, func.count().label("contacts")).where(_in(c.c.first_conversion_at, window)).group_by(day).order_by(day)
    return _frame(conn, query, ["day", "contacts"]).astype({"contacts": "int64"})


def runs_in_window(conn: Connection, window: Window, limit: int = 50) -> pd.DataFrame:
    """The runs of load days in the window, latest start first (at most `limit`), with their event counts."""
    r = t.pipeline_runs
    query = (select(*(r.c[name] for name in RUN_COLUMNS))
             .where(r.c.interval_start >= window.start, r.c.interval_start <= window.end)
             .order_by(r.c.started_at.desc(), r.c.run_id).limit(limit))
    frame = _frame(conn, query, RUN_COLUMNS)
    frame["interval_start"] = frame["interval_start"].map(lambda v: str(v)[:10])
    for name in ("started_at", "finished_at"):
        frame[name] = frame[name].map(lambda v: None if v is None else str(v)[:19])
    return frame


def events_by_load_day(runs: pd.DataFrame) -> pd.DataFrame:
    """Events of each load day's latest successful run by outcome: `day`, `outcome`, `events` (for a stacked chart)."""
    done = runs[runs["status"] == "success"].sort_values("started_at").drop_duplicates("interval_start", keep="last")
    outcomes = {"events_loaded": "loaded", "events_duplicate": "duplicate", "events_quarantined": "quarantined"}
    long = done.melt(id_vars=["interval_start"], value_vars=list(outcomes), var_name="outcome", value_name="events")
    long = long.rename(columns={"interval_start": "day"}).replace({"outcome": outcomes})
    return long.sort_values(["day", "outcome"]).reset_index(drop=True).astype({"events": "int64"})


def quarantine_by_reason(conn: Connection, window: Window) -> pd.DataFrame:
    """Quarantined lines of the window's load days by reason, most first: `reason`, `events`."""
    q = t.quarantined_events
    query = (select(q.c.reason, func.count().label("events"))
             .where(q.c.load_date >= window.start, q.c.load_date <= window.end)
             .group_by(q.c.reason).order_by(func.count().desc(), q.c.reason))
    return _frame(conn, query, ["reason", "events"]).astype({"events": "int64"})


def attribution_by_model(settings: Settings, window: Window, by: str = "channel") -> dict[str, dict]:
    """SPEC section 14's report for every model over the window, `{model: {"model", "by", "conversions", "rows"}}`."""
    request = {"by": by, "start_date": window.start.isoformat(), "end_date": window.end.isoformat()}
    return {model: attribution_report(settings, parse_attribution_request({**request, "model": model})) for model in MODELS}


def attribution_frame(reports: dict[str, dict], by: str = "channel") -> pd.DataFrame:
    """The reports' rows in one frame: `model`, `value`, `conversions` (credit), `share_percent`, `touches`."""
    rows = [
        {"model": model, "value": row[by], "conversions": row["conversions"], "share_percent": row["share_percent"], "touches": row["touches"]}
        for model, report in reports.items() for row in report["rows"]
    ]
    return pd.DataFrame(rows, columns=["model", "value", "conversions", "share_percent", "touches"])
