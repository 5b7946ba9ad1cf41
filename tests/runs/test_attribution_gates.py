"""Quality gates of attribution_credits (SPEC sections 10 and 14): each fails on a crafted bad frame, a real run
passes them, and a failing one stops the run before publish."""

from __future__ import annotations

import pandas as pd
import pytest

from pipeline.runs.expectations import with_run_context
from pipeline.runs.quality import QualityGateError, check_run, validate_frames
from pipeline.runs.workspace import Workspace
from pipeline.settings import Settings
from tests.helpers import conversion, event, write_partition
from tests.runs.test_quality import corrupt

DAY = "2025-03-10"


def lines() -> list[dict]:
    """Ann: google.com a week before, then the newsletter, converting twice; Bob converts at once."""
    return [
        event("a1", "va", "2025-03-03 10:00:00", referrer="https://www.google.com/"),
        event("a2", "va", "2025-03-10 10:00:00", "/?utm_source=newsletter&utm_medium=email"),
        conversion("a3", "va", "2025-03-10 10:05:00", "/signup", "ann@example.com"),
        conversion("a4", "va", "2025-03-10 10:06:00", "/demo", "ann@example.com"),
        event("b1", "vb", "2025-03-10 11:00:00", "/"),
        conversion("b2", "vb", "2025-03-10 11:01:00", "/signup", "bob@example.com"),
    ]


def prepared(settings: Settings) -> str:
    from pipeline.runs.nightly import compute_run
    from pipeline.runs.stage import stage_run
    from pipeline.runs.start import start_run

    write_partition(settings.landing, DAY, lines())
    run_id = start_run(settings, [pd.Timestamp(DAY).date()])
    stage_run(settings, run_id)
    compute_run(settings, run_id)
    return run_id


@pytest.fixture(scope="module")
def run_frames_of_a_real_run(tmp_path_factory):
    """(credits, journeys) a real run hands to the gate."""
    root = tmp_path_factory.mktemp("gates")
    settings = Settings(warehouse_url=f"sqlite:///{root / 'wh.db'}", landing=root / "landing", workspace=root / "runs", buckets=2)
    workspace = Workspace(settings, prepared(settings))
    credits = workspace.read_buckets("attribution_credits", 2).sort_values(["conversion_event_id", "position"]).reset_index(drop=True)
    return credits, workspace.read_buckets("contact_sessions", 2)


def failures(credits: pd.DataFrame, journeys: pd.DataFrame, lookback_days: int = 30) -> dict[str, dict]:
    (outcome,) = validate_frames({"attribution_credits": with_run_context(credits, journeys=journeys, lookback_days=lookback_days)})
    return {f["check"]: f for f in outcome.critical}


def test_a_real_runs_credits_pass(run_frames_of_a_real_run):
    credits, journeys = run_frames_of_a_real_run
    assert len(credits) == 5 and credits["conversion_event_id"].nunique() == 3
    assert failures(credits, journeys) == {}


def test_a_credit_above_one_fails(run_frames_of_a_real_run):
    credits, journeys = run_frames_of_a_real_run
    bad = credits.copy()
    bad.loc[0, "linear"] = 1.5
    found = failures(bad, journeys)
    assert found["linear between 0 and 1"]["unexpected_values"] == [1.5]
    assert found["sum_per(conversion_event_id, linear) between 0.999999999 and 1.000000001"]["unexpected_count"] == 2


def test_credits_off_one_by_more_than_1e_9_fail(run_frames_of_a_real_run):
    credits, journeys = run_frames_of_a_real_run
    near, off = credits.copy(), credits.copy()
    near.loc[0, "time_decay"] += 1e-10
    off.loc[0, "time_decay"] += 2e-9
    assert failures(near, journeys) == {}
    assert "sum_per(conversion_event_id, time_decay) between 0.999999999 and 1.000000001" in failures(off, journeys)


def test_a_session_outside_the_journey_fails(run_frames_of_a_real_run):
    credits, journeys = run_frames_of_a_real_run
    bad = credits.copy()
    bob_session = credits.loc[credits["email"] == "bob@example.com", "session_id"].iloc[0]
    bad.loc[0, "session_id"] = bob_session  # Bob's session credited on Ann's path
    assert failures(bad, journeys)["journey_session_timestamp not null"]["unexpected_count"] == 1


def test_a_session_with_another_start_than_the_journeys_fails(run_frames_of_a_real_run):
    credits, journeys = run_frames_of_a_real_run
    bad = credits.copy()
    bad.loc[0, "session_timestamp"] -= pd.Timedelta(hours=1)
    assert "session_timestamp == journey_session_timestamp" in failures(bad, journeys)


def test_a_session_after_the_conversion_fails(run_frames_of_a_real_run):
    credits, journeys = run_frames_of_a_real_run
    bad = credits.copy()
    bad.loc[0, "conversion_timestamp"] = bad.loc[0, "session_timestamp"] - pd.Timedelta(seconds=1)
    assert "session_timestamp <= conversion_timestamp" in failures(bad, journeys)


def test_a_later_touch_before_the_lookback_fails_but_the_first_may_be_the_own_session(run_frames_of_a_real_run):
    """Ann's first conversion's path: google.com 7 days before (position 1), then the converting session."""
    credits, journeys = run_frames_of_a_real_run
    assert failures(credits, journeys, lookback_days=6) == {}  # position 1 is not checked against the lookback
    moved = credits.copy()
    second = moved.index[(moved["position"] == 2) & (moved["email"] == "ann@example.com")][0]
    moved.loc[second, "position"], moved.loc[second - 1, "position"] = 1, 2  # the old session now at position 2
    assert "session_timestamp >= lookback_start when position > 1" in failures(moved, journeys, lookback_days=6)


def test_a_failing_attribution_gate_stops_the_run_before_publish(settings):
    run_id = prepared(settings)
    corrupt(settings, run_id, "attribution_credits", lambda f: f.assign(first_touch=0.5))
    with pytest.raises(QualityGateError, match=r"attribution_credits: .*sum_per\(conversion_event_id, first_touch\)"):
        check_run(settings, run_id)
