"""Builders for hand-made events and landing partitions, and readers of the published tables."""

from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path

import pandas as pd
from sqlalchemy import select

SITE = "https://shop.example.com"
REPO_DAGS = Path(__file__).resolve().parent.parent / "dags"


def event(
    event_id: str,
    visitor: str,
    timestamp: str,
    page: str = "/",
    *,
    kind: str = "page_view",
    referrer: str | None = None,
    email: str | None = None,
    meta_type: str | None = None,
    meta_id: str | None = None,
    user_agent: str | None = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
) -> dict:
    """One raw event; a page starting with / is on the test site; timestamps without a zone get Z."""
    url = page if page.startswith("http") else SITE + page
    stamp = timestamp if timestamp.endswith("Z") or "+" in timestamp[10:] else timestamp.replace(" ", "T") + "Z"
    raw = {"event_id": event_id, "anonymous_id": visitor, "timestamp": stamp, "event_type": kind, "page_url": url}
    optional = {"referrer": referrer, "email": email, "conversion_type": meta_type, "conversion_id": meta_id, "user_agent": user_agent}
    raw.update({k: v for k, v in optional.items() if v is not None})
    return raw


def conversion(event_id: str, visitor: str, timestamp: str, page: str, email: str, **kwargs) -> dict:
    kwargs.setdefault("meta_type", "html_form")
    kwargs.setdefault("meta_id", "form-1")
    return event(event_id, visitor, timestamp, page, kind="conversion", email=email, **kwargs)


def write_partition(landing: Path, day: str | date, lines: list, name: str = "events.jsonl") -> Path:
    """Write events (dicts) or raw text lines into LANDING/dt=DAY/NAME."""
    folder = Path(landing) / f"dt={day}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    text = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines)
    path.write_text(text + "\n")
    return path


def run(settings, start: str, end: str | None = None, **kwargs):
    from pipeline.runs.nightly import run_days

    return run_days(settings, date.fromisoformat(start), date.fromisoformat(end or start), **kwargs)


def table(settings, name: str, order_by: list[str] | None = None) -> pd.DataFrame:
    """A published table as a frame, ordered for stable comparisons."""
    from pipeline.warehouse import tables as t
    from pipeline.warehouse.engines import get_engine
    from pipeline.warehouse.event_store import EventStore, published_events
    from pipeline.warehouse.rows import key_columns, read_table

    tbl = t.metadata.tables[name]
    with get_engine(settings.warehouse_url).connect() as conn:
        if name == "events" and not settings.events_table:  # the event store is their system of record
            frame = published_events(conn, EventStore(settings.event_store_location()))
        else:
            frame = read_table(conn, tbl)
    keys = order_by or key_columns(tbl)
    return frame.sort_values(keys).reset_index(drop=True)


def contact_summary(settings, email: str, as_of: str = "2025-04-10 00:00:00") -> dict:
    from datetime import datetime

    from pipeline.serve.reader import query_contacts

    response = query_contacts(settings, {"emails": [email]}, as_of=datetime.fromisoformat(as_of))
    return response["contacts"][0]["summary"]


def scalar(settings, query):
    from pipeline.warehouse.engines import get_engine

    with get_engine(settings.warehouse_url).connect() as conn:
        return conn.execute(query).scalar()


__all__ = ["staged", "event", "conversion", "write_partition", "run", "table", "contact_summary", "scalar", "select"]


def staged(*lines, day: str = "2025-03-01") -> pd.DataFrame:
    """Raw event dicts → the staged events frame, exactly as staging would produce it."""
    from pipeline.contract.staging import stage_lines

    raw = [json.dumps(line) for line in lines]
    frame = pd.DataFrame({"source_file": f"dt={day}/t.jsonl", "line_number": range(1, len(raw) + 1), "raw": raw})
    result = stage_lines(frame, date.fromisoformat(day))
    assert result.quarantine.empty, result.quarantine["reason"].tolist()
    return result.events


def spy_fsyncs(monkeypatch) -> list[str]:
    """The paths os.fsync is called on from now (each call still syncs)."""
    synced, real_fsync = [], os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(os.readlink(f"/proc/self/fd/{fd}")), real_fsync(fd))[1])
    return synced
