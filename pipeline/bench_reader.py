"""The benchmark's fixed mix of reader queries: each filter, each touch scope, emails mode and deep offsets."""

from __future__ import annotations

import time
from datetime import datetime
from itertools import cycle, islice

from sqlalchemy import func, select

from pipeline import tables as t
from pipeline.reader import query_contacts
from pipeline.settings import Settings
from pipeline.warehouse import read_only_engine

AS_OF = datetime(2026, 1, 1)
SCOPES = ("any", "first", "converting", "assist", "after")


def _frequent(conn, column, limit: int = 3) -> list:
    """The most frequent values of a column (ties by value): stable choices for the filters."""
    rows = conn.execute(
        select(column, func.count().label("n")).where(column.is_not(None)).group_by(column).order_by(func.count().desc(), column).limit(limit)
    ).fetchall()
    return [row[0] for row in rows]


def query_mix(settings: Settings, size: int = 200) -> list[dict]:
    """A deterministic list of requests built from the warehouse's own values."""
    cs, conv = t.contact_sessions, t.conversions
    with read_only_engine(settings.warehouse_url).connect() as conn:
        values = {name: _frequent(conn, cs.c[name]) for name in ("source", "medium", "campaign", "content", "term", "landing_page")}
        values.update({"conversion_page": _frequent(conn, conv.c.conversion_page), "meta_type": _frequent(conn, conv.c.conversion_type),
                       "meta_id": _frequent(conn, conv.c.conversion_id)})
        emails = conn.execute(select(t.contacts.c.email).order_by(t.contacts.c.email).limit(60)).scalars().all()
        first_day = conn.execute(select(func.min(cs.c.session_timestamp))).scalar()
    day = str(first_day)[:10] if first_day else "2025-03-01"
    mix = [{"touch_scope": scope} for scope in SCOPES]
    for name, options in values.items():
        for value in options:
            for scope in ("any", "first", "converting"):
                mix.append({name: value, "touch_scope": scope})
    mix.append({"start_date": day, "end_date": day})
    mix.append({"start_date": f"{day}T06:00:00Z", "end_date": f"{day}T18:00:00Z", "medium": (values["medium"] or ["none"])[0]})
    mix.append({"emails": emails[:50]})
    mix.append({"emails": ", ".join(e.upper() for e in emails[:30]) + ", unknown@example.com"})
    mix.append({"emails": emails, "offset": 50})
    return _with_deep_offsets(settings, mix, size)


def _with_deep_offsets(settings: Settings, mix: list[dict], size: int) -> list[dict]:
    """Every fifth request pages deep: offset at half and at 90% of its total_records."""
    deep = []
    for request in mix[:10]:
        total = query_contacts(settings, request, as_of=AS_OF).get("pagination", {}).get("total_records", 0)
        deep += [dict(request, offset=total // 2), dict(request, offset=total * 9 // 10)]
    return list(islice(cycle(mix + deep), size))


def reader_latency(settings: Settings, size: int = 200) -> dict:
    """Wall time of each request of the mix (parse, SQL, summaries), as p50 / p95 / max in milliseconds."""
    requests = query_mix(settings, size)
    query_contacts(settings, requests[0], as_of=AS_OF)  # warm the engine and the caches
    times = []
    for request in requests:
        started = time.perf_counter()
        query_contacts(settings, request, as_of=AS_OF)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    pick = lambda q: times[min(len(times) - 1, int(q * len(times)))]  # noqa: E731
    return {"reader_queries": len(times), "reader_p50_ms": pick(0.5), "reader_p95_ms": pick(0.95), "reader_max_ms": times[-1]}
