"""The numbers each report chart is drawn from, exact on the story warehouse (tests/serve/story.py), on both backends."""

from __future__ import annotations

import re
from datetime import date

import pandas as pd
import pytest

from pipeline.serve import report_charts as charts
from pipeline.serve import report_data as data
from pipeline.serve.reader import snapshot
from pipeline.serve.report import chart_specs, collect
from pipeline.warehouse.engines import read_only_engine
from tests.serve.story import story_warehouse

WINDOW = data.Window(date(2025, 7, 1), date(2025, 7, 3))


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def story(request, tmp_path_factory):
    with story_warehouse(request.param, tmp_path_factory.mktemp("report")) as (settings, _):
        yield settings


@pytest.fixture
def conn(story):
    with snapshot(read_only_engine(story.warehouse_url)) as connection:
        yield connection


def rows(frame: pd.DataFrame) -> list[tuple]:
    return [tuple(row) for row in frame.itertuples(index=False)]


def test_sessions_per_day_and_channel(conn):
    assert rows(data.sessions_by_channel(conn, WINDOW)) == [
        ("2025-07-01", "Paid Search", 3),
        ("2025-07-02", "Email", 1), ("2025-07-02", "Organic Search", 1), ("2025-07-02", "Organic Social", 1),
        ("2025-07-03", "Direct", 1),
    ]


def test_conversions_count_each_contacts_conversion_under_its_sessions_channel(conn):
    # bob's and dave's conversions share bob's bing.com / cpc session
    assert rows(data.conversions_by_channel(conn, WINDOW)) == [
        ("2025-07-01", "Paid Search", 2),
        ("2025-07-02", "Email", 1), ("2025-07-02", "Organic Search", 1), ("2025-07-02", "Organic Social", 1),
    ]


def test_new_contacts_fall_on_their_first_conversions_day(conn):
    assert rows(data.new_contacts(conn, WINDOW)) == [("2025-07-01", 2), ("2025-07-02", 2)]


def test_window_bounds_are_whole_utc_days(conn):
    one_day = data.Window(date(2025, 7, 2), date(2025, 7, 2))
    assert rows(data.sessions_by_channel(conn, one_day)) == [("2025-07-02", "Email", 1), ("2025-07-02", "Organic Search", 1), ("2025-07-02", "Organic Social", 1)]
    assert rows(data.new_contacts(conn, one_day)) == [("2025-07-02", 2)]
    assert data.sessions_by_channel(conn, data.Window(date(2025, 7, 4), date(2025, 7, 9))).empty


def test_runs_and_events_per_load_day(conn):
    runs = data.runs_in_window(conn, WINDOW)
    assert rows(runs[["interval_start", "status", "events_read", "events_loaded", "events_duplicate", "events_quarantined"]]) == [
        ("2025-07-03", "success", 3, 1, 1, 1), ("2025-07-02", "success", 14, 12, 0, 2),
    ]
    assert rows(data.events_by_load_day(runs)) == [
        ("2025-07-02", "duplicate", 0), ("2025-07-02", "loaded", 12), ("2025-07-02", "quarantined", 2),
        ("2025-07-03", "duplicate", 1), ("2025-07-03", "loaded", 1), ("2025-07-03", "quarantined", 1),
    ]
    assert data.runs_in_window(conn, data.Window(date(2025, 7, 3), date(2025, 7, 3)))["interval_start"].tolist() == ["2025-07-03"]


def test_quarantine_by_reason_counts_the_windows_load_days(conn):
    assert rows(data.quarantine_by_reason(conn, WINDOW)) == [
        ("invalid JSON", 1), ("missing required field anonymous_id", 1), ("unparseable timestamp", 1),
    ]
    assert rows(data.quarantine_by_reason(conn, data.Window(date(2025, 7, 3), date(2025, 7, 3)))) == [("unparseable timestamp", 1)]


def test_default_window_is_up_to_30_days_up_to_the_latest_session_from_the_first(conn):
    assert data.report_window(conn, None, None) == data.Window(date(2025, 7, 1), date(2025, 7, 3))  # sessions 07-01..07-03
    assert data.report_window(conn, date(2025, 7, 2), None) == data.Window(date(2025, 7, 2), date(2025, 7, 3))
    assert data.report_window(conn, None, date(2025, 8, 15)) == data.Window(date(2025, 7, 17), date(2025, 8, 15))
    assert data.report_window(conn, None, date(2025, 6, 1)) == data.Window(date(2025, 6, 1), date(2025, 6, 1))
    with pytest.raises(ValueError, match="before --start-date"):
        data.report_window(conn, date(2025, 7, 3), date(2025, 7, 1))


