"""A contact's journey for the UI's timeline (POST /api/v1/journey) and the UI's static files, on the story warehouse."""

from __future__ import annotations

import warnings

import pytest

from pipeline.serve.api import create_app
from pipeline.serve.journey import contact_journey, parse_journey_request
from pipeline.serve.query import RequestError
from tests.serve.story import ALICE, BOB, CAROL, DAVE, story_warehouse

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

SITE = "https://shop.example.com"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def story(request, tmp_path_factory):
    with story_warehouse(request.param, tmp_path_factory.mktemp("journey"), with_key=True) as built:
        yield built


@pytest.fixture
def client(story):
    settings, _ = story
    with TestClient(create_app(settings)) as client:
        yield client


def picked(journey: dict, *keys: str) -> list[tuple]:
    return [tuple(s[k] if not isinstance(s[k], list) else tuple(s[k]) for k in keys) for s in journey["sessions"]]


def test_sessions_in_order_with_channel_duration_and_touches(story):
    journey = contact_journey(story[0], ALICE)
    assert journey["email"] == ALICE
    assert picked(journey, "timestamp", "channel", "source", "medium", "campaign", "landing_page", "session_duration", "exit_page") == [
        ("2025-07-01 09:00:00", "Paid Search", "google", "cpc", "summer", f"{SITE}/", 120, f"{SITE}/pricing"),
        ("2025-07-02 10:00:00", "Email", "newsletter", "email", "july", f"{SITE}/pricing", 300, None),
        ("2025-07-03 08:00:00", "Direct", "direct", "none", "none", f"{SITE}/", 0, f"{SITE}/"),
    ]
    assert picked(journey, "roles", "touches") == [(("first",), ("first",)), (("converting",), ("converting",)), (("after",), ("recent",))]
    assert [s["conversions"] for s in journey["sessions"]] == [
        [], [{"timestamp": "2025-07-02 10:05:00", "conversion_page": f"{SITE}/signup", "type": "html_form", "id": "form-1"}], [],
    ]


def test_converting_touch_is_the_session_of_the_earliest_conversion_not_the_earliest_converting_session(story):
    journey = contact_journey(story[0], CAROL)
    assert picked(journey, "timestamp", "channel", "roles", "touches") == [
        ("2025-07-02 18:00:00", "Organic Search", ("first", "converting"), ("first",)),
        ("2025-07-02 18:10:00", "Organic Social", ("converting",), ("converting", "recent")),
    ]
    assert [[c["timestamp"] for c in s["conversions"]] for s in journey["sessions"]] == [["2025-07-02 18:20:00"], ["2025-07-02 18:15:00"]]


def test_a_shared_device_session_shows_only_the_contacts_own_conversion(story):
    dave, bob = contact_journey(story[0], DAVE), contact_journey(story[0], BOB)
    assert picked(dave, "own_device", "touches") == [(False, ("first", "converting", "recent"))]
    assert [c["timestamp"] for c in dave["sessions"][0]["conversions"]] == ["2025-07-01 12:05:00"]
    assert [c["timestamp"] for c in bob["sessions"][0]["conversions"]] == ["2025-07-01 12:03:00"]
    assert dave["sessions"][0]["session_id"] == bob["sessions"][0]["session_id"] and bob["sessions"][0]["own_device"] is True


def test_unknown_contact_has_no_journey(story):
    assert contact_journey(story[0], "nobody@example.com") is None


@pytest.mark.parametrize(
    "body, field",
    [([ALICE], None), ({}, "email"), ({"email": ""}, "email"), ({"email": 3}, "email"), ({"email": ALICE, "x": 1}, "x")],
)
def test_journey_request_errors_name_the_field(body, field):
    with pytest.raises(RequestError) as caught:
        parse_journey_request(body)
    assert caught.value.field == field


def test_journey_route_answers_with_the_key_and_normalises_the_email(client, story):
    response = client.post("/api/v1/journey", json={"email": "  Alice@Example.com "}, headers={"Authentication": story[1]})
    assert response.status_code == 200
    assert response.json() == contact_journey(story[0], ALICE)


@pytest.mark.parametrize(
    "headers_, body, status, field",
    [
        ({}, {"email": ALICE}, 401, None),
        ({"Authentication": "csk_wrong"}, {"email": ALICE}, 401, None),
        ("good", {"email": "nobody@example.com"}, 404, "email"),
        ("good", {"emails": [ALICE]}, 400, "emails"),
        ("good", "not json", 400, None),
    ],
)
def test_journey_route_errors(client, story, headers_, body, status, field):
    headers = {"Authentication": story[1]} if headers_ == "good" else headers_
    if isinstance(body, str):
        response = client.post("/api/v1/journey", content=body, headers=headers)
    else:
        response = client.post("/api/v1/journey", json=body, headers=headers)
    assert response.status_code == status
    assert response.json()["field"] == field and "sessions" not in response.json()


def test_journey_route_is_in_the_openapi_document(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert set(paths["/api/v1/journey"]) == {"post"}
    assert paths["/api/v1/journey"]["post"]["requestBody"]["content"]["application/json"]["schema"]["required"] == ["email"]


def test_ui_is_served_with_a_policy_that_keeps_it_on_this_server(client):
    page = client.get("/ui/")
    assert page.status_code == 200 and '<script src="app.js"' in page.text
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "connect-src 'self'" in policy and "script-src 'self'" in policy
    for name in ("app.js", "timeline.js", "attribution.js", "style.css"):
        asset = client.get(f"/ui/{name}")
        text = asset.text.replace("http://www.w3.org/2000/svg", "")  # an XML namespace name, never fetched
        assert asset.status_code == 200 and "http://" not in text and "https://" not in text
    assert client.get("/", follow_redirects=False).headers["location"] == "/ui/"
    assert client.get("/ui", follow_redirects=False).status_code == 307
