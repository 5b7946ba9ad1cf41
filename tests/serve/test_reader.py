"""The reader (SPEC section 11) on hand-made journeys, run through the real pipeline on SQLite and PostgreSQL.

The landing partition below holds five contacts and one anonymous visitor. Every (contact, session)
pair of the journeys, in the reader's scan order (session timestamp, session id, email):

    #   session  start (UTC)        contact  roles              source        medium   campaign content term            landing      own conversion
    0   d1       07-01 08:00        dave     first, converting  Google.com    cpc      Summer   ad2     Shoes           /            /signup html_form form-2 (08:10)
    1   a1       07-01 09:00        alice    first              google.com    cpc      summer   ad1     shoes           /            -
    -   n1       07-01 10:00        (anonymous visitor, no contact: never returned)
    2   x1       07-01 12:00        bob      first, converting  bing.com      cpc      brand    none    none            /            /signup html_form form-1 (12:03)
    3   a2       07-01 15:00        alice    assist             facebook.com  social   none     none    none            /blog        -
    4   e1       07-02 09:30        erin     first, converting  google.com    organic  none     none    running shoes   /pricing     /pricing?plan=pro custom cta-9 (09:40)
    5   a3       07-02 10:00        alice    converting         newsletter    email    july     hero    none            /pricing     /signup html_form form-1 (10:05)
    6   x2       07-02 18:00        bob      after              duckduckgo.com organic brand    none    none            /pricing     - (carol's conversion, not bob's)
    7   x2       07-02 18:00        carol    first, converting  (same session)                                                       /demo hubspot_form hs-2 (18:04)
    8   d2       07-02 20:00        dave     after              linkedin.com  social   summer   none    none            /pricing     -
    9   a4       07-03 11:00        alice    converting, after  direct        none     none     none    none            /account     /contact hubspot_form hs-2 (11:02)
    10  d3       07-03 23:30        dave     converting, after  google.com    cpc      summer   ad1     shoes           /demo        /demo/book custom book-1 (23:55),
                                                                                                                                     /demo hubspot_form hs-2 (07-04 00:05)

Visitor vx is bob's device (his conversion comes first) on which carol converts later: session x2 is in
both journeys. Dave uses two devices (vd1, vd2), each identified by one of his conversions. Session d3
crosses midnight: it starts on 07-03 and holds two of dave's conversions, one on 07-03 and one on 07-04.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from pipeline.serve.reader import NO_MATCH, query_contacts
from pipeline.settings import REPO_ROOT, Settings
from tests.conftest import fresh_warehouse_url
from tests.helpers import SITE, conversion, event, run, write_partition

DAY = "2025-07-03"
AS_OF = datetime(2025, 7, 10, 12, 0, 0)
ALICE, BOB, CAROL, DAVE, ERIN = (f"{name}@example.com" for name in ("alice", "bob", "carol", "dave", "erin"))
GOOGLE_AD1 = "utm_source=google.com&utm_medium=cpc&utm_campaign=summer&utm_content=ad1&utm_term=shoes"

RESPONSE_VALIDATOR = Draft202012Validator(json.loads((REPO_ROOT / "schemas" / "contacts_response.schema.json").read_text()))
SUMMARY_KEYS = [
    "total_sessions", "total_conversions", "conversion_rate_percent", "conversion_dates", "days_since_last_conversion",
    "is_repeat_converter", "avg_days_between_conversions", "avg_days_between_sessions", "avg_session_duration_seconds",
    "days_to_convert", "user_journey", "interested_pages", "first_touch", "converting_touch", "recent_touch",
]
SESSION_KEYS = ["timestamp", "source", "medium", "content", "campaign", "term", "landing_page", "conversion", "exit", "session_duration"]
CONVERSION_KEYS = ["email", "timestamp", "conversion_page", "previous_page", "conversion_meta"]
EXIT_KEYS = ["exit_page", "previous_page", "timestamp"]
PAGES_KEYS = ["landing_pages", "conversion_pages", "exit_pages", "previous_conversion_pages", "previous_exit_pages"]


def journeys() -> list[dict]:
    """The landing partition of the module docstring's table."""
    return [
        event("d1-1", "vd1", "2025-07-01 08:00:00", "/?utm_source=Google.com&utm_medium=cpc&utm_campaign=Summer&utm_content=ad2&utm_term=Shoes"),
        conversion("d1-2", "vd1", "2025-07-01 08:10:00", "/signup", " Dave@Example.com", meta_type="html_form", meta_id="form-2"),
        event("a1-1", "va", "2025-07-01 09:00:00", f"/?{GOOGLE_AD1}"),
        event("a1-2", "va", "2025-07-01 09:05:00", "/products", referrer=SITE + "/"),
        event("n1-1", "vn", "2025-07-01 10:00:00", f"/?{GOOGLE_AD1}"),
        event("x1-1", "vx", "2025-07-01 12:00:00", "/?utm_source=bing.com&utm_medium=cpc&utm_campaign=brand"),
        conversion("x1-2", "vx", "2025-07-01 12:03:00", "/signup", BOB, meta_type="html_form", meta_id="form-1"),
        event("a2-1", "va", "2025-07-01 15:00:00", "/blog", referrer="https://www.facebook.com/"),
        event("a2-2", "va", "2025-07-01 15:10:00", "/pricing", referrer=SITE + "/blog"),
        event("e1-1", "ve", "2025-07-02 09:30:00", "/pricing?utm_source=google.com&utm_medium=organic&utm_term=running+shoes"),
        conversion("e1-2", "ve", "2025-07-02 09:40:00", "/pricing?plan=pro", ERIN, meta_type="custom", meta_id="cta-9"),
        event("a3-1", "va", "2025-07-02 10:00:00", "/pricing?utm_source=newsletter&utm_medium=email&utm_campaign=july&utm_content=hero"),
        conversion("a3-2", "va", "2025-07-02 10:05:00", "/signup", ALICE, meta_type="html_form", meta_id="form-1"),
        event("x2-1", "vx", "2025-07-02 18:00:00", "/pricing?utm_source=duckduckgo.com&utm_medium=organic&utm_campaign=brand"),
        conversion("x2-2", "vx", "2025-07-02 18:04:00", "/demo", CAROL, meta_type="hubspot_form", meta_id="hs-2"),
        event("d2-1", "vd2", "2025-07-02 20:00:00", "/pricing?utm_source=linkedin.com&utm_medium=social&utm_campaign=summer"),
        event("d2-2", "vd2", "2025-07-02 20:10:00", "/features", referrer=SITE + "/pricing"),
        event("a4-1", "va", "2025-07-03 11:00:00", "/account"),
        event("a4-2", "va", "2025-07-03 11:01:00", "/contact", referrer=SITE + "/account"),
        conversion("a4-3", "va", "2025-07-03 11:02:00", "/contact", ALICE, meta_type="hubspot_form", meta_id="hs-2"),
        event("a4-4", "va", "2025-07-03 11:04:00", "/thanks", referrer=SITE + "/contact"),
        event("d3-1", "vd2", "2025-07-03 23:30:00", f"/demo?{GOOGLE_AD1}"),
        event("d3-2", "vd2", "2025-07-03 23:50:00", "/demo/book", referrer=SITE + "/demo"),
        conversion("d3-3", "vd2", "2025-07-03 23:55:00", "/demo/book", DAVE, meta_type="custom", meta_id="book-1"),
        conversion("d3-4", "vd2", "2025-07-04 00:05:00", "/demo", DAVE, meta_type="hubspot_form", meta_id="hs-2"),
    ]


