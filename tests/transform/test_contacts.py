"""Contact summaries (SPEC section 7): every field, rounding half away from zero, nulls and touch roles."""

from __future__ import annotations

import json

import pandas as pd

from pipeline.settings import Settings
from pipeline.transform.contacts import build_contacts, rounded
from pipeline.transform.identity import assign_identities
from pipeline.transform.sessions import build_sessions
from tests.helpers import SITE, conversion, event, staged


def contacts_of(*lines):
    """Raw events → (summary per email, contact rows, contact_sessions rows) through the pure stages."""
    sessions, conversions = build_sessions(events=staged(*lines, day="2025-04-30"), settings=Settings())
    identities = assign_identities(conversions=conversions)
    contacts, journey = build_contacts(identities=identities, sessions=sessions, conversions=conversions)
    summaries = {row.email: json.loads(row.summary) for row in contacts.itertuples()}
    return summaries, contacts.set_index("email"), journey


def visits(visitor: str, *stamps: str, email: str | None = None, convert_in: int | None = None, page: str = "/"):
    """One page view per timestamp (each far apart: one session each); a conversion 1 min into one session."""
    lines = [event(f"{visitor}-{i}", visitor, stamp, page) for i, stamp in enumerate(stamps)]
    if email is not None:
        at = pd.Timestamp(stamps[convert_in or 0]) + pd.Timedelta(minutes=1)
        lines.append(conversion(f"{visitor}-conv", visitor, at.strftime("%Y-%m-%d %H:%M:%S"), "/thanks", email))
    return lines


def test_rounding_is_half_away_from_zero_and_exact():
    assert rounded(pd.Series([1]), pd.Series([8]), 2).tolist() == [0.13]  # 0.125, banker's would give 0.12
    assert rounded(pd.Series([5]), pd.Series([2]), 0).tolist() == [3]  # 2.5
    assert rounded(pd.Series([86_832]), pd.Series([86_400]), 2).tolist() == [1.01]  # 1.005 days; float math gives 1.0
    assert rounded(pd.Series([2]), pd.Series([3]), 2).tolist() == [0.67]


def test_one_session_contact_has_null_averages():
    summaries, _, _ = contacts_of(*visits("v", "2025-03-01 10:00:00", email="a@b.co"))
    s = summaries["a@b.co"]
    assert (s["total_sessions"], s["total_conversions"], s["conversion_rate_percent"]) == (1, 1, 100)
    assert s["avg_days_between_sessions"] is None and s["avg_days_between_conversions"] is None
    assert (s["is_repeat_converter"], s["days_to_convert"], s["avg_session_duration_seconds"]) == (False, 0, 60)
    assert s["first_touch"] == s["converting_touch"] == s["recent_touch"] == s["user_journey"][0]


def test_many_session_contact_averages_and_rate():
    stamps = ["2025-03-01 10:00:00", "2025-03-02 10:00:00", "2025-03-04 22:00:00"]
    summaries, _, _ = contacts_of(*visits("v", *stamps, email="a@b.co", convert_in=1))
    s = summaries["a@b.co"]
    assert s["total_sessions"] == 3 and s["conversion_rate_percent"] == 33.33
    assert s["avg_days_between_sessions"] == 1.75  # 3.5 days over 2 gaps
    assert s["avg_session_duration_seconds"] == 20  # (0 + 60 + 0) / 3
    assert s["days_to_convert"] == 1
    assert s["conversion_dates"] == ["2025-03-02 10:01:00"]


def test_avg_session_duration_rounds_half_up():
    lines = [
        event("a1", "v", "2025-03-01 10:00:00"), event("a2", "v", "2025-03-01 10:00:01"),
        event("b1", "v", "2025-03-02 10:00:00"), event("b2", "v", "2025-03-02 10:00:02"),
        conversion("c", "v", "2025-03-02 10:00:02", "/t", "a@b.co"),
    ]
    assert contacts_of(*lines)[0]["a@b.co"]["avg_session_duration_seconds"] == 2  # (1 + 2) / 2 = 1.5


def test_repeat_converter_gaps_and_dates():
    lines = visits("v", "2025-03-01 10:00:00", "2025-03-03 16:00:00", "2025-03-06 10:00:00")
    lines += [
        conversion("c1", "v", "2025-03-01 10:05:00", "/t", "a@b.co"),
        conversion("c2", "v", "2025-03-01 10:06:00", "/t2", "a@b.co"),
        conversion("c3", "v", "2025-03-06 10:05:00", "/t", "a@b.co"),
    ]
    s = contacts_of(*lines)[0]["a@b.co"]
    assert (s["total_conversions"], s["is_repeat_converter"]) == (3, True)
    assert s["conversion_rate_percent"] == 66.67  # 2 of 3 sessions hold a conversion
    assert s["avg_days_between_conversions"] == 2.5  # 5 days over 2 gaps
    assert s["conversion_dates"] == ["2025-03-01 10:05:00", "2025-03-01 10:06:00", "2025-03-06 10:05:00"]
    assert s["interested_pages"]["conversion_pages"] == {SITE + "/t": 2, SITE + "/t2": 1}


