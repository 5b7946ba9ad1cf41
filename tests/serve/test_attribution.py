"""The attribution report (SPEC section 14) on a warehouse built by the real pipeline, on SQLite and PostgreSQL.

Four contacts and two visitors who never convert:
  alice  07-01 09:00 google.com / cpc (Paid Search) → 07-02 09:00 newsletter / email (Email), converts 09:05
  bob    07-01 12:00 bing.com / cpc (Paid Search), converts 12:03
  carol  07-02 18:00 duckduckgo.com / organic (Organic Search), converts 18:04 on a HubSpot form
  dave   06-30 20:00 google.com / organic (Organic Search, from the referrer) → 07-02 20:00 direct, converts 20:01 on /contact
  vn     07-01 10:00 google.com / cpc (Paid Search), no conversion
  vm     07-02 11:00 newsletter / email (Email), no conversion
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import pytest

from pipeline.serve.attribution import AttributionQuery, attribution_report, parse_attribution_request, two_decimals
from pipeline.serve.query import RequestError
from pipeline.settings import Settings
from tests.conftest import fresh_warehouse_url
from tests.helpers import conversion, event, run, write_partition

DAY = "2025-07-03"
ALICE, BOB, CAROL, DAVE = "alice@example.com", "bob@example.com", "carol@example.com", "dave@example.com"
PAID, ORGANIC, EMAIL, DIRECT = "Paid Search", "Organic Search", "Email", "Direct"


def landing_lines() -> list[dict]:
    return [
        event("a1", "va", "2025-07-01 09:00:00", "/?utm_source=google.com&utm_medium=cpc&utm_campaign=summer"),
        event("a2", "va", "2025-07-02 09:00:00", "/pricing?utm_source=newsletter&utm_medium=email&utm_campaign=july"),
        conversion("a3", "va", "2025-07-02 09:05:00", "/signup", ALICE, meta_type="html_form", meta_id="form-1"),
        event("b1", "vb", "2025-07-01 12:00:00", "/?utm_source=bing.com&utm_medium=cpc&utm_campaign=brand"),
        conversion("b2", "vb", "2025-07-01 12:03:00", "/signup", BOB, meta_type="html_form", meta_id="form-1"),
        event("c1", "vc", "2025-07-02 18:00:00", "/pricing?utm_source=duckduckgo.com&utm_medium=organic"),
        conversion("c2", "vc", "2025-07-02 18:04:00", "/demo", CAROL, meta_type="hubspot_form", meta_id="hs-2"),
        event("d0", "vd", "2025-06-30 20:00:00", "/blog", referrer="https://www.google.com/"),
        event("d1", "vd", "2025-07-02 20:00:00", "/"),
        conversion("d2", "vd", "2025-07-02 20:01:00", "/contact", DAVE, meta_type="custom", meta_id="c-9"),
        event("n1", "vn", "2025-07-01 10:00:00", "/?utm_source=google.com&utm_medium=cpc&utm_campaign=summer"),
        event("m1", "vm", "2025-07-02 11:00:00", "/?utm_source=newsletter&utm_medium=email&utm_campaign=july"),
    ]


@contextmanager
def published_warehouse(kind: str, folder: Path):
    with fresh_warehouse_url(kind, folder) as url:
        settings = Settings(warehouse_url=url, landing=folder / "landing", workspace=folder / "runs", buckets=2)
        write_partition(settings.landing, DAY, landing_lines())
        run(settings, DAY)
        yield settings


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def published(request, tmp_path_factory):
    with published_warehouse(request.param, tmp_path_factory.mktemp("attribution")) as settings:
        yield settings


def report(settings: Settings, **request) -> dict:
    return attribution_report(settings, parse_attribution_request(request))


def rows(answer: dict) -> list[tuple]:
    by = answer["by"]
    return [(row[by], row["conversions"], row["share_percent"], row["touches"]) for row in answer["rows"]]


# --- rule-based models ------------------------------------------------------------------------------


def test_default_is_linear_by_channel(published):
    """Paths: alice [Paid, Email], bob [Paid], carol [Organic], dave [Organic, Direct]: ½ + 1 each for Paid and Organic."""
    answer = report(published)
    assert (answer["model"], answer["by"], answer["conversions"]) == ("linear", "channel", 4)
    assert list(answer) == ["model", "by", "conversions", "rows"]
    assert list(answer["rows"][0]) == ["channel", "conversions", "share_percent", "touches"]
    assert rows(answer) == [(ORGANIC, 1.5, 37.5, 2), (PAID, 1.5, 37.5, 2), (DIRECT, 0.5, 12.5, 1), (EMAIL, 0.5, 12.5, 1)]


def test_first_touch_keeps_values_without_credit_that_are_on_paths(published):
    assert rows(report(published, model="first_touch")) == [(ORGANIC, 2, 50, 2), (PAID, 2, 50, 2), (DIRECT, 0, 0, 1), (EMAIL, 0, 0, 1)]


def test_last_touch_and_last_non_direct(published):
    assert rows(report(published, model="last_touch")) == [(DIRECT, 1, 25, 1), (EMAIL, 1, 25, 1), (ORGANIC, 1, 25, 2), (PAID, 1, 25, 2)]
    # dave's path ends direct: his conversion goes to google.com organic instead
    assert rows(report(published, model="last_non_direct")) == [(ORGANIC, 2, 50, 2), (EMAIL, 1, 25, 1), (PAID, 1, 25, 2), (DIRECT, 0, 0, 1)]


def test_position_based_of_two_touch_paths_is_half_and_half(published):
    assert rows(report(published, model="position_based")) == rows(report(published, model="linear"))


def test_time_decay_by_hand(published):
    """alice's touches are exactly 1 day apart: Paid gets w/(1+w), Email 1/(1+w), w = 2^(-1/7) = 0.905724…, so
    0.475265… and 0.524735…; dave's are 2 days apart: Organic gets v/(1+v), Direct 1/(1+v), v = 2^(-2/7) = 0.820335…,
    so 0.450651… and 0.549349…. Paid 1.475265… → 1.48 (36.88 %), Organic 1.450651… → 1.45 (36.27 %),
    Direct 0.55 (13.73 %), Email 0.52 (13.12 %)."""
    w, v = 2 ** (-1 / 7), 2 ** (-2 / 7)
    assert (round(1 + w / (1 + w), 6), round(1 + v / (1 + v), 6), round(1 / (1 + v), 6), round(1 / (1 + w), 6)) == (1.475265, 1.450651, 0.549349, 0.524735)
    assert rows(report(published, model="time_decay")) == [(PAID, 1.48, 36.88, 2), (ORGANIC, 1.45, 36.27, 2), (DIRECT, 0.55, 13.73, 1), (EMAIL, 0.52, 13.12, 1)]


def test_source_medium_reads_source_slash_medium(published):
    assert rows(report(published, by="source_medium")) == [
        ("bing.com / cpc", 1, 25, 1),
        ("duckduckgo.com / organic", 1, 25, 1),
        ("direct / none", 0.5, 12.5, 1),
        ("google.com / cpc", 0.5, 12.5, 1),
        ("google.com / organic", 0.5, 12.5, 1),
        ("newsletter / email", 0.5, 12.5, 1),
    ]


def test_source_medium_and_campaign_groupings(published):
    assert rows(report(published, by="campaign", model="first_touch")) == [("none", 2, 50, 3), ("brand", 1, 25, 1), ("summer", 1, 25, 1), ("july", 0, 0, 1)]
    assert [row["medium"] for row in report(published, by="medium")["rows"]] == ["cpc", "organic", "email", "none"]


def test_the_window_is_on_the_conversion_timestamp(published):
    """From 07-02 on: alice, carol, dave (bob converted 07-01); alice's 07-01 touch still gets its share."""
    answer = report(published, start_date="2025-07-02")
    assert answer["conversions"] == 3
    assert rows(answer) == [(ORGANIC, 1.5, 50, 2), (DIRECT, 0.5, 16.67, 1), (EMAIL, 0.5, 16.67, 1), (PAID, 0.5, 16.67, 1)]
    assert report(published, end_date="2025-07-01")["conversions"] == 1
    assert report(published, start_date="2025-07-02T18:04:00Z", end_date="2025-07-02T18:04:00Z")["conversions"] == 1


