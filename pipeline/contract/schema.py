"""The raw event contract: `schemas/raw_event.schema.json` compiled into vectorised checks.

The JSON Schema is the one source of the rules. Lines are parsed once by DuckDB (its JSON functions run
over the whole column), then each schema keyword becomes a pandas mask; the first failing check of a line
names its quarantine reason. `tests/contract/test_staging.py` has a case per reason; `tests/sample/test_generate.py` checks
generated events against the schema with a JSON Schema validator.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.settings import SCHEMAS_DIR

SCHEMA_PATH = SCHEMAS_DIR / "raw_event.schema.json"
JSON_TYPES = {  # JSON Schema type -> DuckDB json_type() names
    "string": {"VARCHAR"},
    "null": {"NULL"},
    "integer": {"BIGINT", "UBIGINT"},
    "number": {"BIGINT", "UBIGINT", "DOUBLE"},
    "boolean": {"BOOLEAN"},
    "object": {"OBJECT"},
    "array": {"ARRAY"},
}


@dataclass(frozen=True)
class Contract:
    """The parts of the schema the checks use, in the schema's order."""

    schema: dict
    fields: tuple[str, ...]
    required: tuple[str, ...]
    timestamp_field: str
    max_days_after_load_day: int


@lru_cache(maxsize=1)
def load_contract() -> Contract:
    """Read the raw event schema once per process."""
    schema = json.loads(SCHEMA_PATH.read_text())
    props = schema["properties"]
    stamp = next(name for name, rule in props.items() if rule.get("format") == "date-time")
    return Contract(
        schema=schema,
        fields=tuple(props),
        required=tuple(schema["required"]),
        timestamp_field=stamp,
        max_days_after_load_day=props[stamp]["x-max-days-after-load-day"],
    )


def parse_lines(lines: pa.Table, contract: Contract) -> pd.DataFrame:
    """Parse the `raw` column: per field its text value and its JSON type (NA when the key is missing)."""
    raw = lines["raw"]
    paths = ", ".join("'$." + json.dumps(name) + "'" for name in contract.fields)
    selects = ["types IS NOT NULL AS is_json", "types[1] AS root_type"]
    for position, name in enumerate(contract.fields, start=1):
        selects += [f'types[{position + 1}] AS "{name}__type"', f'texts[{position}] AS "{name}"']
    sql = (  # two parses of each line: its types (the root's first) and its texts; TRY makes invalid JSON a NULL
        f"WITH q AS (SELECT try(json_type(raw, ['$', {paths}])) AS types, try(json_extract_string(raw, [{paths}])) AS texts FROM t) "
        f"SELECT {', '.join(selects)} FROM q"
    )
    with duckdb.connect() as con:
        con.register("t", pa.table({"raw": raw}))
        parsed = con.sql(sql).arrow().read_all().to_pandas()
    for name in contract.fields:
        if contract.schema["properties"][name].get("format") == "date-time":
            parsed[f"{name}__utc"] = parse_timestamps(parsed[name])
    return parsed


def _matches(values: pd.Series, pattern: str) -> pd.Series:
    """Regex search over a whole column in Arrow's RE2 engine (missing values do not match)."""
    found = pc.match_substring_regex(pa.array(values, from_pandas=True), pattern)
    return pd.Series(found.fill_null(False).to_numpy(zero_copy_only=False), index=values.index)


def _type_ok(types: pd.Series, allowed: str | list[str]) -> pd.Series:
    names = set().union(*(JSON_TYPES[t] for t in ([allowed] if isinstance(allowed, str) else allowed)))
    return types.isin(names) | types.isna()


