"""Staged events: one landing partition read, checked against the contract, normalised and deduplicated.

Reading is the only I/O here; `stage_lines` is pure. Every non-blank line read ends up in exactly one of
three places: the staged events, the duplicates, or the quarantine (with a reason).
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.bots import is_bot
from pipeline.contract import load_contract, parse_lines, quarantine_reasons

SUFFIXES = (".jsonl", ".jsonl.gz", ".parquet")
EVENT_COLUMNS = [
    "event_id",
    "anonymous_id",
    "timestamp",
    "event_type",
    "page_url",
    "referrer",
    "email",
    "conversion_type",
    "conversion_id",
    "user_agent",
]
ORIGIN = ["load_date", "source_file", "line_number"]
LINE_COLUMNS = ["source_file", "line_number", "raw"]


class LandingError(RuntimeError):
    """The landing folder is missing or unreadable; the message is one line for the user."""


@dataclass
class StagedLines:
    """What staging made of one partition's lines."""

    events: pd.DataFrame  # first copy of each event_id in this partition, normalised, with origin and is_bot
    quarantine: pd.DataFrame  # load_date, source_file, line_number, raw, reason, event_id, email
    duplicates: int  # valid lines whose event_id repeats an earlier line of this partition


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


def normalise_events(parsed: pd.DataFrame) -> pd.DataFrame:
    """Valid parsed lines → events: UTC timestamps, emails trimmed and lower-cased."""
    events = pd.DataFrame({name: parsed[name] for name in EVENT_COLUMNS})
    events["timestamp"] = parsed["timestamp__utc"]
    events["email"] = events["email"].str.strip().str.lower()
    return events


def stage_lines(lines: pa.Table | pd.DataFrame, load_date: date) -> StagedLines:
    """Check, normalise and deduplicate one partition's lines (pure: no I/O)."""
    if isinstance(lines, pd.DataFrame):
        lines = pa.Table.from_pandas(lines[LINE_COLUMNS].reset_index(drop=True), preserve_index=False)
    contract = load_contract()
    parsed = parse_lines(lines, contract)
    reasons = quarantine_reasons(parsed, load_date, contract)
    bad = reasons.notna().to_numpy()
    quarantine = lines.filter(pa.array(bad)).to_pandas().assign(
        load_date=load_date,
        reason=reasons[bad].to_numpy(),
        event_id=parsed.loc[bad, "event_id"].where(parsed.loc[bad, "event_id__type"] == "VARCHAR").to_numpy(),
        email=parsed.loc[bad, "email"].where(parsed.loc[bad, "email__type"] == "VARCHAR").str.strip().str.lower().to_numpy(),
    )
    valid = parsed[[*EVENT_COLUMNS, "timestamp__utc"]]
    events = normalise_events(valid[~bad] if bad.any() else valid)
    origin = lines.select(["source_file", "line_number"]).filter(pa.array(~bad)).to_pandas()
    events["source_file"] = origin["source_file"].to_numpy()
    events["line_number"] = origin["line_number"].to_numpy()
    events["load_date"] = load_date
    first = ~events["event_id"].duplicated(keep="first")
    if not first.all():
        events = events[first.to_numpy()].reset_index(drop=True)
    events["is_bot"] = is_bot(events["user_agent"]).to_numpy(dtype=bool)
    return StagedLines(events=events, quarantine=quarantine.reset_index(drop=True), duplicates=int((~first).sum()))
