"""The command line: help, errors as one line with a non-zero exit, and a run over generated data."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date

import pytest

from pipeline.generate import generate_landing
from tests.helpers import REPO_DAGS, table

REPO = REPO_DAGS.parent


def cli(*args: str, env: dict | None = None, stdin: str | None = None) -> subprocess.CompletedProcess:
    environment = dict(os.environ, PYTHONPATH=str(REPO), **(env or {}))
    return subprocess.run([sys.executable, "-m", "pipeline", *args], capture_output=True, text=True, env=environment, input=stdin, timeout=600)


def test_help_lists_the_commands():
    out = cli("--help").stdout
    for command in ("generate", "run", "contacts"):
        assert command in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--landing", "/nonexistent/landing", "--start", "2025-03-01", "--end", "2025-03-01"], "landing folder not found"),
        (["run", "--start", "2025-02-30"], "not a date"),
        (["run", "--warehouse", "mysql://x/y", "--start", "2025-03-01", "--end", "2025-03-01"], "unsupported warehouse URL"),
        (["run", "--warehouse", "postgresql+psycopg://nobody@127.0.0.1:1/none", "--landing", "{landing}", "--start", "2025-03-01", "--end", "2025-03-01"], "cannot open warehouse"),
        (["run", "--landing", "{landing}", "--start", "2025-03-02", "--end", "2025-03-01"], "before --start"),
    ],
)
def test_errors_are_one_clear_line_and_a_non_zero_exit(args, message, tmp_path):
    (tmp_path / "landing").mkdir()
    result = cli(*[a.replace("{landing}", str(tmp_path / "landing")) for a in args], env={"CONTACTS_WORKSPACE": str(tmp_path / "runs")})
    assert result.returncode != 0
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_run_over_generated_data_adds_up(settings, tmp_path):
    """events_read = loaded + duplicates + quarantined for every run, and the totals match what was generated."""
    summary = generate_landing(settings.landing, visitors=300, days=3, start=date(2025, 3, 1), seed=3)
    env = {"CONTACTS_WORKSPACE": str(settings.workspace), "CONTACTS_BUCKETS": "3"}
    result = cli("run", "--landing", str(settings.landing), "--warehouse", settings.warehouse_url, env=env)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.strip().splitlines()) == 3
    runs = table(settings, "pipeline_runs")
    assert (runs["events_read"] == runs["events_loaded"] + runs["events_duplicate"] + runs["events_quarantined"]).all()
    assert runs["events_read"].sum() == summary.lines
    assert runs["events_quarantined"].sum() == summary.broken_lines
    assert runs["events_duplicate"].sum() == summary.duplicates
    assert len(table(settings, "events")) == summary.events
    assert runs["events_bot"].sum() == summary.bot_events
    assert len(table(settings, "contacts")) > 0 and (runs["status"] == "success").all()
