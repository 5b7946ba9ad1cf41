"""Staged events: one partition's lines checked against the contract, normalised and deduplicated (pure: no I/O).

Every non-blank line read ends up in exactly one of three places: the staged events, the duplicates, or the
quarantine (with a reason).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.contract.bots import bot_flags
from pipeline.contract.landing import LINE_COLUMNS, constant_column
from pipeline.contract.schema import check_lines, load_contract

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


@dataclass
class StagedLines:
    """What staging made of one partition's lines."""

    events: pd.DataFrame  # first copy of each event_id in this partition, normalised, with origin and is_bot
    quarantine: pd.DataFrame  # load_date, source_file, line_number, raw, reason, event_id, email
    duplicates: int  # valid lines whose event_id repeats an earlier line of this partition


def _normalised_email(texts: pa.ChunkedArray) -> pa.ChunkedArray:
    """Emails as staged: trimmed (Unicode white space) and lower-cased."""
    return pc.utf8_lower(pc.utf8_trim_whitespace(texts))


def _text_of(checked: pa.Table, name: str) -> pa.ChunkedArray:
    """A field's text where it is a JSON string, NULL otherwise."""
    return pc.if_else(pc.equal(checked[f"{name}__type"], "VARCHAR"), checked[name], pa.scalar(None, pa.string()))


def staged_chunk(con: duckdb.DuckDBPyConnection, lines: pa.Table, load_date: date) -> tuple[pa.Table, pa.Table]:
    """(valid events, quarantine rows) of one chunk of lines, in Arrow: the events normalised (UTC timestamps, emails
    trimmed and lower-cased) with their origin and is_bot; every other line with its reason."""
    contract = load_contract()
    checked = check_lines(con, lines, load_date, contract)
    bad = pc.is_valid(checked["reason"])
    kept = ["source_file", "line_number", "raw", "reason", "event_id", "event_id__type", "email", "email__type"]
    rejected = checked.select(kept).filter(bad)  # only the columns each side keeps are filtered (copied)
    day = constant_column(load_date, pa.date32(), rejected.num_rows)
    quarantine = pa.table({
        "source_file": rejected["source_file"], "line_number": rejected["line_number"], "raw": rejected["raw"], "load_date": day,
        "reason": rejected["reason"], "event_id": _text_of(rejected, "event_id"), "email": _normalised_email(_text_of(rejected, "email")),
    })  # fmt: skip
    valid = checked.select([*EVENT_COLUMNS, f"{contract.timestamp_field}__utc", "source_file", "line_number"])
    valid = valid.filter(pc.invert(bad)) if rejected.num_rows else valid
    columns = {name: valid[name] for name in EVENT_COLUMNS}
    columns["timestamp"] = valid[f"{contract.timestamp_field}__utc"]
    columns["email"] = _normalised_email(valid["email"])
    events = pa.table({
        **columns, "source_file": valid["source_file"], "line_number": valid["line_number"],
        "load_date": constant_column(load_date, pa.date32(), valid.num_rows), "is_bot": bot_flags(valid["user_agent"]),
    })  # fmt: skip
    return events, quarantine


def stage_lines(lines: pa.Table | pd.DataFrame, load_date: date) -> StagedLines:
    """Check, normalise and deduplicate one partition's lines (pure: no I/O), as frames."""
    if isinstance(lines, pd.DataFrame):
        lines = pa.Table.from_pandas(lines[LINE_COLUMNS].reset_index(drop=True), preserve_index=False)
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        events, quarantine = staged_chunk(con, lines, load_date)
    events = events.to_pandas()
    first = ~events["event_id"].duplicated(keep="first")
    if not first.all():
        events = events[first.to_numpy()].reset_index(drop=True)
    return StagedLines(events=events, quarantine=quarantine.to_pandas(), duplicates=int((~first).sum()))
