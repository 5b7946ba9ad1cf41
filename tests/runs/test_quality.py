"""Quality gates (SPEC section 10): each gate fails on a crafted bad frame and passes on good data; a failed
critical gate fails the run before publish, keeps its results, and leaves the published tables untouched."""

from __future__ import annotations

import json
import re
from datetime import date

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import settings as settings_of_hypothesis
from hypothesis import strategies as st
from sqlalchemy import select

from pipeline.runs.expectations import DERIVED
from pipeline.runs.nightly import compute_run
from pipeline.runs.quality import QualityGateError, check_run, run_frames, validate_frames
from pipeline.runs.stage import stage_run
from pipeline.runs.start import start_run
from pipeline.runs.workspace import Workspace
from pipeline.settings import Settings
from pipeline.transform.contacts import rounded
from pipeline.warehouse import tables as t
from tests.helpers import conversion, event, run, scalar, table, write_partition

DAY = "2025-03-01"
SUMMARY = re.compile(r"^events (\d+)/\1 ok, sessions (\d+)/\2 ok, contacts (\d+)/\3 ok, attribution_credits (\d+)/\4 ok$")


def first_day_events() -> list[dict]:
    """A repeat converter over two sessions, a single converter, a visitor who never converts, a bot."""
    return [
        event("a1", "v1", f"{DAY} 10:00:00", "/landing?utm_source=news&utm_medium=email&utm_campaign=spring"),
        event("a2", "v1", f"{DAY} 10:05:00", "/pricing"),
        conversion("a3", "v1", f"{DAY} 10:06:00", "/signup", "Ann@Example.com"),
        event("a4", "v1", f"{DAY} 14:00:00", "/home"),
        conversion("a5", "v1", f"{DAY} 14:02:30", "/demo", "ann@example.com", meta_id="form-2"),
        event("b1", "v2", f"{DAY} 09:00:00", "/blog", referrer="https://www.google.com/"),
        conversion("b2", "v2", f"{DAY} 09:01:00", "/newsletter", "bob@example.com"),
        event("c1", "v3", f"{DAY} 11:00:00", "/", referrer="https://news.ycombinator.com/item"),
        event("c2", "v3", f"{DAY} 11:12:00", "/about"),
        event("d1", "v4", f"{DAY} 12:00:00", "/", user_agent="Mozilla/5.0 (compatible; Googlebot/2.1)"),
    ]


def prepare_run(settings: Settings) -> str:
    """Every step of a run before the gates (stage → sessionize → identify → summarise); returns the run id."""
    write_partition(settings.landing, DAY, first_day_events())
    run_id = start_run(settings, [date.fromisoformat(DAY)])
    stage_run(settings, run_id)
    compute_run(settings, run_id)
    return run_id


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> dict[str, pd.DataFrame]:
    """The frames a real run hands to the gates (staged events, sessions, contacts)."""
    root = tmp_path_factory.mktemp("good")
    (root / "landing").mkdir()
    settings = Settings(warehouse_url=f"sqlite:///{root / 'wh.db'}", landing=root / "landing", workspace=root / "runs", buckets=2)
    frames = run_frames(settings, Workspace(settings, prepare_run(settings)))
    assert {name: len(frame) > 0 for name, frame in frames.items()} == {"events": True, "sessions": True, "contacts": True, "attribution_credits": True}
    return frames


def failed_checks(suite: str, frame: pd.DataFrame) -> dict[str, dict]:
    """Failed critical expectations of one suite on one frame, by check label."""
    (outcome,) = validate_frames({suite: frame})
    return {f["check"]: f for f in outcome.critical}


def test_good_frames_pass_every_gate(good):
    outcomes = validate_frames(good)
    assert [(o.suite, o.failures) for o in outcomes] == [("events", []), ("sessions", []), ("contacts", []), ("attribution_credits", [])]
    assert all(o.evaluated > 10 for o in outcomes)


def test_empty_frames_pass():
    outcomes = validate_frames({"events": pd.DataFrame(), "sessions": pd.DataFrame(), "contacts": pd.DataFrame({"email": []})})
    assert [(o.suite, o.evaluated, o.failures) for o in outcomes] == [("events", 0, []), ("sessions", 0, []), ("contacts", 0, [])]
    assert outcomes[0].summary() == "events 0/0 ok"


def test_null_event_id_fails_the_events_gate(good):
    bad = good["events"].copy()
    bad.loc[2, "event_id"] = None
    assert failed_checks("events", bad)["event_id not null"]["unexpected_count"] == 1


def test_unknown_event_type_fails_the_events_gate(good):
    bad = good["events"].copy()
    bad.loc[0, "event_type"] = "click"
    failure = failed_checks("events", bad)["event_type in (page_view, conversion)"]
    assert (failure["unexpected_count"], failure["unexpected_values"]) == (1, ["click"])


