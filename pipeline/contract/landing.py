"""The landing folder: load-day partitions, their event files, and each file's non-blank lines (the only I/O of staging)."""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
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


CHUNK_BYTES = 32 << 20  # lines are checked a chunk at a time: memory follows the chunk, not the file
SMALLEST_CHUNK = 1 << 20
PIECES = 4  # a file is read in at least this many chunks: two being checked while the next is read
BYTES_PER_EVENT = {".jsonl": 400, ".gz": 60, ".parquet": 150}  # about, on disk, by the file's suffix
BOM = b"\xef\xbb\xbf"


def estimated_events(path: Path) -> float:
    """About how many events a landing file holds, from its size (what a run's bucket count is planned by)."""
    return path.stat().st_size / BYTES_PER_EVENT.get(path.suffix, BYTES_PER_EVENT[".jsonl"])


class _Digest:
    """A file object that counts and hashes the bytes read through it (the run manifest's size and SHA-256).

    Hashing runs on a thread (hashlib lets go of the GIL), one block behind the reader, so it overlaps the checks.
    """

    def __init__(self, raw):
        self.raw, self.sha256, self.bytes = raw, hashlib.sha256(), 0
        self._hasher, self._pending = ThreadPoolExecutor(1), None

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        if self._pending is not None:
            self._pending.result()  # blocks are hashed in order, at most one in flight
        self._pending = self._hasher.submit(self.sha256.update, data)
        self.bytes += len(data)
        return data

    def hexdigest(self) -> str:
        if self._pending is not None:
            self._pending.result()
        self._hasher.shutdown()
        return self.sha256.hexdigest()


def _split_lines(data: bytes, end: int) -> pa.Array:
    """The whole lines of data[:end] (each ending in a newline) as text, one element per line, without its line end.

    Arrow splits the bytes at their newlines in C, without copying them or making a Python string per line; one
    carriage return before a newline (Windows files) is cut too; invalid UTF-8 is replaced, not fatal.
    """
    offsets = pa.py_buffer(np.array([0, end], dtype=np.int64))
    block = pa.LargeBinaryArray.from_buffers(pa.large_binary(), 1, [None, offsets, pa.py_buffer(data)])
    lines = pc.list_flatten(pc.split_pattern(block, b"\n"))
    lines = lines.slice(0, len(lines) - 1)  # the empty piece after the last newline
    windows = pc.ends_with(lines, b"\r")
    if pc.any(windows).as_py():
        lines = pc.if_else(windows, pc.binary_slice(lines, 0, -1), lines)
    try:
        return lines.cast(pa.large_string())
    except pa.ArrowInvalid:
        return pa.array([line.decode("utf-8", errors="replace") for line in lines.to_pylist()], type=pa.large_string())


def constant_column(value, kind: pa.DataType, rows: int) -> pa.Array:
    """One value repeated, made in C: an Arrow array built from a Python list of a chunk's rows held the GIL (~0.5 s a
    1M-event day for the source files and load days) while the staging pool's checks and the file reader waited."""
    return pa.repeat(pa.scalar(value, kind), rows)


def _blank(lines: pa.Array) -> pa.Array:
    """Empty or white-space-only lines (not events, not counted). Only lines that start with white space are looked
    at whole: JSON lines start with a brace, so that is a few lines, not every line."""
    first = pc.utf8_slice_codeunits(lines, 0, 1)
    suspects = pc.or_(pc.equal(first, ""), pc.utf8_is_space(first))
    if not pc.any(suspects).as_py():
        return suspects
    return pc.and_(suspects, pc.or_(pc.equal(pc.utf8_length(lines), 0), pc.utf8_is_space(lines)))


