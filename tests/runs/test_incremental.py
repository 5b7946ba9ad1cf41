"""Incremental runs equal a full recompute (SPEC section 9), whatever the arrival order, lateness or reruns."""

from __future__ import annotations

import shutil
from datetime import date, datetime, timedelta

import pandas as pd
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from pipeline.settings import Settings
from tests.conftest import examples, fresh_warehouse_url
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


BOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
BROKEN = ["{not json", '{"event_id": "x", "anonymous_id": "v0"}', '{"event_id": "y", "anonymous_id": "v1", "timestamp": "2025-03-01T10:00:00", '
          '"event_type": "page_view", "page_url": "https://shop.example.com/"}']  # fmt: skip
EMAILS = ["a@x.co", "b@x.co", "C@x.co "]


def delivered_event(draw, i: int, at: datetime) -> dict:
    """One event of a random visitor: a conversion now and then, a bot's page view now and then."""
    visitor, stamp = draw(st.sampled_from(["v0", "v1", "v2", "v3"])), at.strftime("%Y-%m-%d %H:%M:%S")
    if draw(st.integers(0, 5)) == 0:
        return conversion(f"e{i}", visitor, stamp, "/thanks", draw(st.sampled_from(EMAILS)))
    agent = BOT if draw(st.integers(0, 7)) == 0 else None
    line = event(f"e{i}", visitor, stamp, draw(st.sampled_from(PAGES)), referrer=draw(st.sampled_from(REFERRERS)))
    return dict(line, user_agent=agent) if agent else line


@st.composite
def deliveries(draw):
    """Random events with their load days and landing files: late arrivals, duplicates re-sent later, broken lines,
    bots, partitions of several files; a processing order with reruns, and maybe a contact to erase at the end."""
    rows = []
    for i in range(draw(st.integers(3, 24))):
        at = BASE + timedelta(minutes=draw(st.integers(0, 3 * 24 * 60 // 7)) * 7)
        line = delivered_event(draw, i, at)
        day = at.date() + timedelta(days=draw(st.sampled_from([0, 0, 0, 1, 2])))
        rows.append((day, draw(st.integers(0, 2)), line))
        if draw(st.integers(0, 6)) == 0:  # the same event sent again, maybe changed, on a later day
            again = dict(line, page_url=SITE + "/resent") if draw(st.booleans()) else line
            rows.append((day + timedelta(days=draw(st.integers(0, 2))), draw(st.integers(0, 2)), again))
        if draw(st.integers(0, 9)) == 0:
            rows.append((day, draw(st.integers(0, 2)), draw(st.sampled_from(BROKEN))))
    days = sorted({d for d, _, _ in rows})
    order = list(draw(st.permutations(days))) + draw(st.lists(st.sampled_from(days), max_size=3))
    return rows, order, draw(st.sampled_from([None, None, "a@x.co", "c@x.co"]))


def write_landing(landing, rows) -> None:
    """Each day's lines in up to three files (events-0.jsonl …), in the order drawn."""
    files: dict[tuple[date, int], list] = {}
    for day, file, line in rows:
        files.setdefault((day, file), []).append(line)
    for (day, file), lines in files.items():
        write_partition(landing, day.isoformat(), lines, name=f"events-{file}.jsonl")


def assert_incremental_equals_full(incremental: Settings, full: Settings, order: list[date], erase: str | None) -> None:
    """Runs in `order` on one warehouse, and one full refresh on the other, then the same erasure on both: the same
    tables and the same reader answers."""
    from pipeline.runs.forget import forget

    for day in order:
        run(incremental, day.isoformat())
    days = sorted(set(order))
    run(full, days[0].isoformat(), days[-1].isoformat(), full_refresh=True)
    if erase:
        for settings in (incremental, full):
            forget(settings, erase)
    assert_same_tables(published(incremental), published(full))
    for request in ({}, {"touch_scope": "first"}, {"source": "google.com"}, {"emails": ["a@x.co", "b@x.co", "c@x.co"]}):
        assert reader_answer(incremental, request) == reader_answer(full, request)


@hsettings(max_examples=examples(10, ci=16), suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=deliveries(), buckets=st.sampled_from([1, 2, 3]))
def test_incremental_runs_in_any_order_equal_a_full_refresh(tmp_path_factory, case, buckets):
    rows, order, erase = case
    root = tmp_path_factory.mktemp("inc")
    write_landing(root / "landing", rows)
    incremental = Settings(warehouse_url=f"sqlite:///{root / 'inc.db'}", landing=root / "landing", workspace=root / "runs", buckets=buckets)
    full = incremental.model_copy(update={"warehouse_url": f"sqlite:///{root / 'full.db'}", "buckets": 2})
    assert_incremental_equals_full(incremental, full, order, erase)
    shutil.rmtree(root, ignore_errors=True)


def test_incremental_runs_on_postgresql_equal_a_full_refresh(pg_url, tmp_path):
    """One hand-made case on PostgreSQL: a late day staged first, a re-sent duplicate, a broken line, a bot, a
    partition of two files, a rerun, and an erasure."""
    rows = [
        (date(2025, 3, 1), 0, event("p1", "v0", "2025-03-01 09:00:00", "/?utm_source=news&utm_campaign=a")),
        (date(2025, 3, 1), 1, conversion("p2", "v0", "2025-03-01 09:05:00", "/thanks", "a@x.co")),
        (date(2025, 3, 1), 1, "{not json"),
        (date(2025, 3, 1), 0, dict(event("p3", "v9", "2025-03-01 09:06:00"), user_agent=BOT)),
        (date(2025, 3, 2), 0, event("p4", "v1", "2025-03-01 23:50:00", referrer="https://www.google.com/")),
        (date(2025, 3, 2), 0, event("p1", "v0", "2025-03-01 09:00:00", "/resent")),
        (date(2025, 3, 3), 0, conversion("p5", "v1", "2025-03-02 00:10:00", "/thanks", "b@x.co")),
        (date(2025, 3, 3), 1, event("p6", "v0", "2025-03-03 12:00:00", "/pricing", referrer="https://t.co/x")),
    ]
    write_landing(tmp_path / "landing", rows)
    incremental = Settings(warehouse_url=pg_url, landing=tmp_path / "landing", workspace=tmp_path / "runs", buckets=2)
    with fresh_warehouse_url("postgresql", tmp_path) as full_url:
        full = incremental.model_copy(update={"warehouse_url": full_url, "workspace": tmp_path / "full-runs"})
        order = [date(2025, 3, 3), date(2025, 3, 1), date(2025, 3, 2), date(2025, 3, 1)]
        assert_incremental_equals_full(incremental, full, order, "a@x.co")
        assert len(table(incremental, "contacts")) == 1 and table(incremental, "events")["is_bot"].sum() == 1


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
