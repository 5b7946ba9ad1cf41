"""Sessions (SPEC section 4): every splitting rule, exits, conversions and deterministic ids."""

from __future__ import annotations

import hashlib

import pandas as pd
import pytest

from pipeline.settings import Settings
from pipeline.transform.sessions import build_sessions
from tests.helpers import SITE, conversion, event, staged

SETTINGS = Settings(own_domains=["shop-cdn.net"], referral_exclusions=["paypal.com"])


def sessions_of(*lines, settings: Settings = SETTINGS):
    sessions, conversions = build_sessions(events=staged(*lines, day="2025-03-02"), settings=settings)
    return sessions.sort_values("timestamp").reset_index(drop=True), conversions


def starts(*lines) -> list[str]:
    """The first event of each session, in order."""
    return sessions_of(*lines)[0]["first_event_id"].tolist()


def test_gap_of_exactly_thirty_minutes_stays_in_the_session():
    assert starts(event("a", "v", "2025-03-01 10:00:00"), event("b", "v", "2025-03-01 10:30:00")) == ["a"]


def test_gap_over_thirty_minutes_starts_a_new_session():
    assert starts(event("a", "v", "2025-03-01 10:00:00"), event("b", "v", "2025-03-01 10:30:01")) == ["a", "b"]


def test_gap_is_measured_from_the_previous_event_not_the_session_start():
    lines = [event(f"e{i}", "v", f"2025-03-01 {10 + i // 3}:{(i % 3) * 20:02d}:00") for i in range(7)]
    assert starts(*lines) == ["e0"]


def test_timeout_is_configurable():
    lines = [event("a", "v", "2025-03-01 10:00:00"), event("b", "v", "2025-03-01 10:20:00")]
    sessions, _ = build_sessions(events=staged(*lines), settings=Settings(session_timeout_minutes=15))
    assert len(sessions) == 2


def test_new_campaign_starts_a_new_session():
    assert starts(
        event("a", "v", "2025-03-01 10:00:00", "/?utm_source=google&utm_campaign=spring"),
        event("b", "v", "2025-03-01 10:05:00", "/p", referrer=SITE + "/"),
        event("c", "v", "2025-03-01 10:06:00", "/?utm_source=google&utm_campaign=summer"),
    ) == ["a", "c"]


def test_same_campaign_again_does_not_split():
    assert starts(
        event("a", "v", "2025-03-01 10:00:00", "/?utm_source=google&utm_campaign=spring"),
        event("b", "v", "2025-03-01 10:05:00", "/p", referrer=SITE + "/"),
        event("c", "v", "2025-03-01 10:06:00", "/?utm_campaign=spring&utm_source=google"),
    ) == ["a"]


def test_new_click_id_starts_a_new_session():
    assert starts(
        event("a", "v", "2025-03-01 10:00:00", "/?gclid=first"),
        event("b", "v", "2025-03-01 10:01:00", "/?gclid=second"),
    ) == ["a", "b"]


def test_campaign_on_a_direct_session_starts_a_new_session():
    assert starts(event("a", "v", "2025-03-01 10:00:00"), event("b", "v", "2025-03-01 10:01:00", "/?utm_source=news")) == ["a", "b"]


def test_new_external_referrer_starts_a_new_session():
    assert starts(
        event("a", "v", "2025-03-01 10:00:00", referrer="https://www.google.com/"),
        event("b", "v", "2025-03-01 10:01:00", referrer="https://www.facebook.com/"),
    ) == ["a", "b"]


def test_external_referrer_with_the_same_source_does_not_split():
    assert starts(
        event("a", "v", "2025-03-01 10:00:00", referrer="https://www.google.com/"),
        event("b", "v", "2025-03-01 10:01:00", referrer="https://news.google.com/"),
    ) == ["a"]


def test_referral_exclusion_never_splits_and_is_no_source():
    sessions, _ = sessions_of(
        event("a", "v", "2025-03-01 10:00:00", referrer="https://www.google.com/"),
        event("b", "v", "2025-03-01 10:01:00", "/checkout/return", referrer="https://www.paypal.com/checkoutnow"),
        event("c", "w", "2025-03-01 10:00:00", referrer="https://www.paypal.com/"),
    )
    by_visitor = sessions.set_index("anonymous_id")
    assert len(sessions) == 2
    assert by_visitor.loc["v", "source"] == "google.com" and by_visitor.loc["w", "source"] == "direct"


