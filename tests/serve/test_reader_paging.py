"""Paging through the reader returns every qualifying contact exactly once (SPEC section 11), checked on generated data.

The reference answer is SPEC section 11 implemented literally in pandas over `contact_sessions` and
`conversions`; the touch roles are recomputed from SPEC section 7 rather than read from the stored flags.
The page size is shrunk so that a few dozen contacts make many pages.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from unittest import mock

import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from pipeline.sample.generate import generate_landing
from pipeline.serve import reader
from pipeline.serve.query import RequestError
from pipeline.settings import REPO_ROOT, Settings
from tests.conftest import fresh_warehouse_url
from tests.helpers import run, table

AS_OF = datetime(2025, 3, 10)
SESSION_FILTERS = ("source", "medium", "campaign", "content", "term", "landing_page")
CONVERSION_FILTERS = {"conversion_page": "conversion_page", "meta_type": "conversion_type", "meta_id": "conversion_id"}
ROLES = ("first", "converting", "assist", "after")
RESPONSE_VALIDATOR = Draft202012Validator(json.loads((REPO_ROOT / "schemas" / "contacts_response.schema.json").read_text()))


@dataclass
class Sample:
    """A warehouse built from generated landing data, and its tables as frames."""

    settings: Settings
    pairs: pd.DataFrame  # contact_sessions with the SPEC's touch roles recomputed
    conversions: pd.DataFrame


def spec_roles(contact_sessions: pd.DataFrame, conversions: pd.DataFrame) -> pd.DataFrame:
    """SPEC section 7's touch roles, by session order (timestamp, then session id) within each journey."""
    journey = contact_sessions.sort_values(["email", "session_timestamp", "session_id"], kind="stable").reset_index(drop=True)
    rank = journey.groupby("email").cumcount()
    own = conversions[["email", "session_id"]].drop_duplicates().assign(converted=True)
    converted = journey[["email", "session_id"]].merge(own, how="left", on=["email", "session_id"])["converted"]
    earliest = conversions.sort_values(["email", "timestamp", "event_id"]).drop_duplicates("email")[["email", "session_id"]]
    converting_rank = journey[["email", "session_id"]].assign(rank=rank).merge(earliest, on=["email", "session_id"])
    first_converting = journey["email"].map(converting_rank.set_index("email")["rank"])
    return journey.assign(
        first=rank == 0,
        converting=converted.fillna(False).astype(bool).to_numpy(),
        assist=(rank > 0) & (rank < first_converting),
        after=rank > first_converting,
    )


def load_sample(settings: Settings) -> Sample:
    contact_sessions, conversions = table(settings, "contact_sessions"), table(settings, "conversions")
    return Sample(settings, spec_roles(contact_sessions, conversions), conversions)


@pytest.fixture(scope="module")
def landing(tmp_path_factory):
    folder = tmp_path_factory.mktemp("generated") / "landing"
    summary = generate_landing(folder, visitors=150, days=3, start=date(2025, 3, 1), seed=3)  # a seed with every touch role
    return folder, summary.days


@pytest.fixture(scope="module")
def sqlite_sample(landing, tmp_path_factory):
    folder, days = landing
    with fresh_warehouse_url("sqlite", tmp_path_factory.mktemp("sqlite")) as url:
        settings = Settings(warehouse_url=url, landing=folder, workspace=folder.parent / "runs-sqlite", buckets=2)
        run(settings, days[0], days[-1])
        yield load_sample(settings)


# --- the reference answer --------------------------------------------------------------------------


@dataclass(frozen=True)
class Bound:
    """One end of a date window as requested (text) and as an instant (`day` bounds cover the whole UTC day)."""

    text: str
    instant: pd.Timestamp  # a day's midnight when `day`
    day: bool

    def admits_from(self, stamps: pd.Series) -> pd.Series:
        """As a start: at or after the instant (a day's start)."""
        return stamps >= self.instant

    def admits_until(self, stamps: pd.Series) -> pd.Series:
        """As an end: at or before the instant, or anywhere on the day."""
        return stamps < self.instant + pd.Timedelta(days=1) if self.day else stamps <= self.instant

    def is_after(self, end: Bound) -> bool:
        """As a start, later than `end`: the window holds no instant at all."""
        return self.instant >= end.instant + pd.Timedelta(days=1) if end.day else self.instant > end.instant


