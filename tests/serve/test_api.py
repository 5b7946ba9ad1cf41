"""The HTTP API (SPEC section 12) on a warehouse built by the real pipeline, on SQLite and PostgreSQL.

The landing partition holds three contacts and one anonymous visitor:
alice (google.com cpc, then converts from the newsletter), bob (bing.com cpc, converts at once),
carol (duckduckgo.com organic, converts on a HubSpot form) and vn (never converts).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import warnings
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from jsonschema import Draft202012Validator
from sqlalchemy import text

from pipeline.serve.api import create_app
from pipeline.serve.auth import CheckedKeys
from pipeline.serve.keys import KeyInfo, create_key, list_keys, revoke_key
from pipeline.serve.limits import RateLimiter
from pipeline.serve.models import ContactsRequest
from pipeline.serve.reader import NO_MATCH, query_contacts
from pipeline.settings import REPO_ROOT, Settings
from tests.conftest import fresh_warehouse_url
from tests.helpers import conversion, event, run, write_partition

with warnings.catch_warnings():  # Starlette suggests httpx2, which this project does not install
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

DAY = "2025-07-03"
AS_OF = "2025-07-10 12:00:00"
ALICE, BOB, CAROL = "alice@example.com", "bob@example.com", "carol@example.com"
PYTHON = str(REPO_ROOT / ".venv" / "bin" / "python") if (REPO_ROOT / ".venv" / "bin" / "python").exists() else sys.executable
RESPONSE_SCHEMA = Draft202012Validator(json.loads((REPO_ROOT / "schemas" / "contacts_response.schema.json").read_text()))
REQUEST_SCHEMA = json.loads((REPO_ROOT / "schemas" / "contacts_request.schema.json").read_text())


def landing_lines() -> list[dict]:
    return [
        event("a1", "va", "2025-07-01 09:00:00", "/?utm_source=google.com&utm_medium=cpc&utm_campaign=summer"),
        event("n1", "vn", "2025-07-01 10:00:00", "/?utm_source=google.com&utm_medium=cpc&utm_campaign=summer"),
        event("b1", "vb", "2025-07-01 12:00:00", "/?utm_source=bing.com&utm_medium=cpc&utm_campaign=brand"),
        conversion("b2", "vb", "2025-07-01 12:03:00", "/signup", BOB, meta_type="html_form", meta_id="form-1"),
        event("a2", "va", "2025-07-02 10:00:00", "/pricing?utm_source=newsletter&utm_medium=email&utm_campaign=july"),
        conversion("a3", "va", "2025-07-02 10:05:00", "/signup", ALICE, meta_type="html_form", meta_id="form-1"),
        event("c1", "vc", "2025-07-02 18:00:00", "/pricing?utm_source=duckduckgo.com&utm_medium=organic"),
        conversion("c2", "vc", "2025-07-02 18:04:00", "/demo", CAROL, meta_type="hubspot_form", meta_id="hs-2"),
    ]


@contextmanager
def published_with_keys(kind: str, folder: Path):
    """(settings, {"good": key, "revoked": key}) of a warehouse the real pipeline has built."""
    with fresh_warehouse_url(kind, folder) as url:
        settings = Settings(warehouse_url=url, landing=folder / "landing", workspace=folder / "runs", buckets=2)
        write_partition(settings.landing, DAY, landing_lines())
        run(settings, DAY)
        keys = {"good": create_key(settings, "good"), "revoked": create_key(settings, "revoked")}
        revoke_key(settings, "revoked")
        yield settings, keys


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def published(request, tmp_path_factory):
    with published_with_keys(request.param, tmp_path_factory.mktemp("api")) as built:
        yield built


@pytest.fixture
def client(published):
    settings, _ = published
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def good(published) -> dict:
    return {"Authentication": published[1]["good"]}


def ask(client, body, headers, as_of: str | None = AS_OF):
    params = {"as_of": as_of} if as_of else None
    if isinstance(body, (bytes, str)):
        return client.post("/api/v1/contacts", content=body, headers=headers, params=params)
    return client.post("/api/v1/contacts", json=body, headers=headers, params=params)


def assert_error(response, status: int, field: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert list(body) == ["error", "field"] and body["field"] == field and body["error"]
    assert "Traceback" not in response.text and "\n" not in body["error"]
    return body


# --- keys -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authentication": ""}, {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer"}],
    ids=["none", "empty", "basic", "bearer-without-key"],
)
def test_no_key_is_401_without_data(client, headers):
    response = ask(client, {}, headers)
    assert_error(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"
    assert "contacts" not in response.text


def test_wrong_key_is_401(client, published):
    key = published[1]["good"]
    for wrong in (key + "x", key[:-1], "csk_" + "A" * 43, key.upper()):
        assert_error(ask(client, {}, {"Authentication": wrong}), 401)
        assert_error(ask(client, {}, {"Authorization": f"Bearer {wrong}"}), 401)


def test_revoked_key_is_401(client, published):
    response = ask(client, {}, {"Authentication": published[1]["revoked"]})
    assert_error(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("form", ["Authentication: KEY", "Authorization: Bearer KEY", "Authentication: Bearer KEY"])
def test_good_key_in_each_header_form_is_200(client, published, form):
    name, value = form.split(": ")
    response = ask(client, {"source": "bing.com"}, {name: value.replace("KEY", published[1]["good"])})
    assert response.status_code == 200
    assert [c["email"] for c in response.json()["contacts"]] == [BOB]


def test_use_of_a_key_is_recorded(client, published):
    """A key of this test's own, never used before: its first request writes last_used_at, at the time of the request."""
    name = f"used-{time.monotonic_ns()}"
    key = create_key(published[0], name)
    last_used = lambda: [k.last_used_at for k in list_keys(published[0]) if k.name == name]  # noqa: E731
    assert last_used() == [None]
    before = datetime.now(timezone.utc).replace(tzinfo=None)
    assert ask(client, {}, {"Authentication": key}).status_code == 200
    (used,) = last_used()
    assert before - timedelta(seconds=1) <= used <= datetime.now(timezone.utc).replace(tzinfo=None)


