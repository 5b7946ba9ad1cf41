"""attribution_credits kept exact by runs (SPEC sections 9 and 14): late sessions, late conversions, re-attributed
visitors and erasures re-credit the paths they change, on SQLite and PostgreSQL."""

from __future__ import annotations

import shutil

import pandas as pd
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from pipeline.runs.forget import forget
from pipeline.settings import Settings
from tests.conftest import examples
from tests.helpers import conversion, event, run, table, write_partition
from tests.runs.test_incremental import deliveries, write_landing

ORGANIC = "https://www.google.com/"


def credits(settings) -> dict[str, list[tuple]]:
    """Per conversion: its path as (source, first_touch, linear, time_decay) tuples in position order."""
    frame = table(settings, "attribution_credits").sort_values(["conversion_event_id", "position"])
    return {
        event_id: list(zip(rows["source"], rows["first_touch"], rows["linear"], rows["time_decay"]))
        for event_id, rows in frame.groupby("conversion_event_id")
    }


def test_published_credits_are_the_builders_floats_exactly(settings):
    """Sessions 14, 7 and 0 days before the conversion: linear 1/3 each, time_decay 1/7, 2/7, 4/7 (half-life 7 days)."""
    write_partition(settings.landing, "2025-03-15", [
        event("p1", "v", "2025-03-01 12:00:00", referrer=ORGANIC),
        event("p2", "v", "2025-03-08 12:00:00", "/?utm_source=newsletter&utm_medium=email"),
        event("p3", "v", "2025-03-15 12:00:00"),
        conversion("c", "v", "2025-03-15 12:00:00", "/t", "a@b.co"),
    ])
    run(settings, "2025-03-15")
    assert credits(settings) == {"c": [("google.com", 1.0, 1 / 3, 1 / 7), ("newsletter", 0.0, 1 / 3, 2 / 7), ("direct", 0.0, 1 / 3, 4 / 7)]}
    row = table(settings, "attribution_credits").iloc[0]
    assert (row["email"], row["conversion_type"], row["conversion_id"], row["path_length"]) == ("a@b.co", "html_form", "form-1", 3)
    assert row["conversion_timestamp"] == pd.Timestamp("2025-03-15 12:00:00", tz="UTC")


def test_late_session_re_credits_the_path(settings):
    write_partition(settings.landing, "2025-03-10", [event("p2", "v", "2025-03-10 12:00:00"), conversion("c", "v", "2025-03-10 12:00:00", "/t", "a@b.co")])
    write_partition(settings.landing, "2025-03-11", [event("late", "v", "2025-03-03 12:00:00", referrer=ORGANIC)])
    run(settings, "2025-03-10")
    assert credits(settings) == {"c": [("direct", 1.0, 1.0, 1.0)]}
    run(settings, "2025-03-11")
    assert credits(settings) == {"c": [("google.com", 1.0, 0.5, 1 / 3), ("direct", 0.0, 0.5, 2 / 3)]}  # weights 1/2 and 1


def test_late_conversion_credits_the_sessions_before_it(settings):
    write_partition(settings.landing, "2025-03-01", [event("p1", "v", "2025-03-01 12:00:00", referrer=ORGANIC)])
    write_partition(settings.landing, "2025-03-08", [event("p2", "v", "2025-03-08 12:00:00")])
    write_partition(settings.landing, "2025-03-10", [conversion("c", "v", "2025-03-08 12:00:00", "/t", "a@b.co")])
    run(settings, "2025-03-01")
    run(settings, "2025-03-08")
    assert table(settings, "attribution_credits").empty
    run(settings, "2025-03-10")
    assert credits(settings) == {"c": [("google.com", 1.0, 0.5, 1 / 3), ("direct", 0.0, 0.5, 2 / 3)]}


