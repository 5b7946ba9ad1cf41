"""The HTTP API fuzzed from its own OpenAPI document (schemathesis), and SQL-looking values as plain values."""

from __future__ import annotations

import warnings
from datetime import date, datetime, timedelta

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import func, select

from pipeline.serve.api import create_app
from pipeline.serve.models import ContactsPage, NoMatch
from pipeline.serve.query import TOUCH_SCOPES
from pipeline.serve.reader import NO_MATCH
from pipeline.warehouse import tables as t
from pipeline.warehouse.engines import get_engine
from tests.conftest import examples
from tests.serve.test_api import ALICE, BOB, CAROL, RESPONSE_SCHEMA, published_with_keys

with warnings.catch_warnings():  # Starlette suggests httpx2, which this project does not install
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

FUZZ = hypothesis_settings(  # new inputs every run (failures kept in the profile's example database, replayed first)
    max_examples=examples(50), deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance, response_schema_conformance]
TEXT_FIELDS = ("source", "medium", "campaign", "content", "term", "landing_page", "conversion_page", "meta_type", "meta_id")
SQL_LOOKING = [
    "' OR 1=1 --",
    "' OR '1'='1",
    '"; DROP TABLE contacts; --',
    "'); DELETE FROM api_keys; --",
    "google.com' UNION SELECT email, summary FROM contacts --",
    "%",
    "_",
    "\\",
    "google.com\x00",
    "Ünïcödé ✓ 漢字 🙂",
    "x" * 100_000,
    "' OR 1=1 --" * 5_000,
]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def published(request, tmp_path_factory):
    with published_with_keys(request.param, tmp_path_factory.mktemp("fuzz")) as built:
        yield built


@pytest.fixture
def api(published):
    """(app, good key); a rate limit high enough that fuzzing never meets it."""
    settings, keys = published
    app = create_app(settings.model_copy(update={"api_rate_limit_per_minute": 100_000}))
    yield app, keys["good"]
    app.state.reader.dispose()


def table_sizes(settings) -> dict[str, int]:
    with get_engine(settings.warehouse_url).connect() as conn:
        return {table.name: conn.execute(select(func.count()).select_from(table)).scalar_one() for table in t.PUBLISHED_TABLES + (t.api_keys,)}


def operations(app, scheme: str, key: str):
    """The app's OpenAPI document in schemathesis, authenticating with one of its documented schemes."""
    credentials = {"api_key": key} if scheme == "ApiKey" else {"bearer": key}
    config = schemathesis.Config.from_dict({"auth": {"openapi": {scheme: credentials}}})
    return schemathesis.openapi.from_asgi("/openapi.json", app, config=config)


def assert_conforms(operation, mode: GenerationMode, *, tries: int = 50) -> None:
    """Every generated case of an operation is answered as documented; negative ones must also be rejected."""
    checks = CHECKS + ([negative_data_rejection] if mode is GenerationMode.NEGATIVE else [])

    @hypothesis_settings(FUZZ, max_examples=examples(tries))
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case):
        case.call_and_validate(checks=checks)

    check()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["positive", "negative"])
def test_contacts_conform_to_the_openapi_document(api, mode):
    app, key = api
    assert_conforms(operations(app, "ApiKey", key)["/api/v1/contacts"]["POST"], mode)


@pytest.mark.parametrize("scheme", ["ApiKey", "Bearer"])
def test_either_scheme_is_enforced(api, scheme):
    """schemathesis's ignored_auth: the same request without the key, or with a wrong one, is a 401."""
    app, key = api
    operation = operations(app, scheme, key)["/api/v1/contacts"]["POST"]

    @hypothesis_settings(FUZZ, max_examples=examples(10))
    @given(case=operation.as_strategy())
    def check(case):
        case.call_and_validate(checks=[*CHECKS, ignored_auth])

    check()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["positive", "negative"])
