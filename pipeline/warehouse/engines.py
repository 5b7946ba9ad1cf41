"""Warehouse connections: one engine per URL (SQLite with WAL, PostgreSQL), read-only engines for readers, transactions."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote
from weakref import WeakSet

from sqlalchemy import (
    URL,
    Connection,
    Engine,
    create_engine,
    event,
    inspect,
    make_url,
    text,
)
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from pipeline.warehouse.tables import metadata


def one_line(exc: BaseException) -> str:
    """An exception's first line, bounded: driver errors carry SQL and parameters on later lines."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:300]


class WarehouseError(RuntimeError):
    """The warehouse cannot be reached or used; the message is one line for the user."""


# indexes older warehouses have and this version drops (`create_tables`): each cost every publish a rewrite of its
# pages, and no query needs them any more
RETIRED_INDEXES = {"sessions": ["ix_sessions_visitor_time"], "conversions": ["ix_conversions_page", "ix_conversions_type", "ix_conversions_point"]}
_CREATED: WeakSet[Engine] = WeakSet()  # every engine this process made, so `dispose_all` can close their connections


@lru_cache(maxsize=16)
def get_engine(url: str) -> Engine:
    """One engine per URL; SQLite gets WAL so readers keep reading while a run publishes."""
    try:
        engine = create_engine(url, future=True)
    except (ArgumentError, NoSuchModuleError, ValueError) as exc:
        raise WarehouseError(f"bad warehouse URL {url!r}: {exc}") from None
    _CREATED.add(engine)
    if engine.dialect.name == "sqlite":
        busy_ms = int(float(engine.url.query.get("timeout", 60)) * 1000)  # `?timeout=SECONDS` in the URL: the wait for a writer
        event.listen(engine, "connect", lambda dbapi_connection, _record: _sqlite_pragmas(dbapi_connection, busy_ms))
    return engine


def _sqlite_pragmas(dbapi_connection, busy_ms: int) -> None:
    """WAL, so readers keep reading while a run publishes; another writer is waited for up to busy_ms."""
    cursor = dbapi_connection.cursor()
    # SQLite's largest page, on a new file only (an older warehouse keeps its own): a day's rows land all over the
    # sessions' random-key indexes, so a commit rewrites most of their pages whatever their size; fewer, larger pages
    # cost less to write and check (30 × 100k backfill: commits 10.7-11.6 → 7.9-8.9 s; the reader the same)
    cursor.execute("PRAGMA page_size=65536")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA wal_autocheckpoint=256")  # 16 MB, as with the former 16 KB pages: readers read a short WAL
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
    cursor.execute("PRAGMA cache_size=-262144")  # 256 MB: bulk index maintenance stays in memory
    cursor.close()


@lru_cache(maxsize=16)
def read_only_engine(url: str) -> Engine:
    """An engine that cannot write, for readers (CLI and API): SQLite opened with mode=ro (a missing file
    stays missing), PostgreSQL sessions with default_transaction_read_only=on."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise WarehouseError(f"bad warehouse URL: {exc}") from None
    if parsed.get_backend_name() == "sqlite":
        path = parsed.database or ""
        if path in ("", ":memory:") or path.startswith("file:"):
            raise WarehouseError(f"the reader needs a SQLite file path (sqlite:///path.db), not {url!r}")
        location = f"file:{quote(str(Path(path).resolve()))}"
        engine = create_engine(URL.create(parsed.drivername, database=location, query={"mode": "ro", "uri": "true"}))
        event.listen(engine, "connect", _sqlite_query_only)
    else:
        engine = create_engine(parsed, pool_pre_ping=True, connect_args={"connect_timeout": 5})
        event.listen(engine, "connect", _postgres_read_only)
    _CREATED.add(engine)
    return engine


def dispose_engines(url: str) -> None:
    """Close the pooled connections of both engines of a URL (tests that drop their schema call this)."""
    get_engine(url).dispose()
    read_only_engine(url).dispose()


def dispose_all() -> None:
    """Close the pooled connections of every engine this process made (a SQLite file's last connection folds the
    write-ahead log back into the database file as it closes)."""
    for engine in list(_CREATED):
        engine.dispose()


def _sqlite_query_only(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA query_only = ON")
    cursor.execute("PRAGMA busy_timeout = 5000")
    # pages are read through a memory map (SQLite's largest by default), shared by every reader connection
    # through the OS page cache instead of copied into each one's own cache: ~12% less CPU per page answered
    cursor.execute("PRAGMA mmap_size = 2147418112")
    cursor.close()


def _postgres_read_only(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("SET SESSION default_transaction_read_only = on")
    cursor.close()
    dbapi_connection.commit()


def create_tables(engine: Engine) -> None:
    """Create every table and index that does not exist yet (idempotent: an older warehouse gains new indexes and
    loses the retired ones)."""
    if engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
        Path(engine.url.database).parent.mkdir(parents=True, exist_ok=True)
    try:
        metadata.create_all(engine)
        for table in metadata.sorted_tables:
            for index in table.indexes:
                index.create(engine, checkfirst=True)
        _drop_retired_indexes(engine)
    except Exception as exc:  # noqa: BLE001 - any driver error becomes one clear line
        raise WarehouseError(f"cannot open warehouse {engine.url.render_as_string(hide_password=True)}: {exc}") from None


def _drop_retired_indexes(engine: Engine) -> None:
    """Drop the indexes this version retired where they still exist (one catalog look per table; nothing written on a
    current warehouse)."""
    catalog = inspect(engine)
    retired = [index["name"] for table, names in RETIRED_INDEXES.items() for index in catalog.get_indexes(table) if index["name"] in names]
    if retired:
        with engine.begin() as conn:
            for name in retired:
                conn.exec_driver_sql(f"DROP INDEX {name}")


@contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    """One write transaction; on SQLite it takes the write lock up front so two writers never interleave."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.begin()
        try:
            yield conn
        except BaseException:
            conn.rollback()
            _detach_scratch(conn)
            raise
        conn.commit()
        _detach_scratch(conn)


def _detach_scratch(conn: Connection) -> None:
    """Detach the scratch databases BulkRows attached (SQLite refuses DETACH inside a transaction)."""
    for alias in conn.connection.info.pop("scratch_aliases", []):
        conn.exec_driver_sql(f"DETACH DATABASE {alias}")


def ping(engine: Engine) -> None:
    """Raise WarehouseError unless the warehouse answers a trivial query."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001
        raise WarehouseError(f"warehouse unreachable: {str(exc).splitlines()[0]}") from None
