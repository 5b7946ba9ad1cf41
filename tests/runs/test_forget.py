"""Right to erasure: `forget` removes a contact from every table and keeps it out of later runs."""

from __future__ import annotations

import json

from sqlalchemy import String, Text, select

from pipeline.runs.forget import forget
from pipeline.warehouse import tables as t
from pipeline.warehouse.engines import get_engine
from tests.helpers import contact_summary, conversion, event, run, table, write_partition

ERASED = "a@x.co"


def landing_with_three_contacts(landing) -> None:
    write_partition(
        landing,
        "2025-03-01",
        [
            event("a1", "laptop", "2025-03-01 10:00:00", referrer="https://www.google.com/"),
            conversion("a2", "laptop", "2025-03-01 10:05:00", "/t", " A@x.co"),
            event("a3", "phone", "2025-03-01 18:00:00"),
            conversion("a4", "phone", "2025-03-01 18:01:00", "/t", ERASED),
            event("b1", "laptop", "2025-03-01 21:00:00", "/shared"),
            conversion("b2", "laptop", "2025-03-01 21:01:00", "/t", "b@x.co"),
            event("c1", "desk", "2025-03-01 12:00:00", referrer="https://www.bing.com/"),
            conversion("c2", "desk", "2025-03-01 12:03:00", "/t", "c@x.co"),
            '{"event_id": "q1", "email": "a@x.co", "oops"',
            json.dumps(dict(conversion("q2", "phone", "2025-03-01 10:00:00", "/t", ERASED), timestamp="2025-03-01T10:00:00")),
        ],
    )


def mentions(settings, needle: str) -> list[str]:
    """Tables with a text cell containing the needle (case-insensitive)."""
    found = []
    with get_engine(settings.warehouse_url).connect() as conn:
        for tbl in t.metadata.sorted_tables:
            for column in tbl.columns:
                if isinstance(column.type, (String, Text)):
                    rows = conn.execute(select(column).where(column.is_not(None))).scalars().all()
                    if any(needle in str(v).lower() for v in rows):
                        found.append(f"{tbl.name}.{column.name}")
    return found


def test_forget_removes_the_contact_everywhere_and_for_good(settings):
    landing_with_three_contacts(settings.landing)
    run(settings, "2025-03-01")
    other = contact_summary(settings, "c@x.co")
    assert mentions(settings, ERASED)
    result = forget(settings, " A@X.co ")
    assert result["events_erased"] == 5 and result["devices_suppressed"] == 2
    assert mentions(settings, ERASED) == []
    assert set(table(settings, "contacts")["email"]) == {"b@x.co", "c@x.co"}
    assert contact_summary(settings, "c@x.co") == other
    assert table(settings, "conversions").set_index("event_id").loc["b2", "email"] == "b@x.co"
    run(settings, "2025-03-01")
    assert mentions(settings, ERASED) == [] and contact_summary(settings, "c@x.co") == other
    run(settings, "2025-03-01", full_refresh=True)
    assert mentions(settings, ERASED) == [] and contact_summary(settings, "c@x.co") == other
    quarantine = table(settings, "quarantined_events")
    assert (quarantine["raw"] == "[erased: right to erasure]").sum() >= 4
    runs = table(settings, "pipeline_runs")
    assert (runs["events_read"] == runs["events_loaded"] + runs["events_duplicate"] + runs["events_quarantined"]).all()


def test_forget_of_an_unknown_email_changes_nothing_but_remembers_it(settings):
    landing_with_three_contacts(settings.landing)
    run(settings, "2025-03-01")
    before = table(settings, "contacts").drop(columns=["updated_at", "run_id"])
    assert forget(settings, "nobody@x.co")["events_erased"] == 0
    assert table(settings, "contacts").drop(columns=["updated_at", "run_id"]).equals(before)
    assert len(table(settings, "suppressions")) == 1
