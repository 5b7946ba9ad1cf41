"""The API's side of the warehouse: a read-only engine of its own, and the values a query can safely carry."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from sqlalchemy import URL, Engine, create_engine, event, make_url
from sqlalchemy.exc import ArgumentError

from pipeline.query import CONVERSION_FILTERS, SESSION_FILTERS
from pipeline.warehouse import WarehouseError


def read_only_engine(url: str) -> Engine:
    """An engine that cannot write: SQLite opened with mode=ro (a missing file stays missing), PostgreSQL
    sessions with default_transaction_read_only=on. Separate from the pipeline's writer engine."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise WarehouseError(f"bad warehouse URL: {exc}") from None
    if parsed.get_backend_name() == "sqlite":
        path = parsed.database or ""
        if path in ("", ":memory:") or path.startswith("file:"):
            raise WarehouseError(f"the API needs a SQLite file path (sqlite:///path.db), not {url!r}")
        location = f"file:{quote(str(Path(path).resolve()))}"
        engine = create_engine(URL.create(parsed.drivername, database=location, query={"mode": "ro", "uri": "true"}))
        event.listen(engine, "connect", _sqlite_query_only)
        return engine
    engine = create_engine(parsed, pool_pre_ping=True, connect_args={"connect_timeout": 5})
    event.listen(engine, "connect", _postgres_read_only)
    return engine


def _sqlite_query_only(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA query_only = ON")
    cursor.execute("PRAGMA busy_timeout = 5000")
    cursor.close()


def _postgres_read_only(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("SET SESSION default_transaction_read_only = on")
    cursor.close()
    dbapi_connection.commit()


def _bad_text(value: object) -> bool:
    """A string PostgreSQL cannot compare (NUL) or no driver can encode (lone surrogates)."""
    if not isinstance(value, str):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return "\x00" in value


def first_unstorable_text(request: object) -> str | None:
    """The first field the query will use whose text can never match a stored value (and would break the driver)."""
    if not isinstance(request, dict):
        return None
    emails = request.get("emails")
    if emails is not None:
        items = emails if isinstance(emails, list) else [emails]
        return "emails" if any(_bad_text(e) for e in items) else None
    for name in (*SESSION_FILTERS, *CONVERSION_FILTERS):
        if _bad_text(request.get(name)):
            return name
    return None
