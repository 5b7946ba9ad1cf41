"""BulkRows: a run's big frames prepared for one coming transaction, so the transaction itself is short."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from functools import lru_cache, partial
from pathlib import Path

import adbc_driver_sqlite.dbapi as adbc_sqlite
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Connection, Engine, Table

from pipeline.warehouse.rows import arrow_rows, insert_frame, is_empty, key_columns

# the scratch files are rewritten by a retried publish: no rollback journal, no fsync (a 1M-event day: 97 fsyncs,
# 0.25 s on a busy disk); the warehouse's page size, and a cache that holds the index builds
SCRATCH_PRAGMAS = ("PRAGMA page_size=65536", "PRAGMA cache_size=-262144", "PRAGMA journal_mode=OFF", "PRAGMA synchronous=OFF")
LANES = 2  # scratch files written at once, each by a thread of its own (SQLite takes one writer a file)
QUEUED = 2  # jobs a lane may hold unfinished before `add` waits


@lru_cache(maxsize=None)
def _lane_thread(lane: int) -> ThreadPoolExecutor:
    """The one thread that writes a lane's scratch file, the same for every run of the process (new threads would
    each bring the C allocators' per-thread memory with them)."""
    return ThreadPoolExecutor(1, thread_name_prefix=f"scratch-{lane}")


