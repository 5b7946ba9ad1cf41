"""The command line: help, errors as one line with a non-zero exit, and a run over generated data."""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest

from pipeline.sample.generate import generate_landing
from tests.helpers import REPO_DAGS, table

REPO = REPO_DAGS.parent


def cli(*args: str, env: dict | None = None, stdin: str | None = None, cwd=None) -> subprocess.CompletedProcess:
    environment = dict(os.environ, PYTHONPATH=str(REPO), **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args], capture_output=True, text=True, env=environment, input=stdin, timeout=600, cwd=cwd
    )  # fmt: skip


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
        (["serve", "--port", "70000"], "not a TCP port (1-65535)"),
        (["serve", "--port", "{busy}"], "cannot listen on 127.0.0.1:"),
    ],
)
def test_errors_are_one_clear_line_and_a_non_zero_exit(args, message, tmp_path):
    (tmp_path / "landing").mkdir()
    with socket.create_server(("127.0.0.1", 0)) as busy:
        values = {"{landing}": str(tmp_path / "landing"), "{busy}": str(busy.getsockname()[1])}
        result = cli(*[values.get(a, a) for a in args], env={"CONTACTS_WORKSPACE": str(tmp_path / "runs")})
    assert result.returncode != 0
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_generate_events_writes_exactly_that_many_lines_on_one_day(tmp_path):
    """`generate --events N`: the benchmark's N-event load day (N lines, all in the --start partition)."""
    result = cli("generate", "--out", str(tmp_path / "day"), "--events", "2500", "--start", "2025-04-02", "--seed", "9")
    assert result.returncode == 0, result.stderr
    assert [p.name for p in (tmp_path / "day").iterdir()] == ["dt=2025-04-02"]
    lines = sum(len(path.read_bytes().splitlines()) for path in (tmp_path / "day").rglob("*.jsonl"))
    assert lines == 2500 and result.stdout.startswith("wrote 2,500 lines")


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


def test_relative_paths_name_the_same_files_in_every_process(tmp_path):
    """A relative warehouse URL and landing folder are the caller's: the quality-gate worker reads the same event
    store (it once ran in the repository's folder and could not find the run's files)."""
    generate_landing(tmp_path / "landing", visitors=40, days=1, start=date(2025, 3, 1), seed=3)
    env = {"CONTACTS_WORKSPACE": "runs", "CONTACTS_QUALITY_WORKER": "true"}
    result = cli("run", "--landing", "landing", "--warehouse", "sqlite:///wh.db", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "wh.db").exists() and any((tmp_path / "wh_events").rglob("*.parquet"))


def test_a_finished_command_leaves_its_sqlite_file_whole(tmp_path):
    """The CLI leaves without the interpreter's shutdown (`cli.leave`) but closes its warehouse connections
    first: SQLite folds the write-ahead log back into the file, so the file alone, copied, holds every published row;
    and what the command printed reached the pipe."""
    generate_landing(tmp_path / "landing", visitors=40, days=1, start=date(2025, 3, 1), seed=3)
    result = cli("run", "--landing", "landing", "--warehouse", "sqlite:///wh.db", env={"CONTACTS_WORKSPACE": "runs"}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("2025-03-01  read") and result.stdout.endswith("\n")
    assert not (tmp_path / "wh.db-wal").exists()
    shutil.copy(tmp_path / "wh.db", tmp_path / "copy.db")
    with sqlite3.connect(tmp_path / "copy.db") as conn:
        assert conn.execute("SELECT count(*) FROM pipeline_runs WHERE status = 'success'").fetchone() == (1,)
        assert conn.execute("SELECT count(*) FROM contacts").fetchone()[0] > 0


def _thp_malloc_available() -> bool:
    """glibc ≥ 2.35 (the hugetlb tunable) on a kernel that gives transparent huge pages on request."""
    try:
        name, version = os.confstr("CS_GNU_LIBC_VERSION").split()
    except (ValueError, OSError, AttributeError):
        return False
    modes = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    recent = name == "glibc" and tuple(map(int, version.split(".")[:2])) >= (2, 35)
    return recent and modes.exists() and "[never]" not in modes.read_text()


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _running_command(tmp_path, env: dict) -> tuple[dict[str, str], int]:
    """The environment a `python -m pipeline serve` process ends up with and its anonymous memory in transparent huge
    pages (kB), both read from /proc once it listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    environment = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"} | {"PYTHONPATH": str(REPO), **env}
    command = [sys.executable, "-m", "pipeline", "serve", "--warehouse", f"sqlite:///{tmp_path / 'wh.db'}", "--port", str(port)]
    process = subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not _listening(port):
            assert process.poll() is None and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)
        entries = Path(f"/proc/{process.pid}/environ").read_bytes().split(b"\0")
        rollup = Path(f"/proc/{process.pid}/smaps_rollup").read_text().splitlines()
        huge = next(int(line.split()[1]) for line in rollup if line.startswith("AnonHugePages:"))
        return dict(entry.decode().split("=", 1) for entry in entries if b"=" in entry), huge
    finally:
        process.kill()
        process.wait()


@pytest.mark.skipif(not Path("/proc/self/smaps_rollup").exists() or not _thp_malloc_available(), reason="no glibc ≥ 2.35 with transparent huge pages here")
def test_the_command_line_asks_malloc_for_huge_pages_unless_told_otherwise(tmp_path):
    """`python -m pipeline` starts itself again (same process, same command) with glibc's malloc asking for
    transparent huge pages, and its heap then holds some; what GLIBC_TUNABLES already says about it is obeyed."""
    environment, huge_kb = _running_command(tmp_path, {})
    assert environment["GLIBC_TUNABLES"] == "glibc.malloc.hugetlb=1" and huge_kb > 0
    environment, huge_kb = _running_command(tmp_path, {"GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"})
    assert environment["GLIBC_TUNABLES"] == "glibc.malloc.hugetlb=0" and huge_kb == 0


def test_full_refresh_rebuilds_from_every_landing_day(settings):
    """SPEC §9: a full refresh rebuilds everything; a range starting after the first day would drop data."""
    generate_landing(settings.landing, visitors=150, days=3, start=date(2025, 3, 1), seed=5)
    env = {"CONTACTS_WORKSPACE": str(settings.workspace)}
    base = ("run", "--landing", str(settings.landing), "--warehouse", settings.warehouse_url)
    assert cli(*base, env=env).returncode == 0
    events = len(table(settings, "events"))

    refused = cli(*base, "--full-refresh", "--start", "2025-03-02", "--end", "2025-03-03", env=env)
    assert refused.returncode == 1 and "rebuilds from the first landing day (2025-03-01)" in refused.stderr
    assert len(table(settings, "events")) == events

    rebuilt = cli(*base, "--full-refresh", "--end", "2025-03-03", env=env)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert rebuilt.stdout.startswith("2025-03-01..2025-03-03  read") and len(rebuilt.stdout.strip().splitlines()) == 1
    assert len(table(settings, "events")) == events
