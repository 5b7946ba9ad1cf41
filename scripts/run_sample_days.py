"""`make run`: run the real Airflow DAG once per sample load day (dag.test), then print what it did.

Airflow's home and its SQLite metadata live in the repo (.airflow/), never in ~/airflow. The warehouse
is the embedded default unless --warehouse says otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def prepare_environment(landing: Path, warehouse: str) -> None:
    """Point Airflow at the repo-local config and the tasks at this landing folder and warehouse."""
    home = Path(os.environ.setdefault("AIRFLOW_HOME", str(REPO / ".airflow")))
    home.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("AIRFLOW_CONFIG", str(REPO / "airflow.cfg"))
    os.environ.setdefault("CONTACTS_REPO", str(REPO))
    os.environ["CONTACTS_LANDING"] = str(landing.resolve())
    os.environ["CONTACTS_WAREHOUSE_URL"] = warehouse
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    sys.path.insert(0, str(REPO))


def run_dag(days) -> None:
    """One dag.test() per load day, in order; stop at the first failed run."""
    import logging
    import warnings

    warnings.simplefilter("ignore")  # dependency deprecation chatter would bury the run summary
    from airflow.dag_processing.dagbag import DagBag
    from airflow.utils import db

    logging.getLogger("airflow").setLevel(logging.WARNING)
    db.initdb()
    dag = DagBag(dag_folder=str(REPO / "dags")).get_dag("contact_snapshots")
    for day in days:
        started = datetime.now()
        logical_date = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
        run = dag.test(logical_date=logical_date, run_conf={"day": day.isoformat()})
        state = getattr(run, "state", None)
        print(f"DAG run for load day {day}: {state} in {(datetime.now() - started).total_seconds():.1f} s", flush=True)
        if state != "success":
            raise SystemExit(f"error: the DAG run for {day} ended {state}; see .airflow/logs")


def print_summary(settings) -> None:
    """The run figures, the table sizes, and a filtered query's first contact with its pagination."""
    from sqlalchemy import func, select

    from pipeline.serve.reader import query_contacts
    from pipeline.warehouse import tables as t
    from pipeline.warehouse.engines import get_engine

    with get_engine(settings.warehouse_url).connect() as conn:
        runs = conn.execute(select(t.pipeline_runs).order_by(t.pipeline_runs.c.interval_start)).mappings().all()
        sizes = {tbl.name: conn.execute(select(func.count()).select_from(tbl)).scalar() for tbl in t.PUBLISHED_TABLES}
    print("\nload day     status   read      loaded    dup   quarantined  bots   sessions  contacts")
    for r in runs:
        print(
            f"{r['interval_start']}  {r['status']:<8} {r['events_read']:<9,} {r['events_loaded']:<9,} {r['events_duplicate']:<5,} "
            f"{r['events_quarantined']:<12,} {r['events_bot']:<6,} {r['sessions_written']:<9,} {r['contacts_updated']:,}"
        )
    print("\nwarehouse tables: " + ", ".join(f"{name} {count:,}" for name, count in sizes.items()))
    request = {"medium": "organic", "touch_scope": "first"}
    response = query_contacts(settings, request)
    print(f"\nquery {json.dumps(request)} → first contact and pagination:")
    if "contacts" in response:
        print(json.dumps({"contacts": response["contacts"][:1], "pagination": response["pagination"]}, indent=2))
    else:
        print(json.dumps(response))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--landing", type=Path, default=REPO / "data" / "landing")
    parser.add_argument("--warehouse", default=f"sqlite:///{REPO / 'data' / 'warehouse.db'}")
    args = parser.parse_args()
    prepare_environment(args.landing, args.warehouse)
    from pipeline.contract.landing import landing_days
    from pipeline.settings import Settings

    days = landing_days(args.landing)
    print(f"running the contact_snapshots DAG for {len(days)} load days ({days[0]} … {days[-1]})", flush=True)
    run_dag(days)
    print_summary(Settings())


if __name__ == "__main__":
    main()
