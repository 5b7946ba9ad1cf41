"""The attribution report (SPEC section 14): credit per channel / source / medium / campaign for a window of conversions.

Rule-based models sum `attribution_credits` (each conversion's credits sum to 1); `markov` rebuilds the
window's paths (conversion paths from the same table, non-converting visitors from `sessions`) and spreads
the conversions by removal effect (`markov.py`). Sums are exact-rounded (`math.fsum`), so the answer does not
depend on the database's summation order; rounding to 2 decimals happens only in the response.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pandas as pd
from sqlalchemy import Connection, and_, exists, make_url, select
from sqlalchemy.exc import OperationalError, ProgrammingError

from pipeline.serve.markov import markov_credits
from pipeline.serve.query import CONVERSION_FILTERS, checked_fields, date_bounds, request_validator, window_conditions
from pipeline.serve.reader import snapshot
from pipeline.settings import Settings
from pipeline.warehouse import tables as t
from pipeline.warehouse.engines import WarehouseError, read_only_engine

MODELS = (*t.RULE_MODELS, "markov")
GROUPINGS = ("channel", "source", "medium", "campaign", "source_medium")
TWO_DECIMALS = Decimal("0.01")


@dataclass(frozen=True)
class AttributionQuery:
    """What a report asks for; bounds are UTC instants on the conversion timestamp, `end` exclusive."""

    model: str = "linear"
    by: str = "channel"
    start: datetime | None = None
    end: datetime | None = None
    conversion_filters: dict = field(default_factory=dict)  # conversions column → value


ATTRIBUTION_MESSAGES = {
    ("model", None): f"model must be one of {', '.join(MODELS)}",
    ("by", None): f"by must be one of {', '.join(GROUPINGS)}",
}


def parse_attribution_request(request: object) -> AttributionQuery:
    """Validate a decoded JSON request; raise RequestError naming the first bad field (as /contacts does)."""
    given = checked_fields(request, request_validator("attribution_request.schema.json"), ATTRIBUTION_MESSAGES)
    start, end = date_bounds(given)
    return AttributionQuery(
        model=given.get("model", "linear"),
        by=given.get("by", "channel"),
        start=start,
        end=end,
        conversion_filters={column: given[k] for k, column in CONVERSION_FILTERS.items() if k in given},
    )


def _group_columns(table, by: str) -> list:
    return [table.c.source, table.c.medium] if by == "source_medium" else [table.c[by]]


def _group_values(frame: pd.DataFrame, by: str) -> pd.Series:
    """The grouping's value per row; source_medium reads `google.com / organic`."""
    return (frame["source"] + " / " + frame["medium"]) if by == "source_medium" else frame[by]


def read_frame(conn: Connection, query, names: list[str]) -> pd.DataFrame:
    """A query's rows as a frame, built column-wise (pandas' from_records probes every SQLAlchemy row: 10× slower)."""
    columns = list(zip(*conn.execute(query).fetchall())) or [()] * len(names)
    return pd.DataFrame({name: np.asarray(values, dtype=object) for name, values in zip(names, columns)})


