"""Great Expectations suites derived from schemas/tables.yml: the documented column facts become the checks.

One fact, one expectation, each tagged in its `meta` with a readable `check` label and whether it is
`critical`. Cross-column facts (`consistency`) compare a column with another column or with a derived
value, optionally only on the rows meeting a `when` condition, or bound a derived value (`of`); derived
values are computed into extra columns named by their expression before validating. A table's
`run_context` values (facts from the run's other frames and settings, e.g. whether a credited session is in
the contact's journey) are added to its frame by `with_run_context` and checked like columns.
Great Expectations is imported inside functions only: importing it takes seconds.
"""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np
import pandas as pd
import yaml
from sqlalchemy import Boolean, DateTime, Float, Integer

from pipeline.settings import SCHEMAS_DIR
from pipeline.warehouse import tables as t

TABLES_DOC = SCHEMAS_DIR / "tables.yml"
FACTS = ("not_null", "unique", "accepted_values", "min", "max", "pattern")
SHOWN_VALUES = 4  # an accepted-values label lists at most this many values
DERIVED = {
    "whole_seconds": lambda a, b: (b - a) // pd.Timedelta(seconds=1),
    "whole_days": lambda a, b: (b - a) // pd.Timedelta(days=1),
    "more_than_one": lambda a: a > 1,
    "min_converting_sessions": lambda rate, n: np.ceil((rate - 0.005) * n / 100 - 1e-6),
    "sum_per": lambda key, value: value.groupby(key.to_numpy()).transform("sum"),
}
DERIVED_KEYS = ("at_least", "at_most", "equals", "of")
CALL = re.compile(r"^(\w+)\((.*)\)$")
CONDITION = re.compile(r"^(\w+)\s*(==|!=|>=|<=|>|<)\s*(.+)$")


@lru_cache(maxsize=1)
def table_docs() -> dict[str, dict]:
    """Every documented table by name (the YAML's aliases and merges are resolved by the loader)."""
    doc = yaml.safe_load(TABLES_DOC.read_text(encoding="utf-8"))
    return {table["name"]: table for table in doc["tables"]}


def pandas_dtype(column) -> str | None:
    """The dtype a run's frames hold for a column whose comparisons depend on it (None: text and dates).

    Text is left out on purpose: each type check costs GX ~20 ms of fixed overhead, and nothing compares text.
    """
    kind = column.type
    if isinstance(kind, Boolean):
        return "bool"
    if isinstance(kind, Integer):
        return "int64"
    if isinstance(kind, Float):
        return "float64"
    if isinstance(kind, DateTime):
        return "datetime64[us, UTC]"
    return None


def _call(expression: str) -> tuple[str, list[str]] | None:
    """(function, argument columns) of a derived value such as `whole_days(a, b)`; None for a plain column."""
    match = CALL.match(expression.strip())
    if not match:
        return None
    name, args = match.group(1), [a.strip() for a in match.group(2).split(",")]
    if name not in DERIVED:
        raise ValueError(f"unknown derived value {expression!r} in {TABLES_DOC.name}: use one of {sorted(DERIVED)}")
    return name, args


def with_derived(frame: pd.DataFrame, table: str) -> pd.DataFrame:
    """The frame plus one column per derived value its consistency checks compare with."""
    extra = {}
    for check in table_docs()[table].get("consistency", []):
        for key in DERIVED_KEYS:
            call = _call(str(check.get(key, "")))
            if call and all(a in frame.columns for a in call[1]):
                extra[check[key]] = DERIVED[call[0]](*(frame[a] for a in call[1]))
    return frame.assign(**extra) if extra else frame


def with_run_context(credits: pd.DataFrame, *, journeys: pd.DataFrame, lookback_days: int) -> pd.DataFrame:
    """attribution_credits plus its run_context (tables.yml): each pair's start in the run's journeys and the lookback's start."""
    starts = journeys.drop_duplicates(["email", "session_id"]).set_index(["email", "session_id"])["session_timestamp"]
    pairs = pd.MultiIndex.from_frame(credits[["email", "session_id"]])
    journey_start = pd.to_datetime(starts, utc=True).reindex(pairs).to_numpy() if len(starts) else pd.NaT
    return credits.assign(
        journey_session_timestamp=pd.Series(journey_start, index=credits.index, dtype="datetime64[us, UTC]"),
        lookback_start=credits["conversion_timestamp"] - pd.Timedelta(days=lookback_days),
    )


def _meta(check: str, critical: bool) -> dict:
    """What each GX result carries back: the label messages print, and whether a failure stops the run."""
    return {"check": check, "critical": bool(critical)}


def _bounds_label(name: str, low, high) -> str:
    """`x >= 0`, `x <= 9` or `x between 0 and 100`: a label a reader of the error line understands."""
    if low is not None and high is not None:
        return f"{name} between {low} and {high}"
    return f"{name} >= {low}" if low is not None else f"{name} <= {high}"