def expected_answer(sample: Sample, request: dict, start: Bound | None, end: Bound | None) -> tuple[list[str], dict[str, int], int]:
    """Qualifying contacts in order, each contact's first matching pair position, and the number of matching pairs."""

    def in_window(stamps: pd.Series) -> pd.Series:
        keep = pd.Series(True, index=stamps.index)
        if start is not None:
            keep &= start.admits_from(stamps)
        if end is not None:
            keep &= end.admits_until(stamps)
        return keep

    pairs = sample.pairs
    for name in SESSION_FILTERS:
        if name in request:
            pairs = pairs[pairs[name] == request[name]]
    scope = request.get("touch_scope", "any")
    if scope != "any":
        pairs = pairs[pairs[scope]]
    pairs = pairs[in_window(pairs["session_timestamp"])]
    given = {column: request[name] for name, column in CONVERSION_FILTERS.items() if name in request}
    if given:
        conv = sample.conversions
        for column, value in given.items():
            conv = conv[conv[column] == value]
        conv = conv[in_window(conv["timestamp"])]
        pairs = pairs.merge(conv[["email", "session_id"]].drop_duplicates(), on=["email", "session_id"])
    ordered = pairs.sort_values(["session_timestamp", "session_id", "email"]).reset_index(drop=True)
    firsts = ordered.drop_duplicates("email")
    return firsts["email"].tolist(), dict(zip(firsts["email"], firsts.index)), len(ordered)


# --- paging ----------------------------------------------------------------------------------------


def page_through(sample: Sample, request: dict, page_size: int) -> tuple[list[str], list[dict], dict | None]:
    """Follow records_processed until has_more is false: (emails in order, each pagination, the no-match reply)."""
    emails, paginations, offset = [], [], 0
    with mock.patch.object(reader, "PAGE_SIZE", page_size):
        while len(paginations) < 1000:
            response = reader.query_contacts(sample.settings, {**request, "offset": offset}, as_of=AS_OF)
            RESPONSE_VALIDATOR.validate(response)
            if "message" in response:
                return emails, paginations, response
            assert len(response["contacts"]) <= page_size
            emails += [c["email"] for c in response["contacts"]]
            paginations.append({"offset": offset, "count": len(response["contacts"]), **response["pagination"]})
            if not response["pagination"]["has_more"]:
                return emails, paginations, None
            assert response["pagination"]["records_processed"] > offset, "paging makes no progress"
            offset = response["pagination"]["records_processed"]
    raise AssertionError("more than 1000 pages")


def check_paging(sample: Sample, request: dict, start: Bound | None, end: Bound | None, page_size: int) -> int:
    """Page through the reader and compare with the reference; returns the number of qualifying contacts."""
    expected, first_position, total = expected_answer(sample, request, start, end)
    emails, paginations, no_match = page_through(sample, request, page_size)
    if total == 0:
        assert no_match == reader.NO_MATCH and emails == []
        return 0
    assert no_match is None
    assert emails == expected  # every qualifying contact, once, in scan order
    for p in paginations:
        assert p["total_records"] == total
        if p["count"] == page_size:  # a full page stops after its last contact's first pair
            shown = emails[: sum(q["count"] for q in paginations if q["offset"] <= p["offset"])]
            assert p["records_processed"] == first_position[shown[-1]] + 1
        else:  # a short page scanned every pair
            assert p["records_processed"] == max(p["offset"], total)
    return len(expected)


# --- strategies ------------------------------------------------------------------------------------


def value(draw, anchor_value, values) -> str:
    """Mostly the anchor pair's own value (so queries match), sometimes any value present in the table."""
    if draw(st.sampled_from(["anchor", "anchor", "anchor", "any"])) == "anchor":
        return anchor_value
    return draw(st.sampled_from(sorted(values)))


def bound(draw, near: list[pd.Timestamp]) -> Bound:
    """A date-only day, or an instant: on a second around one of the anchor's times, between them, or anywhere near;
    written with Z or with an offset."""
    kind = draw(st.sampled_from(["day", "exact", "exact", "between", "anywhere"]))
    around = draw(st.sampled_from(near))
    if kind == "day":
        day = around.normalize() + pd.Timedelta(days=draw(st.sampled_from([0, 0, -1, 1])))
        return Bound(day.strftime("%Y-%m-%d"), day, True)
    if kind == "exact":
        instant = around + pd.Timedelta(seconds=draw(st.sampled_from([-1, 0, 0, 0, 1])))
    elif kind == "between":  # after the session's start, before its conversion (when it has one of its own)
        instant = min(near) + (max(near) - min(near)) / 2
    else:
        instant = around + pd.Timedelta(seconds=draw(st.integers(-3 * 86_400, 3 * 86_400)))
    instant, shift = instant.floor("s"), draw(st.sampled_from([0, 0, 2, -5]))
    local = (instant + pd.Timedelta(hours=shift)).strftime("%Y-%m-%dT%H:%M:%S")
    return Bound(local + ("Z" if shift == 0 else f"{shift:+03d}:00"), instant, False)


