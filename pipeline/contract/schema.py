"""The raw event contract: `schemas/raw_event.schema.json` compiled into SQL checks that DuckDB runs over a chunk of lines.

The JSON Schema is the one source of the rules. Each line's fields are extracted by DuckDB's JSON functions with
their JSON types, each schema keyword becomes a SQL condition, and one CASE names a line's first failing check: its
quarantine reason (NULL: a valid event). Timestamps in the everyday ISO 8601 form are cast by DuckDB; any other form
goes through pandas' ISO 8601 parser (`parse_timestamps`), which defines what is accepted. `tests/contract/test_staging.py`
has a case per reason; `tests/sample/test_generate.py` checks generated events against the schema with a JSON Schema validator.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

import duckdb
import numpy as np
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


STAMP_FAST = (  # the everyday form, which DuckDB's cast reads exactly as pandas does (tests compare them case by case)
    r"^\d{4}-\d{2}-\d{2}T(?:[01]\d|2[0-3]):[0-5]\d(?::[0-5]\d(?:\.\d{1,6})?)?(?:Z|[+-](?:[01]\d|2[0-3]):[0-5]\d)$"
)


def _literal(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _names(allowed: str | list[str]) -> str:
    """The DuckDB json_type() names a JSON Schema type (or list of types) allows, as a SQL list."""
    names = sorted(set().union(*(JSON_TYPES[t] for t in ([allowed] if isinstance(allowed, str) else allowed))))
    return ", ".join(map(_literal, names))


def _column(name: str, suffix: str = "") -> str:
    return '"' + name + suffix + '"'


def parse_sql(contract: Contract) -> str:
    """SELECT over `lines` (source_file, line_number, raw): per field its text and JSON type, and for the timestamp
    field its value where DuckDB reads it (`…__fast`) and whether pandas must read it instead (`…__slow`)."""
    paths = ", ".join("'$." + json.dumps(name) + "'" for name in contract.fields)
    texts = _literal(json.dumps(dict.fromkeys(contract.fields, "VARCHAR")))  # every field as text (a struct: one parse)
    fields = [f"types[{i + 2}] AS {_column(n, '__type')}, texts.{_column(n)} AS {_column(n)}" for i, n in enumerate(contract.fields)]
    stamp, kind = _column(contract.timestamp_field), _column(contract.timestamp_field, "__type")
    return (  # two parses of each line: its types (the root's first) and its texts; TRY makes invalid JSON a NULL
        f"WITH p AS (SELECT source_file, line_number, raw, try(json_type(raw, ['$', {paths}])) AS types, "
        f"try(from_json(raw, {texts})) AS texts FROM lines), "
        f"q AS (SELECT source_file, line_number, raw, types IS NOT NULL AS is_json, types[1] AS root_type, {', '.join(fields)} FROM p), "
        f"r AS (SELECT *, {kind} = 'VARCHAR' AND regexp_full_match({stamp}, {_literal(STAMP_FAST)}) AS fast FROM q) "
        f"SELECT * EXCLUDE (fast), CASE WHEN fast THEN try_cast({stamp} AS TIMESTAMPTZ) END AS {_column(contract.timestamp_field, '__fast')}, "
        f"coalesce({kind} = 'VARCHAR' AND NOT fast, false) AS {_column(contract.timestamp_field, '__slow')} FROM r"
    )


def _keyword_failures(name: str, rule: dict) -> list[tuple[str, str]]:
    """(SQL condition, reason) per keyword of one property, in checking order; absent keys never fail."""
    kind, value, is_str = _column(name, "__type"), _column(name), f"{_column(name, '__type')} = 'VARCHAR'"
    checks = []
    if "type" in rule:
        expected = rule["type"] if isinstance(rule["type"], str) else " or ".join(rule["type"])
        checks.append((f"NOT ({kind} IN ({_names(rule['type'])}) OR {kind} IS NULL)", f"{name} must be a {expected}"))
    if "enum" in rule or "const" in rule:
        allowed = ", ".join(map(_literal, rule.get("enum", [rule.get("const")])))
        checks.append((f"{kind} IS NOT NULL AND NOT coalesce({is_str} AND {value} IN ({allowed}), false)", rule.get("x-reason", f"invalid {name}")))
    if "minLength" in rule:
        checks.append((f"{is_str} AND length({value}) < {int(rule['minLength'])}", f"{name} is empty"))
    if rule.get("format") == "date-time":
        checks.append((f"{is_str} AND {_column(name, '__utc')} IS NULL", f"unparseable {name}"))
    if "pattern" in rule:
        checks.append((f"{is_str} AND NOT regexp_matches({value}, {_literal(rule['pattern'])})", rule.get("x-reason", f"{name} does not match its pattern")))
    return checks


def _conditional_failures(contract: Contract) -> list[tuple[str, str]]:
    """The schema's allOf/if/then rules (a conversion needs a valid email)."""
    checks = []
    for clause in contract.schema.get("allOf", []):
        applies = " AND ".join(
            f"coalesce({_column(name)} IN ({', '.join(map(_literal, rule.get('enum', [rule.get('const')])))}), false)"
            for name, rule in clause["if"].get("properties", {}).items()
        ) or "true"
        then = clause["then"]
        for name, rule in then.get("properties", {}).items():
            reason = rule.get("x-reason", f"invalid {name}")
            if name in then.get("required", []):
                checks.append((f"{applies} AND ({_column(name, '__type')} IS NULL OR {_column(name, '__type')} = 'NULL')", reason))
            for condition, _ in _keyword_failures(name, rule):
                checks.append((f"{applies} AND {condition}", reason))
    return checks


