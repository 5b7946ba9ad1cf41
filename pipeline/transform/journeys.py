"""Session objects as a contact's journey shows them (the seed's keys and order, SPEC section 4), as JSON text.

The JSON is assembled column-wise with vectorised string concatenation: every distinct text value is
encoded once (`json.dumps`), so a million journey rows cost a few string operations, not a million dicts.
The output is byte-identical to `json.dumps(obj, ensure_ascii=False, separators=(",", ":"))`.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

STAMP = "%Y-%m-%d %H:%M:%S"


def json_text(values: pd.Series) -> pd.Series:
    """Each value as a JSON literal: strings encoded once per distinct value, missing values as null."""
    codes, uniques = pd.factorize(values.astype("str"))
    literals = np.array([json.dumps(str(u), ensure_ascii=False) for u in uniques] + ["null"], dtype=object)
    return pd.Series(literals[codes], index=values.index, dtype="str")  # code -1 (missing) picks "null"


def json_stamps(values: pd.Series) -> pd.Series:
    """UTC timestamps as quoted `YYYY-MM-DD HH:MM:SS` literals, missing ones as null."""
    text = pd.to_datetime(values, utc=True).dt.strftime(STAMP)
    return ('"' + text + '"').fillna("null").astype("str")


def json_decimal(units: pd.Series, decimals: int) -> pd.Series:
    """Exact decimals from integer units (1050 → "10.5" with 2 decimals); integral values print as integers."""
    units = units.astype("int64")
    scale = 10**decimals
    whole = (units // scale).astype(str)
    if decimals == 0:
        return whole.astype("str")
    digits = (units % scale + scale).astype(str).str[1:].str.rstrip("0")
    return (whole + np.where(digits == "", "", "." + digits)).astype("str")


def json_members(*pairs: tuple[str, pd.Series]) -> pd.Series:
    """JSON object members `"key":value,…` from (key, JSON literals) pairs, in the given order."""
    text = None
    for key, literals in pairs:
        member = json.dumps(key) + ":" + literals
        text = member if text is None else text + "," + member
    return text


def _conversion_part(journey: pd.DataFrame) -> pd.Series:
    meta = json_members(("type", json_text(journey["conversion_type"])), ("id", json_text(journey["conversion_id"])))
    part = ',"conversion":{' + json_members(
        ("email", json_text(journey["email"])),
        ("timestamp", json_stamps(journey["conversion_timestamp"])),
        ("conversion_page", json_text(journey["conversion_page"])),
        ("previous_page", json_text(journey["previous_page"])),
        ("conversion_meta", "{" + meta + "}"),
    ) + "}"
    return part.where(journey["is_converting"].astype(bool).to_numpy(), "")


def _exit_part(journey: pd.DataFrame) -> pd.Series:
    part = ',"exit":{' + json_members(
        ("exit_page", json_text(journey["exit_page"])),
        ("previous_page", json_text(journey["exit_previous_page"])),
        ("timestamp", json_stamps(journey["exit_timestamp"])),
    ) + "}"
    return part.where(journey["exit_page"].notna().to_numpy(), "")


def session_objects(journey: pd.DataFrame) -> pd.Series:
    """One JSON object per journey row; `conversion` only where this contact converted, `exit` unless it ended on one."""
    attribution = ("source", "medium", "content", "campaign", "term", "landing_page")  # the seed's key order
    head = "{" + json_members(("timestamp", json_stamps(journey["timestamp"])), *((key, json_text(journey[key])) for key in attribution))
    tail = ',"session_duration":' + journey["session_duration"].astype("int64").astype(str) + "}"
    return (head + _conversion_part(journey) + _exit_part(journey) + tail).astype("str")
