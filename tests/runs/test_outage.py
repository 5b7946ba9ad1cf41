"""The warehouse going away under a run (README, reliability): the PostgreSQL server unreachable at start, the run's
connection terminated by the server mid-publish, a SQLite file another writer holds locked. Each time the command
says so in one line and exits 1, nothing is half published, and the next run converges to a clean run's tables."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text

from pipeline.settings import Settings
from tests.conftest import PG_URL, fresh_warehouse_url
from tests.helpers import REPO_DAGS, run, table
from tests.runs.test_incremental import assert_same_tables, published
from tests.runs.test_store_runs import DAY1, DAY2, live, store_of, two_days

pytestmark = pytest.mark.postgres


def start_cli(settings: Settings, day: str, **env: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "pipeline", "run", "--landing", str(settings.landing), "--warehouse", settings.warehouse_url,
               "--start", day, "--end", day]  # fmt: skip
    environment = dict(os.environ, PYTHONPATH=str(REPO_DAGS.parent), CONTACTS_WORKSPACE=str(settings.workspace), CONTACTS_BUCKETS="2",
                       CONTACTS_QUALITY_WORKER="false", **env)  # fmt: skip
    return subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finished(process: subprocess.Popen) -> tuple[int, str]:
    _, err = process.communicate(timeout=300)
    return process.returncode, err


def one_error_line(err: str, *words: str) -> str:
    """The command's whole stderr: a single `error: …` line (no traceback) that names the trouble."""
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err, err
    assert any(word in err for word in words), err
    print(err, end="")
    return err


def wait_for(marker: Path, point: str) -> None:
    deadline = time.monotonic() + 120
    while not (marker.exists() and point in marker.read_text().split()):
        assert time.monotonic() < deadline, f"the run never reached {point}"
        time.sleep(0.05)


def clean_tables(kind: str, folder: Path, landing: Path) -> tuple[dict, dict]:
    """The tables after day 1, and after days 1 and 2, from clean runs on a fresh warehouse of the same kind."""
    with fresh_warehouse_url(kind, folder) as url:
        settings = Settings(warehouse_url=url, landing=landing, workspace=folder / "clean-runs", buckets=2)
        run(settings, DAY1)
        old = published(settings)
        run(settings, DAY2)
        return old, published(settings)


def assert_converges(settings: Settings, new: dict) -> None:
    """The next run, without trouble, publishes what clean runs publish; no run is left `running`."""
    code, err = finished(start_cli(settings, DAY2))
    assert code == 0, err
    assert_same_tables(published(settings), new)
    assert store_of(settings).files_on_disk() == live(settings)  # what the failed runs wrote is gone
    statuses = table(settings, "pipeline_runs", order_by=["started_at"])["status"].tolist()
    assert statuses[0] == statuses[-1] == "success" and "running" not in statuses


def test_postgres_unreachable_at_start_or_gone_mid_publish(pg_url, tmp_path, landing):
    two_days(landing)
    old, new = clean_tables("postgresql", tmp_path / "clean", landing)
    settings = Settings(warehouse_url=pg_url, landing=landing, workspace=tmp_path / "runs", buckets=2)
    run(settings, DAY1)
    unreachable = settings.model_copy(update={"warehouse_url": make_url(pg_url).set(port=1).render_as_string(hide_password=False)})
    code, err = finished(start_cli(unreachable, DAY2))
    assert code == 1 and one_error_line(err, "cannot open warehouse", "Connection refused", "connection failed")
    assert_same_tables(published(settings), old)

    marker, app = tmp_path / "marker", f"contacts-outage-{uuid.uuid4().hex[:8]}"
    process = start_cli(settings, DAY2, CONTACTS_FAULT_POINT="publish.after_first_copy", CONTACTS_FAULT_ACTION="pause",
                        CONTACTS_FAULT_MARKER=str(marker), PGAPPNAME=app)  # fmt: skip
    wait_for(marker, "publish.after_first_copy")
    assert terminate_backends(app) >= 1  # the server ends the run's sessions, its open publish transaction among them
    marker.write_text(marker.read_text() + "continue\n")
    code, err = finished(process)
    assert code == 1 and one_error_line(err, "terminat", "connection", "closed")
    assert_same_tables(published(settings), old)
    last = table(settings, "pipeline_runs", order_by=["started_at"]).iloc[-1]  # recorded on a new connection
    assert (last["status"], last["error"]) == ("failed", err.removeprefix("error: ").strip())
    assert_converges(settings, new)


def terminate_backends(application_name: str) -> int:
    """pg_terminate_backend, from a second connection, for every session of one process (found by its application name)."""
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            return len(conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = :app"),
                                    {"app": application_name}).all())  # fmt: skip
    finally:
        admin.dispose()


@contextmanager
def another_writer(database: Path):
    """Another process's write transaction on the SQLite file (BEGIN IMMEDIATE: the write lock, held until the end)."""
    holder = sqlite3.connect(database, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        holder.rollback()
        holder.close()


def test_sqlite_locked_by_another_writer_at_start_or_mid_run(tmp_path, landing):
    two_days(landing)
    old, new = clean_tables("sqlite", tmp_path / "clean", landing)
    database = tmp_path / "warehouse.db"
    settings = Settings(warehouse_url=f"sqlite:///{database}?timeout=1", landing=landing, workspace=tmp_path / "runs", buckets=2)
    run(settings, DAY1)
    with another_writer(database):
        code, err = finished(start_cli(settings, DAY2))
    assert code == 1 and one_error_line(err, "database is locked")
    assert_same_tables(published(settings), old)

    marker = tmp_path / "marker"
    process = start_cli(settings, DAY2, CONTACTS_FAULT_POINT="check.during", CONTACTS_FAULT_ACTION="pause", CONTACTS_FAULT_MARKER=str(marker))
    wait_for(marker, "check.during")
    with another_writer(database):
        marker.write_text(marker.read_text() + "continue\n")
        code, err = finished(process)
    assert code == 1 and one_error_line(err, "database is locked")
    assert_same_tables(published(settings), old)
    assert_converges(settings, new)
