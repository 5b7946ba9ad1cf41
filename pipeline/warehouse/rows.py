"""Bulk writes and typed reads of DataFrames, for SQLite and PostgreSQL alike."""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import adbc_driver_sqlite.dbapi as adbc_sqlite
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as csv
from sqlalchemy import (
    Boolean,
    Connection,
    Date,
    DateTime,
    Engine,
    Float,
    Integer,
    String,
    Table,
    bindparam,
    select,
)

IN_CHUNK = 5000  # values per IN (...) list: well under SQLite's and PostgreSQL's parameter limits
# BulkRows' scratch file is rewritten by a retried publish: no rollback journal, no fsync (a 1M-event day: 97 fsyncs,
# 0.25 s on a busy disk)
SCRATCH_PRAGMAS = ("PRAGMA journal_mode=OFF", "PRAGMA synchronous=OFF")


def _column_array(series: pd.Series, column) -> pa.Array:
    """A column as an Arrow array of what the drivers take: timestamps and dates as ISO text, NA as null."""
    kind = column.type
    if isinstance(kind, DateTime):
        stamps = pa.array(pd.to_datetime(series, utc=True).astype("datetime64[us, UTC]")).cast(pa.timestamp("us"))
        return stamps.cast(pa.string())  # "YYYY-MM-DD HH:MM:SS.ffffff": SQLAlchemy's SQLite text, ~20× faster than strftime
    if isinstance(kind, Date):
        days = series.map({d: str(d)[:10] for d in series.dropna().unique()})
        return pa.array(days, type=pa.string(), from_pandas=True)
    if isinstance(kind, Boolean):
        return pa.array(series.astype("boolean"), type=pa.bool_(), from_pandas=True)
    if isinstance(kind, (Integer, Float)):
        return pa.array(series, from_pandas=True)
    return pa.array(series.astype("str"), type=pa.large_string(), from_pandas=True)


def _arrow_rows(table: Table, frame: pd.DataFrame) -> pa.Table:
    """The frame's columns that the table has, in the table's order, as driver-ready Arrow arrays."""
    return pa.table({c.name: _column_array(frame[c.name], c) for c in table.columns if c.name in frame.columns})


def insert_frame(conn: Connection, table: Table, frame: pd.DataFrame) -> int:
    """Bulk insert: COPY of Arrow-written CSV on PostgreSQL, one executemany on SQLite; returns the rows written."""
    if frame.empty:
        return 0
    arrays = _arrow_rows(table, frame)
    names = ", ".join(f'"{name}"' for name in arrays.column_names)
    if conn.dialect.name == "postgresql":
        raw = conn.connection.driver_connection
        with raw.cursor() as cursor, cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN WITH (FORMAT csv)') as copy:
            for batch in arrays.to_batches(max_chunksize=100_000):
                buffer = io.BytesIO()
                csv.write_csv(batch, buffer, csv.WriteOptions(include_header=False))
                copy.write(buffer.getvalue())
    else:
        marks = ", ".join("?" for _ in arrays.column_names)
        rows = list(zip(*(column.to_pylist() for column in arrays.columns)))
        conn.exec_driver_sql(f'INSERT INTO "{table.name}" ({names}) VALUES ({marks})', rows)
    return len(frame)