def test_chart_specs_carry_exactly_the_frames_rows(story):
    found = collect(story, WINDOW.start, WINDOW.end)
    specs = chart_specs(found)
    assert set(specs) == {"chart-attribution", "chart-sessions", "chart-conversions", "chart-contacts", "chart-events", "chart-quarantine"}

    def dataset(spec: dict) -> list[dict]:
        (values,) = spec["datasets"].values()
        return values

    assert dataset(specs["chart-sessions"]) == found["sessions"].to_dict("records")
    assert len(dataset(specs["chart-attribution"])) == len(found["attribution"]) == 7 * 4  # every model × the 4 channels
    assert dataset(specs["chart-contacts"]) == [{"day": "2025-07-01", "contacts": 2}, {"day": "2025-07-02", "contacts": 2}]
    assert specs["chart-sessions"]["encoding"]["x"]["scale"]["domain"] == ["2025-07-01", "2025-07-02", "2025-07-03"]
    colours = specs["chart-sessions"]["encoding"]["color"]["scale"]
    assert dict(zip(colours["domain"], colours["range"])) == {c: charts.CHANNEL_COLOURS[c] for c in ("Direct", "Email", "Organic Search", "Organic Social", "Paid Search")}


def report(model: str, rows_: list[tuple]) -> dict:
    """A SPEC section 14 response by channel."""
    return {"model": model, "by": "channel", "conversions": 5,
            "rows": [{"channel": v, "conversions": c, "share_percent": round(c / 5 * 100, 2), "touches": n} for v, c, n in rows_]}


def test_attribution_rows_of_every_model_in_one_frame():
    reports = {
        "first_touch": report("first_touch", [("Paid Search", 3.0, 3), ("Organic Search", 2.0, 2)]),
        "linear": report("linear", [("Paid Search", 2.5, 4), ("Email", 1.5, 2), ("Organic Search", 1.0, 2)]),
    }
    frame = data.attribution_frame(reports)
    assert rows(frame) == [
        ("first_touch", "Paid Search", 3.0, 60.0, 3), ("first_touch", "Organic Search", 2.0, 40.0, 2),
        ("linear", "Paid Search", 2.5, 50.0, 4), ("linear", "Email", 1.5, 30.0, 2), ("linear", "Organic Search", 1.0, 20.0, 2),
    ]
    spec = charts.attribution_chart(frame)
    assert spec["encoding"]["y"]["sort"] == ["Paid Search", "Organic Search", "Email"]  # most credited first
    assert spec["encoding"]["yOffset"]["field"] == "model"


def test_attribution_by_model_reads_the_credits_of_the_window(story):
    """Five conversions: bob's and dave's in bob's bing/cpc session; alice's after google/cpc then email; carol's two
    after duckduckgo/organic (vc1) then facebook (vc2). Linear: Paid Search 1 + 1 + 0.5, Email 0.5, Organic Search and
    Organic Social 0.5 + 0.5 each. Last touch: carol's 18:20 conversion in vc1 still ends on vc2, which started later."""
    frame = data.attribution_frame(data.attribution_by_model(story, WINDOW))
    credit = {model: dict(zip(rows["value"], rows["conversions"])) for model, rows in frame.groupby("model")}
    assert set(credit) == set(data.MODELS)
    assert credit["linear"] == {"Paid Search": 2.5, "Email": 0.5, "Organic Search": 1.0, "Organic Social": 1.0}
    assert credit["first_touch"] == {"Paid Search": 3.0, "Organic Search": 2.0, "Email": 0.0, "Organic Social": 0.0}
    assert credit["last_touch"] == {"Paid Search": 2.0, "Email": 1.0, "Organic Social": 2.0, "Organic Search": 0.0}


def test_report_and_ui_colour_channels_alike():
    from pipeline.serve.ui import UI_DIR

    js = (UI_DIR / "timeline.js").read_text()
    block = js[js.index("const CHANNEL_COLOURS"): js.index("};", js.index("const CHANNEL_COLOURS"))]
    assert dict(re.findall(r'"([^"]+)": "(#[0-9a-f]{6})"', block)) == charts.CHANNEL_COLOURS
