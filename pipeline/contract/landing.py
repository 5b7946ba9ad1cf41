"""The landing folder: load-day partitions, their event files, and each file's non-blank lines (the only I/O of staging)."""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

SUFFIXES = (".jsonl", ".jsonl.gz", ".parquet")


LINE_COLUMNS = ["source_file", "line_number", "raw"]


class LandingError(RuntimeError):
    """The landing folder is missing or unreadable; the message is one line for the user."""


def partition_dir(landing: Path, day: date) -> Path:
    """The folder of one load day (`dt=YYYY-MM-DD`)."""
    return Path(landing) / f"dt={day.isoformat()}"


def partition_files(landing: Path, day: date) -> list[Path]:
    """Event files of one load day in name order (the dedupe order); other files are not events."""
    if not Path(landing).is_dir():
        raise LandingError(f"landing folder not found: {landing}")
    folder = partition_dir(landing, day)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.name.endswith(SUFFIXES) and p.name[0] not in "._")


def landing_days(landing: Path) -> list[date]:
    """Every load day that has a partition folder, ascending."""
    if not Path(landing).is_dir():
        raise LandingError(f"landing folder not found: {landing}")
    days = []
    for folder in Path(landing).glob("dt=*"):
        try:
            days.append(date.fromisoformat(folder.name[3:]))
        except ValueError:
            continue
    return sorted(days)


def _text_lines(data: bytes) -> pa.Array:
    """Split a JSON-lines payload in Arrow (no Python string per line); invalid UTF-8 is replaced, not fatal.

    A UTF-8 byte-order mark (some Windows exports write one) is not part of the first line.
    """
    data = data.removeprefix(b"\xef\xbb\xbf")
    try:
        text = pa.array([data], type=pa.large_binary()).cast(pa.large_string())
    except pa.ArrowInvalid:
        text = pa.array([data.decode("utf-8", errors="replace")], type=pa.large_string())
    lines = pc.list_flatten(pc.split_pattern(text, pattern="\n"))
    return pc.if_else(pc.ends_with(lines, "\r"), pc.utf8_slice_codeunits(lines, 0, -1), lines)


def _parquet_lines(path: Path) -> pa.Array:
    """Each Parquet row as one JSON text line, so the same contract checks apply."""
    literal = "'" + str(path).replace("'", "''") + "'"
    with duckdb.connect() as con:
        table = con.sql(f"SELECT to_json(t)::VARCHAR AS raw FROM read_parquet({literal}) AS t").arrow().read_all()
    return table["raw"].combine_chunks().cast(pa.large_string())


def read_file_lines(path: Path, landing: Path) -> tuple[pa.Table, dict]:
    """The non-blank lines of one file (file, 1-based physical line number, raw text) plus its manifest entry."""
    data = path.read_bytes()
    if path.name.endswith(".parquet"):
        lines = _parquet_lines(path)
    else:
        lines = _text_lines(gzip.decompress(data) if path.name.endswith(".gz") else data)
    numbers = pa.array(np.arange(1, len(lines) + 1, dtype=np.int64))
    keep = pc.not_equal(pc.utf8_trim_whitespace(lines), "")
    source = path.relative_to(landing).as_posix()
    table = pa.table({"line_number": numbers, "raw": lines}).filter(keep)
    table = table.add_column(0, "source_file", pa.array([source] * len(table), type=pa.large_string()))
    entry = {"source_file": source, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(), "lines_read": len(table)}
    return table, entry


def partition_parts(landing: Path, day: date) -> Iterator[tuple[pa.Table, dict]]:
    """Each file of one load day in name order: its non-blank lines and its manifest entry (one file in memory)."""
    for path in partition_files(landing, day):
        yield read_file_lines(path, Path(landing))


def no_lines() -> pa.Table:
    """The lines table of a partition without files."""
    empty = {"source_file": pa.large_string(), "line_number": pa.int64(), "raw": pa.large_string()}
    return pa.table({k: pa.array([], type=v) for k, v in empty.items()})


def read_partition(landing: Path, day: date) -> tuple[pa.Table, list[dict]]:
    """Every non-blank line of one load day, in (file name, line) order, with the files' manifest."""
    parts = list(partition_parts(landing, day))
    if not parts:
        return no_lines(), []
    return pa.concat_tables([table for table, _ in parts]), [entry for _, entry in parts]