def crowd() -> list[dict]:
    """60 contacts c00..c59; contact i has two `crowd` sessions, at 2025-06-01 00:00 + i hours and 45 minutes later."""
    lines = []
    for i in range(60):
        hour = f"2025-06-{1 + i // 24:02d} {i % 24:02d}"
        lines += [
            event(f"c{i}-1", f"u{i}", f"{hour}:00:00", "/?utm_source=crowd&utm_medium=cpc"),
            conversion(f"c{i}-2", f"u{i}", f"{hour}:05:00", "/signup", f"c{i:02d}@crowd.example"),
            event(f"c{i}-3", f"u{i}", f"{hour}:45:00", "/pricing?utm_source=crowd&utm_medium=cpc"),
        ]
    return lines


def crowd_emails(indexes) -> list[str]:
    return [f"c{i:02d}@crowd.example" for i in indexes]


# --- fixtures: one pipeline run per module and backend ---------------------------------------------


@contextmanager
def published(kind: str, folder: Path, lines: list[dict], day: str):
    """Settings of a warehouse where the pipeline has run over one landing partition."""
    with fresh_warehouse_url(kind, folder) as url:
        settings = Settings(warehouse_url=url, landing=folder / "landing", workspace=folder / "runs", buckets=2)
        write_partition(settings.landing, day, lines)
        run(settings, day)
        yield settings


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def hand(request, tmp_path_factory):
    with published(request.param, tmp_path_factory.mktemp("hand"), journeys(), DAY) as settings:
        yield settings


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def many(request, tmp_path_factory):
    with published(request.param, tmp_path_factory.mktemp("crowd"), crowd(), "2025-06-03") as settings:
        yield settings


# --- helpers ---------------------------------------------------------------------------------------


