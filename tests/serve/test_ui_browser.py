"""The web UI and the HTML report in a real headless Chromium (SPEC section 15).

One browser and one `python -m pipeline serve` on loopback for the module: enter a key, filter, page, open
a contact and read its timeline, by keyboard where a person would; then the same at phone width. Then the
report file, opened from disk, draws its charts. Screenshots go to test-artifacts/. Every request a page
makes must stay on 127.0.0.1, or on the report's own file:// URL (data: URLs are the page's own bytes).
"""

from __future__ import annotations

import json
from datetime import date

import httpx
import pytest

from pipeline.serve import report_data as data
from pipeline.serve.report import chart_specs, collect, render, write_report
from tests.browser import chromium
from tests.serve.story import ALICE, CAROL, story_warehouse
from tests.serve.test_api import uvicorn_process

ROWS = "[...document.querySelectorAll('#contacts tbody tr')]"
EMAILS = f"{ROWS}.map(r => r.querySelector('button').textContent)"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with story_warehouse("sqlite", tmp_path_factory.mktemp("ui"), with_key=True, with_crowd=True) as (settings, key):
        with uvicorn_process(settings) as (base, _process):
            yield base, key, settings


@pytest.fixture(scope="module")
def browser():
    with chromium() as started:
        yield started


@pytest.fixture
def page(browser, server):
    opened = browser.page()
    opened.allowed = [server[0] + "/", "data:"]
    yield opened
    stray = [url for url in opened.requests if not url.startswith(tuple(opened.allowed))]
    assert stray == [], "requests left the test server"
    assert opened.console_errors == []


def sign_in(page, base: str, key: str) -> None:
    page.navigate(f"{base}/ui/")
    page.wait_for("document.activeElement.id === 'api-key'")  # the prompt has the focus
    page.type_text(key)
    page.press("Enter", key_code=13)
    page.wait_for(f"{ROWS}.length > 0")


def fill(page, name: str, text: str) -> None:
    """Focus a filter field as Tab would and type into it."""
    page.evaluate(f"document.querySelector('#filters [name={name}]').focus()")
    page.type_text(text)


def test_key_filter_paging_and_a_contacts_timeline_at_desktop_width(page, server):
    base, key, _ = server
    page.viewport(1280, 900)
    sign_in(page, base, key)
    assert page.evaluate(f"{ROWS}.length") == 50  # 64 contacts: a full first page
    assert page.evaluate("sessionStorage.getItem('contacts.apiKey')") == key
    page.evaluate("document.getElementById('next-page').click()")
    page.wait_for(f"{ROWS}.length === 14")
    assert page.evaluate("document.getElementById('next-page').disabled") is True
    page.evaluate("document.getElementById('prev-page').click()")
    page.wait_for(f"{ROWS}.length === 50")

    fill(page, "source", "newsletter")
    page.press("Enter", key_code=13)
    page.wait_for(f"{ROWS}.length === 1")
    assert page.evaluate(EMAILS) == [ALICE]
    page.evaluate("document.querySelector('#contacts tbody button').focus()")
    page.press("Enter", key_code=13)
    page.wait_for("document.querySelectorAll('#timeline g.session').length === 3")

    markers = page.evaluate("""[...document.querySelectorAll('#timeline g.session')].map(g => ({
        channel: g.dataset.channel, fill: g.querySelector('circle').getAttribute('fill'),
        converted: g.classList.contains('converted'), x: +g.querySelector('circle').getAttribute('cx')}))""")
    assert [(m["channel"], m["fill"], m["converted"]) for m in markers] == [
        ("Paid Search", "#d95f02", False), ("Email", "#1f78b4", True), ("Direct", "#5f6b7a", False),
    ]
    assert markers[0]["x"] < markers[1]["x"] < markers[2]["x"]  # on a time axis
    labels = page.evaluate("[...document.querySelectorAll('#timeline .touch-label')].map(t => t.textContent)")
    assert labels == ["first touch", "converting touch", "recent touch"]

    page.evaluate("document.querySelector('#timeline g.session').focus()")  # keyboard: arrows move between sessions
    page.press("ArrowRight", key_code=39)
    assert page.evaluate("document.activeElement.dataset.index") == "1"
    detail = page.evaluate("document.getElementById('session-detail').innerText")
    for expected in ("newsletter", "email", "july", "https://shop.example.com/pricing", "5 min 0 s", "converting"):
        assert expected in detail
    page.screenshot("ui-1280-journey")