def test_conversion_without_email_fails_the_events_gate(good):
    bad = good["events"].copy()
    bad.loc[bad["event_type"] == "conversion", "email"] = None
    assert failed_checks("events", bad)["email not null when event_type == conversion"]["unexpected_count"] == 3


def test_duplicate_event_id_fails_the_events_gate(good):
    bad = good["events"].copy()
    bad.loc[1, "event_id"] = bad.loc[0, "event_id"]
    assert failed_checks("events", bad)["event_id unique"]["unexpected_count"] == 2


def test_negative_session_duration_fails_the_sessions_gate(good):
    bad = good["sessions"].copy()
    bad.loc[0, "session_duration"] = -1
    failures = failed_checks("sessions", bad)
    assert failures["session_duration >= 0"]["unexpected_values"] == [-1]
    assert "session_duration == whole_seconds(timestamp, end_timestamp)" in failures


def test_session_ending_before_it_starts_fails_the_sessions_gate(good):
    bad = good["sessions"].copy()
    bad.loc[0, "end_timestamp"] = bad.loc[0, "timestamp"] - pd.Timedelta(minutes=5)
    assert failed_checks("sessions", bad)["end_timestamp >= timestamp"]["unexpected_count"] == 1


def test_duration_that_disagrees_with_the_timestamps_fails_the_sessions_gate(good):
    bad = good["sessions"].copy()
    bad["session_duration"] = bad["session_duration"] + 1
    failures = failed_checks("sessions", bad)
    assert list(failures) == ["session_duration == whole_seconds(timestamp, end_timestamp)"]


def test_conversion_rate_above_100_fails_the_contacts_gate(good):
    bad = good["contacts"].copy()
    bad.loc[0, "conversion_rate_percent"] = 120.0
    assert failed_checks("contacts", bad)["conversion_rate_percent between 0 and 100"]["unexpected_values"] == [120.0]


def test_zero_total_sessions_fails_the_contacts_gate(good):
    bad = good["contacts"].copy()
    bad.loc[0, "total_sessions"] = 0
    assert failed_checks("contacts", bad)["total_sessions >= 1"]["unexpected_count"] == 1


def test_inconsistent_repeat_converter_fails_the_contacts_gate(good):
    bad = good["contacts"].copy()
    bad["is_repeat_converter"] = ~bad["is_repeat_converter"]
    failures = failed_checks("contacts", bad)
    assert list(failures) == ["is_repeat_converter == more_than_one(total_conversions)"]
    assert failures["is_repeat_converter == more_than_one(total_conversions)"]["unexpected_count"] == len(bad)


def test_more_converting_sessions_than_conversions_fails_the_contacts_gate(good):
    bad = good["contacts"].copy()
    single = bad.index[bad["total_conversions"] == 1][0]
    bad.loc[single, ["total_sessions", "conversion_rate_percent"]] = [4, 50.0]  # 2 converting sessions, 1 conversion
    assert "total_conversions >= min_converting_sessions(conversion_rate_percent, total_sessions)" in failed_checks("contacts", bad)


@settings_of_hypothesis(max_examples=300, deadline=None)
@given(sessions=st.integers(1, 50_000), data=st.data())
def test_converting_sessions_bound_never_exceeds_the_true_count(sessions, data):
    """The rate is rounded to 2 decimals, so the bound must stay at or below the real converting sessions."""
    converting = data.draw(st.integers(1, sessions))
    rate = rounded(pd.Series([100 * converting]), pd.Series([sessions]), 2)
    bound = DERIVED["min_converting_sessions"](rate, pd.Series([sessions])).iloc[0]
    assert bound <= converting
    if sessions < 10_000:  # the rounding then loses less than half a session: the bound is exact
        assert bound == converting


def test_missing_column_fails_the_gate(good):
    bad = good["sessions"].drop(columns=["channel"])
    failure = failed_checks("sessions", bad)["documented columns present"]
    assert failure["observed_value"] == {"missing": ["channel"]}


def corrupt(settings: Settings, run_id: str, name: str, change) -> None:
    """Replace one bucketed step output of the run by a changed copy of all its buckets."""
    workspace = Workspace(settings, run_id)
    frame = change(workspace.read_buckets(name, settings.buckets).copy())
    workspace.write(f"{name}-0", frame)
    for bucket in range(1, settings.buckets):
        workspace.write(f"{name}-{bucket}", frame.iloc[0:0])


def validation_rows(settings: Settings, run_id: str) -> pd.DataFrame:
    rows = table(settings, "validation_results")
    return rows[rows["run_id"] == run_id].set_index("suite")


def test_good_run_passes_and_records_one_row_per_suite(settings):
    run_id = prepare_run(settings)
    result = check_run(settings, run_id)
    assert SUMMARY.match(result["summary"]), result["summary"]
    assert Workspace(settings, run_id).read_json("validation")["summary"] == result["summary"]
    rows = validation_rows(settings, run_id)
    assert sorted(rows.index) == ["attribution_credits", "contacts", "events", "sessions"]
    assert rows["success"].all() and (rows["failed"] == 0).all() and (rows["evaluated"] > 0).all()
    assert (rows["results"] == "[]").all()