def assert_seed_key_order(response: dict) -> None:
    """Every object of a contacts response has its keys in the seed's order."""
    if "message" in response:
        assert list(response) == ["message"]
        return
    assert list(response) == ["contacts", "pagination"]
    assert list(response["pagination"]) == ["records_processed", "total_records", "has_more"]
    for contact in response["contacts"]:
        assert list(contact) == ["email", "summary"]
        summary = contact["summary"]
        assert list(summary) == SUMMARY_KEYS
        assert list(summary["interested_pages"]) == PAGES_KEYS
        for session in [*summary["user_journey"], summary["first_touch"], summary["converting_touch"], summary["recent_touch"]]:
            assert list(session) == [k for k in SESSION_KEYS if k in session]
            if "conversion" in session:
                assert list(session["conversion"]) == CONVERSION_KEYS
                assert list(session["conversion"]["conversion_meta"]) == ["type", "id"]
            if "exit" in session:
                assert list(session["exit"]) == EXIT_KEYS


def ask(settings: Settings, request: dict, as_of: datetime = AS_OF) -> dict:
    """The reader's response, checked against the response schema and the seed's key order."""
    response = query_contacts(settings, request, as_of=as_of)
    RESPONSE_VALIDATOR.validate(response)
    assert_seed_key_order(response)
    return response


def page(settings: Settings, request: dict) -> tuple[list[str], tuple[int, int, bool]]:
    """(emails in order, (records_processed, total_records, has_more)) of one page."""
    response = ask(settings, request)
    assert "contacts" in response, response
    p = response["pagination"]
    return [c["email"] for c in response["contacts"]], (p["records_processed"], p["total_records"], p["has_more"])


def summary_of(response: dict, email: str) -> dict:
    return next(c["summary"] for c in response["contacts"] if c["email"] == email)


# --- filter mode: one test per filter ---------------------------------------------------------------

EVERYONE = [DAVE, ALICE, BOB, ERIN, CAROL]


@pytest.mark.parametrize(
    ("request_", "emails", "pagination"),
    [
        ({"source": "google.com"}, [ALICE, ERIN, DAVE], (3, 3, False)),  # pairs 1, 4, 10
        ({"source": "Google.com"}, [DAVE], (1, 1, False)),  # pair 0
        ({"source": "facebook.com"}, [ALICE], (1, 1, False)),  # pair 3
        ({"source": "direct"}, [ALICE], (1, 1, False)),  # pair 9
        ({"medium": "cpc"}, [DAVE, ALICE, BOB], (4, 4, False)),  # pairs 0, 1, 2, 10
        ({"medium": "social"}, [ALICE, DAVE], (2, 2, False)),  # pairs 3, 8
        ({"campaign": "summer"}, [ALICE, DAVE], (3, 3, False)),  # pairs 1, 8, 10
        ({"campaign": "brand"}, [BOB, CAROL], (3, 3, False)),  # pairs 2, 6, 7
        ({"content": "ad1"}, [ALICE, DAVE], (2, 2, False)),  # pairs 1, 10
        ({"content": "hero"}, [ALICE], (1, 1, False)),  # pair 5
        ({"term": "shoes"}, [ALICE, DAVE], (2, 2, False)),  # pairs 1, 10
        ({"term": "running shoes"}, [ERIN], (1, 1, False)),  # pair 4
        ({"landing_page": f"{SITE}/pricing"}, [ERIN, ALICE, BOB, CAROL, DAVE], (5, 5, False)),  # pairs 4-8
        ({"landing_page": f"{SITE}/"}, [DAVE, ALICE, BOB], (3, 3, False)),  # pairs 0, 1, 2
        ({"conversion_page": f"{SITE}/signup"}, [DAVE, BOB, ALICE], (3, 3, False)),  # pairs 0, 2, 5
        ({"conversion_page": f"{SITE}/pricing?plan=pro"}, [ERIN], (1, 1, False)),  # pair 4
        ({"meta_type": "hubspot_form"}, [CAROL, ALICE, DAVE], (3, 3, False)),  # pairs 7, 9, 10
        ({"meta_type": "html_form"}, [DAVE, BOB, ALICE], (3, 3, False)),  # pairs 0, 2, 5
        ({"meta_id": "form-1"}, [BOB, ALICE], (2, 2, False)),  # pairs 2, 5
        ({"meta_id": "cta-9"}, [ERIN], (1, 1, False)),  # pair 4
    ],
)
def test_single_filter(hand, request_, emails, pagination):
    assert page(hand, request_) == (emails, pagination)


@pytest.mark.parametrize(
    ("scope", "emails", "pagination"),
    [
        ("any", EVERYONE, (11, 11, False)),  # every pair
        ("first", [DAVE, ALICE, BOB, ERIN, CAROL], (5, 5, False)),  # pairs 0, 1, 2, 4, 7
        ("converting", [DAVE, BOB, ERIN, ALICE, CAROL], (7, 7, False)),  # pairs 0, 2, 4, 5, 7, 9, 10
        ("assist", [ALICE], (1, 1, False)),  # pair 3
        ("after", [BOB, DAVE, ALICE], (4, 4, False)),  # pairs 6, 8, 9, 10
    ],
)
def test_touch_scope(hand, scope, emails, pagination):
    assert page(hand, {"touch_scope": scope}) == (emails, pagination)