def test_internal_referrer_never_splits():
    assert starts(
        event("a", "v", "2025-03-01 10:00:00", referrer="https://www.bing.com/"),
        event("b", "v", "2025-03-01 10:01:00", referrer="https://blog.shop.example.com/post"),
        event("c", "v", "2025-03-01 10:02:00", referrer="https://static.shop-cdn.net/x"),
    ) == ["a"]


def test_conversion_with_a_new_referrer_does_not_split():
    assert starts(
        event("a", "v", "2025-03-01 10:00:00", referrer="https://www.google.com/"),
        conversion("b", "v", "2025-03-01 10:01:00", "/thanks", "a@b.co", referrer="https://www.facebook.com/"),
    ) == ["a"]


def test_referrer_matching_the_session_source_keeps_the_session_campaign():
    """The current session's campaign and source come from its first event, not from the latest page view."""
    assert starts(
        event("a", "v", "2025-03-01 10:00:00", "/?utm_source=facebook.com&utm_campaign=x"),
        event("b", "v", "2025-03-01 10:01:00", "/p", referrer="https://www.facebook.com/"),
        event("c", "v", "2025-03-01 10:02:00", "/?utm_source=facebook.com&utm_campaign=x"),
        event("d", "v", "2025-03-01 10:03:00", "/?utm_source=mail&utm_campaign=y"),
        event("e", "v", "2025-03-01 10:04:00", "/?utm_source=facebook.com&utm_campaign=x"),
    ) == ["a", "d", "e"]


def test_sessions_do_not_split_at_midnight():
    sessions, _ = sessions_of(event("a", "v", "2025-03-01 23:50:00"), event("b", "v", "2025-03-02 00:10:00"))
    assert sessions["session_duration"].tolist() == [1200]


def test_out_of_order_input_gives_the_same_sessions():
    lines = [
        event("a", "v", "2025-03-01 10:00:00"),
        event("b", "v", "2025-03-01 10:10:00", "/p"),
        event("c", "v", "2025-03-01 12:00:00", "/q"),
        event("d", "w", "2025-03-01 09:00:00"),
    ]
    forward, _ = sessions_of(*lines)
    backward, _ = sessions_of(*reversed(lines))
    pd.testing.assert_frame_equal(forward, backward)


def test_timestamp_ties_put_page_views_before_conversions_then_event_id():
    sessions, conversions = sessions_of(
        conversion("a-conv", "v", "2025-03-01 10:00:00", "/thanks", "a@b.co"),
        event("b-view", "v", "2025-03-01 10:00:00", "/form"),
        event("a-view", "v", "2025-03-01 10:00:00", "/landing"),
    )
    assert sessions["first_event_id"].tolist() == ["a-view"]
    assert sessions["landing_page"].tolist() == [SITE + "/landing"]
    assert conversions["previous_page"].tolist() == [SITE + "/form"]
    assert sessions["exit_page"].isna().all()


def test_conversion_as_first_event_starts_a_session():
    sessions, conversions = sessions_of(
        conversion("c", "v", "2025-03-01 10:00:00", "/signup?utm_source=newsletter&utm_medium=email", "a@b.co"),
        event("d", "v", "2025-03-01 10:02:00", "/welcome"),
    )
    row = sessions.iloc[0]
    assert (row["landing_page"], row["source"], row["medium"]) == (SITE + "/signup", "newsletter", "email")
    assert conversions["previous_page"].isna().all() and conversions["session_id"].tolist() == [row["session_id"]]
    assert row["exit_page"] == SITE + "/welcome"
    assert pd.isna(row["exit_previous_page"])  # the conversion is not a page view