class BulkRows:
    """Big frames to insert in one coming transaction, prepared before it starts.

    On SQLite, binding rows through the Python driver costs an object per value (1M events: 14.5 s), so
    each frame is written ahead, with ADBC (Arrow straight into SQLite, in C), into a scratch database
    file, and inside the transaction one INSERT … SELECT copies it in (1M events: 8 s). On
    PostgreSQL the frames are read and COPYed inside the transaction. Either way `add` holds one frame in
    memory at a time, and nothing reaches the warehouse before `insert` runs in the transaction.
    """

    def __init__(self, engine: Engine, scratch: Path, orders: dict[str, list[str]] | None = None, emptied: bool = False):
        self.engine, self.sqlite = engine, engine.dialect.name == "sqlite"
        self.orders = orders or {}  # table name → the column order its rows go in (SQLite: see `add`)
        self.emptied = emptied  # the transaction empties every table before the insert (a full refresh)
        self.empty: dict[str, bool] = {}
        self.scratch = Path(scratch)
        self.scratch.unlink(missing_ok=True)  # a retried publish starts clean
        self.alias = f"scratch_{uuid.uuid4().hex[:12]}"
        self.pending: list[tuple[Table, Callable[[Connection], int]]] = []

    def add(self, table: Table, load: Callable[[], pd.DataFrame]) -> None:
        """Queue the rows `load()` returns for `table` (on SQLite they are read and written out now).

        On SQLite the rows go in sorted by the table's entry in `orders`: the leading columns of its busiest indexes, so
        each index grows at a few places instead of at random ones (contact_sessions of a 5M-event day: 6.6 → 3.4 s).
        Into an empty table they go in primary-key order instead, and its other indexes are built after (`insert`)."""
        if not self.sqlite:
            self.pending.append((table, lambda conn: insert_frame(conn, table, load())))
            return
        frame = load()
        if frame.empty:
            return
        arrays, name = _arrow_rows(table, frame), f"rows_{len(self.pending)}"
        order = [c.name for c in table.primary_key.columns] if self._into_empty(table) else self.orders.get(table.name)
        if order:
            arrays = arrays.take(pc.sort_indices(arrays, [(column, "ascending") for column in order]))
        self.scratch.parent.mkdir(parents=True, exist_ok=True)
        with adbc_sqlite.connect(str(self.scratch), autocommit=True) as scratch, scratch.cursor() as cursor:
            for statement in (*SCRATCH_PRAGMAS, "BEGIN"):  # pragmas outside a transaction, the rows in one
                cursor.execute(statement)
            cursor.adbc_ingest(name, arrays, mode="replace")
            cursor.execute("COMMIT")
        columns, count = arrays.column_names, len(frame)  # the lambda keeps names, not the rows
        self.pending.append((table, lambda conn: self._copy_in(conn, table, name, columns, count)))

    def _copy_in(self, conn: Connection, table: Table, name: str, columns: list[str], count: int) -> int:
        names = ", ".join(f'"{c}"' for c in columns)
        conn.exec_driver_sql(f'INSERT INTO main."{table.name}" ({names}) SELECT {names} FROM {self.alias}."{name}"')
        return count

    def insert(self, conn: Connection, after_each: Callable[[str], None] | None = None) -> dict[str, int]:
        """Insert every queued frame in this transaction (calling `after_each(table name)` after each); returns the
        rows written per table name."""
        if self.sqlite and self.pending:
            conn.exec_driver_sql(f"ATTACH DATABASE ? AS {self.alias}", (str(self.scratch),))
            conn.connection.info.setdefault("scratch_aliases", []).append(self.alias)
        written: dict[str, int] = {}
        by_table: dict[str, tuple[Table, list]] = {}
        for table, insert in self.pending:
            by_table.setdefault(table.name, (table, []))[1].append(insert)
        for table, inserts in by_table.values():
            rebuilt = list(table.indexes) if self.sqlite and is_empty(conn, table) else []
            for index in rebuilt:
                conn.exec_driver_sql(f'DROP INDEX "{index.name}"')
            for insert in inserts:
                written[table.name] = written.get(table.name, 0) + insert(conn)
                if after_each:
                    after_each(table.name)
            for index in rebuilt:
                index.create(conn)
        return written

    def _into_empty(self, table: Table) -> bool:
        """Whether the table holds no rows when the insert starts: SQLite then builds its secondary indexes after the
        rows are in (one sort each) instead of growing them row by row at random places, which beyond the page cache
        made a 5M-event day's copy superlinear."""
        if table.name not in self.empty:
            self.empty[table.name] = self.emptied or self._holds_no_rows(table)
        return self.empty[table.name]

    def _holds_no_rows(self, table: Table) -> bool:
        with self.engine.connect() as conn:
            return is_empty(conn, table)


def delete_where_in(conn: Connection, table: Table, column: str, values: Iterable) -> int:
    """Delete rows whose column is in values, in chunks; returns the rows deleted."""
    if is_empty(conn, table):  # a first run deletes nothing: spare it the lookups (and the values' dedupe)
        return 0
    values = list(dict.fromkeys(v for v in values if v is not None))
    if not values:
        return 0
    if conn.dialect.name == "sqlite":
        return _sqlite_delete_where_in(conn, table, column, values)
    deleted = 0
    for start in range(0, len(values), IN_CHUNK):
        chunk = values[start : start + IN_CHUNK]
        deleted += conn.execute(table.delete().where(table.c[column].in_(chunk))).rowcount
    return deleted