def test_no_filter_is_touch_scope_any(hand):
    assert page(hand, {}) == (EVERYONE, (11, 11, False))


def test_filters_combine_with_and_on_the_same_session(hand):
    assert page(hand, {"source": "google.com", "touch_scope": "first"}) == ([ALICE, ERIN], (2, 2, False))
    assert page(hand, {"source": "google.com", "medium": "organic"}) == ([ERIN], (1, 1, False))
    # alice has a facebook.com session and a form-1 conversion, but not in the same session
    assert ask(hand, {"source": "facebook.com", "meta_id": "form-1"}) == NO_MATCH
    assert ask(hand, {"meta_type": "html_form", "meta_id": "hs-2"}) == NO_MATCH


def test_seed_example_first_session_with_its_conversion(hand):
    request = {"meta_id": "form-2", "source": "Google.com", "landing_page": f"{SITE}/", "touch_scope": "first"}
    assert page(hand, request) == ([DAVE], (1, 1, False))
    assert page(hand, {"meta_id": "form-1", "touch_scope": "first"}) == ([BOB], (1, 1, False))


def test_filters_are_case_sensitive(hand):
    assert page(hand, {"source": "google.com"})[0] == [ALICE, ERIN, DAVE]
    assert page(hand, {"source": "Google.com"})[0] == [DAVE]
    assert ask(hand, {"source": "GOOGLE.COM"}) == NO_MATCH
    assert ask(hand, {"campaign": "SUMMER"}) == NO_MATCH
    assert ask(hand, {"meta_type": "HubSpot_Form"}) == NO_MATCH


def test_page_filters_match_the_normalised_url_only(hand):
    assert ask(hand, {"landing_page": f"{SITE}/pricing?utm_source=google.com&utm_medium=organic&utm_term=running+shoes"}) == NO_MATCH
    assert ask(hand, {"landing_page": f"{SITE}/pricing/"}) == NO_MATCH
    assert ask(hand, {"conversion_page": f"{SITE}/pricing"}) == NO_MATCH


def test_no_match_message_exactly(hand):
    response = ask(hand, {"source": "nowhere.example"})
    assert response == {"message": "No contacts found for the given parameters."}
    assert json.dumps(response) == '{"message": "No contacts found for the given parameters."}'


def test_anonymous_visitors_are_never_returned(hand):
    # vn's session has the same attributes as alice's first session; it is no contact's
    assert page(hand, {"source": "google.com", "content": "ad1", "touch_scope": "first"}) == ([ALICE], (1, 1, False))


# --- conversion filters: the contact's own conversions ---------------------------------------------


def test_conversion_filter_uses_the_contacts_own_conversion_not_the_shared_devices(hand):
    # x2 is in bob's journey, but the /demo conversion in it is carol's
    assert page(hand, {"conversion_page": f"{SITE}/demo"}) == ([CAROL, DAVE], (2, 2, False))  # pairs 7, 10
    assert page(hand, {"meta_type": "hubspot_form", "touch_scope": "after"}) == ([ALICE, DAVE], (2, 2, False))  # 9, 10
    assert ask(hand, {"meta_id": "hs-2", "campaign": "brand", "touch_scope": "after"}) == NO_MATCH


def test_conversion_filter_with_a_window_needs_the_conversion_in_the_window(hand):
    # d3 starts on 07-03 23:30 but its conversion is on 07-04 00:05
    assert page(hand, {"meta_type": "hubspot_form"}) == ([CAROL, ALICE, DAVE], (3, 3, False))
    assert page(hand, {"meta_type": "hubspot_form", "end_date": "2025-07-03"}) == ([CAROL, ALICE], (2, 2, False))
    assert page(hand, {"meta_type": "hubspot_form", "end_date": "2025-07-04T00:05:00Z"}) == ([CAROL, ALICE, DAVE], (3, 3, False))
    assert page(hand, {"meta_type": "hubspot_form", "end_date": "2025-07-04T00:04:59Z"}) == ([CAROL, ALICE], (2, 2, False))
    # ...and the session in the window too
    assert ask(hand, {"meta_type": "hubspot_form", "start_date": "2025-07-04"}) == NO_MATCH
    # without a conversion filter only the session's start counts
    assert page(hand, {"source": "google.com", "end_date": "2025-07-03"}) == ([ALICE, ERIN, DAVE], (3, 3, False))


