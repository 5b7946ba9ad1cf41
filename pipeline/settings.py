"""One typed settings object, read from the environment (prefix ``CONTACTS_``) and passed in explicitly."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = REPO_ROOT / "data"  # the embedded default's landing folder, warehouse and runs
REFERENCE_DIR = Path(__file__).resolve().parent / "data"  # bundled reference data: referrers, GA4 categories, bots
SCHEMAS_DIR = REPO_ROOT / "schemas"  # the contracts: raw events, requests, responses, tables


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
    buckets: int = Field(default=4, ge=1, le=1024, description="Hash buckets of visitors and contacts per run.")
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

    @field_validator("warehouse_url")
    @classmethod
    def _known_backend(cls, url: str) -> str:
        if not url.startswith(("sqlite", "postgresql")):
            raise ValueError(f"unsupported warehouse URL {url!r}: use sqlite:///path.db or postgresql+psycopg://...")
        return url