def test_failed_gate_raises_and_keeps_its_results(settings):
    run_id = prepare_run(settings)
    corrupt(settings, run_id, "contacts", lambda f: f.assign(total_sessions=0))
    with pytest.raises(QualityGateError, match=r"^quality gate failed before publish: contacts: .*total_sessions >= 1 \(2 unexpected\)") as raised:
        check_run(settings, run_id)
    assert "\n" not in str(raised.value)
    rows = validation_rows(settings, run_id)
    assert rows.loc["contacts", "success"] == False  # noqa: E712 - a nullable boolean
    assert rows.loc["contacts", "critical_failed"] >= 1 and rows.loc["events", "success"] == True  # noqa: E712
    failures = {f["check"]: f for f in json.loads(rows.loc["contacts", "results"])}
    assert failures["total_sessions >= 1"] == {
        "check": "total_sessions >= 1",
        "expectation": "expect_column_values_to_be_between",
        "critical": True,
        "unexpected_count": 2,
        "unexpected_values": [0, 0],
    }
    assert "FAILED" in Workspace(settings, run_id).read_json("validation")["summary"]


def test_retried_check_replaces_its_rows(settings):
    run_id = prepare_run(settings)
    corrupt(settings, run_id, "sessions", lambda f: f.assign(page_views=-1))
    with pytest.raises(QualityGateError, match="sessions: page_views >= 0"):
        check_run(settings, run_id)
    corrupt(settings, run_id, "sessions", lambda f: f.assign(page_views=f["page_views"].abs()))
    check_run(settings, run_id)
    rows = validation_rows(settings, run_id)
    assert len(rows) == 4 and rows["success"].all()


def test_non_critical_failure_is_recorded_but_passes(settings):
    run_id = prepare_run(settings)
    corrupt(settings, run_id, "contacts", lambda f: f.assign(avg_days_between_sessions=-1.0))
    result = check_run(settings, run_id)
    assert "contacts " in result["summary"] and "ok (1 non-critical failed)" in result["summary"]
    row = validation_rows(settings, run_id).loc["contacts"]
    assert (row["success"], row["failed"], row["critical_failed"]) == (False, 1, 0)
    assert json.loads(row["results"])[0]["check"] == "avg_days_between_sessions >= 0"


def published(settings: Settings) -> dict[str, pd.DataFrame]:
    names = [tbl.name for tbl in t.PUBLISHED_TABLES] + ["contacts_history", "warehouse_state"]
    return {name: table(settings, name) for name in names}


@pytest.mark.parametrize("worker", [False, True], ids=["in-process", "quality-worker"])
def test_failing_gate_fails_the_run_and_leaves_the_published_tables_alone(settings, monkeypatch, worker):
    """In-process the check comes before publish; with a quality worker (a chain of runs) publish's transaction waits
    for the outcomes before its commit (runs/worker_gate.py) and rolls back on a failure: the same tables, run rows
    and validation rows either way."""
    settings = settings.model_copy(update={"quality_worker": worker})
    write_partition(settings.landing, DAY, first_day_events())
    (first,) = run(settings, DAY)
    before = published(settings)
    assert SUMMARY.match(table(settings, "pipeline_runs")["validation"].iloc[0])
    passed = validation_rows(settings, first.run_id)
    assert sorted(passed.index) == ["attribution_credits", "contacts", "events", "sessions"] and passed["success"].all()

    import pipeline.runs.steps as steps

    real = steps.build_sessions

    def negative_durations(**kwargs):
        sessions, conversions = real(**kwargs)
        return sessions.assign(session_duration=-sessions["session_duration"] - 1), conversions

    monkeypatch.setattr(steps, "build_sessions", negative_durations)
    write_partition(settings.landing, "2025-03-02", [event("e1", "v1", "2025-03-02 09:00:00", "/again"), event("e2", "v9", "2025-03-02 09:30:00", "/")])
    with pytest.raises(QualityGateError, match="sessions: .*session_duration >= 0"):
        run(settings, "2025-03-02")

    after = published(settings)
    for name, frame in before.items():
        pd.testing.assert_frame_equal(after[name], frame, obj=name)
    runs = table(settings, "pipeline_runs").set_index("run_id")
    failed = runs.loc[runs.index != first.run_id].iloc[0]
    assert (runs.loc[first.run_id, "status"], failed["status"]) == ("success", "failed")
    assert failed["error"].startswith("QualityGateError: quality gate failed before publish: sessions: ")
    rows = validation_rows(settings, failed.name)
    assert rows.loc["sessions", "critical_failed"] >= 1 and len(rows) == 4
    assert json.loads(rows.loc["sessions", "results"])  # the failed expectations are readable
    assert scalar(settings, select(t.warehouse_state.c.lock_run_id)) is None