class LandingFile:
    """One landing file, read a chunk of lines at a time; afterwards it knows its run-manifest entry."""

    def __init__(self, path: Path, landing: Path):
        self.path = Path(path)
        self.source = self.path.relative_to(landing).as_posix()
        self.digest: _Digest | None = None
        self.lines_read = 0

    def chunks(self, chunk_bytes: int = CHUNK_BYTES) -> Iterator[pa.Table]:
        """Tables of (source_file, 1-based physical line_number, raw) of the non-blank lines, in file order."""
        first_line = 1
        for raw in self._parquet_rows() if self.path.name.endswith(".parquet") else self._text_blocks(chunk_bytes):
            numbers = pa.array(np.arange(first_line, first_line + len(raw), dtype=np.int64))
            first_line += len(raw)
            table, blank = pa.table({"line_number": numbers, "raw": raw}), _blank(raw)
            if pc.any(blank).as_py():  # (a filter copies every line, and JSON lines are rarely blank)
                table = table.filter(pc.invert(blank))
            self.lines_read += table.num_rows
            yield table.add_column(0, "source_file", constant_column(self.source, pa.large_string(), table.num_rows))

    def chunk_bytes(self, limit: int = CHUNK_BYTES) -> int:
        """Bytes of lines per chunk: the limit, or less for a small file so it still comes in PIECES chunks. In 32 MB
        chunks a 40 MB file is one big chunk and a small one, and one of the two checking threads idles while the
        other checks the first (30 × 100k backfill days: staging's lines 0.8 → 0.6 s a day)."""
        size = estimated_events(self.path) * BYTES_PER_EVENT[".jsonl"]  # of JSON lines, once a gzipped file is read
        return min(limit, max(SMALLEST_CHUNK, int(size // PIECES) + 1))

    def _text_blocks(self, chunk_bytes: int) -> Iterator[pa.Array]:
        with open(self.path, "rb") as raw:
            self.digest = _Digest(raw)
            source = gzip.GzipFile(fileobj=self.digest) if self.path.name.endswith(".gz") else self.digest
            rest, first = b"", True
            while True:
                block = source.read(chunk_bytes)
                data = rest + block
                if first and not (block and BOM.startswith(data) and data != BOM):  # (a short read may hold part of one)
                    data, first = data.removeprefix(BOM), False  # a byte-order mark is not part of the first line
                if not block:
                    if data:
                        yield _split_lines(data + b"\n", len(data) + 1)
                    return
                cut = data.rfind(b"\n") + 1
                if cut:
                    yield _split_lines(data, cut)
                rest = data[cut:]

    def _parquet_rows(self) -> Iterator[pa.Array]:
        """Each Parquet row as one JSON text line, so the same contract checks apply."""
        with open(self.path, "rb") as raw:
            self.digest = _Digest(raw)
            while self.digest.read(CHUNK_BYTES):
                pass
        literal = "'" + str(self.path).replace("'", "''") + "'"
        with duckdb.connect() as con:
            reader = con.sql(f"SELECT to_json(t)::VARCHAR AS raw FROM read_parquet({literal}) AS t").arrow()
            for batch in reader:
                yield batch.column(0).cast(pa.large_string())

    def manifest_entry(self) -> dict:
        """What run_manifest records of the file once it has been read."""
        return {"source_file": self.source, "bytes": self.digest.bytes, "sha256": self.digest.hexdigest(), "lines_read": self.lines_read}


def file_digest(path: Path) -> tuple[int, str]:
    """(bytes, SHA-256) of a file, read in blocks: what tells a rerun that nothing changed."""
    with open(path, "rb") as raw:
        digest = _Digest(raw)
        while digest.read(CHUNK_BYTES):
            pass
    return digest.bytes, digest.hexdigest()


def read_file_lines(path: Path, landing: Path) -> tuple[pa.Table, dict]:
    """Every non-blank line of one file and its manifest entry (small files and tests; staging reads chunks)."""
    file = LandingFile(path, landing)
    parts = list(file.chunks())
    return (pa.concat_tables(parts) if parts else no_lines()), file.manifest_entry()


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
