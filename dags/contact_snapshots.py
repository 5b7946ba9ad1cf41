"""
# contact_snapshots

Nightly: stage the load day's landing partition (`dt` = the data interval start), re-sessionize the
visitors it changed (mapped over hash buckets), re-derive identities, rebuild the touched contacts'
summaries (mapped over buckets), run the quality gates, and publish everything in one transaction.
Every task is one call into `pipeline/`; tasks pass only the run id and bucket numbers.
Params: `full_refresh` rebuilds everything from the landing folder.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from airflow.sdk import CronDataIntervalTimetable, Param, TriggerRule, dag, task

DEFAULT_ARGS = {"retries": 2, "retry_delay": timedelta(minutes=2), "execution_timeout": timedelta(hours=3)}


def _settings():
    """Settings from CONTACTS_* env, overridden by Airflow Variables where set (imported lazily, in tasks)."""
    from pipeline.airflow_settings import settings_from_airflow

    return settings_from_airflow()


@dag(
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=datetime(2025, 3, 1, tzinfo=timezone.utc),
    catchup=True,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    params={"full_refresh": Param(False, type="boolean")},
    doc_md=__doc__,
    tags=["contacts"],
)
def contact_snapshots():
    @task(multiple_outputs=True)
    def start(data_interval_start=None, dag_run=None, params=None) -> dict:
        from pipeline.runs import start_interval

        return start_interval(_settings(), data_interval_start, dag_run.run_id, params["full_refresh"])

    @task
    def stage(run_id: str) -> str:
        from pipeline.runs import stage_run

        return stage_run(_settings(), run_id) and run_id

    @task
    def sessionize(run_id: str, bucket: int) -> None:
        from pipeline.steps import sessionize as sessionize_bucket

        sessionize_bucket(_settings(), run_id, bucket)

    @task
    def identify(run_id: str) -> str:
        from pipeline.steps import identify as identify_run

        return identify_run(_settings(), run_id) and run_id

    @task
    def summarise(run_id: str, bucket: int) -> None:
        from pipeline.steps import summarise as summarise_bucket

        summarise_bucket(_settings(), run_id, bucket)

    @task
    def check(run_id: str) -> str:
        from pipeline.quality import check_run

        return check_run(_settings(), run_id) and run_id

    @task
    def publish(run_id: str) -> dict:
        from pipeline.publish import publish as publish_run

        return publish_run(_settings(), run_id)

    @task(trigger_rule=TriggerRule.ONE_FAILED, retries=0)
    def mark_failed(run_id: str) -> None:
        from pipeline.runs import fail_run

        fail_run(_settings(), run_id, "an upstream task failed; see the Airflow task logs")

    run = start()
    staged = stage(run["run_id"])
    sessions = sessionize.partial(run_id=staged).expand(bucket=run["buckets"])
    identified = identify(run["run_id"])
    summaries = summarise.partial(run_id=identified).expand(bucket=run["buckets"])
    checked = check(run["run_id"])
    published = publish(checked)
    sessions >> identified
    summaries >> checked
    [staged, sessions, identified, summaries, checked, published] >> mark_failed(run["run_id"])


contact_snapshots()
