"""`python -m pipeline report`: one self-contained HTML file, its errors, and what it escapes."""

from __future__ import annotations

import re
from datetime import date

import pytest

from pipeline.cli import main
from pipeline.serve import report_data as data
from pipeline.serve.report import chart_specs, collect, inline_json, render, write_report
from pipeline.settings import Settings
from tests.serve.story import story_warehouse

HOSTILE = "</script><img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def story(tmp_path_factory):
    with story_warehouse("sqlite", tmp_path_factory.mktemp("report-file")) as (settings, _):
        yield settings


def test_cli_writes_one_file_that_needs_nothing_else(story, tmp_path, capsys):
    out = tmp_path / "reports" / "july.html"
    assert main(["report", "--out", str(out), "--warehouse", story.warehouse_url, "--start-date", "2025-07-01", "--end-date", "2025-07-03"]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {out} (6 charts, days 2025-07-01 to 2025-07-03)"
    html = out.read_text()
    assert re.findall(r"<script[^>]*\ssrc=", html) == [] and re.findall(r"<link[^>]*>", html) == ['<link rel="icon" href="data:,">']
    assert re.findall(r"""(?:src|href)=["']?(?:https?:)?//""", html) == []  # no attribute points off the file
    assert "sourceMappingURL" not in html
    assert sorted(re.findall(r'data-chart="([^"]+)"', html)) == ["chart-attribution", "chart-contacts", "chart-conversions", "chart-events", "chart-quarantine", "chart-sessions"]
    assert "Days 2025-07-01 to 2025-07-03" in html and "5 conversions in the window" in html
    assert not list(out.parent.glob("*.partial"))


def test_totals_and_tables_show_the_windows_numbers(story, tmp_path):
    html = write_report(story, tmp_path / "r.html", date(2025, 7, 1), date(2025, 7, 3)).path.read_text()
    totals = dict(re.findall(r"<dt>([^<]+)</dt><dd>([^<]+)</dd>", html))
    assert totals == {"Sessions": "7", "Conversions": "5", "New contacts": "4", "Runs": "2 (0 failed)", "Quarantined lines": "3"}
    runs = html[html.index('id="runs-table"'):]
    assert re.findall(r"<td>(2025-07-0\d)</td>", runs) == ["2025-07-03", "2025-07-02"]


def test_an_end_before_the_start_is_one_line_and_exit_1(story, tmp_path, capsys):
    args = ["report", "--out", str(tmp_path / "r.html"), "--warehouse", story.warehouse_url, "--start-date", "2025-07-05", "--end-date", "2025-07-01"]
    assert main(args) == 1
    assert capsys.readouterr().err == "error: --end-date 2025-07-01 is before --start-date 2025-07-05\n"
    assert not (tmp_path / "r.html").exists()


def test_a_bad_date_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["report", "--out", str(tmp_path / "r.html"), "--start-date", "2025-02-30"])
    assert exited.value.code == 2 and "not a date (YYYY-MM-DD): '2025-02-30'" in capsys.readouterr().err


def test_a_warehouse_that_is_not_there_is_one_line(tmp_path, capsys):
    assert main(["report", "--out", str(tmp_path / "r.html"), "--warehouse", f"sqlite:///{tmp_path / 'none.db'}"]) == 1
    assert capsys.readouterr().err.startswith(f"error: cannot read the warehouse sqlite:///{tmp_path / 'none.db'}")


def test_inlined_json_cannot_close_its_script_element():
    text = inline_json({"value": HOSTILE, "and": "<!-- & \u2028"})
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text
    import json

    assert json.loads(text) == {"value": HOSTILE, "and": "<!-- & \u2028"}


def test_values_from_the_data_are_escaped_in_charts_and_tables(story):
    found = collect(story, date(2025, 7, 1), date(2025, 7, 3))
    found["attribution"] = data.attribution_frame({"linear": {"model": "linear", "by": "channel", "conversions": 1, "rows": [
        {"channel": HOSTILE, "conversions": 1.0, "share_percent": 100.0, "touches": 1}]}})
    found["attributed_conversions"] = 1
    html = render(Settings(warehouse_url=story.warehouse_url), found, chart_specs(found))
    assert HOSTILE not in html and "&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in html


def test_the_dags_report_step_writes_nothing_without_a_folder_and_the_default_window_up_to_the_day_with_one(story, tmp_path):
    from pipeline.serve.report import write_folder_report

    assert write_folder_report(story, "2025-07-03") is None
    folder = Settings(warehouse_url=story.warehouse_url, report_dir=tmp_path / "reports")
    written = write_folder_report(folder, "2025-07-03")
    assert written == str(tmp_path / "reports" / "contacts-report-2025-07-03.html")
    assert "Days 2025-07-01 to 2025-07-03" in (tmp_path / "reports" / "contacts-report-2025-07-03.html").read_text()
