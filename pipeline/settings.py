"""One typed settings object, read from the environment (prefix ``CONTACTS_``) and passed in explicitly."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import make_url

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = REPO_ROOT / "data"  # the embedded default's landing folder, warehouse and runs
REFERENCE_DIR = Path(__file__).resolve().parent / "data"  # bundled reference data: referrers, GA4 categories, bots
SCHEMAS_DIR = REPO_ROOT / "schemas"  # the contracts: raw events, requests, responses, tables
SHAPING_SETTINGS = {  # the settings that shape the derived tables: change one, and a full refresh is due
    "session_timeout_minutes", "referral_exclusions", "own_domains", "events_table", "attribution_lookback_days", "attribution_half_life_days",
}


class Settings(BaseSettings):
    """Every knob of the pipeline; defaults are the embedded set-up (SQLite file, local landing folder)."""

    model_config = SettingsConfigDict(env_prefix="CONTACTS_", extra="ignore")

    warehouse_url: str = Field(
        default=f"sqlite:///{DATA_DIR / 'warehouse.db'}",
        description="SQLAlchemy URL of the warehouse (sqlite:///file.db or postgresql+psycopg://...).",
    )
    landing: Path = Field(default=DATA_DIR / "landing", description="Landing folder with dt=YYYY-MM-DD partitions.")
    workspace: Path = Field(
        default=DATA_DIR / "runs",
        description="Scratch folder where a run keeps its intermediate files until it publishes; "
        "must be shared by all workers when buckets run on several machines.",
    )
    event_store: str | None = Field(
        default=None,
        description="Where the staged events live as Parquet (SPEC §8): a folder or any pyarrow/fsspec URL (s3://bucket/prefix), "
        "shared by all workers. Default: beside the SQLite file (`warehouse.db` → `warehouse_events/`), or for other "
        "warehouses `event-store/` beside the workspace.",
    )
    events_table: bool = Field(
        default=False, description="Also keep the staged events in the SQL table `events` (the event store is their system of record)."
    )
    event_store_grace_minutes: float = Field(
        default=10, ge=0, description="Event files a publish replaced stay this long for readers still holding the older snapshot."
    )
    bucket_events: int = Field(
        default=400_000, ge=1_000,
        description="Events per bucket a run aims at: a bigger load (a 5M-event day, a full refresh) gets more buckets, so a "
        "bucket's memory stays the same whatever the size of the day or the history.",
    )
    stage_chunk_bytes: int = Field(default=32 << 20, ge=64, description="Staging checks a landing file this many bytes of lines at a time.")
    stage_memory_mb: int = Field(default=512, ge=64, description="DuckDB's memory limit while staging (it spills to the workspace beyond it).")
    quality_worker: bool = Field(
        default=True,
        description="Runs chained in one process (`python -m pipeline run`) validate in a second process that imports Great "
        "Expectations once, while the run computes; off: validate in the run's own process, as the DAG's check task does.",
    )
    read_ahead: bool = Field(
        default=True,
        description="A chain of day runs (a backfill) reads and checks the next day's landing files on a thread while the "
        "current run computes and publishes; off: each run reads its own files when it stages.",
    )
    fault_point: str | None = Field(default=None, description="Tests only: a fault point of runs.faults where the run fails (see fault_action).")
    fault_marker: str | None = Field(default=None, description="Tests only: a file the fault point's name is appended to when it fires (once per file).")
    fault_action: Literal["kill", "raise", "pause"] = Field(
        default="kill", description="Tests only: what the fault point does (SIGKILL, raise, or wait for the test).")
    fault_trace: str | None = Field(default=None, description="Tests only: a file each step's name is appended to as a run enters it.")
    session_timeout_minutes: int = Field(default=30, gt=0)
    referral_exclusions: list[str] = Field(
        default_factory=lambda: [
            "paypal.com",
            "stripe.com",
            "checkout.stripe.com",
            "klarna.com",
            "adyen.com",
            "mollie.com",
            "3dsecure.io",
        ],
        description="Referrer domains that never split a session and count as no referrer (payment providers).",
    )
    own_domains: list[str] = Field(
        default_factory=list, description="Registered domains of the site itself: referrers from them are internal."
    )
    buckets: int = Field(
        default=1, ge=1, le=1024,
        description="The least hash buckets of visitors and contacts a run uses (a big load gets more: `bucket_events`). "
        "Each bucket costs every step a fixed share, so one machine runs fastest with few; on a cluster, use the worker slots.",
    )
    lock_wait_seconds: int = Field(
        default=3 * 3600, ge=0, description="How long a run waits for another run to finish before giving up."
    )
    lock_stale_minutes: int = Field(
        default=120, gt=0, description="A run lock whose holder showed no sign of life for this long is taken over."
    )
    suppression_salt: str = Field(
        default="contacts-suppression-v1", description="Salt for the hashes of erased emails (right to erasure)."
    )
    api_rate_limit_per_minute: int = Field(
        default=6000, ge=1, description="HTTP API: requests per minute per API key (token bucket; bursts up to this many). "
        "A flood guard: the default lets a client page through everything at full speed.",
    )
    api_max_body_bytes: int = Field(
        default=1_048_576, ge=1, description="HTTP API: largest request body accepted; bigger ones get 413 unread."
    )
    attribution_lookback_days: int = Field(
        default=30, ge=1, description="Multi-touch attribution: a conversion's path holds the journey sessions that started "
        "at most this many days before it (its own session always). Changing it needs a full refresh.",
    )
    attribution_half_life_days: float = Field(
        default=7.0, gt=0, description="Multi-touch attribution, time_decay model: a touch this many days before the "
        "conversion weighs half as much as one at the conversion. Changing it needs a full refresh.",
    )
    report_dir: Path | None = Field(
        default=None, description="Folder where the nightly DAG's last task writes the HTML report "
        "(contacts-report-DAY.html, up to 30 days up to the load day); unset: no report is written.",
    )
    api_reader_threads: int = Field(
        default=4, ge=1, description="HTTP API: requests answered at once per process (more wait their turn); "
        "a few threads keep the CPU busy while SQL runs, more only fight over Python's lock.",
    )
    api_key_cache_seconds: float = Field(
        default=10.0, ge=0, description="HTTP API: how long a process trusts a key it has checked (a revoked key stops "
        "working within this time); 0 checks the warehouse on every request.",
    )

    @field_validator("referral_exclusions", "own_domains")
    @classmethod
    def _lower_domains(cls, domains: list[str]) -> list[str]:
        return [d.strip().lower() for d in domains if d.strip()]

    def derived_fingerprint(self) -> str:
        """A hash of the settings that shape the derived tables: a rerun under other values recomputes (SPEC §9)."""
        shaping = self.model_dump(include=SHAPING_SETTINGS, mode="json")
        return hashlib.sha256(json.dumps(shaping, sort_keys=True).encode()).hexdigest()

    def event_store_location(self) -> str:
        """The event store's folder or URL: the setting, else beside the SQLite file (or the workspace for other warehouses)."""
        if self.event_store:
            return self.event_store
        url = make_url(self.warehouse_url)
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            database = Path(url.database)
            return str(database.with_name(f"{database.stem}_events"))
        digest = hashlib.sha256(self.warehouse_url.encode()).hexdigest()[:12]
        return str(Path(self.workspace).parent / "event-store" / f"{url.get_backend_name()}-{digest}")

    @field_validator("warehouse_url")
    @classmethod
    def _known_backend(cls, url: str) -> str:
        if not url.startswith(("sqlite", "postgresql")):
            raise ValueError(f"unsupported warehouse URL {url!r}: use sqlite:///path.db or postgresql+psycopg://...")
        return url