def reason_sql(contract: Contract, load_date: date) -> str:
    """The first contract breach of each parsed line (`parsed`, with `…__utc` for the timestamp) as SQL: NULL where
    the line is a valid event."""
    checks = [("NOT is_json", "invalid JSON"), ("root_type IS DISTINCT FROM 'OBJECT'", contract.schema.get("x-reason", "not a JSON object"))]
    checks += [(f"{_column(n, '__type')} IS NULL OR {_column(n, '__type')} = 'NULL'", f"missing required field {n}") for n in contract.required]
    for name in contract.fields:
        checks += _keyword_failures(name, contract.schema["properties"][name])
    checks += _conditional_failures(contract)
    stamp = contract.timestamp_field
    latest = (load_date + timedelta(days=contract.max_days_after_load_day + 1)).isoformat()
    checks.append((f"{_column(stamp, '__utc')} >= TIMESTAMPTZ '{latest} 00:00:00+00'", f"{stamp} later than the end of the day after its load day"))
    return "CASE " + " ".join(f"WHEN {condition} THEN {_literal(reason)}" for condition, reason in checks) + " END"


DUCKDB_BATCH_ROWS = 8192


def in_batches(rows: pa.Table) -> pa.Table:
    """The same rows in record batches of DUCKDB_BATCH_ROWS (no copy): DuckDB scans an Arrow table a batch per
    thread, so one big batch would parse on one core (2 cores: a chunk's parse 1.7 s → 1.0 s a 1M-line day)."""
    return pa.Table.from_batches(rows.to_batches(max_chunksize=DUCKDB_BATCH_ROWS), schema=rows.schema)


def check_lines(con: duckdb.DuckDBPyConnection, lines: pa.Table, load_date: date, contract: Contract | None = None) -> pa.Table:
    """Every line of a chunk, parsed and checked: its fields (text), `timestamp` as UTC, and `reason` (NULL: valid);
    `raw`, the line as read, only where there is a reason.

    One query does it all when every timestamp is in the everyday form DuckDB reads; otherwise pandas reads the
    unusual ones and the reasons are asked again. Rows come back whole, in any order (threads may reorder them).
    """
    contract = contract or load_contract()
    stamp, utc = contract.timestamp_field, _column(contract.timestamp_field, "__utc")
    con.register("lines", in_batches(lines))
    checked = _raw_of_rejected(con.sql(
        f"SELECT *, {reason_sql(contract, load_date)} AS reason FROM (SELECT *, {_column(stamp, '__fast')} AS {utc} FROM ({parse_sql(contract)}))"
    )).arrow().read_all()
    con.unregister("lines")
    if not pc.any(checked[f"{stamp}__slow"]).as_py():
        return checked
    parsed = checked.drop_columns([f"{stamp}__utc", "reason"])  # unusual forms: pandas' ISO 8601 parser decides
    slow = parsed[f"{stamp}__slow"].to_numpy(zero_copy_only=False)
    rows = np.flatnonzero(slow)
    texts = parsed[stamp].take(pa.array(rows)).to_pandas().astype("str")
    values = parsed[f"{stamp}__fast"].combine_chunks().to_pandas()
    values.iloc[rows] = parse_timestamps(texts).to_numpy()
    parsed = parsed.append_column(f"{stamp}__utc", pa.array(values, type=pa.timestamp("us", tz="UTC")))
    con.register("parsed", in_batches(parsed))
    checked = _raw_of_rejected(con.sql(f"SELECT *, {reason_sql(contract, load_date)} AS reason FROM parsed")).arrow().read_all()
    con.unregister("parsed")
    return checked


def _raw_of_rejected(checked: duckdb.DuckDBPyRelation) -> duckdb.DuckDBPyRelation:
    """The line's text only where it goes to quarantine: a valid event's is not kept, and carrying it out of DuckDB
    was 40% of the checked rows' bytes."""
    return checked.select("* REPLACE (CASE WHEN reason IS NULL THEN NULL ELSE raw END AS raw)")


def parse_timestamps(values: pd.Series) -> pd.Series:
    """ISO 8601 strings with a zone → UTC timestamps (microseconds); anything else → NaT.

    RFC 3339 allows a lower-case `t`/`z`; digits past the microsecond are cut (not rounded) so one
    nanosecond timestamp cannot switch the whole batch to another precision.
    """
    cleaned = values.str.strip().str.upper().str.replace(" ", "T", n=1, regex=False)
    cleaned = cleaned.str.replace(r"(\.\d{6})\d+", r"\1", regex=True)
    stamps = pd.to_datetime(cleaned, format="ISO8601", utc=True, errors="coerce")
    return stamps.astype("datetime64[us, UTC]")
