"""`POST /api/v1/attribution` and `python -m pipeline attribution` (SPEC sections 12-14): the report behind the
API keys, limits and error shapes of /contacts, documented in OpenAPI, answering what the CLI answers."""

from __future__ import annotations

import json
import os
import subprocess
import warnings

import pytest
from jsonschema import Draft202012Validator
from schemathesis import GenerationMode

from pipeline.serve.api import create_app
from pipeline.serve.attribution import attribution_report, parse_attribution_request
from pipeline.serve.attribution_models import AttributionReport, AttributionRequest
from pipeline.serve.keys import create_key, revoke_key
from pipeline.settings import REPO_ROOT, Settings
from tests.serve.test_api import PYTHON, assert_error
from tests.serve.test_api_fuzz import assert_conforms, operations
from tests.serve.test_attribution import published_warehouse

with warnings.catch_warnings():  # Starlette suggests httpx2, which this project does not install
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

REQUEST_SCHEMA = json.loads((REPO_ROOT / "schemas" / "attribution_request.schema.json").read_text())
RESPONSE_SCHEMA = Draft202012Validator(json.loads((REPO_ROOT / "schemas" / "attribution_response.schema.json").read_text()))
PATH = "/api/v1/attribution"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def published(request, tmp_path_factory):
    """(settings, {"good": key, "revoked": key}) of the attribution warehouse of tests/serve/test_attribution.py."""
    with published_warehouse(request.param, tmp_path_factory.mktemp("attribution-api")) as settings:
        keys = {"good": create_key(settings, "good"), "revoked": create_key(settings, "revoked")}
        revoke_key(settings, "revoked")
        yield settings, keys


@pytest.fixture
def client(published):
    with TestClient(create_app(published[0].model_copy(update={"api_rate_limit_per_minute": 100_000}))) as test_client:
        yield test_client


@pytest.fixture
def good(published) -> dict:
    return {"Authentication": published[1]["good"]}


def ask(client, body, headers):
    if isinstance(body, (bytes, str)):
        return client.post(PATH, content=body, headers=headers)
    return client.post(PATH, json=body, headers=headers)


def cli(settings: Settings, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PYTHON, "-m", "pipeline", "attribution", "--warehouse", settings.warehouse_url, *args],
        capture_output=True, text=True, timeout=120, cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, input=stdin,
    )


def test_keys_are_required(client, published):
    for headers in ({}, {"Authentication": "csk_wrong"}, {"Authentication": published[1]["revoked"]}):
        response = ask(client, {}, headers)
        assert_error(response, 401)
        assert "rows" not in response.text


@pytest.mark.parametrize(
    "request_",
    [{}, {"model": "markov"}, {"model": "time_decay", "by": "source_medium"}, {"by": "campaign", "start_date": "2025-07-02"}, {"meta_type": "hubspot_form"}],
)
def test_answer_is_the_reports_and_documented(client, good, published, request_):
    response = ask(client, request_, {"Authorization": f"Bearer {published[1]['good']}"})
    assert response.status_code == 200, response.text
    expected = attribution_report(published[0], parse_attribution_request(request_))
    assert response.text == json.dumps(expected, ensure_ascii=False, separators=(",", ":"))
    RESPONSE_SCHEMA.validate(response.json())
    AttributionReport.model_validate(response.json())


def test_empty_body_is_an_empty_request(client, good):
    assert ask(client, b"", good).json() == ask(client, {}, good).json()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"model": "shapley"}, "model"),
        ({"by": "landing_page"}, "by"),
        ({"start_date": "2025-13-01"}, "start_date"),
        ({"end_date": "soon"}, "end_date"),
        ({"start_date": "2025-07-02", "end_date": "2025-07-01"}, "start_date"),
        ({"touch_scope": "first"}, "touch_scope"),
        ({"meta_id": ["a"]}, "meta_id"),
        (b'{"model": ', None),
        (b"[]", None),
    ],
    ids=["unknown-model", "unknown-grouping", "bad-date", "bad-end-date", "start-after-end", "unknown-field", "filter-type", "not-json", "array"],
)
def test_bad_request_is_400_naming_the_field(client, good, body, field):
    assert_error(ask(client, body, good), 400, field)


def test_oversized_body_is_413(client, good):
    assert_error(ask(client, json.dumps({"meta_type": "x" * (1024 * 1024)}).encode(), good), 413)


def test_missing_warehouse_is_503(tmp_path):
    with TestClient(create_app(Settings(warehouse_url=f"sqlite:///{tmp_path / 'absent.db'}"))) as absent:
        assert_error(ask(absent, {}, {"Authentication": "csk_any"}), 503)


def test_openapi_documents_the_request_and_the_answer(client):
    operation = client.get("/openapi.json").json()["paths"][PATH]["post"]
    request = operation["requestBody"]["content"]["application/json"]["schema"]
    assert set(request["properties"]) == set(REQUEST_SCHEMA["properties"]) == set(AttributionRequest.model_fields)
    assert all(prop.get("description") for prop in request["properties"].values()) and request["additionalProperties"] is False
    assert {"200", "400", "401", "413", "429", "503"} <= set(operation["responses"])
    assert operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/AttributionReport")


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["positive", "negative"])
def test_attribution_conforms_to_the_openapi_document(client, published, mode):
    assert_conforms(operations(client.app, "ApiKey", published[1]["good"])[PATH]["POST"], mode, tries=40)


# --- the command line -------------------------------------------------------------------------------


def test_cli_answers_what_the_api_answers(client, good, published):
    settings = published[0]
    result = cli(settings, "--model", "markov", "--by", "source_medium", "--start-date", "2025-07-02")
    assert result.returncode == 0, result.stderr
    api = ask(client, {"model": "markov", "by": "source_medium", "start_date": "2025-07-02"}, good).json()
    assert json.loads(result.stdout) == api


def test_cli_takes_the_json_and_its_options_win(published):
    settings = published[0]
    result = cli(settings, "--model", "first_touch", '{"model": "last_touch", "meta_type": "hubspot_form"}')
    answer = json.loads(result.stdout)
    assert (answer["model"], answer["conversions"]) == ("first_touch", 1)
    piped = cli(settings, "-", stdin='{"by": "medium"}')
    assert json.loads(piped.stdout)["by"] == "medium"


@pytest.mark.parametrize(
    ("args", "field"),
    [(["--model", "shapley"], "model"), (["--by", "page"], "by"), (["--start-date", "2025-02-30"], "start_date"),
     (["--start-date", "2025-07-03", "--end-date", "2025-07-01"], "start_date"), (['{"x": 1}'], "x"), (["{"], None)],
)
def test_cli_bad_request_prints_the_error_and_exits_2(client, good, published, args, field):
    result = cli(published[0], *args)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    body = json.loads(result.stdout)
    assert list(body) == ["error", "field"] and body["field"] == field


def test_cli_without_a_warehouse_is_one_line_and_exit_1(tmp_path):
    result = cli(Settings(warehouse_url=f"sqlite:///{tmp_path / 'absent.db'}"))
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
