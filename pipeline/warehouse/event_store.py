"""The event store (SPEC §8): the staged events as Parquet files beside the warehouse, their system of record.

Layout: `<root>/events/dt=YYYY-MM-DD/<run id>-<part>.parquet`, one folder per load day. Every file is sorted by
`visitor_key` (63 bits of the md5 of the anonymous id), so a bucket of visitors is a contiguous key range and a
reader skips the row groups outside it. The warehouse table `event_files` lists the live files: publish adds and
retires files in its own transaction, so the store changes exactly when the warehouse does. A file nobody lists
was left by a run that failed or was killed: the next run removes it. A retired file stays `grace` minutes for
readers still holding the older snapshot, then goes too.

Any pyarrow/fsspec filesystem works (`s3://bucket/prefix` in production); a local folder is the default.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from sqlalchemy import Connection, select, update

from pipeline.warehouse import tables as t
from pipeline.warehouse.rows import insert_frame, read_table

EVENTS_DIR = "events"
CATALOG = "catalog.duckdb"  # a DuckDB file whose view `events` reads exactly the live files
ROW_GROUP_ROWS = 65_536  # small enough that a bucket's key range skips most of a day's file
STORED_COLUMNS = [
    "event_id", "anonymous_id", "timestamp", "event_type", "page_url", "referrer", "email", "conversion_type",
    "conversion_id", "user_agent", "is_bot", "load_date", "source_file", "line_number", "event_key", "visitor_key",
]  # fmt: skip
# zstd, and dictionaries only for the columns with few values per file: Arrow tries one for every column by default and
# gives up on the near-unique ones (ids, times, line numbers) only after building it (a 300k-row file: 0.38 → 0.26 s to
# write, 15.8 → 13.4 MB)
WRITE_OPTIONS = {
    "compression": "zstd",
    "use_dictionary": ["event_type", "page_url", "referrer", "conversion_type", "conversion_id", "user_agent", "is_bot", "load_date", "source_file"],
}
ARROW_SCHEMA = pa.schema(
    [
        *((name, pa.string()) for name in STORED_COLUMNS[:2]),
        ("timestamp", pa.timestamp("us", tz="UTC")),
        *((name, pa.string()) for name in STORED_COLUMNS[3:10]),
        ("is_bot", pa.bool_()),
        ("load_date", pa.date32()),
        ("source_file", pa.string()),
        ("line_number", pa.int64()),
        ("event_key", pa.int64()),
        ("visitor_key", pa.int64()),
    ]
)


@dataclass(frozen=True)
class EventFile:
    """One written file: where (relative to the store root), which load day, how many rows, which visitor keys."""

    path: str
    load_date: date
    rows: int
    bytes: int
    min_visitor_key: int
    max_visitor_key: int

    def as_row(self, run_id: str, now: datetime) -> dict:
        return {**self.__dict__, "run_id": run_id, "created_at": now}

    def to_json(self) -> dict:
        return {**self.__dict__, "load_date": self.load_date.isoformat()}

    @classmethod
    def from_json(cls, data: dict) -> EventFile:
        return cls(**{**data, "load_date": date.fromisoformat(data["load_date"])})


class EventStore:
    """A folder (or bucket prefix) of event files, reached through a pyarrow filesystem."""

    def __init__(self, location: str):
        self.location = location
        if "://" not in location:
            self.filesystem, self.root = pafs.LocalFileSystem(), Path(location).resolve().as_posix()
        else:
            try:
                self.filesystem, self.root = pafs.FileSystem.from_uri(location)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):  # a scheme only fsspec knows (memory://, gcs via gcsfs…)
                import fsspec

                fs, root = fsspec.core.url_to_fs(location)
                self.filesystem, self.root = pafs.PyFileSystem(pafs.FSSpecHandler(fs)), root
        self.local = isinstance(self.filesystem, pafs.LocalFileSystem)

    def full_path(self, relative: str) -> str:
        return f"{self.root.rstrip('/')}/{relative}"

    def new_path(self, load_date: date, run_id: str, part: str) -> str:
        """Where a run writes a new file of a load day (unique per run and part, never overwriting a live file)."""
        return f"{EVENTS_DIR}/dt={load_date.isoformat()}/{run_id}-{part}.parquet"

    def write(self, relative: str, batches: pa.RecordBatchReader | pa.Table, load_date: date) -> EventFile | None:
        """Write sorted event rows to a new file; None (and no file) when there are none."""
        table = batches.read_all() if isinstance(batches, pa.RecordBatchReader) else batches
        if table.num_rows == 0:
            return None
        table = table.select(STORED_COLUMNS).cast(ARROW_SCHEMA)
        path = self.full_path(relative)
        self.filesystem.create_dir(path.rsplit("/", 1)[0], recursive=True)
        pq.write_table(table, path, filesystem=self.filesystem, row_group_size=ROW_GROUP_ROWS, **WRITE_OPTIONS)
        keys = pc.min_max(table["visitor_key"])
        size = self.filesystem.get_file_info(path).size
        return EventFile(relative, load_date, table.num_rows, int(size), keys["min"].as_py(), keys["max"].as_py())

    def write_parts(self, batches: pa.RecordBatchReader, run_id: str) -> list[EventFile]:
        """Stream rows sorted by (load_date, part, visitor key, …), with an integer `part` column, into one new file
        per (load day, part): only a batch is in memory at a time."""
        written, current, writer, rows, keys = [], None, None, 0, (None, None)

        def close() -> None:
            if writer is not None:
                writer.close()
                size = self.filesystem.get_file_info(self.full_path(current[2])).size
                written.append(EventFile(current[2], current[0], rows, int(size), *keys))

        for batch in batches:
            days = batch["load_date"].cast(pa.int32()).to_numpy()
            group = days.astype(np.int64) * 1_000_000 + batch["part"].to_numpy()
            edges = np.flatnonzero(np.r_[True, group[1:] != group[:-1], True])
            for start, end in zip(edges[:-1], edges[1:]):
                piece = batch.slice(start, end - start)
                day, part = piece["load_date"][0].as_py(), piece["part"][0].as_py()
                if current is None or current[:2] != (day, part):
                    close()
                    current = (day, part, self.new_path(day, run_id, f"b{part}"))
                    self.filesystem.create_dir(self.full_path(current[2]).rsplit("/", 1)[0], recursive=True)
                    writer = pq.ParquetWriter(self.full_path(current[2]), ARROW_SCHEMA, filesystem=self.filesystem, **WRITE_OPTIONS)
                    rows, keys = 0, (None, None)
                table = pa.Table.from_batches([piece]).select(STORED_COLUMNS).cast(ARROW_SCHEMA)
                writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
                low, high = pc.min_max(table["visitor_key"]).values()
                keys = (low.as_py() if keys[0] is None else min(keys[0], low.as_py()), high.as_py() if keys[1] is None else max(keys[1], high.as_py()))
                rows += table.num_rows
        close()
        return written

    def make_durable(self, relatives: list[str]) -> None:
        """Force these files and the folders that name them to disk (local stores): publish lists a file only once it
        would survive a power loss, so a committed `event_files` row never names a file cut short. Object stores have
        a written object once its upload completes."""
        if not self.local or not relatives:
            return
        folders = set()
        for relative in relatives:
            path = Path(self.full_path(relative))
            _fsync(path, os.O_RDONLY)
            folders.update(str(parent) for parent in path.parents if parent.is_relative_to(self.root))
        for folder in sorted(folders, key=len, reverse=True):
            _fsync(Path(folder), os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))

    def files_on_disk(self) -> list[str]:
        """Every event file under the store, relative to its root."""
        selector = pafs.FileSelector(self.full_path(EVENTS_DIR), recursive=True, allow_not_found=True)
        prefix = self.root.rstrip("/") + "/"
        return sorted(info.path.removeprefix(prefix) for info in self.filesystem.get_file_info(selector)
                      if info.type == pafs.FileType.File and info.path.endswith(".parquet"))  # fmt: skip

    def delete(self, relatives) -> None:
        for relative in relatives:
            try:
                self.filesystem.delete_file(self.full_path(relative))
            except FileNotFoundError:
                pass

    def relation(self, con: duckdb.DuckDBPyConnection, files: list[str], columns: list[str] | None = None) -> str:
        """A DuckDB FROM-clause item over these files: read_parquet for local folders, an Arrow dataset otherwise."""
        if not files:
            name = f"no_events_{uuid.uuid4().hex[:8]}"
            con.register(name, ARROW_SCHEMA.empty_table())
            return name
        if self.local:
            paths = ", ".join("'" + self.full_path(f).replace("'", "''") + "'" for f in files)
            return f"read_parquet([{paths}], hive_partitioning = false)"
        name = f"event_files_{uuid.uuid4().hex[:8]}"
        con.register(name, ds.dataset([self.full_path(f) for f in files], schema=ARROW_SCHEMA, format="parquet", filesystem=self.filesystem))
        return name

    def dataset(self, files: list[str]) -> ds.Dataset:
        return ds.dataset([self.full_path(f) for f in files], schema=ARROW_SCHEMA, format="parquet", filesystem=self.filesystem)

    def read(self, files: list[str], columns: list[str] | None = None) -> pd.DataFrame:
        """Whole files as one frame (small reads: tests, erasure, copy-on-write)."""
        if not files:
            return ARROW_SCHEMA.empty_table().select(columns or STORED_COLUMNS).to_pandas()
        return self.dataset(files).to_table(columns=columns).to_pandas()

    def batches(self, files: list[str], rows: int) -> Iterator[pd.DataFrame]:
        """The files' rows as frames of at most `rows` rows, read as they are asked for (a dataset scan would read
        ahead of a slow consumer and hold many batches)."""
        for relative in files:
            with self.filesystem.open_input_file(self.full_path(relative)) as source:
                for batch in pq.ParquetFile(source).iter_batches(batch_size=rows):
                    yield batch.to_pandas()

    def rows_where(self, files: list[str], condition: ds.Expression, columns: list[str]) -> pd.DataFrame:
        """The rows of these files that meet a condition, with the file each came from (`path`, relative)."""
        if not files:
            return pd.DataFrame(columns=[*columns, "path"])
        found = self.dataset(files).to_table(columns=[*columns, "__filename"], filter=condition).to_pandas()
        prefix = self.root.rstrip("/") + "/"
        return found.rename(columns={"__filename": "path"}).assign(path=lambda f: f["path"].str.removeprefix(prefix))

    def rewrite_without(self, doomed: pd.DataFrame, load_dates: dict[str, date], run_id: str) -> tuple[list[EventFile], list[str]]:
        """Copy-on-write: each file holding a doomed event (`path`, `event_id`) again without it, as a new file of the
        run; returns (the new files, the files they replace once published)."""
        written, replaced = [], []
        for number, (path, ids) in enumerate(doomed.groupby("path")["event_id"]):
            rows = self.dataset([path]).to_table()
            kept = rows.filter(pc.invert(pc.is_in(rows["event_id"], value_set=pa.array(ids.unique(), type=pa.string()))))
            day = load_dates[path]
            new = self.write(self.new_path(day, run_id, f"rewrite{number}"), kept, day)
            written += [new] if new is not None else []
            replaced.append(path)
        return written, replaced


def _fsync(path: Path, flags: int) -> None:
    descriptor = os.open(path, flags)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_catalog(store: EventStore, live: list[str]) -> None:
    """Replace a local store's DuckDB catalog: one view, `events`, over exactly these files (BI's way in, in one query:
    `duckdb -readonly <store>/catalog.duckdb "SELECT … FROM events"`), built aside and moved into place.

    DuckDB checks a view's files when it is created, and reaching s3:// and the like needs an extension the project
    does not bundle, so a remote store has no catalog: its readers take the live files from `event_files`.
    """
    if not store.local:
        return
    listing = Path(store.full_path(CATALOG + ".files"))  # what the catalog in place reads: skip an identical rewrite
    wanted = "\n".join(sorted(live))
    if listing.exists() and Path(store.full_path(CATALOG)).exists() and listing.read_text(encoding="utf-8") == wanted:
        return
    with tempfile.TemporaryDirectory() as folder:
        built = Path(folder) / CATALOG
        with duckdb.connect() as con:
            con.execute(f"ATTACH '{built}' AS catalog (STORAGE_VERSION 'v1.0.0')")  # readable by DuckDB 1.0 and later
            if live:
                paths = ", ".join("'" + store.full_path(path).replace("'", "''") + "'" for path in live)
                con.execute(f"CREATE VIEW catalog.events AS SELECT * FROM read_parquet([{paths}], hive_partitioning = false)")
            else:
                con.register("no_events", ARROW_SCHEMA.empty_table())
                con.execute("CREATE TABLE catalog.events AS SELECT * FROM no_events")
            con.execute("DETACH catalog")
        Path(store.root).mkdir(parents=True, exist_ok=True)
        os.replace(built, store.full_path(CATALOG))
    listing.write_text(wanted, encoding="utf-8")


def live_files(conn: Connection) -> pd.DataFrame:
    """The files that hold the published events (path, load_date, rows, visitor key range)."""
    f = t.event_files
    return read_table(conn, f, f.c.retired_at.is_(None), ["path", "load_date", "rows", "min_visitor_key", "max_visitor_key"])


def published_events(conn: Connection, store: EventStore) -> pd.DataFrame:
    """Every published event, with the columns of the SQL table `events` (for Python readers and tests)."""
    columns = [c.name for c in t.events.columns]
    frame = store.read(live_files(conn)["path"].tolist(), columns)
    return frame.astype({"line_number": "Int64", "is_bot": "boolean"})


def commit_files(conn: Connection, run_id: str, new: list[EventFile], retired: list[str], now: datetime) -> None:
    """Inside publish: the run's new files become live and the files it replaced retire, with the warehouse."""
    f = t.event_files
    for start in range(0, len(retired), 5000):
        chunk = retired[start : start + 5000]
        conn.execute(update(f).where(f.c.path.in_(chunk), f.c.retired_at.is_(None)).values(retired_at=now, retired_by=run_id))
    insert_frame(conn, f, pd.DataFrame([e.as_row(run_id, now) for e in new], columns=[c.name for c in f.columns if c.name not in ("retired_at", "retired_by")]))


def remove_leftovers(store: EventStore, conn: Connection, now: datetime, grace_minutes: float) -> int:
    """Delete retired files past their grace and files no publish ever listed (runs that failed); returns how many.

    Runs call this holding the warehouse lock, before they write files or after they publish them, so every file
    not listed belongs to a run that will never publish.
    """
    f = t.event_files
    listed = set(conn.execute(select(f.c.path)).scalars())
    expired = list(conn.execute(select(f.c.path).where(f.c.retired_at < now - timedelta(minutes=grace_minutes))).scalars())
    orphans = [p for p in store.files_on_disk() if p not in listed]
    store.delete(expired + orphans)
    for start in range(0, len(expired), 5000):
        conn.execute(f.delete().where(f.c.path.in_(expired[start : start + 5000])))
    return len(expired) + len(orphans)