def test_re_attributed_visitor_moves_its_sessions_to_the_earlier_contact(settings):
    """The laptop first converts as b@; a late, earlier conversion as a@ makes it a@'s device: b@ keeps only the
    session it converted in, a@'s path gains the laptop's earlier session."""
    write_partition(settings.landing, "2025-03-05", [
        event("l1", "laptop", "2025-03-04 09:00:00", referrer=ORGANIC),
        event("l2", "laptop", "2025-03-05 09:00:00", "/?utm_source=newsletter&utm_medium=email"),
        conversion("bc", "laptop", "2025-03-05 09:01:00", "/t", "b@x.co"),
    ])
    write_partition(settings.landing, "2025-03-06", [conversion("ac", "laptop", "2025-03-04 09:30:00", "/t", "a@x.co")])
    run(settings, "2025-03-05")
    assert credits(settings) == {"bc": [("google.com", 1.0, 0.5, 2 ** (-1 / 7) / (1 + 2 ** (-1 / 7))), ("newsletter", 0.0, 0.5, 1 / (1 + 2 ** (-1 / 7)))]}
    run(settings, "2025-03-06")
    assert credits(settings) == {"ac": [("google.com", 1.0, 1.0, 1.0)], "bc": [("newsletter", 1.0, 1.0, 1.0)]}
    frame = table(settings, "attribution_credits").set_index("conversion_event_id")
    assert (frame.loc["ac", "email"], frame.loc["bc", "email"]) == ("a@x.co", "b@x.co")


def test_erasure_removes_the_contacts_credits_and_re_credits_the_others(settings):
    write_partition(settings.landing, "2025-03-05", [
        event("a1", "laptop", "2025-03-04 09:00:00", referrer=ORGANIC),
        conversion("a2", "laptop", "2025-03-04 09:05:00", "/t", "a@x.co"),
        event("b1", "laptop", "2025-03-05 09:00:00", "/?utm_source=partner"),
        conversion("b2", "laptop", "2025-03-05 09:01:00", "/t", "b@x.co"),
        event("c1", "desk", "2025-03-05 10:00:00"),
        conversion("c2", "desk", "2025-03-05 10:01:00", "/t", "c@x.co"),
    ])
    run(settings, "2025-03-05")
    assert set(credits(settings)) == {"a2", "b2", "c2"} and credits(settings)["b2"] == [("partner", 1.0, 1.0, 1.0)]
    forget(settings, "a@x.co")
    # b@ converted on a@'s laptop: the laptop's page views are erased, b@'s conversion stays with a session of its own
    assert credits(settings) == {"b2": [("direct", 1.0, 1.0, 1.0)], "c2": [("direct", 1.0, 1.0, 1.0)]}
    assert "a@x.co" not in set(table(settings, "attribution_credits")["email"])


@hsettings(max_examples=examples(5, ci=6), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=deliveries(), buckets=st.sampled_from([1, 3]))
def test_incremental_credits_equal_a_full_refresh_with_a_one_day_lookback(tmp_path_factory, case, buckets):
    """As tests/runs/test_incremental.py, with a lookback (1 day) and half-life (0.5 day) shorter than the data's
    3 days, so late data moves sessions across the lookback boundary of later conversions."""
    rows, order, erase = case
    root = tmp_path_factory.mktemp("credits")
    write_landing(root / "landing", rows)
    short = {"attribution_lookback_days": 1, "attribution_half_life_days": 0.5, "landing": root / "landing", "workspace": root / "runs"}
    incremental = Settings(warehouse_url=f"sqlite:///{root / 'inc.db'}", buckets=buckets, **short)
    full = Settings(warehouse_url=f"sqlite:///{root / 'full.db'}", buckets=2, **short)
    for day in order:
        run(incremental, day.isoformat())
    days = sorted(set(order))
    run(full, days[0].isoformat(), days[-1].isoformat(), full_refresh=True)
    for settings in (incremental, full) if erase else ():
        forget(settings, erase)
    pd.testing.assert_frame_equal(table(incremental, "attribution_credits"), table(full, "attribution_credits"), check_exact=True)
    shutil.rmtree(root, ignore_errors=True)
