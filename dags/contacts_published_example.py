"""
# contacts_published_example

An example downstream DAG: it runs whenever `contact_snapshots` publishes the `contacts` table (the
Asset `contact_snapshots.contacts`), not on a clock. Its one task only logs what was published (the
pipeline run and its figures, from the asset event); put a BI extract refresh or a CRM sync there.
It reads nothing and writes nothing, so it is safe to leave on. Starts paused, like every DAG here.
"""

from __future__ import annotations

from datetime import datetime, timezone

from airflow.sdk import Asset, dag, task


@dag(
    schedule=[Asset.ref(name="contact_snapshots.contacts")],
    start_date=datetime(2025, 3, 1, tzinfo=timezone.utc),
    catchup=False,
    doc_md=__doc__,
    tags=["contacts", "example"],
)
def contacts_published_example():
    @task(retries=0)
    def announce(triggering_asset_events=None) -> list[dict]:
        """One line per asset event that triggered this run: which run published, and its figures."""
        published = []
        for asset, events in (triggering_asset_events or {}).items():
            for event in events:
                published.append({"asset": asset.name, **event.extra})
                print(f"{asset.name} published by {event.extra.get('pipeline_run')}: {event.extra}")
        return published

    announce()


contacts_published_example()