def test_conversion_window_uses_the_matching_conversion(hand):
    # d3 holds dave's custom conversion on 07-03 23:55 and his hubspot_form one on 07-04 00:05
    assert page(hand, {"meta_type": "custom", "end_date": "2025-07-03"}) == ([ERIN, DAVE], (2, 2, False))  # 4, 10
    assert page(hand, {"meta_type": "hubspot_form", "start_date": "2025-07-03", "end_date": "2025-07-03"}) == ([ALICE], (1, 1, False))
    assert ask(hand, {"meta_id": "book-1", "start_date": "2025-07-04"}) == NO_MATCH
    # alice converts in a3 (form-1, 07-02) and a4 (hs-2, 07-03): with form-1 and a 07-03 window nothing matches
    assert ask(hand, {"meta_id": "form-1", "start_date": "2025-07-03"}) == NO_MATCH
    assert page(hand, {"meta_id": "form-1", "start_date": "2025-07-02"}) == ([ALICE], (1, 1, False))


# --- date windows ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("window", "emails", "pagination"),
    [
        ({"start_date": "2025-07-02", "end_date": "2025-07-03"}, [ERIN, ALICE, BOB, CAROL, DAVE], (7, 7, False)),  # 4-10
        ({"start_date": "2025-07-03", "end_date": "2025-07-03"}, [ALICE, DAVE], (2, 2, False)),  # 9, 10
        ({"start_date": "2025-07-03", "end_date": "2025-07-03T23:00:00Z"}, [ALICE], (1, 1, False)),  # 9
        ({"start_date": "2025-07-03T23:30:00Z", "end_date": "2025-07-03"}, [DAVE], (1, 1, False)),  # 10
        ({"start_date": "2025-07-03T11:00:01Z"}, [DAVE], (1, 1, False)),  # 10
        ({"end_date": "2025-07-01T09:00:00Z"}, [DAVE, ALICE], (2, 2, False)),  # 0, 1 (bound inclusive)
        ({"end_date": "2025-07-01T08:59:59Z"}, [DAVE], (1, 1, False)),  # 0
        ({"end_date": "2025-07-04T00:29:59+01:00"}, EVERYONE, (10, 10, False)),  # 23:29:59Z: 0-9
        ({"end_date": "2025-07-04T00:30:00+01:00"}, EVERYONE, (11, 11, False)),  # 23:30:00Z: 0-10
        ({"start_date": "2025-07-02T20:00:00+02:00", "end_date": "2025-07-02T20:00:00Z"}, [BOB, CAROL, DAVE], (3, 3, False)),  # 6-8
    ],
)
def test_date_window(hand, window, emails, pagination):
    assert page(hand, window) == (emails, pagination)


def test_date_only_end_includes_the_whole_day_but_a_timestamp_end_does_not(hand):
    assert DAVE in page(hand, {"source": "google.com", "start_date": "2025-07-03", "end_date": "2025-07-03"})[0]
    assert ask(hand, {"source": "google.com", "start_date": "2025-07-03", "end_date": "2025-07-03T23:00:00Z"}) == NO_MATCH


def test_window_with_no_session(hand):
    assert ask(hand, {"start_date": "2025-08-01"}) == NO_MATCH
    assert ask(hand, {"end_date": "2025-06-30"}) == NO_MATCH


# --- shared devices, offsets ----------------------------------------------------------------------


def test_shared_device_session_counts_once_per_contact(hand):
    # x2 is one session in two journeys: two pairs, two contacts
    assert page(hand, {"source": "duckduckgo.com"}) == ([BOB, CAROL], (2, 2, False))
    assert page(hand, {"source": "duckduckgo.com", "touch_scope": "after"}) == ([BOB], (1, 1, False))
    assert page(hand, {"source": "duckduckgo.com", "touch_scope": "first"}) == ([CAROL], (1, 1, False))


def test_shared_device_journeys(hand):
    response = ask(hand, {"emails": [BOB, CAROL]})
    bob, carol = summary_of(response, BOB), summary_of(response, CAROL)
    assert [s["timestamp"] for s in bob["user_journey"]] == ["2025-07-01 12:00:00", "2025-07-02 18:00:00"]
    assert (bob["total_sessions"], bob["total_conversions"], bob["conversion_rate_percent"]) == (2, 1, 50)
    shared_for_bob = bob["user_journey"][1]
    assert "conversion" not in shared_for_bob and "exit" not in shared_for_bob  # carol's conversion ends it
    assert [s["timestamp"] for s in carol["user_journey"]] == ["2025-07-02 18:00:00"]
    assert carol["user_journey"][0]["conversion"]["email"] == CAROL
    assert (carol["total_sessions"], carol["total_conversions"], carol["conversion_rate_percent"]) == (1, 1, 100)