def test_with_both_headers_authentication_wins(client, published):
    good, revoked = published[1]["good"], published[1]["revoked"]
    assert ask(client, {}, {"Authentication": good, "Authorization": f"Bearer {revoked}"}).status_code == 200
    assert_error(ask(client, {}, {"Authentication": revoked, "Authorization": f"Bearer {good}"}), 401)


# --- answers ----------------------------------------------------------------------------------------


def test_answer_is_the_readers_with_keys_in_the_seed_order(client, good, published):
    for request in ({}, {"source": "google.com"}, {"emails": [CAROL, "nobody@example.com", ALICE]}, {"touch_scope": "first"}):
        response = ask(client, request, good)
        assert response.status_code == 200
        expected = query_contacts(published[0], request, as_of=datetime.fromisoformat(AS_OF))
        assert response.text == json.dumps(expected, ensure_ascii=False, separators=(",", ":"))
        RESPONSE_SCHEMA.validate(response.json())


def test_no_match_is_200_with_the_seeds_message(client, good):
    for request in ({"source": "nowhere.example"}, {"emails": "nobody@example.com"}):
        response = ask(client, request, good)
        assert (response.status_code, response.json()) == (200, NO_MATCH)


def test_empty_body_is_an_empty_query(client, good, published):
    empty, braces = ask(client, b"", good), ask(client, {}, good)
    assert (empty.status_code, braces.status_code) == (200, 200)
    expected = query_contacts(published[0], {}, as_of=datetime.fromisoformat(AS_OF))
    assert empty.json() == braces.json() == expected and len(expected["contacts"]) == 3


def test_without_as_of_days_are_counted_to_now(client, good):
    summary = ask(client, {"emails": [BOB]}, good, as_of=None).json()["contacts"][0]["summary"]
    assert summary["days_since_last_conversion"] == (datetime.now(timezone.utc).replace(tzinfo=None) - datetime(2025, 7, 1, 12, 3)).days


def test_as_of_with_a_zone_is_converted_to_utc(client, good):
    late = ask(client, {"emails": [BOB]}, good, as_of="2025-07-02T14:02:59+02:00").json()
    assert late["contacts"][0]["summary"]["days_since_last_conversion"] == 0


