"""Staged events: one landing partition read, checked against the contract, normalised and deduplicated.

Reading is the only I/O here; `stage_lines` is pure. Every non-blank line read ends up in exactly one of
three places: the staged events, the duplicates, or the quarantine (with a reason).
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd

from pipeline.bots import is_bot
from pipeline.contract import load_contract, parse_lines, parse_timestamps, quarantine_reasons

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


def _text_lines(data: bytes) -> pd.Series:
    """Split a JSON-lines payload; line numbers are 1-based physical lines."""
    lines = pd.Series(data.decode("utf-8", errors="replace").split("\n"), dtype="str")
    lines.index = pd.RangeIndex(1, len(lines) + 1)
    return lines.str.removesuffix("\r")


def _parquet_lines(path: Path) -> pd.Series:
    """Each Parquet row as one JSON text line, so the same contract checks apply."""
    with duckdb.connect() as con:
        rows = con.execute("SELECT to_json(t)::VARCHAR FROM read_parquet(?) AS t", [str(path)]).fetchall()
    lines = pd.Series([r[0] for r in rows], dtype="str")
    lines.index = pd.RangeIndex(1, len(lines) + 1)
    return lines


def read_file_lines(path: Path, landing: Path) -> tuple[pd.DataFrame, dict]:
    """The non-blank lines of one file plus its manifest entry (size, sha256, lines read)."""
    data = path.read_bytes()
    if path.name.endswith(".parquet"):
        lines = _parquet_lines(path)
    else:
        lines = _text_lines(gzip.decompress(data) if path.name.endswith(".gz") else data)
    lines = lines[lines.str.strip() != ""]
    source = path.relative_to(landing).as_posix()
    frame = pd.DataFrame({"source_file": source, "line_number": lines.index.to_numpy(), "raw": lines.to_numpy()})
    entry = {"source_file": source, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(), "lines_read": len(frame)}
    return frame, entry


def read_partition(landing: Path, day: date) -> tuple[pd.DataFrame, list[dict]]:
    """Every non-blank line of one load day, in (file name, line) order, with the files' manifest."""
    frames, manifest = [], []
    for path in partition_files(landing, day):
        frame, entry = read_file_lines(path, Path(landing))
        frames.append(frame)
        manifest.append(entry)
    lines = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame({c: [] for c in LINE_COLUMNS})
    lines["source_file"] = lines["source_file"].astype("str")
    lines["raw"] = lines["raw"].astype("str")
    lines["line_number"] = lines["line_number"].astype("int64")
    return lines, manifest


def normalise_events(parsed: pd.DataFrame) -> pd.DataFrame:
    """Valid parsed lines → events: UTC timestamps, emails trimmed and lower-cased, empty optionals as NA."""
    events = pd.DataFrame({name: parsed[name] for name in EVENT_COLUMNS})
    events["timestamp"] = parse_timestamps(parsed["timestamp"])
    events["email"] = events["email"].str.strip().str.lower()
    return events


def stage_lines(lines: pd.DataFrame, load_date: date) -> StagedLines:
    """Check, normalise and deduplicate one partition's lines (pure: no I/O)."""
    contract = load_contract()
    parsed = parse_lines(lines, contract)
    reasons = quarantine_reasons(parsed, load_date, contract)
    bad = reasons.notna()
    quarantine = lines.loc[bad, LINE_COLUMNS].assign(
        load_date=load_date,
        reason=reasons[bad],
        event_id=parsed.loc[bad, "event_id"].where(parsed.loc[bad, "event_id__type"] == "VARCHAR"),
        email=parsed.loc[bad, "email"].where(parsed.loc[bad, "email__type"] == "VARCHAR").str.strip().str.lower(),
    )
    events = normalise_events(parsed[~bad])
    events[ORIGIN] = lines.loc[~bad, ["source_file", "line_number"]].assign(load_date=load_date)[ORIGIN]
    first = ~events["event_id"].duplicated(keep="first")
    events = events[first].reset_index(drop=True)
    events["is_bot"] = is_bot(events["user_agent"]).to_numpy(dtype=bool)
    return StagedLines(events=events, quarantine=quarantine.reset_index(drop=True), duplicates=int((~first).sum()))