def test_contact_with_two_devices(hand):
    dave = summary_of(ask(hand, {"emails": [DAVE]}), DAVE)
    assert [s["timestamp"] for s in dave["user_journey"]] == ["2025-07-01 08:00:00", "2025-07-02 20:00:00", "2025-07-03 23:30:00"]
    assert dave["conversion_dates"] == ["2025-07-01 08:10:00", "2025-07-03 23:55:00", "2025-07-04 00:05:00"]
    assert dave["converting_touch"]["timestamp"] == "2025-07-01 08:00:00"
    assert dave["recent_touch"]["conversion"]["timestamp"] == "2025-07-03 23:55:00"  # his first in the session


@pytest.mark.parametrize(
    ("offset", "emails", "pagination"),
    [
        (0, EVERYONE, (11, 11, False)),  # first pairs: dave 0, alice 1, bob 2, erin 4, carol 7
        (1, [ALICE, BOB, ERIN, CAROL], (11, 11, False)),
        (3, [ERIN, CAROL], (11, 11, False)),
        (5, [CAROL], (11, 11, False)),
        (8, [], (11, 11, False)),
        (11, [], (11, 11, False)),
        (25, [], (25, 11, False)),
    ],
)
def test_offset_skips_contacts_whose_first_pair_was_scanned(hand, offset, emails, pagination):
    assert page(hand, {"offset": offset}) == (emails, pagination)


# --- summaries -------------------------------------------------------------------------------------

A1 = {
    "timestamp": "2025-07-01 09:00:00", "source": "google.com", "medium": "cpc", "content": "ad1", "campaign": "summer",
    "term": "shoes", "landing_page": f"{SITE}/",
    "exit": {"exit_page": f"{SITE}/products", "previous_page": f"{SITE}/", "timestamp": "2025-07-01 09:05:00"},
    "session_duration": 300,
}
A2 = {
    "timestamp": "2025-07-01 15:00:00", "source": "facebook.com", "medium": "social", "content": "none", "campaign": "none",
    "term": "none", "landing_page": f"{SITE}/blog",
    "exit": {"exit_page": f"{SITE}/pricing", "previous_page": f"{SITE}/blog", "timestamp": "2025-07-01 15:10:00"},
    "session_duration": 600,
}
A3 = {
    "timestamp": "2025-07-02 10:00:00", "source": "newsletter", "medium": "email", "content": "hero", "campaign": "july",
    "term": "none", "landing_page": f"{SITE}/pricing",
    "conversion": {
        "email": ALICE, "timestamp": "2025-07-02 10:05:00", "conversion_page": f"{SITE}/signup",
        "previous_page": f"{SITE}/pricing", "conversion_meta": {"type": "html_form", "id": "form-1"},
    },
    "session_duration": 300,
}
A4 = {
    "timestamp": "2025-07-03 11:00:00", "source": "direct", "medium": "none", "content": "none", "campaign": "none",
    "term": "none", "landing_page": f"{SITE}/account",
    "conversion": {
        "email": ALICE, "timestamp": "2025-07-03 11:02:00", "conversion_page": f"{SITE}/contact",
        "previous_page": f"{SITE}/account", "conversion_meta": {"type": "hubspot_form", "id": "hs-2"},
    },
    "exit": {"exit_page": f"{SITE}/thanks", "previous_page": f"{SITE}/contact", "timestamp": "2025-07-03 11:04:00"},
    "session_duration": 240,
}
ALICE_SUMMARY = {
    "total_sessions": 4,
    "total_conversions": 2,
    "conversion_rate_percent": 50,  # 2 of 4 sessions
    "conversion_dates": ["2025-07-02 10:05:00", "2025-07-03 11:02:00"],
    "days_since_last_conversion": 7,  # 07-03 11:02 → 07-10 12:00: 7 d 58 min
    "is_repeat_converter": True,
    "avg_days_between_conversions": 1.04,  # 1 d 57 min = 1.0396 d
    "avg_days_between_sessions": 0.69,  # 07-01 09:00 → 07-03 11:00 = 50 h over 3 gaps = 0.6944 d
    "avg_session_duration_seconds": 360,  # (300 + 600 + 300 + 240) / 4
    "days_to_convert": 1,  # 07-01 09:00 → 07-02 10:05
    "user_journey": [A1, A2, A3, A4],
    "interested_pages": {
        "landing_pages": {f"{SITE}/": 1, f"{SITE}/blog": 1, f"{SITE}/pricing": 1, f"{SITE}/account": 1},
        "conversion_pages": {f"{SITE}/signup": 1, f"{SITE}/contact": 1},
        "exit_pages": {f"{SITE}/products": 1, f"{SITE}/pricing": 1, f"{SITE}/thanks": 1},
        "previous_conversion_pages": {f"{SITE}/pricing": 1, f"{SITE}/account": 1},
        "previous_exit_pages": {f"{SITE}/": 1, f"{SITE}/blog": 1, f"{SITE}/contact": 1},
    },
    "first_touch": A1,
    "converting_touch": A3,
    "recent_touch": A4,
}