def _values_label(name: str, values: list) -> str:
    """`x in (a, b)`, shortened for long lists so the error line stays one readable line."""
    if len(values) <= SHOWN_VALUES:
        return f"{name} in ({', '.join(map(str, values))})"
    return f"{name} in {len(values)} accepted values"


def column_expectations(gxe, name: str, doc: dict, dtype: str | None) -> list:
    """The expectations one documented column's facts call for (its type check is never critical)."""
    critical = doc.get("critical", True)
    found = []
    if doc.get("not_null"):
        found.append(gxe.ExpectColumnValuesToNotBeNull(column=name, meta=_meta(f"{name} not null", critical)))
    if doc.get("unique"):
        found.append(gxe.ExpectColumnValuesToBeUnique(column=name, meta=_meta(f"{name} unique", critical)))
    if "accepted_values" in doc:
        values = doc["accepted_values"]
        found.append(gxe.ExpectColumnValuesToBeInSet(column=name, value_set=values, meta=_meta(_values_label(name, values), critical)))
    if "min" in doc or "max" in doc:
        low, high = doc.get("min"), doc.get("max")
        found.append(
            gxe.ExpectColumnValuesToBeBetween(
                column=name, min_value=low, max_value=high, meta=_meta(_bounds_label(name, low, high), critical)
            )
        )
    if "pattern" in doc:
        found.append(gxe.ExpectColumnValuesToMatchRegex(column=name, regex=doc["pattern"], meta=_meta(f"{name} matches {doc['pattern']}", critical)))
    if dtype is not None:
        found.append(gxe.ExpectColumnTypeToBe(column=name, type_=dtype, meta=_meta(f"{name} is {dtype}", False)))
    return found


def _condition(text: str):
    """`column op value` → a GX row condition (the value read as YAML: numbers, booleans, words)."""
    from great_expectations.expectations.row_conditions import Column

    match = CONDITION.match(text.strip())
    if not match:
        raise ValueError(f"bad condition {text!r} in {TABLES_DOC.name}: write `<column> <op> <value>`")
    column, op, value = Column(match.group(1)), match.group(2), yaml.safe_load(match.group(3))
    return {
        "==": column == value,
        "!=": column != value,
        ">": column > value,
        ">=": column >= value,
        "<": column < value,
        "<=": column <= value,
    }[op]


def consistency_expectation(gxe, check: dict):
    """One cross-column fact as a GX expectation; rows where either side is null are not compared, nor rows failing `when`."""
    column, critical = check["column"], check.get("critical", True)
    skip = "either_value_is_missing"
    when = {"row_condition": _condition(check["when"])} if "when" in check else {}
    suffix = f" when {check['when']}" if when else ""
    if "not_null_when" in check:
        label = f"{column} not null when {check['not_null_when']}"
        return gxe.ExpectColumnValuesToNotBeNull(column=column, row_condition=_condition(check["not_null_when"]), meta=_meta(label, critical))
    if "at_least" in check:
        other = check["at_least"]
        return gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A=column, column_B=other, or_equal=True, ignore_row_if=skip, meta=_meta(f"{column} >= {other}{suffix}", critical), **when
        )
    if "at_most" in check:
        other = check["at_most"]
        return gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A=other, column_B=column, or_equal=True, ignore_row_if=skip, meta=_meta(f"{column} <= {other}{suffix}", critical), **when
        )
    if "equals" in check:
        other = check["equals"]
        return gxe.ExpectColumnPairValuesToBeEqual(
            column_A=column, column_B=other, ignore_row_if=skip, meta=_meta(f"{column} == {other}{suffix}", critical), **when
        )
    raise ValueError(f"consistency check on {column!r} in {TABLES_DOC.name} has no at_least, at_most, equals, not_null_when or of")


def derived_value_expectations(gxe, check: dict) -> list:
    """The facts (min, max, accepted_values) a consistency check states about a derived value (`of`)."""
    _call(check["of"])  # an unknown derived value is an error in the document, not a failed check
    facts = {k: v for k, v in check.items() if k in ("min", "max", "accepted_values", "critical")}
    return column_expectations(gxe, check["of"], facts, None)


def suite_expectations(table: str) -> list:
    """Every expectation tables.yml implies for a run's frame of `table`, in the document's order."""
    import great_expectations.expectations as gxe

    doc, sql = table_docs()[table], t.metadata.tables[table]
    columns = [c for c in doc["columns"] if not c.get("stamped_at_publish")]
    found = [
        gxe.ExpectTableColumnsToMatchSet(
            column_set=[c["name"] for c in columns], exact_match=False, meta=_meta("documented columns present", True)
        )
    ]
    for column in columns:
        found += column_expectations(gxe, column["name"], column, pandas_dtype(sql.c[column["name"]]))
    for value in doc.get("run_context", []):
        found += column_expectations(gxe, value["name"], value, None)
    for check in doc.get("consistency", []):
        found += derived_value_expectations(gxe, check) if "of" in check else [consistency_expectation(gxe, check)]
    return found


def check_facts(column: dict) -> list[str]:
    """The check facts a documented column carries (what makes `critical` meaningful)."""
    return [fact for fact in FACTS if column.get(fact) not in (None, False)]
