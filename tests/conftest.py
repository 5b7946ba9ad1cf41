"""Shared fixtures: Airflow isolated in a temp home, warehouses on real SQLite files and the real PostgreSQL."""

from __future__ import annotations

import os
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="contacts-airflow-"))
os.environ.update(
    {
        "CONTACTS_REPO": str(REPO),
        "AIRFLOW_HOME": str(_AIRFLOW_HOME),
        "AIRFLOW_CONFIG": str(REPO / "airflow.cfg"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_AIRFLOW_HOME}/airflow.db",
        # runs validate in the test process, where Great Expectations is imported once; tests of the quality
        # worker (and CLI runs in subprocesses that set it) turn it on explicitly
        "CONTACTS_QUALITY_WORKER": "false",
    }
)
PG_URL = os.environ.get("CONTACTS_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
IN_CI = bool(os.environ.get("CI"))


def _example_database():
    """Hypothesis's example database (failing examples, replayed first next time) in .hypothesis/examples, or
    CONTACTS_HYPOTHESIS_DB; in memory only where that folder cannot be written."""
    from hypothesis.database import DirectoryBasedExampleDatabase, InMemoryExampleDatabase

    folder = Path(os.environ.get("CONTACTS_HYPOTHESIS_DB", REPO / ".hypothesis" / "examples"))
    try:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / ".writable").touch()
    except OSError:
        return InMemoryExampleDatabase()
    return DirectoryBasedExampleDatabase(folder)


def examples(local: int, ci: int | None = None) -> int:
    """How many examples a property tries: `local` on a developer's machine, `ci` (twice as many unless said) in CI,
    where the `ci` profile is loaded. Properties whose examples each run the pipeline say their CI count, to keep the
    suite's time in check."""
    return (ci if ci is not None else 2 * local) if IN_CI else local


def _hypothesis_profiles() -> None:
    from hypothesis import settings

    settings.register_profile("dev", database=_example_database(), deadline=None)
    settings.register_profile("ci", database=_example_database(), deadline=None, print_blob=True)
    settings.load_profile("ci" if IN_CI else "dev")


_hypothesis_profiles()


def _postgres_or_skip() -> None:
    """Outside CI a missing PostgreSQL skips with the reason; with CI set it fails."""
    from sqlalchemy import create_engine, text

    try:
        with create_engine(PG_URL).connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001
        message = f"PostgreSQL not reachable at {PG_URL}: {str(exc).splitlines()[0]}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@contextmanager
def fresh_warehouse_url(kind: str, folder: Path):
    """A SQLite file in `folder`, or a fresh PostgreSQL schema on the test database, dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'warehouse.db'}"
        return
    from sqlalchemy import create_engine, text

    from pipeline.warehouse.engines import dispose_engines

    _postgres_or_skip()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = f"{PG_URL}?options=-csearch_path%3D{schema}"
    try:
        yield url
    finally:
        dispose_engines(url)
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def pg_url(tmp_path):
    """A fresh PostgreSQL schema on the test database, dropped afterwards."""
    with fresh_warehouse_url("postgresql", tmp_path) as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path / 'warehouse.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def warehouse_url(request, tmp_path):
    """Each test using it runs on a real SQLite file and on the real PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'warehouse.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def landing(tmp_path) -> Path:
    path = tmp_path / "landing"
    path.mkdir()
    return path


@pytest.fixture
def settings(warehouse_url, landing, tmp_path):
    from pipeline.settings import Settings

    return Settings(warehouse_url=warehouse_url, landing=landing, workspace=tmp_path / "runs", buckets=2)
