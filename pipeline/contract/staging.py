"""Staged events: one partition's lines checked against the contract, normalised and deduplicated (pure: no I/O).

Every non-blank line read ends up in exactly one of three places: the staged events, the duplicates, or the
quarantine (with a reason).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pandas as pd
import pyarrow as pa

from pipeline.contract.bots import is_bot
from pipeline.contract.landing import LINE_COLUMNS
from pipeline.contract.schema import load_contract, parse_lines, quarantine_reasons

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