def test_days_to_convert_counts_whole_days():
    lines = visits("v", "2025-03-01 10:00:00", "2025-03-03 09:59:00", email="a@b.co", convert_in=1)
    assert contacts_of(*lines)[0]["a@b.co"]["days_to_convert"] == 2  # conversion at 03-03 10:00: exactly 2 days
    lines = visits("v", "2025-03-01 10:00:00", "2025-03-03 09:58:00", email="a@b.co", convert_in=1)
    assert contacts_of(*lines)[0]["a@b.co"]["days_to_convert"] == 1  # 1 day 23 h 59 min


def test_touch_roles_first_assist_converting_after():
    stamps = ["2025-03-01 10:00:00", "2025-03-02 10:00:00", "2025-03-03 10:00:00", "2025-03-04 10:00:00", "2025-03-05 10:00:00"]
    lines = visits("v", *stamps) + [
        conversion("c1", "v", "2025-03-03 10:01:00", "/t", "a@b.co"),
        conversion("c2", "v", "2025-03-05 10:01:00", "/t", "a@b.co"),
    ]
    _, contacts, journey = contacts_of(*lines)
    roles = journey.sort_values("session_timestamp")[["is_first", "is_assist", "is_converting", "is_after"]]
    assert roles.values.tolist() == [
        [True, False, False, False],
        [False, True, False, False],
        [False, False, True, False],
        [False, False, False, True],
        [False, False, True, True],
    ]
    assert contacts.loc["a@b.co", "converting_touch_timestamp"] == pd.Timestamp("2025-03-03 10:00:00", tz="UTC")


def test_first_session_can_also_be_the_converting_one():
    _, _, journey = contacts_of(*visits("v", "2025-03-01 10:00:00", "2025-03-02 10:00:00", email="a@b.co"))
    first = journey.sort_values("session_timestamp").iloc[0]
    assert first["is_first"] and first["is_converting"] and not first["is_assist"]


def test_interested_pages_count_per_session_and_per_conversion():
    lines = [
        event("a1", "v", "2025-03-01 10:00:00", "/home"), event("a2", "v", "2025-03-01 10:01:00", "/pricing"),
        conversion("ac", "v", "2025-03-01 10:02:00", "/demo", "a@b.co"),
        event("b1", "v", "2025-03-02 10:00:00", "/home"), event("b2", "v", "2025-03-02 10:01:00", "/blog"),
        event("b3", "v", "2025-03-02 10:02:00", "/pricing"),
        event("c1", "v", "2025-03-03 10:00:00", "/blog"),
    ]
    pages = contacts_of(*lines)[0]["a@b.co"]["interested_pages"]
    assert pages == {
        "landing_pages": {SITE + "/home": 2, SITE + "/blog": 1},
        "conversion_pages": {SITE + "/demo": 1},
        "exit_pages": {SITE + "/pricing": 1, SITE + "/blog": 1},
        "previous_conversion_pages": {SITE + "/pricing": 1},
        "previous_exit_pages": {SITE + "/blog": 1},
    }


def test_session_object_shows_only_this_contacts_first_conversion():
    lines = [
        event("a1", "v", "2025-03-01 10:00:00", "/form"),
        conversion("c1", "v", "2025-03-01 10:01:00", "/t1", "a@b.co", meta_type="hubspot_form", meta_id="f1"),
        conversion("c2", "v", "2025-03-01 10:02:00", "/t2", "a@b.co"),
        event("a2", "v", "2025-03-01 10:03:00", "/after"),
    ]
    journey = contacts_of(*lines)[0]["a@b.co"]["user_journey"]
    assert journey[0]["conversion"] == {
        "email": "a@b.co", "timestamp": "2025-03-01 10:01:00", "conversion_page": SITE + "/t1",
        "previous_page": SITE + "/form", "conversion_meta": {"type": "hubspot_form", "id": "f1"},
    }
    assert journey[0]["exit"]["exit_page"] == SITE + "/after"
    assert list(journey[0]) == ["timestamp", "source", "medium", "content", "campaign", "term", "landing_page", "conversion", "exit", "session_duration"]


def test_shared_device_session_is_in_both_journeys_without_the_other_conversion():
    lines = visits("shared", "2025-03-01 10:00:00", email="first@x.co")
    lines += [
        event("s2", "shared", "2025-03-05 10:00:00", "/p"),
        conversion("s2c", "shared", "2025-03-05 10:01:00", "/t", "second@x.co"),
        event("s3", "shared", "2025-03-06 10:00:00", "/q"),
    ]
    summaries, _, journey = contacts_of(*lines)
    first, second = summaries["first@x.co"], summaries["second@x.co"]
    assert first["total_sessions"] == 3 and first["total_conversions"] == 1
    assert "conversion" not in first["user_journey"][1] and "exit" not in first["user_journey"][1]
    assert second["total_sessions"] == 1 and second["user_journey"][0]["conversion"]["email"] == "second@x.co"
    assert journey.groupby("email")["is_own_device"].all().to_dict() == {"first@x.co": True, "second@x.co": False}


def test_two_devices_one_contact():
    lines = visits("laptop", "2025-03-01 10:00:00", email="a@b.co") + visits("phone", "2025-03-03 10:00:00", "2025-03-04 10:00:00", email="a@b.co")
    s = contacts_of(*lines)[0]["a@b.co"]
    assert (s["total_sessions"], s["total_conversions"], s["conversion_rate_percent"]) == (3, 2, 66.67)
    assert s["avg_days_between_sessions"] == 1.5
