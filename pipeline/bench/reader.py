"""The benchmark's fixed mix of reader queries: each filter, each touch scope, emails mode and deep offsets."""

from __future__ import annotations

import time
from datetime import datetime
from itertools import cycle, islice

from sqlalchemy import func, select

from pipeline.serve.reader import query_contacts
from pipeline.settings import Settings
from pipeline.warehouse import tables as t
from pipeline.warehouse.engines import read_only_engine

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


def synthetic_reader_warehouse(settings: Settings, contacts: int = 100_000, journey_rows: int = 1_000_000, seed: int = 5) -> None:
    """Fill contacts, contact_sessions and conversions at a given scale without running the pipeline.

    Only the reader's tables are written (the reader needs nothing else), with roles that follow SPEC
    section 7 and attribute values drawn from skewed vocabularies like real traffic.
    """
    import numpy as np
    import pandas as pd

    from pipeline.runs.publish import refresh_planner_statistics
    from pipeline.warehouse.engines import create_tables, get_engine, transaction
    from pipeline.warehouse.rows import insert_frame

    rng = np.random.default_rng(seed)
    owner = np.sort(rng.integers(0, contacts, journey_rows))
    owner[:contacts] = np.arange(contacts)  # every contact has at least one session
    owner.sort()
    emails = np.array([f"contact{i:07d}@example.com" for i in range(contacts)], dtype=object)
    start = pd.Timestamp("2025-01-01", tz="UTC")
    stamps = start + pd.to_timedelta(rng.integers(0, 180 * 86_400, journey_rows), unit="s")
    frame = pd.DataFrame({"email": emails[owner], "session_timestamp": stamps})
    frame = frame.sort_values(["email", "session_timestamp"], kind="stable").reset_index(drop=True)
    frame["session_id"] = [f"{i:032x}" for i in rng.permutation(journey_rows)]
    rank = frame.groupby("email").cumcount().to_numpy()
    size = frame.groupby("email")["email"].transform("size").to_numpy()
    converting = (rng.random(journey_rows) < 0.15) | (rank == size - 1)
    first_conv = pd.Series(np.where(converting, rank, 10**9)).groupby(frame["email"]).transform("min").to_numpy()
    vocab = {"source": ["google.com", "direct", "facebook.com", "newsletter", "bing.com", "t.co", "linkedin.com", "chatgpt.com"],
             "medium": ["organic", "none", "social", "email", "cpc", "referral"],
             "campaign": ["none", "spring_sale", "summer", "brand", "retargeting"],
             "content": ["none", "banner1", "banner2", "hero"], "term": ["none", "running shoes", "trail shoes"],
             "landing_page": [f"https://www.acme-shoes.com/{p}" for p in ("", "pricing", "blog/a", "products/x", "sale")]}
    for name, values in vocab.items():
        weights = 1 / np.arange(1, len(values) + 1)
        frame[name] = np.array(values, dtype=object)[rng.choice(len(values), journey_rows, p=weights / weights.sum())]
    frame = frame.assign(anonymous_id=frame["email"], channel="Organic Search", is_first=rank == 0, is_converting=converting,
                         is_assist=(rank > 0) & (rank < first_conv), is_after=rank > first_conv, is_own_device=True)
    conv = frame[converting][["email", "session_id", "session_timestamp"]].rename(columns={"session_timestamp": "timestamp"})
    conv = conv.assign(event_id=conv["session_id"], anonymous_id=conv["email"], conversion_page="https://www.acme-shoes.com/thanks",
                       conversion_type=rng.choice(["hubspot_form", "html_form", "custom"], len(conv)),
                       conversion_id=rng.choice(["f1", "f2", "f3", "f4"], len(conv)), timestamp=conv["timestamp"] + pd.Timedelta(minutes=2))
    last = conv.groupby("email")["timestamp"].max()
    people = pd.DataFrame({"email": emails}).assign(last_conversion_at=lambda d: d["email"].map(last))
    people["summary"] = '{"total_sessions":1,"days_since_last_conversion":null,"user_journey":[]}'
    engine = get_engine(settings.warehouse_url)
    create_tables(engine)
    with transaction(engine) as conn:
        for table in (t.contact_sessions, t.conversions, t.contacts):
            conn.execute(table.delete())
        insert_frame(conn, t.contact_sessions, frame)
        insert_frame(conn, t.conversions, conv)
        _insert_people(conn, people)
    refresh_planner_statistics(engine)  # as publish does, so the reader's plans are the production ones


def _insert_people(conn, people) -> None:
    """Contacts rows with the NOT NULL columns the reader does not read filled with placeholders."""
    from pipeline.warehouse.rows import insert_frame

    stamp = people["last_conversion_at"]
    filler = {c.name: 0 for c in t.contacts.columns if not c.nullable and c.name not in people.columns}
    for name in ("first_session_at", "last_session_at", "first_conversion_at", "updated_at"):
        filler[name] = stamp
    insert_frame(conn, t.contacts, people.assign(**{**filler, "run_id": "synthetic", "is_repeat_converter": False}))
