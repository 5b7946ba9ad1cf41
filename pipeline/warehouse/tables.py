"""Every warehouse table in one SQLAlchemy metadata (SQLite and PostgreSQL); columns documented in schemas/tables.yml."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()
ROLES = ("is_first", "is_converting", "is_assist", "is_after")
SESSION_FILTERS = ("source", "medium", "campaign", "content", "term", "landing_page")


def _touch_columns(prefix: str) -> list[Column]:
    """Flat BI columns of one touch (first / converting / recent session)."""
    return [
        Column(f"{prefix}_timestamp", DateTime),
        Column(f"{prefix}_source", Text),
        Column(f"{prefix}_medium", Text),
        Column(f"{prefix}_campaign", Text),
        Column(f"{prefix}_channel", Text),
        Column(f"{prefix}_landing_page", Text),
    ]


def _summary_columns() -> list[Column]:
    """The contact summary as flat columns plus its JSON (shared by contacts and contacts_history)."""
    return [
        Column("total_sessions", Integer, nullable=False),
        Column("total_conversions", Integer, nullable=False),
        Column("conversion_rate_percent", Float, nullable=False),
        Column("is_repeat_converter", Boolean, nullable=False),
        Column("avg_days_between_conversions", Float),
        Column("avg_days_between_sessions", Float),
        Column("avg_session_duration_seconds", Integer, nullable=False),
        Column("days_to_convert", Integer, nullable=False),
        Column("first_session_at", DateTime, nullable=False),
        Column("last_session_at", DateTime, nullable=False),
        Column("first_conversion_at", DateTime, nullable=False),
        Column("last_conversion_at", DateTime, nullable=False),
        *_touch_columns("first_touch"),
        *_touch_columns("converting_touch"),
        *_touch_columns("recent_touch"),
        Column("summary", Text, nullable=False),
    ]


def _attribution_columns() -> list[Column]:
    """A session's traffic source (SPEC section 5)."""
    return [
        Column("source", Text, nullable=False),
        Column("medium", Text, nullable=False),
        Column("campaign", Text, nullable=False),
        Column("content", Text, nullable=False),
        Column("term", Text, nullable=False),
        Column("channel", Text, nullable=False),
        Column("landing_page", Text, nullable=False),
    ]


def _role_columns() -> list[Column]:
    """A pair's touch roles (the reader's touch scopes)."""
    return [Column(role, Boolean, nullable=False) for role in ROLES]


def _conversion_filter_columns() -> list[Column]:
    """The conversion columns the reader filters on, each with its flag "the pair's first conversion with this value"."""
    return [
        Column("conversion_type", Text),
        Column("conversion_id", Text),
        Column("conversion_page", Text, nullable=False),
        *[Column(flag, Boolean, nullable=False) for flag in CONVERSION_FILTERS.values()],
    ]


events = Table(
    "events",
    metadata,
    Column("event_id", Text, primary_key=True),
    Column("anonymous_id", Text, nullable=False),
    Column("timestamp", DateTime, nullable=False),
    Column("event_type", String(16), nullable=False),
    Column("page_url", Text, nullable=False),
    Column("referrer", Text),
    Column("email", Text),
    Column("conversion_type", Text),
    Column("conversion_id", Text),
    Column("user_agent", Text),
    Column("is_bot", Boolean, nullable=False),
    Column("load_date", Date, nullable=False),
    Column("source_file", Text, nullable=False),
    Column("line_number", Integer, nullable=False),
    Index("ix_events_visitor_time", "anonymous_id", "timestamp"),
    Index("ix_events_load_date", "load_date"),
)