def test_summary_is_over_the_whole_journey_not_the_matching_sessions(hand):
    response = ask(hand, {"source": "facebook.com", "touch_scope": "assist"})
    assert response["contacts"] == [{"email": ALICE, "summary": ALICE_SUMMARY}]
    assert list(response["contacts"][0]["summary"]) == list(ALICE_SUMMARY)


def test_summary_is_the_same_in_both_modes(hand):
    by_filter = ask(hand, {"meta_id": "hs-2"})["contacts"]
    by_email = ask(hand, {"emails": [CAROL, ALICE, DAVE]})["contacts"]
    assert by_filter == by_email


def test_days_since_last_conversion_from_as_of(hand):
    def days(as_of: str) -> int:
        return ask(hand, {"emails": [ALICE]}, as_of=datetime.fromisoformat(as_of))["contacts"][0]["summary"]["days_since_last_conversion"]

    assert days("2025-07-10 11:01:59") == 6
    assert days("2025-07-10 11:02:00") == 7
    assert days("2025-07-03 11:02:00") == 0
    assert days("2026-07-03 11:02:00") == 365
    assert days("2025-07-10 13:01:59+02:00") == 6  # 11:01:59 UTC
    assert days("2025-07-10 11:02:00+00:00") == 7


# --- emails mode -----------------------------------------------------------------------------------


def test_emails_are_normalised_and_deduplicated(hand):
    request = {"emails": [" Alice@Example.COM ", "bob@example.com", "ALICE@example.com", "nobody@example.com"]}
    assert page(hand, request) == ([ALICE, BOB], (3, 3, False))


def test_emails_keep_the_list_order(hand):
    assert page(hand, {"emails": [ERIN, CAROL, ALICE, DAVE, BOB]}) == ([ERIN, CAROL, ALICE, DAVE, BOB], (5, 5, False))


def test_emails_as_a_comma_separated_string(hand):
    assert page(hand, {"emails": "dave@example.com, nobody@example.com ,Erin@Example.com,,"}) == ([DAVE, ERIN], (3, 3, False))


def test_emails_ignore_every_other_filter(hand):
    request = {"emails": [BOB], "source": "nowhere", "meta_type": "x", "touch_scope": "assist", "start_date": "2030-01-01"}
    assert page(hand, request) == ([BOB], (1, 1, False))


def test_emails_offset_pages_over_the_list(hand):
    emails = [ERIN, "x@example.com", CAROL, ALICE]
    assert page(hand, {"emails": emails, "offset": 1}) == ([CAROL, ALICE], (4, 4, False))
    assert page(hand, {"emails": emails, "offset": 3}) == ([ALICE], (4, 4, False))
    assert page(hand, {"emails": emails, "offset": 4}) == ([], (4, 4, False))
    assert page(hand, {"emails": emails, "offset": 9}) == ([], (9, 4, False))


def test_emails_no_match_only_when_no_listed_email_is_known(hand):
    assert ask(hand, {"emails": ["nobody@example.com", "x@example.com"]}) == NO_MATCH
    assert ask(hand, {"emails": []}) == NO_MATCH
    assert ask(hand, {"emails": ""}) == NO_MATCH
    assert page(hand, {"emails": ["nobody@example.com", ALICE], "offset": 2}) == ([], (2, 2, False))


def test_emails_page_holds_fifty_emails_and_may_be_empty_with_more_to_come(many):
    unknown = [f"nobody{i}@example.com" for i in range(50)]
    first, last = page(many, {"emails": [*unknown, *crowd_emails([7])]}), page(many, {"emails": [*unknown, *crowd_emails([7])], "offset": 50})
    assert first == ([], (50, 51, True))
    assert last == (crowd_emails([7]), (51, 51, False))


def test_emails_paging_over_sixty_contacts(many):
    emails = crowd_emails(range(59, -1, -1))
    assert page(many, {"emails": emails}) == (crowd_emails(range(59, 9, -1)), (50, 60, True))
    assert page(many, {"emails": emails, "offset": 50}) == (crowd_emails(range(9, -1, -1)), (60, 60, False))


# --- filter mode paging: 50 contacts a page ------------------------------------------------------


def test_filter_pages_stop_at_fifty_contacts(many):
    # contact i has pairs 2i and 2i + 1
    assert page(many, {"source": "crowd"}) == (crowd_emails(range(50)), (99, 120, True))
    assert page(many, {"source": "crowd", "offset": 99}) == (crowd_emails(range(50, 60)), (120, 120, False))


def test_filter_page_from_an_offset_inside_a_contacts_pairs(many):
    assert page(many, {"offset": 1}) == (crowd_emails(range(1, 51)), (101, 120, True))
    assert page(many, {"offset": 101}) == (crowd_emails(range(51, 60)), (120, 120, False))


