"""Request validation (SPEC section 11): every bad request names its field; good ones become a typed query."""

from __future__ import annotations

from datetime import datetime

import pytest

from pipeline.serve.query import ContactsQuery, RequestError, parse_request


def bad_field(request) -> str | None:
    """The field a bad request's error names (fails the test if the request is accepted)."""
    with pytest.raises(RequestError) as caught:
        parse_request(request)
    assert caught.value.message
    return caught.value.field


def covers(query: ContactsQuery, instant: str) -> bool:
    """Whether the query's date window holds this UTC instant."""
    at = datetime.fromisoformat(instant)
    return (query.start is None or at >= query.start) and (query.end is None or at < query.end)


def distinct_emails(n: int) -> list[str]:
    return [f"user{i}@example.com" for i in range(n)]


# --- bad requests ---------------------------------------------------------------------------------


def test_unknown_field_is_named():
    assert bad_field({"sorce": "google.com"}) == "sorce"
    assert bad_field({"source": "google.com", "page": 2}) == "page"


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        ({"offset": "5"}, "offset"),
        ({"offset": 1.5}, "offset"),
        ({"offset": True}, "offset"),
        ({"source": 5}, "source"),
        ({"medium": ["cpc"]}, "medium"),
        ({"campaign": {"name": "x"}}, "campaign"),
        ({"content": False}, "content"),
        ({"term": 1}, "term"),
        ({"landing_page": 1}, "landing_page"),
        ({"conversion_page": 1}, "conversion_page"),
        ({"meta_type": 1}, "meta_type"),
        ({"meta_id": 638}, "meta_id"),
        ({"emails": 5}, "emails"),
        ({"emails": [1, 2]}, "emails"),
        ({"emails": ["a@example.com", None]}, "emails"),
        ({"emails": {"a@example.com": 1}}, "emails"),
        ({"start_date": 20250701}, "start_date"),
        ({"end_date": ["2025-07-01"]}, "end_date"),
        ({"touch_scope": "last"}, "touch_scope"),
        ({"touch_scope": "First"}, "touch_scope"),
        ({"touch_scope": 1}, "touch_scope"),
    ],
)
def test_wrong_type_names_the_field(request_, field):
    assert bad_field(request_) == field


@pytest.mark.parametrize("text", ["2025-02-30", "tomorrow", "", "2025-13-01", "07/01/2025", "2025-07-01T25:00:00Z"])
def test_bad_start_date_is_named(text):
    assert bad_field({"start_date": text}) == "start_date"


@pytest.mark.parametrize("text", ["2025-02-30", "yesterday", "2025-07-01T10:00:00+25:00", "31.07.2025"])
def test_bad_end_date_is_named(text):
    assert bad_field({"start_date": "2025-07-01", "end_date": text}) == "end_date"


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("2025-07-02", "2025-07-01"),
        ("2025-07-02T00:00:00Z", "2025-07-01"),
        ("2025-07-01T10:00:01Z", "2025-07-01T10:00:00Z"),
        ("2025-07-01T12:00:00+02:00", "2025-07-01T09:59:59Z"),
    ],
)
def test_start_after_end_names_start_date(start, end):
    assert bad_field({"start_date": start, "end_date": end}) == "start_date"


@pytest.mark.parametrize(
    ("start", "end", "window"),
    [
        ("2025-07-01T23:59:59Z", "2025-07-01", (datetime(2025, 7, 1, 23, 59, 59), datetime(2025, 7, 2))),
        ("2025-07-01", "2025-07-01", (datetime(2025, 7, 1), datetime(2025, 7, 2))),
        ("2025-07-01T10:00:00Z", "2025-07-01T10:00:00Z", (datetime(2025, 7, 1, 10), datetime(2025, 7, 1, 10, 0, 0, 1))),
        ("2025-07-01", "2025-07-01T00:00:00Z", (datetime(2025, 7, 1), datetime(2025, 7, 1, 0, 0, 0, 1))),
    ],
)
def test_start_on_or_before_end_is_fine(start, end, window):
    """Accepted, as the window [start, end) that holds both bounds (a date-only end covers its whole day)."""
    query = parse_request({"start_date": start, "end_date": end})
    assert (query.start, query.end) == window


def test_negative_offset_is_named():
    assert bad_field({"offset": -1}) == "offset"
    assert bad_field({"emails": ["a@example.com"], "offset": -50}) == "offset"


def test_more_than_ten_thousand_emails_as_list():
    assert len(parse_request({"emails": distinct_emails(10_000)}).emails) == 10_000
    assert bad_field({"emails": distinct_emails(10_001)}) == "emails"


def test_more_than_ten_thousand_emails_as_string():
    assert len(parse_request({"emails": ",".join(distinct_emails(10_000))}).emails) == 10_000
    assert bad_field({"emails": ",".join(distinct_emails(10_001))}) == "emails"


@pytest.mark.parametrize("request_", [[], ["source"], "source=google.com", 5, None, True])
def test_request_that_is_not_an_object(request_):
    assert bad_field(request_) is None


# --- good requests --------------------------------------------------------------------------------