def test_a_bad_filter_names_its_field_and_a_wrong_key_goes_back_to_the_prompt(page, server):
    base, key, _ = server
    page.viewport(1280, 900)
    sign_in(page, base, key)
    page.evaluate("""(() => { const f = document.querySelector('#filters [name=start_date]'); f.value = '2025-07-05';
        document.querySelector('#filters [name=end_date]').value = '2025-07-01'; })()""")
    page.evaluate("document.querySelector('#filters button[type=submit]').click()")
    page.wait_for("document.getElementById('filter-message').textContent")
    assert page.evaluate("document.querySelector('[name=start_date]').getAttribute('aria-invalid')") == "true"
    page.evaluate("sessionStorage.setItem('contacts.apiKey', 'csk_wrong')")
    page.evaluate("document.querySelector('#filters button[type=reset]').click()")
    page.evaluate("document.querySelector('#filters button[type=submit]').click()")
    page.wait_for("!document.getElementById('key-view').hidden")
    assert "refused" in page.evaluate("document.getElementById('key-message').textContent")
    assert page.evaluate("sessionStorage.getItem('contacts.apiKey')") is None


def test_phone_width_shows_the_journey_without_sideways_scrolling(page, server):
    base, key, _ = server
    page.viewport(390, 844, mobile=True)
    sign_in(page, base, key)
    fill(page, "emails", f"{CAROL}, {ALICE}")
    page.evaluate("document.querySelector('#filters button[type=submit]').click()")  # Enter in a textarea is a new line
    listed = json.dumps([CAROL, ALICE], separators=(",", ":"))  # as JSON.stringify writes it
    page.wait_for(f"JSON.stringify({EMAILS}) === {json.dumps(listed)}")
    page.evaluate("document.querySelector('#contacts tbody button').click()")
    page.wait_for("document.querySelectorAll('#timeline g.session').length === 2")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert page.evaluate("document.querySelector('#timeline svg').getBoundingClientRect().right") <= 390
    labels = page.evaluate("[...document.querySelectorAll('#timeline .touch-label')].map(t => t.textContent)")
    assert labels == ["first touch", "converting touch · recent touch"]
    page.screenshot("ui-390-journey")


def open_attribution_view(page, server) -> None:
    base, key, _ = server
    page.viewport(1280, 900)
    sign_in(page, base, key)
    page.evaluate("document.querySelector('#views [data-view=attribution]').click()")
    assert page.evaluate("[document.getElementById('contacts-view').hidden, document.getElementById('attribution-view').hidden]") == [True, False]
    page.evaluate("""(() => { document.querySelector('#attribution-form [name=start_date]').value = '2025-07-01';
        document.querySelector('#attribution-form [name=end_date]').value = '2025-07-04'; })()""")
    page.evaluate("document.querySelector('#attribution-form button[type=submit]').click()")