def test_journey_conforms_to_the_openapi_document(api, mode):
    """The web UI's journey route: any body gets a documented status and shape (200, 400 or 404), never a 500."""
    app, key = api
    assert_conforms(operations(app, "ApiKey", key)["/api/v1/journey"]["POST"], mode, tries=40)


def test_healthz_conforms_to_the_openapi_document(api):
    app, key = api
    operations(app, "ApiKey", key)["/healthz"]["GET"].Case().call_and_validate(checks=CHECKS)


def window_is_open(request: dict) -> bool:
    """Whether start_date comes before the end of end_date (a date-only end covers its whole day)."""
    if "start_date" not in request or "end_date" not in request:
        return True
    start = datetime.fromisoformat(request["start_date"])
    end = request["end_date"]
    end = datetime.fromisoformat(end) + timedelta(microseconds=1) if "T" in end else datetime.fromisoformat(end) + timedelta(days=1)
    return start.replace(tzinfo=None) < end.replace(tzinfo=None)


def valid_requests() -> st.SearchStrategy[dict]:
    """Requests the reader must answer (200), with values that do and do not occur in the warehouse."""
    day = st.dates(min_value=date(2025, 6, 29), max_value=date(2025, 7, 4))
    bound = day.map(str) | st.builds(lambda d, h: f"{d}T{h:02d}:00:00Z", day, st.integers(0, 23))
    filters = {
        "offset": st.integers(0, 5),
        "start_date": bound,
        "end_date": bound,
        "source": st.sampled_from(["google.com", "bing.com", "newsletter", "duckduckgo.com", "Google.com"]),
        "medium": st.sampled_from(["cpc", "email", "organic"]),
        "campaign": st.sampled_from(["summer", "brand", "july", "none"]),
        "landing_page": st.sampled_from(["https://shop.example.com/", "https://shop.example.com/pricing"]),
        "conversion_page": st.sampled_from(["https://shop.example.com/signup", "https://shop.example.com/demo"]),
        "meta_type": st.sampled_from(["html_form", "hubspot_form"]),
        "meta_id": st.sampled_from(["form-1", "hs-2"]),
        "touch_scope": st.sampled_from(TOUCH_SCOPES),
    }
    chosen = st.fixed_dictionaries({}, optional=filters).filter(window_is_open)
    listed = st.fixed_dictionaries(
        {"emails": st.lists(st.sampled_from([ALICE, BOB, CAROL, "nobody@example.com", f" {BOB.upper()} "]), max_size=6)},
        optional={"offset": st.integers(0, 7)},
    )
    return chosen | listed


def test_valid_requests_are_answered_as_documented(api):
    app, key = api
    with TestClient(app) as client:

        @FUZZ
        @given(request=valid_requests())
        def check(request):
            response = client.post("/api/v1/contacts", json=request, headers={"Authentication": key})
            assert response.status_code == 200, (request, response.text)
            body = response.json()
            RESPONSE_SCHEMA.validate(body)
            (NoMatch if "message" in body else ContactsPage).model_validate(body)

        check()


def test_sql_looking_values_are_plain_values(api, published):
    app, key = api
    before = table_sizes(published[0])
    values = st.sampled_from(SQL_LOOKING) | st.text(max_size=300)
    fields = st.sampled_from((*TEXT_FIELDS, "emails", "start_date", "end_date", "touch_scope"))

    with TestClient(app) as client:

        @FUZZ
        @given(field=fields, value=values)
        def check(field, value):
            response = client.post("/api/v1/contacts", json={field: value}, headers={"Authentication": key})
            assert response.status_code in (200, 400), response.text
            body = response.json()
            if response.status_code == 400:
                assert body["field"] == field
                assert field in ("start_date", "end_date", "touch_scope") or "\x00" in value, body
            else:
                assert body == NO_MATCH or [c["email"] for c in body["contacts"]]
                assert field != "touch_scope" or value in TOUCH_SCOPES

        check()
    assert table_sizes(published[0]) == before