@pytest.mark.parametrize(
    "request_",
    [{"source": "google.com"}, {"emails": f"{BOB}, {ALICE}"}, {"meta_type": "hubspot_form"}, {"campaign": "missing"}],
)
def test_same_answers_as_the_cli(client, good, published, request_):
    settings = published[0]
    cli = subprocess.run(
        [PYTHON, "-m", "pipeline", "contacts", "--warehouse", settings.warehouse_url, "--as-of", AS_OF, json.dumps(request_)],
        capture_output=True, text=True, timeout=120, cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    assert cli.returncode == 0, cli.stderr
    expected = json.loads(cli.stdout)
    assert json.dumps(ask(client, request_, good).json()) == json.dumps(expected)  # same keys in the same order


# --- bad requests -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"sorce": "google.com"}, "sorce"),
        ({"offset": "5"}, "offset"),
        ({"source": 5}, "source"),
        ({"touch_scope": "last"}, "touch_scope"),
        ({"start_date": "2025-13-01"}, "start_date"),
        ({"end_date": "yesterday"}, "end_date"),
        ({"start_date": "2025-07-02", "end_date": "2025-07-01"}, "start_date"),
        ({"offset": -1}, "offset"),
        ({"emails": [f"u{i}@example.com" for i in range(10_001)]}, "emails"),
        ({"emails": ",".join(f"u{i}@example.com" for i in range(10_001))}, "emails"),
        ({"source": "a\x00b"}, "source"),
        (b'{"campaign": "\\ud800x"}', "campaign"),
        (b'{"meta_id": "a\\udfffb"}', "meta_id"),
        (b'{"source": "google.com"', None),
        (b"\xff\xfe{}", None),
        (b"[" * 5000, None),
        (b"[]", None),
        (b'"source"', None),
        (b"42", None),
    ],
    ids=[
        "unknown-field", "offset-type", "source-type", "touch-scope", "bad-date", "bad-end-date", "start-after-end",
        "negative-offset", "too-many-emails", "too-many-emails-string", "nul", "lone-surrogate", "lone-low-surrogate", "not-json", "not-utf8", "too-deep",
        "array", "string", "number",
    ],
)
def test_bad_request_is_400_naming_the_field(client, good, body, field):
    assert_error(ask(client, body, good), 400, field)


