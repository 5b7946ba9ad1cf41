"""Attribution credits (SPEC section 14): paths with the lookback, positions, and the six rule-based models, by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from pipeline.settings import Settings
from pipeline.transform.contacts import build_contact_tables
from pipeline.transform.credits import CREDIT_COLUMNS, RULE_MODELS, build_credits, conversion_paths
from pipeline.transform.identity import assign_identities
from pipeline.transform.sessions import build_sessions
from pipeline.warehouse import tables as t
from tests.helpers import conversion, event, staged

T0 = pd.Timestamp("2025-03-31 12:00:00", tz="UTC")  # the conversion of the frame-built examples
ORGANIC, EMAIL, DIRECT = "https://www.google.com/", "/?utm_source=newsletter&utm_medium=email", None


def credits_of(*lines, settings: Settings | None = None) -> pd.DataFrame:
    """Raw events → attribution_credits rows through the pure stages, as summarise builds them."""
    sessions, conversions = build_sessions(events=staged(*lines, day="2025-04-30"), settings=Settings())
    tables = build_contact_tables(
        identities=assign_identities(conversions=conversions), sessions=sessions, conversions=conversions, settings=settings or Settings()
    )
    return tables["attribution_credits"].sort_values(["conversion_event_id", "position"]).reset_index(drop=True)


def journey_rows(*sessions: tuple[str, float, str], email: str = "a@b.co") -> pd.DataFrame:
    """Journey rows (session id, days before T0, source) of one contact."""
    return pd.DataFrame(
        {
            "email": email,
            "session_id": [s[0] for s in sessions],
            "session_timestamp": [T0 - pd.Timedelta(days=s[1]) for s in sessions],
            "source": [s[2] for s in sessions],
            "medium": "none",
            "campaign": "none",
            "channel": "Direct",
        }
    )


def one_conversion(session_id: str, email: str = "a@b.co", at: pd.Timestamp = T0) -> pd.DataFrame:
    return pd.DataFrame(
        {"event_id": ["c1"], "email": [email], "session_id": [session_id], "timestamp": [at], "conversion_type": ["html_form"], "conversion_id": ["f"]}
    )


def model(frame: pd.DataFrame, name: str) -> list[float]:
    return frame[name].tolist()


def test_table_has_the_builders_columns_in_the_specs_order():
    assert [c.name for c in t.attribution_credits.columns] == CREDIT_COLUMNS
    assert t.RULE_MODELS == RULE_MODELS
    assert [c.name for c in t.attribution_credits.primary_key.columns] == ["conversion_event_id", "session_id"]


def test_three_touch_path_under_every_model():
    """google.com organic 14 days before, the newsletter 7 days before, then a direct visit that converts.

    time_decay, half-life 7 days: weights 2^-(14/7) = 1/4, 2^-(7/7) = 1/2, 2^0 = 1; sum 7/4; credits 1/7, 2/7, 4/7.
    """
    paths = credits_of(
        event("p1", "v", "2025-03-17 12:00:00", referrer=ORGANIC),
        event("p2", "v", "2025-03-24 12:00:00", EMAIL),
        event("p3", "v", "2025-03-31 12:00:00"),
        conversion("c", "v", "2025-03-31 12:00:00", "/thanks", "a@b.co"),
    )
    assert paths["source"].tolist() == ["google.com", "newsletter", "direct"]
    assert paths["position"].tolist() == [1, 2, 3] and paths["path_length"].tolist() == [3, 3, 3]
    assert model(paths, "first_touch") == [1.0, 0.0, 0.0]
    assert model(paths, "last_touch") == [0.0, 0.0, 1.0]
    assert model(paths, "last_non_direct") == [0.0, 1.0, 0.0]  # the direct visit is skipped
    assert model(paths, "linear") == [1 / 3, 1 / 3, 1 / 3]
    assert model(paths, "position_based") == [0.4, 0.2, 0.4]
    assert model(paths, "time_decay") == [1 / 7, 2 / 7, 4 / 7]
    assert paths["conversion_timestamp"].unique().tolist() == [T0]
    assert (paths["conversion_type"].unique().tolist(), paths["conversion_id"].unique().tolist()) == (["html_form"], ["form-1"])


def test_time_decay_with_half_a_half_life():
    """Touches 3.5 days and 0 days before: weights 2^-0.5 = 1/√2 and 1; credits (1/√2)/(1 + 1/√2) = √2 - 1 and 2 - √2."""
    paths = build_credits(journey=journey_rows(("s1", 3.5, "a.com"), ("s2", 0, "b.com")), conversions=one_conversion("s2"), settings=Settings())
    assert model(paths, "time_decay") == [pytest_approx(math.sqrt(2) - 1), pytest_approx(2 - math.sqrt(2))]
    assert sum(model(paths, "time_decay")) == 1.0


def test_time_decay_follows_the_half_life_setting():
    """Half-life 3.5 days: the touch 7 days before weighs 1/4 against 1, so it gets 1/5 and the converting touch 4/5."""
    journey = journey_rows(("s1", 7, "a.com"), ("s2", 0, "b.com"))
    paths = build_credits(journey=journey, conversions=one_conversion("s2"), settings=Settings(attribution_half_life_days=3.5))
    assert model(paths, "time_decay") == [0.25 / 1.25, 1 / 1.25]


def test_time_decay_of_touches_far_beyond_the_half_life_does_not_vanish():
    """Weights are taken relative to the nearest touch, so 2^-(days / h) underflowing to 0 cannot give 0 / 0."""
    journey = journey_rows(("s1", 29, "a.com"), ("s2", 28, "b.com"))
    paths = build_credits(journey=journey, conversions=one_conversion("s2", at=T0), settings=Settings(attribution_half_life_days=0.0001))
    assert model(paths, "time_decay") == [0.0, 1.0]


def pytest_approx(value: float):
    import pytest

    return pytest.approx(value, rel=1e-15, abs=0)


def test_position_based_for_one_two_three_and_five_touches():
    for n, expected in [
        (1, [1.0]),
        (2, [0.5, 0.5]),
        (3, [0.4, 0.2, 0.4]),
        (5, [0.4, 0.2 / 3, 0.2 / 3, 0.2 / 3, 0.4]),
    ]:
        journey = journey_rows(*((f"s{i}", n - i, "a.com") for i in range(1, n + 1)))
        paths = build_credits(journey=journey, conversions=one_conversion(f"s{n}"), settings=Settings())
        assert model(paths, "position_based") == expected, n
        assert model(paths, "linear") == [1 / n] * n
        assert math.fsum(expected) == 1.0


def test_last_non_direct_of_an_all_direct_path_is_the_last_touch():
    journey = journey_rows(("s1", 2, "direct"), ("s2", 1, "direct"), ("s3", 0, "direct"))
    paths = build_credits(journey=journey, conversions=one_conversion("s3"), settings=Settings())
    assert model(paths, "last_non_direct") == [0.0, 0.0, 1.0]


def test_last_non_direct_skips_direct_touches_after_it():
    journey = journey_rows(("s1", 3, "direct"), ("s2", 2, "bing.com"), ("s3", 1, "direct"), ("s4", 0, "direct"))
    paths = build_credits(journey=journey, conversions=one_conversion("s4"), settings=Settings())
    assert model(paths, "last_non_direct") == [0.0, 1.0, 0.0, 0.0]


def test_second_device_session_started_later_comes_last():
    """Device A's session starts 10:00 and converts at 10:30; device B (same contact, from a conversion a week
    earlier) starts a session at 10:10: the path is A's session then B's, so the last touch is B's session."""
    paths = credits_of(
        event("b0", "vb", "2025-03-24 09:00:00", "/?utm_source=partner"),
        conversion("bc", "vb", "2025-03-24 09:01:00", "/thanks", "a@b.co"),
        event("a1", "va", "2025-03-31 10:00:00", referrer=ORGANIC),
        event("b1", "vb", "2025-03-31 10:10:00", EMAIL),
        conversion("ac", "va", "2025-03-31 10:30:00", "/thanks", "a@b.co"),
    )
    late = paths[paths["conversion_event_id"] == "ac"]
    assert late["source"].tolist() == ["partner", "google.com", "newsletter"]
    assert model(late, "last_touch") == [0.0, 0.0, 1.0]  # B's session, not the converting session of device A
    assert model(late, "first_touch") == [1.0, 0.0, 0.0]
    early = paths[paths["conversion_event_id"] == "bc"]
    assert early["source"].tolist() == ["partner"] and model(early, "position_based") == [1.0]


