"""Incremental runs equal a full recompute (SPEC section 9), whatever the arrival order, lateness or reruns."""

from __future__ import annotations

import shutil
from datetime import date, datetime, timedelta

import pandas as pd
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from pipeline.settings import Settings
from tests.helpers import SITE, contact_summary, conversion, event, run, table, write_partition

COMPARED = ("events", "quarantined_events", "sessions", "conversions", "identities", "contact_sessions", "contacts", "attribution_credits")
BASE = datetime(2025, 3, 1, 8, 0)
PAGES = ["/", "/pricing", "/?utm_source=news&utm_campaign=a", "/?utm_source=news&utm_campaign=b", "/?gclid=z1", "/blog"]
REFERRERS = [None, None, "https://www.google.com/", "https://t.co/x", SITE + "/", "https://www.paypal.com/pay"]


def published(settings: Settings) -> dict[str, pd.DataFrame]:
    """The tables readers see, without the columns that record when/which run wrote a row."""
    frames = {}
    for name in COMPARED:
        frame = table(settings, name)
        frames[name] = frame.drop(columns=[c for c in ("updated_at", "run_id") if c in frame.columns])
    return frames


def assert_same_tables(left: dict, right: dict) -> None:
    for name in COMPARED:
        pd.testing.assert_frame_equal(left[name], right[name], check_dtype=False, obj=name)


def reader_answer(settings: Settings, request: dict) -> dict:
    from pipeline.serve.reader import query_contacts

    return query_contacts(settings, request, as_of=datetime(2025, 4, 1))


@st.composite
def deliveries(draw):
    """Random events with their load days: late arrivals, duplicates re-sent later, a processing order."""
    count = draw(st.integers(3, 28))
    rows = []
    for i in range(count):
        visitor = draw(st.sampled_from(["v0", "v1", "v2", "v3"]))
        at = BASE + timedelta(minutes=draw(st.integers(0, 3 * 24 * 60 // 7)) * 7)
        stamp = at.strftime("%Y-%m-%d %H:%M:%S")
        if draw(st.integers(0, 5)) == 0:
            line = conversion(f"e{i}", visitor, stamp, "/thanks", draw(st.sampled_from(["a@x.co", "b@x.co", "C@x.co "])))
        else:
            line = event(f"e{i}", visitor, stamp, draw(st.sampled_from(PAGES)), referrer=draw(st.sampled_from(REFERRERS)))
        day = at.date() + timedelta(days=draw(st.sampled_from([0, 0, 0, 1, 2])))
        rows.append((day, line))
        if draw(st.integers(0, 6)) == 0:  # the same event sent again, maybe changed, on a later day
            again = dict(line, page_url=SITE + "/resent") if draw(st.booleans()) else line
            rows.append((day + timedelta(days=draw(st.integers(0, 2))), again))
    days = sorted({d for d, _ in rows})
    order = draw(st.permutations(days))
    reruns = draw(st.lists(st.sampled_from(days), max_size=3))
    return rows, list(order) + reruns


def write_landing(landing, rows) -> None:
    by_day: dict[date, list] = {}
    for day, line in rows:
        by_day.setdefault(day, []).append(line)
    for day, lines in by_day.items():
        write_partition(landing, day.isoformat(), lines)


@hsettings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=deliveries(), buckets=st.sampled_from([1, 2, 3]))
def test_incremental_runs_in_any_order_equal_a_full_refresh(tmp_path_factory, case, buckets):
    rows, order = case
    root = tmp_path_factory.mktemp("inc")
    landing = root / "landing"
    write_landing(landing, rows)
    incremental = Settings(warehouse_url=f"sqlite:///{root / 'inc.db'}", landing=landing, workspace=root / "runs", buckets=buckets)
    full = Settings(warehouse_url=f"sqlite:///{root / 'full.db'}", landing=landing, workspace=root / "runs", buckets=2)
    for day in order:
        run(incremental, day.isoformat())
    days = sorted(set(order))
    run(full, days[0].isoformat(), days[-1].isoformat(), full_refresh=True)
    assert_same_tables(published(incremental), published(full))
    for request in ({}, {"touch_scope": "first"}, {"source": "google.com"}, {"emails": ["a@x.co", "b@x.co", "c@x.co"]}):
        assert reader_answer(incremental, request) == reader_answer(full, request)
    shutil.rmtree(root, ignore_errors=True)


def test_late_conversion_re_attributes_month_old_sessions(settings):
    write_partition(settings.landing, "2025-02-01", [event("old", "v", "2025-02-01 10:00:00", referrer="https://www.google.com/")])
    write_partition(settings.landing, "2025-03-01", [event("new", "v", "2025-03-01 10:00:00")])
    write_partition(settings.landing, "2025-03-04", [conversion("late", "v", "2025-03-02 10:00:00", "/t", "a@b.co")])
    run(settings, "2025-02-01")
    run(settings, "2025-03-01")
    run(settings, "2025-03-04")
    summary = contact_summary(settings, "a@b.co")
    assert [s["timestamp"] for s in summary["user_journey"]] == ["2025-02-01 10:00:00", "2025-03-01 10:00:00", "2025-03-02 10:00:00"]
    assert summary["first_touch"]["source"] == "google.com"


def test_late_page_view_extends_yesterdays_session(settings):
    write_partition(settings.landing, "2025-03-01", [event("a", "v", "2025-03-01 10:00:00"), conversion("c", "v", "2025-03-01 10:05:00", "/t", "a@b.co")])
    write_partition(settings.landing, "2025-03-02", [event("late", "v", "2025-03-01 10:20:00", "/after")])
    run(settings, "2025-03-01")
    assert "exit" not in contact_summary(settings, "a@b.co")["user_journey"][0]
    run(settings, "2025-03-02")
    session = contact_summary(settings, "a@b.co")["user_journey"][0]
    assert session["session_duration"] == 1200 and session["exit"]["exit_page"] == SITE + "/after"
    assert len(table(settings, "sessions")) == 1


def test_session_crossing_midnight_and_load_days_is_one_session(settings):
    write_partition(settings.landing, "2025-03-01", [event("a", "v", "2025-03-01 23:50:00")])
    write_partition(settings.landing, "2025-03-02", [event("b", "v", "2025-03-02 00:15:00"), conversion("c", "v", "2025-03-02 00:16:00", "/t", "a@b.co")])
    run(settings, "2025-03-02")
    run(settings, "2025-03-01")
    sessions = table(settings, "sessions")
    assert len(sessions) == 1 and sessions["session_duration"].tolist() == [1560]
    assert sessions["first_event_id"].tolist() == ["a"]