def _keyword_failures(parsed: pd.DataFrame, name: str, rule: dict) -> list[tuple[pd.Series, str]]:
    """(failing mask, reason) per keyword of one property, in checking order; absent keys never fail."""
    types, values = parsed[f"{name}__type"], parsed[name]
    is_str = types == "VARCHAR"
    checks = []
    if "type" in rule:
        expected = rule["type"] if isinstance(rule["type"], str) else " or ".join(rule["type"])
        checks.append((~_type_ok(types, rule["type"]), f"{name} must be a {expected}"))
    if "enum" in rule or "const" in rule:
        allowed = rule.get("enum", [rule.get("const")])
        checks.append((types.notna() & ~(is_str & values.isin(allowed)), rule.get("x-reason", f"invalid {name}")))
    if "minLength" in rule:
        checks.append((is_str & (values.str.len() < rule["minLength"]), f"{name} is empty"))
    if rule.get("format") == "date-time":
        checks.append((is_str & parsed[f"{name}__utc"].isna(), f"unparseable {name}"))
    if "pattern" in rule:
        checks.append((is_str & ~_matches(values, rule["pattern"]), rule.get("x-reason", f"{name} does not match its pattern")))
    return checks


def _conditional_failures(parsed: pd.DataFrame, contract: Contract) -> list[tuple[pd.Series, str]]:
    """The schema's allOf/if/then rules (a conversion needs a valid email)."""
    checks = []
    for clause in contract.schema.get("allOf", []):
        applies = pd.Series(True, index=parsed.index)
        for name, rule in clause["if"].get("properties", {}).items():
            applies &= parsed[name].isin(rule.get("enum", [rule.get("const")])).fillna(False).astype(bool)
        then = clause["then"]
        for name, rule in then.get("properties", {}).items():
            reason = rule.get("x-reason", f"invalid {name}")
            if name in then.get("required", []):
                missing = parsed[f"{name}__type"].isna() | (parsed[f"{name}__type"] == "NULL")
                checks.append((applies & missing, reason))
            for mask, _ in _keyword_failures(parsed, name, rule):
                checks.append((applies & mask, reason))
    return checks


def parse_timestamps(values: pd.Series) -> pd.Series:
    """ISO 8601 strings with a zone → UTC timestamps (microseconds); anything else → NaT.

    RFC 3339 allows a lower-case `t`/`z`; digits past the microsecond are cut (not rounded) so one
    nanosecond timestamp cannot switch the whole batch to another precision.
    """
    cleaned = values.str.strip().str.upper().str.replace(" ", "T", n=1, regex=False)
    cleaned = cleaned.str.replace(r"(\.\d{6})\d+", r"\1", regex=True)
    stamps = pd.to_datetime(cleaned, format="ISO8601", utc=True, errors="coerce")
    return stamps.astype("datetime64[us, UTC]")


def quarantine_reasons(parsed: pd.DataFrame, load_date: date, contract: Contract | None = None) -> pd.Series:
    """The first contract breach of each parsed line (NA where the line is a valid event)."""
    contract = contract or load_contract()
    reason = pd.Series(pd.NA, index=parsed.index, dtype="str")

    def flag(mask: pd.Series, text: str) -> None:
        mask = mask.fillna(False).astype(bool) & reason.isna()
        reason[mask] = text

    flag(~parsed["is_json"].fillna(False).astype(bool), "invalid JSON")
    flag(parsed["root_type"] != "OBJECT", contract.schema.get("x-reason", "not a JSON object"))
    for name in contract.required:
        types = parsed[f"{name}__type"]
        flag(types.isna() | (types == "NULL"), f"missing required field {name}")
    for name in contract.fields:
        for mask, text in _keyword_failures(parsed, name, contract.schema["properties"][name]):
            flag(mask, text)
    for mask, text in _conditional_failures(parsed, contract):
        flag(mask, text)
    stamp = contract.timestamp_field
    stamps = parsed[f"{stamp}__utc"]
    latest = pd.Timestamp(load_date + timedelta(days=contract.max_days_after_load_day + 1), tz="UTC")
    flag(stamps >= latest, f"{stamp} later than the end of the day after its load day")
    return reason