def test_emails_list_is_trimmed_lowercased_and_deduplicated_keeping_the_first():
    query = parse_request({"emails": [" B@Example.com", "a@example.com ", "", "b@example.COM", "   ", "C@x.org"]})
    assert query.emails == ("b@example.com", "a@example.com", "c@x.org")


def test_emails_comma_separated_string():
    query = parse_request({"emails": " Alice@Example.com , bob@example.com,,ALICE@example.com , "})
    assert query.emails == ("alice@example.com", "bob@example.com")


def test_emails_single_string_and_empty_string():
    assert parse_request({"emails": "a@example.com"}).emails == ("a@example.com",)
    assert parse_request({"emails": ""}).emails == ()
    assert parse_request({"emails": []}).emails == ()


def test_emails_mode_keeps_offset_and_ignores_nothing_at_parse_time():
    query = parse_request({"emails": ["a@example.com"], "offset": 3, "source": "google.com"})
    assert query.emails == ("a@example.com",) and query.offset == 3


def test_date_only_bounds_cover_the_whole_utc_day():
    query = parse_request({"start_date": "2025-07-01", "end_date": "2025-07-31"})
    assert query.start == datetime(2025, 7, 1) and query.end == datetime(2025, 8, 1)
    assert covers(query, "2025-07-01 00:00:00")
    assert covers(query, "2025-07-31 23:59:59.999999")
    assert not covers(query, "2025-06-30 23:59:59.999999")
    assert not covers(query, "2025-08-01 00:00:00")


def test_timestamp_bounds_are_inclusive_instants():
    query = parse_request({"start_date": "2025-07-01T23:59:59Z", "end_date": "2025-07-31T23:00:00Z"})
    assert covers(query, "2025-07-01 23:59:59")
    assert not covers(query, "2025-07-01 23:59:58")
    assert covers(query, "2025-07-31 23:00:00")
    assert not covers(query, "2025-07-31 23:00:01")


def test_iso_timestamps_with_an_offset_are_converted_to_utc():
    query = parse_request({"start_date": "2025-07-01T02:00:00+02:00", "end_date": "2025-07-01T01:30:00-05:30"})
    assert query.start == datetime(2025, 7, 1, 0, 0)
    assert covers(query, "2025-07-01 07:00:00")
    assert not covers(query, "2025-07-01 07:00:01")


def test_timestamp_without_a_zone_is_utc():
    query = parse_request({"start_date": "2025-07-01T10:00:00", "end_date": "2025-07-01 11:00:00"})
    assert query.start == datetime(2025, 7, 1, 10, 0)
    assert covers(query, "2025-07-01 11:00:00") and not covers(query, "2025-07-01 11:00:01")


@pytest.mark.parametrize(
    "request_",
    [
        {"end_date": "9999-12-31"},
        {"end_date": "9999-12-31T23:59:59.999999Z"},
        {"end_date": "9999-12-31T23:59:59-05:00"},
        {"start_date": "0001-01-01T00:00:00+05:00"},
    ],
)
def test_bounds_past_the_ends_of_the_calendar_are_no_bound(request_):
    query = parse_request(request_)
    assert covers(query, "2025-07-01 00:00:00") and covers(query, "0001-01-01 05:00:00")


def test_basic_format_date_is_a_whole_day_too():
    query = parse_request({"start_date": "20250701", "end_date": "20250701"})
    assert covers(query, "2025-07-01 00:00:00") and covers(query, "2025-07-01 23:59:59")
    assert not covers(query, "2025-07-02 00:00:00")


def test_null_fields_count_as_absent():
    request = {name: None for name in (
        "offset", "emails", "start_date", "end_date", "conversion_page", "meta_type", "meta_id",
        "source", "medium", "campaign", "content", "term", "landing_page", "touch_scope",
    )}
    assert parse_request(request) == ContactsQuery()
    assert parse_request({}) == ContactsQuery()


def test_filters_become_session_and_conversion_conditions():
    query = parse_request(
        {
            "offset": 7,
            "source": "google.com",
            "medium": "cpc",
            "campaign": "summer",
            "content": "ad1",
            "term": "running shoes",
            "landing_page": "https://shop.example.com/",
            "conversion_page": "https://shop.example.com/signup",
            "meta_type": "hubspot_form",
            "meta_id": "638e-2340-45773f-00252",
            "touch_scope": "assist",
        }
    )
    assert query.offset == 7 and query.emails is None and query.touch_scope == "assist"
    assert query.session_filters == {
        "source": "google.com",
        "medium": "cpc",
        "campaign": "summer",
        "content": "ad1",
        "term": "running shoes",
        "landing_page": "https://shop.example.com/",
    }
    assert query.conversion_filters == {
        "conversion_page": "https://shop.example.com/signup",
        "conversion_type": "hubspot_form",
        "conversion_id": "638e-2340-45773f-00252",
    }


def test_filter_values_are_kept_exactly():
    query = parse_request({"source": " Google.com ", "term": "Running+Shoes"})
    assert query.session_filters == {"source": " Google.com ", "term": "Running+Shoes"}


def test_defaults():
    query = parse_request({})
    assert (query.offset, query.emails, query.start, query.end, query.touch_scope) == (0, None, None, None, "any")
    assert query.session_filters == {} and query.conversion_filters == {}