def ordered(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """The frame sorted by the keys (sorting integer codes of each key: several times faster than sorting text)."""
    codes = [pd.factorize(frame[key], sort=True)[0] for key in reversed(keys)]
    return frame.take(np.lexsort(codes)).reset_index(drop=True) if len(frame) else frame


def conversion_path_rows(conn: Connection, query: AttributionQuery) -> pd.DataFrame:
    """The path rows of the window's conversions that pass the filters, in path order, with the model's credit."""
    ac = t.attribution_credits
    conditions = window_conditions(ac.c.conversion_timestamp, query)
    filters = dict(query.conversion_filters)
    page = filters.pop("conversion_page", None)
    conditions += [ac.c[column] == value for column, value in filters.items()]
    source = ac
    if page is not None:
        conv = t.conversions
        source = ac.join(conv, and_(conv.c.event_id == ac.c.conversion_event_id, conv.c.conversion_page == page))
    credit = [ac.c[query.model]] if query.model in t.RULE_MODELS else []
    columns = [ac.c.conversion_event_id, ac.c.position, *_group_columns(ac, query.by), *credit]
    frame = read_frame(conn, select(*columns).select_from(source).where(and_(True, *conditions)), [c.name for c in columns])
    frame["value"] = _group_values(frame, query.by).astype("str")
    if query.model in t.RULE_MODELS:
        frame[query.model] = frame[query.model].astype("float64")
    return ordered(frame.astype({"position": "int64"}), ["conversion_event_id", "position"])


def non_converting_visits(conn: Connection, query: AttributionQuery) -> pd.DataFrame:
    """Group values of the sessions in the window of visitors with no counted conversion in it, per visitor in
    (timestamp, session id) order (sorted by the database: visitors along its visitor index, each visitor's sessions
    by time)."""
    s, conv = t.sessions, t.conversions
    counted = [conv.c.anonymous_id == s.c.anonymous_id, *window_conditions(conv.c.timestamp, query)]
    counted += [conv.c[column] == value for column, value in query.conversion_filters.items()]
    columns = [s.c.anonymous_id, *_group_columns(s, query.by)]
    where = and_(True, *window_conditions(s.c.timestamp, query), ~exists(select(conv.c.event_id).where(*counted)))
    visits = select(*columns).where(where).order_by(s.c.anonymous_id, s.c.timestamp, s.c.session_id)
    frame = read_frame(conn, visits, [c.name for c in columns])
    frame["value"] = _group_values(frame, query.by).astype("str")
    return frame


def markov_paths(converting: pd.DataFrame, visits: pd.DataFrame) -> pd.DataFrame:
    """Every path of the window: conversions ending in conversion, non-converting visitors ending in null."""
    conversions = pd.factorize(converting["conversion_event_id"])[0]
    visitors = pd.factorize(visits["anonymous_id"])[0] + (conversions.max(initial=-1) + 1)
    return pd.DataFrame(
        {
            "path": np.concatenate([conversions, visitors]),
            "value": np.concatenate([converting["value"].to_numpy(dtype=object), visits["value"].to_numpy(dtype=object)]),
            "converted": np.repeat([True, False], [len(converting), len(visits)]),
        }
    )


def credits_by_value(conn: Connection, query: AttributionQuery) -> tuple[int, pd.DataFrame]:
    """(N conversions, frame indexed by value with the unrounded `credit` and the `touches`)."""
    rows = conversion_path_rows(conn, query)
    conversions = int(rows["conversion_event_id"].nunique()) if len(rows) else 0
    touches = rows.groupby("value").size() if len(rows) else pd.Series(dtype="int64")
    if query.model == "markov":
        credit = markov_credits(markov_paths(rows, non_converting_visits(conn, query)), conversions)
    else:
        credit = rows.groupby("value")[query.model].agg(math.fsum) if len(rows) else pd.Series(dtype="float64")
    table = pd.DataFrame({"credit": credit, "touches": touches}).fillna({"credit": 0.0, "touches": 0})
    return conversions, table[(table["touches"] > 0) | (table["credit"] > 0)]


def two_decimals(value: float) -> int | float:
    """Rounded half away from zero to 2 decimals as the value reads (0.125 → 0.13); integral results print as integers."""
    rounded = Decimal(repr(float(value))).quantize(TWO_DECIMALS, rounding=ROUND_HALF_UP)
    return int(rounded) if rounded == rounded.to_integral_value() else float(rounded)


def report_rows(conversions: int, table: pd.DataFrame, by: str) -> list[dict]:
    """The response rows: by rounded credit descending, then value (code point order)."""
    rows = [
        {by: value, "conversions": two_decimals(credit), "share_percent": two_decimals(credit / conversions * 100), "touches": int(touches)}
        for value, credit, touches in zip(table.index, table["credit"], table["touches"])
    ]
    return sorted(rows, key=lambda row: (-Decimal(str(row["conversions"])), row[by]))


def answer(conn: Connection, query: AttributionQuery) -> dict:
    """The report for a parsed query on an open connection."""
    conversions, table = credits_by_value(conn, query)
    rows = report_rows(conversions, table, query.by) if conversions else []
    return {"model": query.model, "by": query.by, "conversions": conversions, "rows": rows}


def attribution_report(settings: Settings, query: AttributionQuery) -> dict:
    """Answer a validated query from one published state of the warehouse (read-only), for the CLI and the API."""
    try:
        with snapshot(read_only_engine(settings.warehouse_url)) as conn:
            return answer(conn, query)
    except (OperationalError, ProgrammingError) as exc:  # no file, no tables yet, server down
        where = make_url(settings.warehouse_url).render_as_string(hide_password=True)
        raise WarehouseError(
            f"cannot read the warehouse {where} (has `python -m pipeline run` published to it?): {str(exc.orig or exc).splitlines()[0]}"
        ) from None