def test_bad_request_has_the_clis_error_shape(client, good, published):
    cli = subprocess.run(
        [PYTHON, "-m", "pipeline", "contacts", "--warehouse", published[0].warehouse_url, '{"offset": -1}'],
        capture_output=True, text=True, timeout=120, cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    assert cli.returncode == 2
    assert ask(client, {"offset": -1}, good).json() == json.loads(cli.stdout)


def test_whitespace_alone_is_not_json_as_on_the_cli(client, good):
    assert "not valid JSON" in assert_error(ask(client, b" \n", good), 400)["error"]


def test_unknown_query_parameter_is_400_naming_it(client, good):
    response = client.post("/api/v1/contacts", json={}, headers=good, params={"as_of": AS_OF, "asof": "2025-07-10"})
    assert "unknown query parameter 'asof'" in assert_error(response, 400, "asof")["error"]


def test_bad_as_of_is_400(client, good):
    assert_error(ask(client, {}, good, as_of="last tuesday"), 400, "as_of")


def test_a_bad_body_is_reported_before_a_bad_as_of(client, good):
    """The request is checked first, then `as_of` (both now on the worker thread)."""
    assert "not valid JSON" in assert_error(ask(client, b"{", good, as_of="last tuesday"), 400)["error"]
    assert_error(ask(client, {"offset": -1}, good, as_of="last tuesday"), 400, "offset")


def test_unknown_path_and_method_are_json(client, good):
    assert_error(client.get("/api/v1/nothing", headers=good), 404)
    assert_error(client.get("/api/v1/contacts", headers=good), 405)


# --- limits -----------------------------------------------------------------------------------------


def test_oversized_body_is_413(client, good):
    padding = "x" * (1024 * 1024)
    assert_error(ask(client, json.dumps({"source": padding}).encode(), good), 413)


def test_oversized_body_without_length_is_413(client, good):
    def chunks():
        for _ in range(20):
            yield b" " * 65536
        yield b"{}"

    response = client.post("/api/v1/contacts", content=chunks(), headers=good)
    assert_error(response, 413)


def test_body_at_the_cap_is_read(published, good):
    settings = published[0].model_copy(update={"api_max_body_bytes": 100})
    with TestClient(create_app(settings)) as small:
        assert ask(small, b"{}" + b" " * 98, good).status_code == 200
        assert_error(ask(small, b"{}" + b" " * 99, good), 413)


def test_rate_limit_is_429_with_retry_after(published, good):
    settings = published[0].model_copy(update={"api_rate_limit_per_minute": 3})
    with TestClient(create_app(settings)) as limited:
        assert [ask(limited, {}, good).status_code for _ in range(3)] == [200, 200, 200]
        response = ask(limited, {}, good)
        assert_error(response, 429)
        assert 1 <= int(response.headers["retry-after"]) <= 20


def test_a_checked_key_is_trusted_for_the_cache_time_only():
    now = [0.0]
    checked = CheckedKeys(10, clock=lambda: now[0])
    info = KeyInfo("crm", datetime(2025, 7, 1), None, None)
    assert checked.get("csk_a") is None
    checked.put("csk_a", info)
    assert checked.get("csk_a") == info and checked.get("csk_b") is None
    checked.used("csk_a", datetime(2025, 7, 2))
    assert checked.get("csk_a").last_used_at == datetime(2025, 7, 2)  # the next requests do not write it again
    now[0] += 9.9
    assert checked.get("csk_a") is not None
    now[0] += 0.2
    assert checked.get("csk_a") is None  # checked against the warehouse again
    never = CheckedKeys(0, clock=lambda: now[0])
    never.put("csk_a", info)
    assert never.get("csk_a") is None


def test_a_revoked_key_stops_working_once_its_check_expires(published):
    settings = published[0]
    key = create_key(settings, f"short-lived-{time.monotonic_ns()}")
    name = [k.name for k in list_keys(settings) if k.name.startswith("short-lived")][-1]
    cached = settings.model_copy(update={"api_key_cache_seconds": 3600})
    with TestClient(create_app(cached)) as trusting, TestClient(create_app(settings.model_copy(update={"api_key_cache_seconds": 0}))) as strict:
        assert ask(trusting, {}, {"Authentication": key}).status_code == 200
        assert ask(strict, {}, {"Authentication": key}).status_code == 200
        revoke_key(settings, name)
        assert ask(trusting, {}, {"Authentication": key}).status_code == 200  # within the hour this process trusts it
        assert_error(ask(strict, {}, {"Authentication": key}), 401)
        trusting.app.state.checked_keys.seconds = 0
        trusting.app.state.checked_keys.live.clear()  # what expiry does
        assert_error(ask(trusting, {}, {"Authentication": key}), 401)


def test_token_bucket_refills_evenly_per_key():
    now = [0.0]
    limiter = RateLimiter(60, clock=lambda: now[0])
    assert [limiter.take("a") for _ in range(60)] == [None] * 60
    assert limiter.take("a") == 1
    assert limiter.take("b") is None  # buckets are per key
    now[0] += 1.0
    assert limiter.take("a") is None
    assert limiter.take("a") == 1
    now[0] += 3600
    assert [limiter.take("a") for _ in range(61)].count(None) == 60  # never more than a minute's worth


# --- health and warehouse access --------------------------------------------------------------------


def test_healthz_reports_the_last_successful_run(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["warehouse"]) == ("ok", "reachable")
    last = body["last_successful_run"]
    assert last["run_id"].startswith(f"day_{DAY}") and last["interval_start"] == DAY
    assert datetime.strptime(last["finished_at"], "%Y-%m-%d %H:%M:%S")


ANY_KEY = {"Authentication": "csk_any"}


def test_missing_warehouse_file_is_503_and_stays_missing(tmp_path):
    path = tmp_path / "absent.db"
    with TestClient(create_app(Settings(warehouse_url=f"sqlite:///{path}"))) as absent:
        health = absent.get("/healthz")
        assert health.status_code == 503
        assert health.json()["status"] == "unavailable" and "\n" not in health.json()["error"]
        assert_error(ask(absent, {}, ANY_KEY), 503)
    assert not path.exists()


def test_warehouse_without_tables_is_503(tmp_path):
    path = tmp_path / "empty.db"
    path.touch()
    with TestClient(create_app(Settings(warehouse_url=f"sqlite:///{path}"))) as empty:
        assert empty.get("/healthz").status_code == 503
        assert_error(ask(empty, {}, ANY_KEY), 503)


def test_unreachable_postgres_is_503():
    with TestClient(create_app(Settings(warehouse_url="postgresql+psycopg://nobody@127.0.0.1:1/none"))) as down:
        assert down.get("/healthz").status_code == 503
        assert_error(ask(down, {"source": "x"}, ANY_KEY), 503)


def test_the_readers_engine_cannot_write(client):
    engine = client.app.state.reader
    with pytest.raises(Exception, match="(?i)read-?only"):
        with engine.connect() as conn:
            conn.execute(text("CREATE TABLE intruder (a INTEGER)"))
            conn.commit()
    with pytest.raises(Exception, match="(?i)read-?only"):
        with engine.connect() as conn:
            conn.execute(text("DELETE FROM contacts"))
            conn.commit()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM contacts")).scalar() == 3


# --- documentation ----------------------------------------------------------------------------------


def test_openapi_documents_every_request_field_and_both_answers(client):
    doc = client.get("/openapi.json").json()
    operation = doc["paths"]["/api/v1/contacts"]["post"]
    request = operation["requestBody"]["content"]["application/json"]["schema"]
    assert set(request["properties"]) == set(REQUEST_SCHEMA["properties"]) == set(ContactsRequest.model_fields)
    assert all(prop.get("description") for prop in request["properties"].values())
    assert request["additionalProperties"] is False
    answers = operation["responses"]["200"]["content"]["application/json"]["schema"]["anyOf"]
    assert {a["$ref"].rsplit("/", 1)[-1] for a in answers} == {"ContactsPage", "NoMatch"}
    assert {"400", "401", "413", "429", "503"} <= set(operation["responses"])
    assert {"ApiKey", "Bearer"} == set(doc["components"]["securitySchemes"])
    assert doc["components"]["securitySchemes"]["ApiKey"]["name"] == "Authentication"
    assert [p["name"] for p in operation["parameters"]] == ["as_of"]


def test_docs_page_is_served(client):
    response = client.get("/docs")
    assert response.status_code == 200 and "swagger" in response.text.lower()


# --- a real server ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def uvicorn_process(settings: Settings, **env: str):
    """`python -m pipeline serve` on a free loopback port; yields its base URL and stops it afterwards."""
    port = free_port()
    process = subprocess.Popen(
        [PYTHON, "-m", "pipeline", "serve", "--warehouse", settings.warehouse_url, "--port", str(port)],
        cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": str(REPO_ROOT), **env},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{base}/healthz", timeout=2)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"server did not start: {process.stdout.read() if process.poll() is not None else ''}") from None
                time.sleep(0.2)
        yield base, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_real_uvicorn_server(published):
    settings, keys = published
    with uvicorn_process(settings, CONTACTS_API_MAX_BODY_BYTES="4096", CONTACTS_API_RATE_LIMIT_PER_MINUTE="5") as (base, process):
        with httpx.Client(base_url=base, timeout=30) as http:
            assert http.get("/healthz").json()["status"] == "ok"
            assert http.post("/api/v1/contacts", json={}).status_code == 401
            answer = http.post("/api/v1/contacts", json={"source": "bing.com"}, params={"as_of": AS_OF},
                               headers={"Authorization": f"Bearer {keys['good']}"})
            assert answer.status_code == 200
            expected = query_contacts(settings, {"source": "bing.com"}, as_of=datetime.fromisoformat(AS_OF))
            assert answer.text == json.dumps(expected, ensure_ascii=False, separators=(",", ":"))
            bad = http.post("/api/v1/contacts", json={"offset": -1}, headers={"Authentication": keys["good"]})
            assert (bad.status_code, bad.json()["field"]) == (400, "offset")
            big = http.post("/api/v1/contacts", content=b" " * 5000, headers={"Authentication": keys["good"]})
            assert big.status_code == 413
            statuses = [http.post("/api/v1/contacts", json={}, headers={"Authentication": keys["good"]}).status_code for _ in range(3)]
            assert statuses[-1] == 429
            assert http.get("/openapi.json").json()["info"]["title"]
    assert "Traceback" not in process.stdout.read()