def test_filter_page_of_exactly_fifty_contacts_has_no_more(many):
    # c49's first session starts 2025-06-03 01:00; its second (01:45) is outside the window
    assert page(many, {"end_date": "2025-06-03T01:00:00Z"}) == (crowd_emails(range(50)), (99, 99, False))


def test_date_only_bounds_at_midnight(many):
    # first sessions: c00 at 06-01 00:00 ... c23 at 06-01 23:00, c24 at 06-02 00:00 ... c47 at 06-02 23:00
    assert page(many, {"touch_scope": "first", "end_date": "2025-06-01"}) == (crowd_emails(range(24)), (24, 24, False))
    assert page(many, {"touch_scope": "first", "start_date": "2025-06-02", "end_date": "2025-06-02"}) == (
        crowd_emails(range(24, 48)), (24, 24, False)
    )
    assert page(many, {"touch_scope": "first", "end_date": "2025-06-01T00:00:00Z"}) == (crowd_emails([0]), (1, 1, False))


def test_filter_paging_by_touch_scope(many):
    assert page(many, {"touch_scope": "first"}) == (crowd_emails(range(50)), (50, 60, True))
    assert page(many, {"touch_scope": "first", "offset": 50}) == (crowd_emails(range(50, 60)), (60, 60, False))
    assert page(many, {"touch_scope": "after"}) == (crowd_emails(range(50)), (50, 60, True))


def test_huge_offset(many):
    assert page(many, {"offset": 10**20}) == ([], (10**20, 120, False))


# --- command line ----------------------------------------------------------------------------------


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    command = [sys.executable, "-m", "pipeline", "contacts", "--warehouse", settings.warehouse_url, *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=120)


def test_cli_prints_the_response(hand):
    request = {"meta_type": "hubspot_form", "end_date": "2025-07-03"}
    done = cli(hand, "--as-of", "2025-07-10 12:00:00", json.dumps(request))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == ask(hand, request)
    assert list(json.loads(done.stdout)["contacts"][0]["summary"]) == SUMMARY_KEYS


def test_cli_as_of_takes_iso_8601_and_a_bad_one_is_a_bad_request(hand):
    request = json.dumps({"emails": [ALICE]})
    iso = cli(hand, "--as-of", "2025-07-10T14:00:00+02:00", request)
    assert json.loads(iso.stdout) == ask(hand, {"emails": [ALICE]})
    bad = cli(hand, "--as-of", "next tuesday", request)
    assert bad.returncode == 2 and json.loads(bad.stdout)["field"] == "as_of"
    both = cli(hand, "--as-of", "next tuesday", json.dumps({"offset": -1}))  # the request first, as on the API
    assert both.returncode == 2 and json.loads(both.stdout)["field"] == "offset"


def test_cli_on_a_missing_warehouse_is_one_line(tmp_path):
    done = cli(Settings(warehouse_url=f"sqlite:///{tmp_path / 'none.db'}"), "{}")
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith("error: cannot read the warehouse sqlite:///") and done.stderr.count("\n") == 1


def test_cli_no_match(hand):
    done = cli(hand, '{"source": "nowhere"}')
    assert (done.returncode, json.loads(done.stdout)) == (0, NO_MATCH)


@pytest.mark.parametrize(
    ("request_", "field"),
    [('{"start_date": "2025-02-30"}', "start_date"), ('{"offset": -1}', "offset"), ('{"colour": "red"}', "colour"), ("[1]", None)],
)
def test_cli_bad_request_exits_2(hand, request_, field):
    done = cli(hand, request_)
    assert done.returncode == 2, done.stderr
    error = json.loads(done.stdout)
    assert list(error) == ["error", "field"] and error["field"] == field and error["error"]


# --- consistency -----------------------------------------------------------------------------------


def test_a_query_reads_one_published_state(settings):
    """A publish (alice's erasure) between the page query and the summary reads changes neither (one read
    snapshot); the next query sees the new state, its counts and positions included (the memo is per version)."""
    from unittest import mock

    from pipeline.runs.forget import forget
    from pipeline.serve import reader

    write_partition(settings.landing, DAY, journeys())
    run(settings, DAY)
    expected = ask(settings, {"touch_scope": "first"})
    assert page(settings, {"touch_scope": "first", "offset": 1}) == ([ALICE, BOB, ERIN, CAROL], (5, 5, False))  # memoised at 1
    original = reader.filter_page

    def page_then_concurrent_erasure(*args):
        result = original(*args)
        forget(settings, ALICE)
        return result

    with mock.patch.object(reader, "filter_page", page_then_concurrent_erasure):
        assert ask(settings, {"touch_scope": "first"}) == expected
    assert page(settings, {"touch_scope": "first"}) == ([DAVE, BOB, ERIN, CAROL], (4, 4, False))  # the next query sees it
    assert page(settings, {"touch_scope": "first", "offset": 1}) == ([BOB, ERIN, CAROL], (4, 4, False))
