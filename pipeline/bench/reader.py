"""The benchmark's fixed mix of /contacts requests, built from the warehouse's own values.

About 156 distinct requests: every touch scope; the most frequent sources, mediums, campaigns, contents,
terms and landing pages, alone and per touch scope; conversion types, ids and pages; one-day and
six-hour windows, alone and with a filter; two-filter combinations; deep offsets (half-way and 90% into
the matching pairs of the broad requests); and 50-email lists (known, mixed with unknown ones, upper-case,
comma-separated, paged). The same data gives the same mix on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from sqlalchemy import func, select

from pipeline.serve.reader import query_contacts
from pipeline.settings import Settings
from pipeline.warehouse import tables as t
from pipeline.warehouse.engines import read_only_engine

AS_OF = datetime(2026, 1, 1)
SCOPES = ("any", "first", "converting", "assist", "after")
SESSION_FILTERS = {"source": 4, "medium": 4, "campaign": 3, "content": 3, "term": 3, "landing_page": 4}  # values per filter
CONVERSION_FILTERS = {"meta_type": ("conversion_type", 3), "meta_id": ("conversion_id", 4), "conversion_page": ("conversion_page", 3)}


def _frequent(conn, column, limit: int) -> list:
    """The most frequent values of a column (ties by value): stable choices for the filters."""
    rows = conn.execute(
        select(column, func.count().label("n")).where(column.is_not(None)).group_by(column).order_by(func.count().desc(), column).limit(limit)
    ).fetchall()
    return [row[0] for row in rows]


def _warehouse_values(settings: Settings) -> dict:
    """The filter values, a few contacts' emails and the days the journeys span."""
    cs, conv = t.contact_sessions, t.conversions
    with read_only_engine(settings.warehouse_url).connect() as conn:
        values = {name: _frequent(conn, cs.c[name], n) for name, n in SESSION_FILTERS.items()}
        values.update({name: _frequent(conn, conv.c[column], n) for name, (column, n) in CONVERSION_FILTERS.items()})
        emails = conn.execute(select(t.contacts.c.email).order_by(t.contacts.c.email).limit(400)).scalars().all()
        first, last = conn.execute(select(func.min(cs.c.session_timestamp), func.max(cs.c.session_timestamp))).one()
    first, last = (datetime.fromisoformat(str(v)[:10]) if v else datetime(2025, 3, 1) for v in (first, last))
    span = (last - first).days
    values["days"] = [(first + timedelta(days=span * k // 3)).strftime("%Y-%m-%d") for k in range(4)]
    values["emails"] = list(emails)
    return values


def _filter_requests(values: dict) -> list[dict]:
    """Touch scopes, single filters per scope, conversion filters and two-filter combinations."""
    mix = [{}] + [{"touch_scope": scope} for scope in SCOPES[1:]]
    for name in SESSION_FILTERS:
        for rank, value in enumerate(values[name]):
            scopes = SCOPES if rank == 0 else ("any", "first", "converting")
            mix += [{name: value} if scope == "any" else {name: value, "touch_scope": scope} for scope in scopes]
    for name in CONVERSION_FILTERS:
        for value in values[name]:
            mix += [{name: value}, {name: value, "touch_scope": "converting"}]
    pairs = [("source", "medium"), ("source", "landing_page"), ("medium", "meta_type"), ("campaign", "meta_id")]
    mix += [{a: values[a][0], b: values[b][0]} for a, b in pairs if values[a] and values[b]]
    return [request for request in mix if all(v is not None for v in request.values())]


def _window_requests(values: dict) -> list[dict]:
    """One-day windows alone and with a filter, six-hour windows, a conversion filter in a window."""
    top = {name: (values[name] or [None])[0] for name in ("source", "meta_type", "meta_id")}
    mix = []
    for day in values["days"]:
        one_day = {"start_date": day, "end_date": day}
        mix += [one_day, {**one_day, "source": top["source"]}, {**one_day, "meta_type": top["meta_type"]}]
        mix.append({"start_date": f"{day}T06:00:00Z", "end_date": f"{day}T12:00:00Z", "touch_scope": "first"})
        mix.append({**one_day, "touch_scope": "converting", "meta_id": top["meta_id"]})
    return [request for request in mix if all(v is not None for v in request.values())]


def _email_requests(values: dict) -> list[dict]:
    """50-email lists: known contacts, mixed with unknown ones, upper-case and comma-separated, and paged."""
    emails = values["emails"]
    mix = [{"emails": emails[k * 50 : (k + 1) * 50]} for k in range(4)]
    mix.append({"emails": [e for pair in zip(emails[200:225], (f"nobody{i}@example.com" for i in range(25))) for e in pair]})
    mix.append({"emails": ", ".join(e.upper() for e in emails[250:300])})
    mix.append({"emails": [f"unknown{i}@example.com" for i in range(50)]})
    mix += [{"emails": emails[300:400], "offset": offset} for offset in (0, 50)]
    return mix


def _deep_offsets(settings: Settings, broad: list[dict]) -> list[dict]:
    """Each broad request again from half-way and from 90% into its matching pairs."""
    deep = []
    for request in broad:
        total = query_contacts(settings, request, as_of=AS_OF).get("pagination", {}).get("total_records", 0)
        deep += [dict(request, offset=total // 2), dict(request, offset=total * 9 // 10)]
    return deep


def query_mix(settings: Settings) -> list[dict]:
    """The deterministic mix of distinct requests for this warehouse."""
    values = _warehouse_values(settings)
    filters = _filter_requests(values)
    broad = filters[:5] + [{name: values[name][0]} for name in ("source", "meta_type") if values[name]]
    mix = filters + _window_requests(values) + _email_requests(values) + _deep_offsets(settings, broad)
    unique = {repr(sorted(request.items())): request for request in mix}
    return list(unique.values())


def percentiles(times_ms: list[float]) -> dict:
    """p50 / p95 / max of a list of latencies (nearest rank)."""
    times = sorted(times_ms)
    if not times:
        return {"p50_ms": 0.0, "p95_ms": 0.0, "max_ms": 0.0}
    pick = lambda q: times[min(len(times) - 1, int(q * len(times)))]  # noqa: E731
    return {"p50_ms": pick(0.5), "p95_ms": pick(0.95), "max_ms": times[-1]}


def reader_latency(settings: Settings, mix: list[dict]) -> dict:
    """Wall time of each request of the mix through the reader function (parse, SQL, summaries), after a warm-up pass."""
    for request in mix:
        query_contacts(settings, request, as_of=AS_OF)
    times = []
    for request in mix:
        started = time.perf_counter()
        query_contacts(settings, request, as_of=AS_OF)
        times.append((time.perf_counter() - started) * 1000)
    return percentiles(times)