def test_conversion_filters_decide_which_conversions_count(published):
    assert rows(report(published, meta_type="hubspot_form")) == [(ORGANIC, 1, 100, 1)]
    assert report(published, meta_id="form-1")["conversions"] == 2
    assert rows(report(published, conversion_page="https://shop.example.com/contact")) == [(DIRECT, 0.5, 50, 1), (ORGANIC, 0.5, 50, 1)]


def test_no_conversion_in_the_window_is_an_empty_report(published):
    assert report(published, start_date="2026-01-01", model="markov") == {"model": "markov", "by": "channel", "conversions": 0, "rows": []}
    assert report(published, meta_type="nothing")["rows"] == []


# --- markov -----------------------------------------------------------------------------------------


def test_markov_over_the_whole_history_by_hand(published):
    """Paths: Paid > Email > conv, Paid > conv, Organic > conv, Organic > Direct > conv, Paid > null (vn), Email > null (vm).

    start→Paid 3/6, →Organic 2/6, →Email 1/6; Paid→Email, →conv, →null 1/3 each; Email→conv, →null 1/2 each;
    Organic→conv, →Direct 1/2 each; Direct→conv 1. Conversion from Email 1/2, Paid 1/3·1/2 + 1/3 = 1/2, Organic 1,
    Direct 1: P = 3/6·1/2 + 2/6 + 1/6·1/2 = 2/3. Without Paid 5/12 (effect 3/8), without Email 1/2 (1/4), without
    Organic 1/3 (1/2), without Direct 1/2 (1/4); sum 11/8. Credits × 4 conversions: Paid 12/11, Email 8/11,
    Organic 16/11, Direct 8/11."""
    assert rows(report(published, model="markov")) == [(ORGANIC, 1.45, 36.36, 2), (PAID, 1.09, 27.27, 2), (DIRECT, 0.73, 18.18, 1), (EMAIL, 0.73, 18.18, 1)]