def test_attribution_view_shows_every_models_credit_as_the_api_answers_it(page, server):
    """Each cell is the model's credit and share for the value, exactly as POST /api/v1/attribution answers."""
    from decimal import ROUND_HALF_UP, Decimal

    base, key, _ = server
    models = ["first_touch", "last_touch", "last_non_direct", "linear", "position_based", "time_decay", "markov"]
    answers = {m: httpx.post(f"{base}/api/v1/attribution", headers={"Authentication": key},
                             json={"model": m, "start_date": "2025-07-01", "end_date": "2025-07-04"}).json() for m in models}

    def fixed(number: float, places: int) -> str:  # as JavaScript's toFixed rounds
        return str(Decimal(number).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP))

    expected = {}
    for model in models:
        for row in answers[model]["rows"]:
            expected.setdefault(row["channel"], {})[model] = f"{fixed(row['conversions'], 2)} ({fixed(row['share_percent'], 1)} %)"
    open_attribution_view(page, server)
    page.wait_for("!document.getElementById('attribution-table').hidden")
    shown = page.evaluate("""[...document.querySelectorAll('#attribution-table tbody tr')].map(tr =>
        [tr.querySelector('th').textContent, ...[...tr.querySelectorAll('td')].map(td => td.textContent)])""")
    assert {row[0]: row[1:] for row in shown} == {
        value: [cells.get(m, "0.00 (0.0 %)") for m in models] for value, cells in expected.items()
    }
    page.screenshot("ui-1280-attribution")


def open_report(page, path) -> list[dict]:
    """Open a report file and wait until every chart is drawn; each chart's id and number of drawn marks."""
    url = path.as_uri()
    page.allowed = [url, "data:"]  # the file itself, nothing else
    page.navigate(url)
    page.wait_for("document.querySelectorAll('.chart').length > 0 && "
                  "[...document.querySelectorAll('.chart')].every(c => c.dataset.rendered === 'true')", 20)
    return page.evaluate("""[...document.querySelectorAll('.chart')].map(c => ({id: c.id,
        marks: c.querySelectorAll('svg .mark-rect path').length}))""")


def test_report_file_draws_its_charts_offline(page, server, tmp_path):
    settings = server[2]
    page.viewport(1280, 900)
    path = write_report(settings, tmp_path / "report.html", date(2025, 7, 1), date(2025, 7, 4)).path
    drawn = open_report(page, path)
    # bars: 7 models x 5 channels credited; 5 day x channel pairs + the crowd's 60 direct sessions on 07-04;
    # 4 + 1 conversions; 3 days of new contacts; 3 load days x 3 outcomes; 3 quarantine reasons
    assert drawn == [
        {"id": "chart-attribution", "marks": 35}, {"id": "chart-sessions", "marks": 6}, {"id": "chart-conversions", "marks": 5}, {"id": "chart-contacts", "marks": 3},
        {"id": "chart-events", "marks": 9}, {"id": "chart-quarantine", "marks": 3},
    ]
    assert "65 conversions in the window" in page.evaluate("document.getElementById('attribution').innerText")
    page.screenshot("report-1280")


def test_report_attribution_section_draws_every_model_side_by_side(page, server, tmp_path):
    """The section as it will look once SPEC section 14's report is wired in (its response shape, hand-made)."""
    settings = server[2]
    found = collect(settings, date(2025, 7, 1), date(2025, 7, 4))
    reports = {model: {"model": model, "by": "channel", "conversions": 65, "rows": [
        {"channel": "Direct", "conversions": 60.0, "share_percent": 92.31, "touches": 60},
        {"channel": "Paid Search", "conversions": 5.0 - n * 0.5, "share_percent": 7.69, "touches": 3},
        {"channel": "Email", "conversions": n * 0.5, "share_percent": 0.0, "touches": 1}]} for n, model in enumerate(data.MODELS)}
    found["attribution"], found["attributed_conversions"] = data.attribution_frame(reports), 65
    path = tmp_path / "attribution.html"
    path.write_text(render(settings, found, chart_specs(found)))
    page.viewport(1280, 900)
    drawn = open_report(page, path)
    assert drawn[0] == {"id": "chart-attribution", "marks": 3 * len(data.MODELS)}
    legend = page.evaluate("[...document.querySelectorAll('#chart-attribution .role-legend-label text')].map(t => t.textContent)")
    assert legend == list(data.MODELS)
    page.screenshot("report-attribution-1280")