def test_each_conversion_has_its_own_path():
    paths = credits_of(
        event("p1", "v", "2025-03-01 10:00:00", referrer=ORGANIC),
        conversion("c1", "v", "2025-03-01 10:05:00", "/thanks", "a@b.co"),
        event("p2", "v", "2025-03-05 10:00:00", EMAIL),
        conversion("c2", "v", "2025-03-05 10:05:00", "/thanks", "a@b.co"),
    )
    assert paths.groupby("conversion_event_id")["source"].agg(list).to_dict() == {"c1": ["google.com"], "c2": ["google.com", "newsletter"]}
    assert paths.groupby("conversion_event_id")["path_length"].first().to_dict() == {"c1": 1, "c2": 2}


def test_shared_device_session_is_on_the_path_of_the_contact_who_converted_there():
    paths = credits_of(
        event("o1", "shared", "2025-03-01 09:00:00", "/?utm_source=owner"),
        conversion("oc", "shared", "2025-03-01 09:01:00", "/thanks", "owner@b.co"),
        event("g1", "guest", "2025-03-04 10:00:00", referrer=ORGANIC),
        event("s1", "shared", "2025-03-05 10:00:00", EMAIL),
        conversion("gc", "shared", "2025-03-05 10:01:00", "/thanks", "guest@b.co"),
    )
    guest = paths[paths["email"] == "guest@b.co"]
    assert guest["source"].tolist() == ["newsletter"]  # the guest's own device g1 is not its journey: no conversion there
    assert guest["conversion_event_id"].unique().tolist() == ["gc"]
    owner = paths[paths["email"] == "owner@b.co"]
    assert owner["conversion_event_id"].unique().tolist() == ["oc"]


