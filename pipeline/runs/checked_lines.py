"""Staging's first half: the landing files of some load days read and checked against the contract, a chunk at a
time, into plain Parquet chunk files of valid events and quarantine rows (nothing in a database yet)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.contract.landing import LandingFile, partition_files
from pipeline.contract.staging import staged_chunk
from pipeline.runs.scratch import utc_cursor
from pipeline.runs.suppression import erased_mask, redact_quarantine
from pipeline.runs.threads import ordered_map
from pipeline.settings import Settings


@dataclass
class CheckedLines:
    """What reading the files gave: the chunk files, the non-blank lines read, the run manifest's entries, and the
    erased contacts' hashes the lines were checked with."""

    chunks: ChunkFiles
    read: int
    manifest: list[dict]
    hashes: frozenset[str]


def check_files(con, settings: Settings, days: list[date], hashes: set[str], folder: Path,
                after_chunk: Callable[[], None] = lambda: None, workers: int = 2) -> CheckedLines:
    """Read and check every landing file of `days` into chunk files under `folder` (a few chunks in memory).

    `workers` chunks (two; one when reading ahead) are checked at a time, each on its own cursor of the DuckDB
    connection `con`, while this thread reads the next one (the checks run in DuckDB and Arrow with the GIL released:
    a 1M-event day's lines 3.2-3.9 → 2.8-2.9 s). Each checked chunk is written as a plain Parquet file; staging inserts
    the files in one INSERT: DuckDB appends one big Arrow-backed scan ~4× faster than 13 chunk-sized INSERTs (a
    1M-event day: 4.1 s → 0.4 s writing + 0.9 s inserting).
    """
    files = [(day, LandingFile(path, settings.landing)) for day in days for path in partition_files(settings.landing, day)]
    lines = ((day, chunk) for day, file in files for chunk in file.chunks(file.chunk_bytes(settings.stage_chunk_bytes)))
    read, chunks = 0, ChunkFiles(folder)
    for events, quarantine, count in ordered_map(lambda item: _checked_chunk(con, settings, hashes, *item), lines, workers):
        chunks.add("staged", events)
        chunks.add("quarantine", quarantine)
        after_chunk()
        read += count
    manifest = [dict(file.manifest_entry(), load_date=day) for day, file in files]  # every file has been read through
    return CheckedLines(chunks, read, manifest, frozenset(hashes))


def _checked_chunk(con, settings: Settings, hashes: set[str], day, chunk: pa.Table) -> tuple[pa.Table, pa.Table, int]:
    """(valid events, quarantine rows, lines) of one chunk, checked on a cursor of its own (one per thread)."""
    with utc_cursor(con) as cursor:
        events, quarantine = staged_chunk(cursor, chunk, day)
    if hashes:  # erased contacts (rare): their events are flagged, quarantine text naming them redacted
        frame = events.select(["email", "anonymous_id"]).to_pandas()
        events = events.append_column("erased", pa.array(erased_mask(frame, hashes, settings)))
        quarantine = pa.Table.from_pandas(redact_quarantine(quarantine.to_pandas(), hashes, settings), preserve_index=False)
    return events, quarantine, chunk.num_rows


class ChunkFiles:
    """Checked chunks as uncompressed Parquet files under a folder, one table's chunks at a time going into DuckDB."""

    def __init__(self, folder: Path):
        self.folder, self.files = folder, {}
        folder.mkdir(parents=True, exist_ok=True)

    def add(self, table: str, rows: pa.Table) -> None:
        if rows.num_rows:
            path = self.folder / f"{table}-{len(self.files.setdefault(table, []))}.parquet"
            pq.write_table(rows, path, compression="none")
            self.files[table].append(str(path))

    def insert(self, con, table: str, extra: str = "") -> None:
        """Insert the table's chunks by column name (DuckDB casts to the table's types), then delete their files."""
        files = self.files.pop(table, [])
        if files:
            con.execute(f"INSERT INTO {table} BY NAME SELECT *{extra} FROM read_parquet(?, union_by_name = true)", [files])
        for path in files:
            Path(path).unlink()