def test_markov_for_a_window_by_hand(published):
    """From 07-02: conversions of alice (Paid > Email, its path reaching back to 07-01), carol (Organic), dave
    (Organic > Direct); vm (Email > null) is the only visitor with sessions in the window and no conversion.
    start→Paid 1/4, →Organic 2/4, →Email 1/4: P = 1/4·1/2 + 2/4 + 1/4·1/2 = 3/4. Effects: Paid 1 - (5/8)/(3/4) = 1/6,
    Email 1 - (1/2)/(3/4) = 1/3, Organic 1 - (1/4)/(3/4) = 2/3, Direct 1/3; sum 3/2; × 3 conversions: 2 × effect."""
    answer = report(published, model="markov", start_date="2025-07-02")
    assert rows(answer) == [(ORGANIC, 1.33, 44.44, 2), (DIRECT, 0.67, 22.22, 1), (EMAIL, 0.67, 22.22, 1), (PAID, 0.33, 11.11, 1)]


def test_markov_visitors_whose_conversions_fail_the_filters_do_not_convert(published):
    """Only carol's HubSpot conversion counts; alice, bob and dave become paths ending in null, so only Organic
    (carol's path) has a removal effect: it takes the one conversion."""
    assert rows(report(published, model="markov", meta_type="hubspot_form")) == [(ORGANIC, 1, 100, 1)]


def test_markov_by_source_medium(published):
    answer = report(published, model="markov", by="source_medium")
    assert answer["conversions"] == 4 and {row["source_medium"] for row in answer["rows"]} == {
        "google.com / cpc", "newsletter / email", "bing.com / cpc", "duckduckgo.com / organic", "google.com / organic", "direct / none",
    }
    assert sum(row["conversions"] for row in answer["rows"]) == pytest.approx(4, abs=0.03)


# --- rounding, ordering, requests -------------------------------------------------------------------


def test_rounding_is_half_away_from_zero_on_the_value_as_it_reads():
    assert [two_decimals(x) for x in (0.125, 0.375, 2.675, 1 / 3, 2 / 3, 0.005, 1.0, 2.0000000000000004, 0.0)] == [
        0.13, 0.38, 2.68, 0.33, 0.67, 0.01, 1, 2, 0,
    ]
    assert isinstance(two_decimals(3.0), int) and isinstance(two_decimals(0.5), float)


def test_eight_touch_path_rounds_each_eighth_up_and_orders_ties_by_value(settings):
    """One conversion over 8 sessions of 8 campaigns: 0.125 each, shown 0.13 (half away from zero, not to even)."""
    campaigns = ["h", "g", "f", "e", "d", "c", "b", "a"]
    lines = [event(f"p{i}", "v", f"2025-07-0{i + 1} 10:00:00", f"/?utm_source=s&utm_medium=m&utm_campaign={c}") for i, c in enumerate(campaigns)]
    lines.append(conversion("c", "v", "2025-07-08 10:01:00", "/t", "x@y.co"))
    write_partition(settings.landing, "2025-07-08", lines)
    run(settings, "2025-07-08")
    answer = report(settings, by="campaign")
    assert rows(answer) == [(c, 0.13, 12.5, 1) for c in sorted(campaigns)]


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        ({"model": "shapley"}, "model"),
        ({"model": 3}, "model"),
        ({"by": "landing_page"}, "by"),
        ({"start_date": "2025-13-01"}, "start_date"),
        ({"end_date": "yesterday"}, "end_date"),
        ({"start_date": "2025-07-02", "end_date": "2025-07-01"}, "start_date"),
        ({"source": "google.com"}, "source"),
        ({"meta_type": 5}, "meta_type"),
        ({"conversion_page": "a\x00b"}, "conversion_page"),
        ([], None),
    ],
    ids=["unknown-model", "model-type", "unknown-grouping", "bad-date", "bad-end-date", "start-after-end", "unknown-field", "filter-type", "nul", "not-an-object"],
)
def test_bad_requests_name_the_field(request_, field):
    with pytest.raises(RequestError) as raised:
        parse_attribution_request(request_)
    assert raised.value.field == field and raised.value.message


def test_nulls_count_as_absent_and_defaults_apply():
    assert parse_attribution_request({"model": None, "by": None, "start_date": None}) == AttributionQuery()
    query = parse_attribution_request({"meta_type": "custom", "meta_id": "x", "conversion_page": "https://a/", "end_date": "2025-07-01"})
    assert query.conversion_filters == {"conversion_type": "custom", "conversion_id": "x", "conversion_page": "https://a/"}
    assert str(query.end) == "2025-07-02 00:00:00"