def _sqlite_delete_where_in(conn: Connection, table: Table, column: str, values: list) -> int:
    """delete_where_in on SQLite through the driver's own cursor, as `_sqlite_where_in` reads: SQLAlchemy compiling a
    5,000-value IN list costs more than SQLite's lookups (a backfill day's 30k visitors' identities: 0.15 → 0.07 s)."""
    return sum(done.rowcount for done in _sqlite_in_chunks(conn, f'DELETE FROM "{table.name}" WHERE "{column}" IN', values))


def _sqlite_in_chunks(conn: Connection, head: str, values: list, tail: str = "") -> Iterator:
    """`head (?, …)tail` run on the driver's own cursor of the connection once per IN_CHUNK values; yields each
    executed cursor (read it before asking for the next)."""
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        for start in range(0, len(values), IN_CHUNK):
            chunk = values[start : start + IN_CHUNK]
            yield cursor.execute(f"{head} ({', '.join('?' * len(chunk))}){tail}", chunk)
    finally:
        cursor.close()


def typed_frame(rows: list, table: Table, columns: list[str]) -> pd.DataFrame:
    """Rows read back from either backend → a frame with UTC timestamps, dates and booleans."""
    return _typed(pd.DataFrame.from_records(rows, columns=columns), table)


def _typed(frame: pd.DataFrame, table: Table) -> pd.DataFrame:
    for name in frame.columns:
        kind = table.c[name].type if name in table.c else None
        if isinstance(kind, DateTime):
            frame[name] = pd.to_datetime(frame[name], utc=True, format="ISO8601").astype("datetime64[us, UTC]")
        elif isinstance(kind, Date):
            frame[name] = pd.to_datetime(frame[name]).dt.date
        elif isinstance(kind, Boolean):
            frame[name] = frame[name].astype("boolean")
        elif isinstance(kind, Integer):
            frame[name] = frame[name].astype("Int64")
        elif isinstance(kind, Float):
            frame[name] = frame[name].astype("float64")
        elif isinstance(kind, String):
            frame[name] = frame[name].astype("str")
    return frame


def _sqlite_where_in(conn: Connection, table: Table, column: str, values: list, columns: list[str], where) -> pd.DataFrame:
    """read_where_in on SQLite through the driver's own cursor: plain values, no SQLAlchemy row objects or
    per-value type processing, columns built from the tuples at once (30 backfill runs: ~18 s of reads → a few).

    The same driver and connection as the rest of the run: a second SQLite library (ADBC's) in this process would
    release this one's file locks when it closes the file (POSIX locks are per process)."""
    names = ", ".join(f'"{name}"' for name in columns)
    extra = "" if where is None else " AND " + str(where.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    head = f'SELECT {names} FROM "{table.name}" WHERE "{column}" IN'
    rows = [row for done in _sqlite_in_chunks(conn, head, values, extra) for row in done.fetchall()]
    data = list(zip(*rows)) if rows else [()] * len(columns)
    return _typed(pd.DataFrame({name: pd.Series(data[i], dtype=object) for i, name in enumerate(columns)}), table)


def read_table(conn: Connection, table: Table, where=None, columns: list[str] | None = None) -> pd.DataFrame:
    """Read (part of) a table as a typed frame."""
    columns = columns or [c.name for c in table.columns]
    query = select(*(table.c[c] for c in columns))
    if where is not None:
        query = query.where(where)
    return typed_frame(conn.execute(query).fetchall(), table, columns)


def read_where_in(
    conn: Connection, table: Table, column: str, values: Iterable, columns: list[str] | None = None, where=None
) -> pd.DataFrame:
    """Rows whose column is in values (chunked IN lists), optionally also matching `where`, as one typed frame."""
    columns = columns or [c.name for c in table.columns]
    values = pd.Series(list(values) if not isinstance(values, pd.Series | pd.Index) else values, dtype=object)
    values = values.dropna().drop_duplicates().tolist()
    if conn.dialect.name == "sqlite":
        return _sqlite_where_in(conn, table, column, values, columns, where)
    condition = table.c[column].in_(bindparam("values", expanding=True))  # compiled once, cached by SQLAlchemy
    query = select(*(table.c[c] for c in columns)).where(condition if where is None else condition & where)
    rows = []
    for start in range(0, len(values), IN_CHUNK):
        rows += conn.execute(query, {"values": values[start : start + IN_CHUNK]}).fetchall()
    return typed_frame(rows, table, columns)


def is_empty(conn: Connection, table: Table) -> bool:
    """Whether a table has no rows (a cheap test before lookups that could only find nothing)."""
    return conn.execute(select(1).select_from(table).limit(1)).first() is None