@st.composite
def queries(draw, sample: Sample):
    """(request, start, end): a random subset of the filters, values taken mostly from one random (contact, session)
    pair and its own conversions there, a touch scope, and an optional date window around that pair's times."""
    pairs, conversions = sample.pairs, sample.conversions
    anchor = pairs.iloc[draw(st.integers(0, len(pairs) - 1))]
    own = conversions[(conversions["email"] == anchor["email"]) & (conversions["session_id"] == anchor["session_id"])]
    converted = own.iloc[draw(st.integers(0, len(own) - 1))] if len(own) else conversions.iloc[draw(st.integers(0, len(conversions) - 1))]
    request = {}
    for name in draw(st.sets(st.sampled_from([*SESSION_FILTERS, *CONVERSION_FILTERS]), max_size=3)):
        if name in SESSION_FILTERS:
            request[name] = value(draw, anchor[name], pairs[name].unique())
        elif not pd.isna(converted[CONVERSION_FILTERS[name]]):
            column = CONVERSION_FILTERS[name]
            request[name] = value(draw, converted[column], conversions[column].dropna().unique())
    scope = draw(st.sampled_from([None, "any", *ROLES, *(role for role in ROLES if anchor[role])]))
    if scope is not None:
        request["touch_scope"] = scope
    near = [anchor["session_timestamp"], converted["timestamp"]]
    window = draw(st.sampled_from(["", "start", "end", "start end", "start end"]))
    start = bound(draw, near) if "start" in window else None
    end = bound(draw, near) if "end" in window else None
    if start is not None:
        request["start_date"] = start.text
    if end is not None:
        request["end_date"] = end.text
    return request, start, end


# --- tests -----------------------------------------------------------------------------------------


def test_generated_sample_has_what_paging_needs(sqlite_sample):
    pairs = sqlite_sample.pairs
    assert pairs["email"].nunique() >= 15
    assert pairs.duplicated("session_id").any(), "no session in two journeys (shared device)"
    assert (pairs.groupby("email").size() > 1).any()
    for role in ROLES:
        assert pairs[role].any(), role


def test_stored_touch_roles_follow_the_spec(sqlite_sample):
    pairs = sqlite_sample.pairs
    for role in ROLES:
        stored = pairs[f"is_{role}"].astype(bool)
        wrong = pairs.loc[stored != pairs[role], ["email", "session_id", "session_timestamp", f"is_{role}", role]]
        assert wrong.empty, f"contact_sessions.is_{role} differs from SPEC section 7:\n{wrong}"


@hypothesis_settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
@given(data=st.data())
def test_paging_returns_every_qualifying_contact_once(sqlite_sample, data):
    request, start, end = data.draw(queries(sqlite_sample), label="query")
    page_size = data.draw(st.sampled_from([1, 2, 3, 7, 50]), label="page size")
    if start is not None and end is not None and start.is_after(end):
        with pytest.raises(RequestError) as caught:
            reader.query_contacts(sqlite_sample.settings, request, as_of=AS_OF)
        assert caught.value.field == "start_date"
        event("start after end")
        return
    found = check_paging(sqlite_sample, request, start, end, page_size)
    event(f"contacts: {min(found, 5)}{'+' if found >= 5 else ''}")
    event(f"window: {'start' if start else ''}{'+end' if end else ''}, conversion filter: {bool(set(request) & set(CONVERSION_FILTERS))}")


def instant(stamp: pd.Timestamp) -> Bound:
    return Bound(stamp.strftime("%Y-%m-%dT%H:%M:%SZ"), stamp.floor("s"), False)


def test_window_bounds_at_every_session_and_conversion_time(sqlite_sample):
    """A sweep over the boundaries the random windows rarely hit exactly: each session start and conversion time."""
    second = pd.Timedelta(seconds=1)
    for stamp in sqlite_sample.pairs["session_timestamp"].unique():
        for at in (stamp, stamp + second):
            check_paging(sqlite_sample, {"start_date": instant(at).text}, instant(at), None, 50)
        for at in (stamp - second, stamp):
            check_paging(sqlite_sample, {"end_date": instant(at).text}, None, instant(at), 50)
    for conv in sqlite_sample.conversions.itertuples():
        for at in (conv.timestamp - second, conv.timestamp):
            request = {"conversion_page": conv.conversion_page, "end_date": instant(at).text}
            check_paging(sqlite_sample, request, None, instant(at), 50)