class _Lane:
    """A scratch database file, written by its own thread; ADBC writes Arrow into SQLite in C with the GIL let go,
    so two lanes use two cores."""

    def __init__(self, path: Path, lane: int):
        self.path, self.alias, self.thread = path, f"scratch_{uuid.uuid4().hex[:12]}", _lane_thread(lane)
        self.path.unlink(missing_ok=True)  # a retried publish starts clean
        self.jobs: list[Future] = []

    def submit(self, job: Callable[[], None]) -> None:
        """Queue a job; the caller waits while the lane holds more than QUEUED unfinished ones, so the frames their
        jobs were handed (a bucket's contacts) do not pile up in memory (a job's failure is raised by `seal`)."""
        self.jobs.append(self.thread.submit(job))
        unfinished = [queued for queued in self.jobs if not queued.done()]
        wait(unfinished[: max(0, len(unfinished) - QUEUED)])

    @contextmanager
    def cursor(self) -> Iterator:
        """A cursor on the file, in one transaction committed at the end."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with adbc_sqlite.connect(str(self.path), autocommit=True) as scratch, scratch.cursor() as cursor:
            for statement in (*SCRATCH_PRAGMAS, "BEGIN"):  # pragmas outside a transaction, the rows in one
                cursor.execute(statement)
            yield cursor
            cursor.execute("COMMIT")


class BulkRows:
    """Big frames to insert in one coming transaction, prepared before it starts.

    On SQLite, binding rows through the Python driver costs an object per value (1M events: 14.5 s), so
    each frame is written ahead with ADBC (Arrow straight into SQLite, in C) into a scratch database file,
    and inside the transaction one INSERT … SELECT a table copies it in. A table that is empty when the
    run starts (a first run, a full refresh) gets a twin there, made from the warehouse table's own DDL,
    with its indexes built in the scratch file (`seal`): SQLite then copies its rows and index entries
    across as they are, without decoding them or sorting again (the "transfer optimization" VACUUM uses).
    The tables are shared between two scratch files (`lanes`: table name → 0 or 1), each written by a
    thread of its own. On PostgreSQL the frames are read and COPYed inside the transaction. Either way a
    few frames at most are in memory (QUEUED a lane), and nothing reaches the warehouse before `insert`
    runs in the transaction.
    """

    def __init__(
        self, engine: Engine, scratch: Path, orders: dict[str, list[str]] | None = None, emptied: bool = False,
        lanes: dict[str, int] | None = None,
    ):
        self.engine, self.sqlite = engine, engine.dialect.name == "sqlite"
        self.orders = orders or {}  # table name → the column order its rows go in (SQLite: see `add`)
        self.emptied = emptied  # the transaction empties every table before the insert (a full refresh)
        self.lane_of = lanes or {}
        scratch = Path(scratch)
        self.lanes = [_Lane(scratch.with_name(f"{scratch.stem}-{i}{scratch.suffix}"), i) for i in range(LANES)] if self.sqlite else []
        self.empty: dict[str, bool] = {}
        self.twins: dict[str, list] = {}  # table name → [its index DDL, rows]
        self.pending: list[tuple[Table, Callable[[Connection], int]]] = []
        self.sealed = False

    def add(self, table: Table, load: Callable[[], pd.DataFrame]) -> None:
        """Queue the rows `load()` returns for `table` (on SQLite they are read and written out on the table's lane).

        On SQLite the rows go in sorted by the table's entry in `orders`: the leading columns of its busiest indexes, so
        each index grows at a few places instead of at random ones (contact_sessions of a 5M-event day: 6.6 → 3.4 s).
        Into an empty table they go in primary-key order instead, through its twin."""
        if not self.sqlite:
            self.pending.append((table, lambda conn: insert_frame(conn, table, load())))
            return
        lane = self.lanes[self.lane_of.get(table.name, 0)]
        if self._into_empty(table):
            if table.name not in self.twins:
                table_ddl, index_ddl = self._warehouse_ddl(table)
                self.twins[table.name] = [index_ddl, 0]
                lane.submit(partial(_create, lane, table_ddl))
                self.pending.append((table, lambda conn: self._transfer(conn, lane, table)))
            lane.submit(lambda: self._append_to_twin(lane, table, load))
            return
        name, order, counted = f"rows_{len(self.pending)}", self.orders.get(table.name), {}
        lane.submit(lambda: counted.update(_write_rows(lane, table, load, name, order, "replace")))
        self.pending.append((table, lambda conn: self._copy_in(conn, lane, table, name, counted)))

    def _append_to_twin(self, lane: _Lane, table: Table, load: Callable[[], pd.DataFrame]) -> None:
        self.twins[table.name][1] += _write_rows(lane, table, load, table.name, key_columns(table), "append")["rows"]

    def _warehouse_ddl(self, table: Table) -> tuple[str, list[str]]:
        """The CREATE statements of a warehouse table and of its explicit indexes, as the warehouse holds them (the
        same columns in the same order, so `SELECT *` lines up whatever the table's history)."""
        with self.engine.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT type, sql FROM sqlite_master WHERE tbl_name = ? AND sql IS NOT NULL ORDER BY type = 'index', name", (table.name,)
            ).fetchall()
        return next(sql for kind, sql in rows if kind == "table"), [sql for kind, sql in rows if kind == "index"]

    def seal(self) -> None:
        """Wait for the lanes, the twins' indexes built last on each (one sort each, no WAL, beside the other lane);
        the first failure of a lane is raised here."""
        if self.sealed or not self.sqlite:
            return
        for name, twin in self.twins.items():
            lane = self.lanes[self.lane_of.get(name, 0)]
            for ddl in twin[0]:
                lane.submit(partial(_create, lane, ddl))
            twin[0] = []  # queued once, even if a failure makes the caller seal again
        jobs = [job for lane in self.lanes for job in lane.jobs]
        wait(jobs)
        for job in jobs:
            job.result()
        self.sealed = True

    def discard(self) -> None:
        """Cancel the lanes' jobs not yet started and wait for the rest (a failed prepare: a retry's lanes reuse the
        files' names and the threads, so nothing of this attempt may still be queued on them)."""
        jobs = [job for lane in self.lanes for job in lane.jobs]
        for job in jobs:
            job.cancel()
        wait(jobs)

    def _transfer(self, conn: Connection, lane: _Lane, table: Table) -> int:
        conn.exec_driver_sql(f'INSERT INTO main."{table.name}" SELECT * FROM {lane.alias}."{table.name}"')
        return self.twins[table.name][1]

    def _copy_in(self, conn: Connection, lane: _Lane, table: Table, name: str, counted: dict) -> int:
        if not counted.get("rows"):
            return 0
        names = ", ".join(f'"{c}"' for c in counted["columns"])
        conn.exec_driver_sql(f'INSERT INTO main."{table.name}" ({names}) SELECT {names} FROM {lane.alias}."{name}"')
        return counted["rows"]

    def insert(self, conn: Connection, after_each: Callable[[str], None] | None = None) -> dict[str, int]:
        """Insert every queued frame in this transaction (calling `after_each(table name)` after each); returns the
        rows written per table name."""
        self.seal()
        for lane in self.lanes:
            if lane.jobs:
                conn.exec_driver_sql(f"ATTACH DATABASE ? AS {lane.alias}", (str(lane.path),))
                conn.connection.info.setdefault("scratch_aliases", []).append(lane.alias)
        written: dict[str, int] = {}
        for table, insert in self.pending:
            written[table.name] = written.get(table.name, 0) + insert(conn)
            if after_each:
                after_each(table.name)
        return written

    def _into_empty(self, table: Table) -> bool:
        """Whether the table holds no rows when the insert starts: its twin then brings rows and indexes whole, instead
        of growing the indexes row by row at random places (beyond the page cache a 5M-event day's copy was
        superlinear)."""
        if table.name not in self.empty:
            self.empty[table.name] = self.emptied or self._holds_no_rows(table)
        return self.empty[table.name]

    def _holds_no_rows(self, table: Table) -> bool:
        with self.engine.connect() as conn:
            return is_empty(conn, table)


def _create(lane: _Lane, ddl: str) -> None:
    with lane.cursor() as cursor:
        cursor.execute(ddl)


def _sorted(arrays: pa.Table, order: list[str] | None) -> pa.Table:
    return arrays.take(pc.sort_indices(arrays, [(column, "ascending") for column in order])) if order else arrays


def _write_rows(lane: _Lane, table: Table, load: Callable[[], pd.DataFrame], name: str, order: list[str] | None, mode: str) -> dict:
    """A frame into table `name` of the lane's file: appended to a twin, or as a table of its own ("replace": ADBC's
    column types, the copy converts); its row count and columns."""
    frame = load()
    if frame.empty:
        return {"rows": 0}
    arrays = _sorted(arrow_rows(table, frame), order)
    with lane.cursor() as cursor:
        cursor.adbc_ingest(name, arrays, mode=mode)
    return {"rows": len(arrays), "columns": arrays.column_names}