def test_exit_is_absent_when_the_session_ends_on_a_conversion():
    sessions, _ = sessions_of(event("a", "v", "2025-03-01 10:00:00"), conversion("b", "v", "2025-03-01 10:01:00", "/thanks", "x@y.co"))
    assert sessions["exit_page"].isna().all() and sessions["exit_timestamp"].isna().all()


def test_exit_previous_page_skips_views_of_the_exit_page():
    sessions, _ = sessions_of(
        event("a", "v", "2025-03-01 10:00:00", "/a"),
        event("b", "v", "2025-03-01 10:01:00", "/b"),
        event("c", "v", "2025-03-01 10:02:00", "/a"),
        event("d", "v", "2025-03-01 10:03:00", "/a#reviews"),
    )
    row = sessions.iloc[0]
    assert (row["exit_page"], row["exit_previous_page"], row["exit_timestamp"]) == (
        SITE + "/a", SITE + "/b", pd.Timestamp("2025-03-01 10:03:00", tz="UTC"),
    )


def test_exit_previous_page_is_null_when_only_one_page_was_seen():
    sessions, _ = sessions_of(event("a", "v", "2025-03-01 10:00:00", "/a"), event("b", "v", "2025-03-01 10:01:00", "/a"))
    assert sessions["exit_previous_page"].isna().all() and sessions["exit_page"].tolist() == [SITE + "/a"]


def test_conversion_previous_page_is_the_latest_different_page_viewed_before():
    _, conversions = sessions_of(
        event("a", "v", "2025-03-01 10:00:00", "/pricing"),
        event("b", "v", "2025-03-01 10:01:00", "/form"),
        event("c", "v", "2025-03-01 10:02:00", "/form?step=2"),
        conversion("d", "v", "2025-03-01 10:03:00", "/form?step=2", "x@y.co"),
        conversion("e", "v", "2025-03-01 10:04:00", "/form", "x@y.co"),
    )
    assert conversions.set_index("event_id")["previous_page"].to_dict() == {"d": SITE + "/form", "e": SITE + "/form?step=2"}


def test_conversion_previous_page_stays_inside_the_session():
    _, conversions = sessions_of(
        event("a", "v", "2025-03-01 08:00:00", "/old"),
        conversion("b", "v", "2025-03-01 10:00:00", "/thanks", "x@y.co"),
    )
    assert conversions["previous_page"].isna().all()


def test_duration_is_whole_seconds_from_first_to_last_event():
    sessions, _ = sessions_of(event("a", "v", "2025-03-01T10:00:00.900Z"), event("b", "v", "2025-03-01T10:00:02.100Z"))
    assert sessions["session_duration"].tolist() == [1]


def test_session_ids_come_from_the_visitor_and_first_event():
    sessions, _ = sessions_of(event("a", "v", "2025-03-01 10:00:00"), event("b", "v", "2025-03-01 12:00:00"))
    expected = [hashlib.md5(f"v\x1f{e}".encode()).hexdigest() for e in ("a", "b")]
    assert sessions["session_id"].tolist() == expected


def test_attribution_comes_from_the_first_event():
    sessions, _ = sessions_of(
        event("a", "v", "2025-03-01 10:00:00", "/lp?utm_source=Google&utm_medium=cpc&utm_campaign=Spring+Sale&utm_content=%20hero%20&utm_term=red+shoes"),
        event("b", "v", "2025-03-01 10:01:00", "/p", referrer=SITE + "/lp"),
    )
    row = sessions.iloc[0]
    assert [row[c] for c in ("source", "medium", "campaign", "content", "term", "channel")] == [
        "Google", "cpc", "Spring Sale", "hero", "red shoes", "Paid Search",
    ]
    assert (row["landing_page"], row["page_views"], row["conversions"]) == (SITE + "/lp", 2, 0)


@pytest.mark.parametrize("order", [1, -1])
def test_many_visitors_are_sessionized_independently(order):
    lines = [event(f"{v}-{i}", v, f"2025-03-01 10:{i:02d}:00") for v in ("v1", "v2", "v3") for i in range(3)]
    sessions, _ = sessions_of(*lines[::order])
    assert sorted(sessions["anonymous_id"]) == ["v1", "v2", "v3"] and (sessions["session_duration"] == 120).all()