def test_lookback_boundary_is_inclusive():
    """A session exactly 30 days before the conversion is on the path; one a microsecond earlier is not."""
    journey = journey_rows(("edge", 30, "a.com"), ("own", 0, "b.com"))
    journey = pd.concat([journey, journey_rows(("early", 30, "c.com")).assign(session_timestamp=T0 - pd.Timedelta(days=30, microseconds=1))])
    paths = build_credits(journey=journey, conversions=one_conversion("own"), settings=Settings())
    assert paths["session_id"].tolist() == ["edge", "own"]


def test_sessions_after_the_conversion_are_not_on_its_path():
    journey = journey_rows(("before", 1, "a.com"), ("own", 0, "b.com"))
    journey = pd.concat([journey, journey_rows(("after", 0, "c.com")).assign(session_timestamp=T0 + pd.Timedelta(microseconds=1))])
    paths = build_credits(journey=journey, conversions=one_conversion("own"), settings=Settings())
    assert paths["session_id"].tolist() == ["before", "own"]


def test_own_session_started_before_the_lookback_is_still_first_on_the_path():
    """The converting session began 31 days before its conversion: it is position 1, then the sessions within
    the lookback; a session 35 days before stays off the path."""
    journey = journey_rows(("older", 35, "a.com"), ("own", 31, "b.com"), ("recent", 20, "c.com"))
    paths = build_credits(journey=journey, conversions=one_conversion("own"), settings=Settings())
    assert paths["session_id"].tolist() == ["own", "recent"]
    assert paths["position"].tolist() == [1, 2] and paths["path_length"].tolist() == [2, 2]
    assert model(paths, "first_touch") == [1.0, 0.0] and model(paths, "last_touch") == [0.0, 1.0]
    # time decay: 31 and 20 days at h = 7: weights relative to the nearest, 2^-(11/7) and 1
    weight = 2 ** (-11 / 7)
    assert model(paths, "time_decay") == [pytest_approx(weight / (1 + weight)), pytest_approx(1 / (1 + weight))]


def test_lookback_follows_the_setting():
    journey = journey_rows(("s1", 8, "a.com"), ("s2", 6, "b.com"), ("own", 0, "c.com"))
    paths = build_credits(journey=journey, conversions=one_conversion("own"), settings=Settings(attribution_lookback_days=7))
    assert paths["session_id"].tolist() == ["s2", "own"]


