"""Settings for DAG tasks: CONTACTS_* env first, Airflow Variables override (read inside tasks, never at parse)."""

from __future__ import annotations

from pipeline.settings import Settings

VARIABLES = {
    "contacts_warehouse_url": "warehouse_url",
    "contacts_landing": "landing",
    "contacts_workspace": "workspace",
    "contacts_event_store": "event_store",
    "contacts_report_dir": "report_dir",
    "contacts_buckets": "buckets",
}


def settings_from_airflow() -> Settings:
    """Env-based settings, with any of the Airflow Variables above taking precedence."""
    from airflow.sdk import Variable

    overrides = {}
    for variable, name in VARIABLES.items():
        try:
            value = Variable.get(variable, default=None)
        except Exception:  # noqa: BLE001 - no Variable backend outside a task: env only
            value = None
        if value not in (None, ""):
            overrides[name] = value
    return Settings(**overrides)