quarantined_events = Table(
    "quarantined_events",
    metadata,
    Column("load_date", Date, primary_key=True),
    Column("source_file", Text, primary_key=True),
    Column("line_number", Integer, primary_key=True),
    Column("raw", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("event_id", Text),
    Column("email", Text),
)

sessions = Table(
    "sessions",
    metadata,
    Column("session_id", String(32), nullable=False),
    Column("anonymous_id", Text, nullable=False),
    Column("timestamp", DateTime, nullable=False),
    Column("end_timestamp", DateTime, nullable=False),
    Column("session_duration", Integer, nullable=False),
    Column("first_event_id", Text, nullable=False),
    Column("page_views", Integer, nullable=False),
    Column("conversions", Integer, nullable=False),
    *_attribution_columns(),
    Column("exit_page", Text),
    Column("exit_previous_page", Text),
    Column("exit_timestamp", DateTime),
    # a visitor's sessions (sessionize's resume points, summarise's journeys, markov's paths), and a session through
    # its visitor: each day's sessions land all over a random-key index, so its size is what each publish rewrites
    # (the visitor alone, not the time; the key, unique by construction, none of its own: `info`)
    Index("ix_sessions_visitor", "anonymous_id"),
    info={"key": ["session_id"]},
)

conversions = Table(
    "conversions",
    metadata,
    Column("event_id", Text, primary_key=True),
    Column("email", Text, nullable=False),
    Column("anonymous_id", Text, nullable=False),
    Column("session_id", String(32), nullable=False),
    Column("timestamp", DateTime, nullable=False),
    Column("conversion_page", Text, nullable=False),
    Column("previous_page", Text),
    Column("conversion_type", Text),
    Column("conversion_id", Text),
    Index("ix_conversions_email", "email", "session_id"),
    Index("ix_conversions_visitor", "anonymous_id"),
    Index("ix_conversions_session", "session_id"),
)

identities = Table(
    "identities",
    metadata,
    Column("anonymous_id", Text, primary_key=True),
    Column("email", Text, nullable=False),
    Column("first_conversion_at", DateTime, nullable=False),
    Column("first_conversion_event_id", Text, nullable=False),
    Index("ix_identities_email", "email"),
)

contact_sessions = Table(
    "contact_sessions",
    metadata,
    Column("email", Text, primary_key=True),
    Column("session_id", String(32), primary_key=True),
    Column("session_timestamp", DateTime, nullable=False),
    Column("anonymous_id", Text, nullable=False),
    *_attribution_columns(),
    Column("is_first", Boolean, nullable=False),
    Column("is_converting", Boolean, nullable=False),
    Column("is_assist", Boolean, nullable=False),
    Column("is_after", Boolean, nullable=False),
    Column("is_own_device", Boolean, nullable=False),
    # the reader scans matching pairs in (session_timestamp, session_id, email) order and counts them:
    # one index per filter (and role) with that order behind it, plus a per-contact index for the
    # "earlier matching pair of the same contact" probe (see the EXPLAIN notes in README); the order index
    # covers every filter, so a request with several can be counted in one pass without table lookups
    Index("ix_contact_sessions_pairs", "session_timestamp", "session_id", "email", *ROLES, *SESSION_FILTERS),
    Index("ix_contact_sessions_contact", "email", "session_timestamp", "session_id"),
    *[
        Index(f"ix_contact_sessions_{name}", name, "session_timestamp", "session_id", "email", *ROLES)
        for name in SESSION_FILTERS
    ],
    *[Index(f"ix_contact_sessions_{role}", role, "session_timestamp", "session_id", "email") for role in ROLES],
)

RULE_MODELS = ("first_touch", "last_touch", "last_non_direct", "linear", "position_based", "time_decay")
attribution_credits = Table(
    "attribution_credits",
    metadata,
    Column("conversion_event_id", Text, primary_key=True),
    Column("email", Text, nullable=False),
    Column("conversion_timestamp", DateTime, nullable=False),
    Column("conversion_type", Text),
    Column("conversion_id", Text),
    Column("session_id", String(32), primary_key=True),
    Column("session_timestamp", DateTime, nullable=False),
    Column("position", Integer, nullable=False),
    Column("path_length", Integer, nullable=False),
    Column("source", Text, nullable=False),
    Column("medium", Text, nullable=False),
    Column("campaign", Text, nullable=False),
    Column("channel", Text, nullable=False),
    *[Column(model, Float, nullable=False) for model in RULE_MODELS],  # SPEC section 14; pipeline/transform/credits.py
    Index("ix_attribution_credits_contact", "email"),  # publish replaces a contact's rows
    Index("ix_attribution_credits_window", "conversion_timestamp"),  # reports over a window of conversions
)

CONVERSION_FILTERS = {  # conversion column → its flag "the pair's first conversion with this value"
    "conversion_type": "first_in_pair_by_type", "conversion_id": "first_in_pair_by_id", "conversion_page": "first_in_pair_by_page",
}

contact_conversions = Table(
    "contact_conversions",
    metadata,
    Column("email", Text, primary_key=True),
    Column("event_id", Text, primary_key=True),
    Column("session_id", String(32), nullable=False),
    Column("session_timestamp", DateTime, nullable=False),
    *_role_columns(),
    *[c for c in _attribution_columns() if c.name in SESSION_FILTERS],
    Column("conversion_timestamp", DateTime, nullable=False),
    *_conversion_filter_columns(),
    # conversion filters walk one of these in pair order, covering the flags, roles, the conversion time and the
    # session filters; the per-contact index serves the "earlier matching pair of the same contact" probe
    *[
        Index(f"ix_contact_conversions_{name}", name, "session_timestamp", "session_id", "email", flag, *ROLES,
              "conversion_timestamp", *SESSION_FILTERS)
        for name, flag in CONVERSION_FILTERS.items()
    ],
    Index("ix_contact_conversions_contact", "email", "session_timestamp", "session_id"),
)

# Matching (contact, session) pairs per UTC day of the session, touch scope and single filter (a session attribute
# or a conversion column), kept by publish (warehouse.reader_counts): total_records and deep offsets without a count.
reader_pair_counts = Table(
    "reader_pair_counts",
    metadata,
    Column("dim", String(16), primary_key=True),
    Column("value", Text, primary_key=True),
    Column("scope", String(16), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("pairs", Integer, nullable=False),
)

# What reader_pair_counts holds: the pairs as they were counted, so publish can take out a contact's old pairs.
reader_counted_pairs = Table(
    "reader_counted_pairs",
    metadata,
    Column("email", Text, primary_key=True),
    Column("session_id", String(32), primary_key=True),
    Column("day", Date, nullable=False),
    *_role_columns(),
    *[c for c in _attribution_columns() if c.name in SESSION_FILTERS],
)

# The same for the contacts' conversions: what the conversion columns' counts hold.
reader_counted_conversions = Table(
    "reader_counted_conversions",
    metadata,
    Column("email", Text, primary_key=True),
    Column("event_id", Text, primary_key=True),
    Column("day", Date, nullable=False),
    *_role_columns(),
    *_conversion_filter_columns(),
)

contacts = Table(
    "contacts",
    metadata,
    Column("email", Text, primary_key=True),
    *_summary_columns(),
    Column("updated_at", DateTime, nullable=False),
    Column("run_id", Text, nullable=False),
)

contacts_history = Table(
    "contacts_history",
    metadata,
    Column("email", Text, primary_key=True),
    Column("valid_from", DateTime, primary_key=True),
    Column("valid_to", DateTime),
    Column("run_id", Text, nullable=False),
    *[c._copy() for c in _summary_columns() if c.name != "summary"],
    Column("summary", Text),
)
for column in contacts_history.columns:
    if column.name not in ("email", "valid_from", "run_id"):
        column.nullable = True

pipeline_runs = Table(
    "pipeline_runs",
    metadata,
    Column("run_id", Text, primary_key=True),
    Column("interval_start", Date, nullable=False),
    Column("interval_end", Date, nullable=False),
    Column("full_refresh", Boolean, nullable=False),
    Column("events_read", Integer, nullable=False, default=0),
    Column("events_loaded", Integer, nullable=False, default=0),
    Column("events_duplicate", Integer, nullable=False, default=0),
    Column("events_quarantined", Integer, nullable=False, default=0),
    Column("events_bot", Integer, nullable=False, default=0),
    Column("sessions_written", Integer, nullable=False, default=0),
    Column("contacts_updated", Integer, nullable=False, default=0),
    Column("started_at", DateTime, nullable=False),
    Column("finished_at", DateTime),
    Column("status", String(16), nullable=False),
    Column("error", Text),
    Column("validation", Text),
    Column("unchanged_since", Text),
    Column("settings_fingerprint", String(64)),
)

run_manifest = Table(
    "run_manifest",
    metadata,
    Column("run_id", Text, primary_key=True),
    Column("load_date", Date, primary_key=True),
    Column("source_file", Text, primary_key=True),
    Column("bytes", Integer, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("lines_read", Integer, nullable=False),
)

event_files = Table(
    "event_files",
    metadata,
    Column("path", Text, primary_key=True),
    Column("load_date", Date, nullable=False),
    Column("run_id", Text, nullable=False),
    Column("rows", Integer, nullable=False),
    Column("bytes", BigInteger, nullable=False),
    Column("min_visitor_key", BigInteger, nullable=False),
    Column("max_visitor_key", BigInteger, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("retired_at", DateTime),
    Column("retired_by", Text),
    Index("ix_event_files_live", "retired_at", "load_date"),
)

validation_results = Table(
    "validation_results",
    metadata,
    Column("run_id", Text, primary_key=True),
    Column("suite", String(64), primary_key=True),
    Column("success", Boolean, nullable=False),
    Column("evaluated", Integer, nullable=False),
    Column("failed", Integer, nullable=False),
    Column("critical_failed", Integer, nullable=False),
    Column("results", Text, nullable=False),
    Column("created_at", DateTime, nullable=False),
)

warehouse_state = Table(
    "warehouse_state",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version", Integer, nullable=False),
    Column("published_at", DateTime),
    Column("run_id", Text),
    Column("lock_run_id", Text),
    Column("lock_owner", Text),
    Column("lock_heartbeat_at", DateTime),
)

suppressions = Table(
    "suppressions",
    metadata,
    Column("value_hash", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("created_at", DateTime, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("name", Text, primary_key=True),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("created_at", DateTime, nullable=False),
    Column("last_used_at", DateTime),
    Column("revoked_at", DateTime),
)

PUBLISHED_TABLES = (
    events, quarantined_events, sessions, conversions, identities, contact_sessions, contacts, attribution_credits,
    contact_conversions, reader_pair_counts, reader_counted_pairs, reader_counted_conversions,
)
# Tables keyed by contact (email): a run rebuilds every row of each contact it touches, and publish replaces them.
CONTACT_TABLES = (contacts, contact_sessions, attribution_credits, contact_conversions)
# Published tables a downstream job may be scheduled on: the DAG's publish task updates one Airflow Asset per
# table (`contact_snapshots.<name>`), so a BI extract or CRM sync runs when they change.
ASSET_TABLES = tuple(table.name for table in (events, quarantined_events, sessions, conversions, identities, contact_sessions, contacts, attribution_credits, contacts_history))
