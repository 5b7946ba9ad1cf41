"""The benchmark's attribution figures: the credit builder on the run's data, and reports over the whole history."""

from __future__ import annotations

import time

from pipeline.serve.attribution import AttributionQuery, attribution_report
from pipeline.settings import Settings
from pipeline.transform.credits import build_credits
from pipeline.warehouse import tables as t
from pipeline.warehouse.engines import get_engine
from pipeline.warehouse.rows import read_table

JOURNEY = ["email", "session_id", "session_timestamp", "source", "medium", "campaign", "channel"]
CONVERSIONS = ["event_id", "email", "session_id", "timestamp", "conversion_type", "conversion_id"]
REPORTS = ("linear", "time_decay", "markov")


def credit_builder_seconds(settings: Settings) -> dict:
    """Rebuild every contact's credits from the published journeys and conversions, timing only the builder.

    This is the attribution step's share of `summarise`: on a one-day run every contact is touched, so the
    builder sees exactly these inputs (split into buckets); over a backfill it is the whole history at once.
    """
    with get_engine(settings.warehouse_url).connect() as conn:
        journey = read_table(conn, t.contact_sessions, columns=JOURNEY)
        conversions = read_table(conn, t.conversions, columns=CONVERSIONS)
    started = time.perf_counter()
    credits = build_credits(journey=journey, conversions=conversions, settings=settings)
    seconds = time.perf_counter() - started
    return {"attribution_build_seconds": seconds, "attribution_conversions": len(conversions), "attribution_rows": len(credits)}


def report_milliseconds(settings: Settings) -> dict:
    """Wall time of a report by channel over every conversion (no window), per model; the first read warms the engine."""
    attribution_report(settings, AttributionQuery(model="first_touch"))
    times = {}
    for model in REPORTS:
        started = time.perf_counter()
        attribution_report(settings, AttributionQuery(model=model))
        times[model] = (time.perf_counter() - started) * 1000
    return {"attribution_report_ms": times}


def attribution_timings(settings: Settings) -> dict:
    return {**credit_builder_seconds(settings), **report_milliseconds(settings)}


def report_lines(f: dict) -> list[str]:
    """The figures as lines of the benchmark's table."""
    reports = "   ".join(f"{model} {ms:.0f} ms" for model, ms in f["attribution_report_ms"].items())
    return [
        f"  attribution credits: {f['attribution_build_seconds']:.2f} s to build {f['attribution_rows']:,} path rows for "
        f"{f['attribution_conversions']:,} conversions (the builder's share of summarise)",
        f"  attribution report over the whole history, by channel: {reports}",
    ]
