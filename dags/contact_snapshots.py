"""
# contact_snapshots

Nightly: stage the load day's landing partition (`dt` = the data interval start), re-sessionize the
visitors it changed and rebuild the touched contacts (both mapped over hash buckets), run the quality
gates, publish in one transaction, then (if `CONTACTS_REPORT_DIR` is set) write the HTML report there.
Publish updates the Assets `contact_snapshots.<table>` (one per published table) for downstream DAGs.
Params: `day` (YYYY-MM-DD) reruns that load day; `full_refresh` rebuilds from the landing folder.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from airflow.sdk import Asset, CronDataIntervalTimetable, Param, TriggerRule, dag, task

from pipeline.warehouse.tables import ASSET_TABLES

DEFAULT_ARGS = {"retries": 2, "retry_delay": timedelta(minutes=2), "execution_timeout": timedelta(hours=3)}
PUBLISHED = [Asset(f"contact_snapshots.{name}", uri=f"contacts-warehouse://published/{name}", group="contacts") for name in ASSET_TABLES]


def _settings():
    """Settings from CONTACTS_* env, overridden by Airflow Variables where set (imported lazily, in tasks)."""
    from pipeline.runs.airflow_settings import settings_from_airflow

    return settings_from_airflow()


@dag(
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=datetime(2025, 3, 1, tzinfo=timezone.utc),
    catchup=True,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    params={"day": Param(None, type=["null", "string"]), "full_refresh": Param(False, type="boolean")},
    doc_md=__doc__,
    tags=["contacts"],
)
def contact_snapshots():
    @task
    def start(data_interval_start=None, dag_run=None, params=None) -> str:
        from pipeline.runs.start import start_interval

        day = params["day"] or data_interval_start.date().isoformat()
        return start_interval(_settings(), day, dag_run.run_id, params["full_refresh"])

    @task
    def stage(pipeline_run: str) -> list[int]:
        from pipeline.runs.stage import stage_run

        return stage_run(_settings(), pipeline_run)["buckets"]

    @task
    def sessionize(pipeline_run: str, bucket: int) -> None:
        from pipeline.runs.steps import sessionize as sessionize_bucket

        sessionize_bucket(_settings(), pipeline_run, bucket)

    @task
    def identify(pipeline_run: str) -> list[int]:
        from pipeline.runs.steps import identify as identify_run

        return identify_run(_settings(), pipeline_run)["buckets"]

    @task
    def summarise(pipeline_run: str, bucket: int) -> None:
        from pipeline.runs.steps import summarise as summarise_bucket

        summarise_bucket(_settings(), pipeline_run, bucket)

    @task
    def check(pipeline_run: str) -> str:
        from pipeline.runs.quality import check_run

        check_run(_settings(), pipeline_run)
        return pipeline_run

    @task(outlets=PUBLISHED)
    def publish(pipeline_run: str, outlet_events=None) -> dict:
        from pipeline.runs.publish import publish as publish_run

        figures = publish_run(_settings(), pipeline_run)
        for asset in PUBLISHED:  # what a consumer reads from its triggering asset events
            outlet_events[asset].extra = {"pipeline_run": pipeline_run, **figures}
        return figures

    @task
    def report(_figures: dict, data_interval_start=None, params=None) -> str | None:
        from pipeline.serve.report import write_folder_report

        return write_folder_report(_settings(), params["day"] or data_interval_start.date().isoformat())

    @task(trigger_rule=TriggerRule.ONE_FAILED, retries=0)
    def mark_failed(pipeline_run: str, ti=None, dag_run=None) -> None:
        from pipeline.runs.start import fail_run, failed_tasks

        states = ti.get_task_states(dag_id=dag_run.dag_id, run_ids=[dag_run.run_id]).get(dag_run.run_id, {})
        fail_run(_settings(), pipeline_run, failed_tasks(states))

    run = start()
    buckets = stage(run)
    sessions = sessionize.partial(pipeline_run=run).expand(bucket=buckets)
    identified = identify(run)
    summaries = summarise.partial(pipeline_run=run).expand(bucket=identified)
    checked = check(run)
    published = publish(checked)
    report(published)
    sessions >> identified
    summaries >> checked
    [buckets, sessions, identified, summaries, checked, published] >> mark_failed(run)


contact_snapshots()