FIXED_QUERIES = [
    {},
    {"touch_scope": "first"},
    {"touch_scope": "converting"},
    {"touch_scope": "assist"},
    {"touch_scope": "after"},
    {"medium": "cpc"},
    {"meta_type": "hubspot_form"},
    {"source": "direct", "touch_scope": "after"},
    {"landing_page": "https://www.acme-shoes.com/", "meta_type": "custom"},
]


@pytest.mark.parametrize("page_size", [2, 50])
def test_paging_on_fixed_queries(sqlite_sample, page_size):
    for request in FIXED_QUERIES:
        check_paging(sqlite_sample, request, None, None, page_size)
    day = Bound("2025-03-02", pd.Timestamp("2025-03-02", tz="UTC"), True)
    check_paging(sqlite_sample, {"start_date": day.text, "end_date": day.text}, day, day, 3)


def expected_page(sample: Sample, request: dict, offset: int, page_size: int) -> tuple[list[str], dict] | None:
    """The page at any offset, from the reference: contacts whose first matching pair is at or after it."""
    expected, first_position, total = expected_answer(sample, request, None, None)
    if total == 0:
        return None
    later = [email for email in expected if first_position[email] >= offset]
    shown = later[:page_size]
    processed = first_position[shown[-1]] + 1 if len(shown) == page_size else max(offset, total)
    return shown, {"records_processed": processed, "total_records": total, "has_more": len(later) > page_size}


OFFSET_QUERIES = [
    {}, {"touch_scope": "after"}, {"medium": "cpc"}, {"source": "direct", "touch_scope": "first"}, {"meta_type": "hubspot_form"},
    {"meta_type": "hubspot_form", "touch_scope": "after"}, {"source": "direct", "medium": "none"}, {"medium": "organic", "meta_type": "custom"},
]


def check_offsets(sample: Sample, every: int = 1) -> None:
    """Each query of OFFSET_QUERIES at every `every`-th offset, answered without what earlier pages taught (no memo)."""
    from pipeline.serve.memo import VersionMemo

    with mock.patch.object(reader, "PAGE_SIZE", 3), mock.patch.object(reader, "memo_for", lambda url: VersionMemo()):
        for request in OFFSET_QUERIES:
            total = expected_answer(sample, request, None, None)[2]
            for offset in sorted({*range(0, total + 2, every), max(total - 1, 0), total + 5}):
                response = reader.query_contacts(sample.settings, {**request, "offset": offset}, as_of=AS_OF)
                wanted = expected_page(sample, request, offset, 3)
                if wanted is None:
                    assert response == reader.NO_MATCH
                    continue
                assert ([c["email"] for c in response["contacts"]], response["pagination"]) == wanted, (request, offset)


def test_any_offset_answers_as_paging_there_would(sqlite_sample):
    """Offsets nobody paged to before: found through the day counts, or by skipping pairs, alike."""
    check_offsets(sqlite_sample)


def test_json_answer_is_the_dict_answer_encoded(sqlite_sample):
    """The API's answer splices the stored summaries; byte for byte what encoding the reader's dict gives."""
    from pipeline.serve.query import parse_request

    for request in ({}, {"touch_scope": "converting"}, {"emails": sorted(sqlite_sample.pairs["email"].unique())[:50]}):
        offset = 0
        while True:
            page = reader.published_page(sqlite_sample.settings, parse_request({**request, "offset": offset}), as_of=AS_OF)
            assert page.as_json() == json.dumps(page.as_dict(), ensure_ascii=False, separators=(",", ":")).encode()
            if page.pagination is None or not page.pagination["has_more"]:
                break
            offset = page.pagination["records_processed"]


def test_paging_on_postgresql(landing, tmp_path_factory, sqlite_sample):
    """One PostgreSQL example: the same data, the same answers."""
    folder, days = landing
    with fresh_warehouse_url("postgresql", tmp_path_factory.mktemp("pg")) as url:
        settings = Settings(warehouse_url=url, landing=folder, workspace=folder.parent / "runs-pg", buckets=2)
        run(settings, days[0], days[-1])
        sample = load_sample(settings)
        start = Bound("2025-03-01T12:00:00Z", pd.Timestamp("2025-03-01 12:00", tz="UTC"), False)
        end = Bound("2025-03-03", pd.Timestamp("2025-03-03", tz="UTC"), True)
        for request in FIXED_QUERIES:
            check_paging(sample, request, None, None, 2)
            windowed = {**request, "start_date": start.text, "end_date": end.text}
            check_paging(sample, windowed, start, end, 3)
            with mock.patch.object(reader, "PAGE_SIZE", 3):
                assert reader.query_contacts(settings, windowed, as_of=AS_OF) == reader.query_contacts(
                    sqlite_sample.settings, windowed, as_of=AS_OF
                )
        check_offsets(sample, every=3)