def test_sessions_starting_at_the_same_instant_are_ordered_by_session_id():
    journey = journey_rows(("b", 1, "b.com"), ("a", 1, "a.com"), ("own", 0, "c.com"))
    paths = build_credits(journey=journey, conversions=one_conversion("own"), settings=Settings())
    assert paths["session_id"].tolist() == ["a", "b", "own"]


def test_no_conversions_give_an_empty_typed_frame():
    empty = build_credits(journey=journey_rows(("s", 1, "a.com")).iloc[:0], conversions=one_conversion("s").iloc[:0], settings=Settings())
    assert list(empty.columns) == CREDIT_COLUMNS and empty.empty
    assert str(empty["first_touch"].dtype) == "float64" and str(empty["position"].dtype) == "int64"


# --- properties -------------------------------------------------------------------------------------


@st.composite
def contact_histories(draw):
    """Journeys of up to three contacts (sessions at whole minutes over 60 days) and conversions in their sessions."""
    journeys, conversions = [], []
    for c in range(draw(st.integers(1, 3))):
        email = f"c{c}@x.co"
        minutes = draw(st.lists(st.integers(0, 60 * 24 * 60), min_size=1, max_size=12))
        for i, m in enumerate(minutes):
            journeys.append((email, f"{c}-{i:02d}", T0 - pd.Timedelta(days=60) + pd.Timedelta(minutes=m), draw(st.sampled_from(["direct", "a.com", "b.com"]))))
        for k in range(draw(st.integers(1, 4))):
            i = draw(st.integers(0, len(minutes) - 1))
            start = journeys[-len(minutes) + i][2]
            conversions.append((f"e{c}-{k}", email, f"{c}-{i:02d}", start + pd.Timedelta(minutes=draw(st.integers(0, 45)))))
    journey = pd.DataFrame(journeys, columns=["email", "session_id", "session_timestamp", "source"]).assign(medium="none", campaign="none", channel="Direct")
    frame = pd.DataFrame(conversions, columns=["event_id", "email", "session_id", "timestamp"]).assign(conversion_type=None, conversion_id=None)
    return journey, frame, draw(st.integers(1, 40)), draw(st.sampled_from([0.5, 7.0, 30.0]))


def naive_path(journey: pd.DataFrame, conv, lookback_days: int) -> list[str]:
    """The path by the letter of SPEC section 14, one conversion at a time."""
    mine = journey[journey["email"] == conv.email]
    earliest = conv.timestamp - pd.Timedelta(days=lookback_days)
    on = mine[((mine["session_timestamp"] <= conv.timestamp) & (mine["session_timestamp"] >= earliest)) | (mine["session_id"] == conv.session_id)]
    return on.sort_values(["session_timestamp", "session_id"])["session_id"].tolist()


@hsettings(max_examples=150, deadline=None)
@given(case=contact_histories())
def test_paths_follow_the_spec_and_every_model_sums_to_one(case):
    journey, conversions, lookback, half_life = case
    paths = build_credits(journey=journey, conversions=conversions, settings=Settings(attribution_lookback_days=lookback, attribution_half_life_days=half_life))
    by_conversion = paths.groupby("conversion_event_id")
    assert set(by_conversion.groups) == set(conversions["event_id"])
    for conv in conversions.itertuples():
        mine = paths[paths["conversion_event_id"] == conv.event_id]
        assert mine["session_id"].tolist() == naive_path(journey, conv, lookback)
        assert mine["position"].tolist() == list(range(1, len(mine) + 1)) and set(mine["path_length"]) == {len(mine)}
    for name in RULE_MODELS:
        assert ((paths[name] >= 0) & (paths[name] <= 1)).all(), name
        assert np.allclose(by_conversion[name].sum(), 1.0, rtol=0, atol=1e-9), name
    for name in ("first_touch", "last_touch", "last_non_direct"):
        assert (by_conversion[name].sum() == 1.0).all() and set(paths[name]) <= {0.0, 1.0}


def test_paths_of_the_frame_builder_match_the_lookback_in_days():
    journey = journey_rows(("s1", 2, "a.com"), ("own", 0, "b.com"))
    paths = conversion_paths(journey=journey, conversions=one_conversion("own"), lookback_days=1)
    assert paths["session_id"].tolist() == ["own"]
