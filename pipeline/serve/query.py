"""A /contacts request, validated against `schemas/contacts_request.schema.json` and turned into a typed query.

The checks every JSON request body shares (schema errors naming the field, unstorable text, the date window)
live here too; `attribution.py` builds its query with them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from functools import cache

from jsonschema import Draft202012Validator

from pipeline.settings import SCHEMAS_DIR

MAX_EMAILS = 10_000
SESSION_FILTERS = ("source", "medium", "campaign", "content", "term", "landing_page")
CONVERSION_FILTERS = {"conversion_page": "conversion_page", "meta_type": "conversion_type", "meta_id": "conversion_id"}
TOUCH_SCOPES = ("any", "first", "converting", "assist", "after")


class RequestError(ValueError):
    """A bad request: a message and the field it concerns (400 on the API, exit 2 on the CLI)."""

    def __init__(self, message: str, field: str | None):
        super().__init__(message)
        self.message, self.field = message, field


@dataclass(frozen=True)
class ContactsQuery:
    """What a request asks for; bounds are UTC instants, `end` exclusive."""

    offset: int = 0
    emails: tuple[str, ...] | None = None
    start: datetime | None = None
    end: datetime | None = None
    session_filters: dict = field(default_factory=dict)
    conversion_filters: dict = field(default_factory=dict)
    touch_scope: str = "any"


@cache
def request_validator(schema_file: str = "contacts_request.schema.json") -> Draft202012Validator:
    """The compiled JSON Schema of a request body in `schemas/` (/contacts by default)."""
    return Draft202012Validator(json.loads((SCHEMAS_DIR / schema_file).read_text()))


CONTACTS_MESSAGES = {
    ("emails", "oneOf"): "emails must be a list of strings or a comma-separated string of at most 10,000",
    ("offset", "minimum"): "offset must not be negative",
    ("touch_scope", None): f"touch_scope must be one of {', '.join(TOUCH_SCOPES)}",
}


def schema_error(request: dict, validator: Draft202012Validator, messages: dict) -> RequestError | None:
    """The first schema violation (by field name) as a RequestError naming its field.

    `messages` maps (field, failed keyword) to a plainer message than jsonschema's; keyword None: any keyword.
    """
    errors = sorted(validator.iter_errors(request), key=lambda e: (list(e.absolute_path), e.validator))
    if not errors:
        return None
    error = errors[0]
    if error.validator == "additionalProperties":
        unknown = min(set(request) - set(validator.schema["properties"]))
        return RequestError(f"unknown field {unknown!r}", unknown)
    name = str(error.absolute_path[0]) if error.absolute_path else None
    plain = messages.get((name, error.validator)) or messages.get((name, None))
    if plain:
        return RequestError(plain, name)
    message = error.message if len(error.message) <= 200 else error.message[:200] + "…"
    return RequestError(f"{name}: {message}" if name else message, name)


def _bad_text(value: object) -> bool:
    """A string PostgreSQL cannot compare (NUL) or no driver can encode (lone surrogates)."""
    if not isinstance(value, str):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return "\x00" in value


def _unstorable_field(request: dict) -> str | None:
    """The first text field whose value no stored value can equal and no driver can send (NUL, lone surrogates)."""
    for name, value in request.items():
        items = value if isinstance(value, list) else [value]
        if any(_bad_text(item) for item in items):
            return name
    return None


def parse_bound(text: str, name: str, *, upper: bool) -> datetime:
    """YYYY-MM-DD covers the whole UTC day; an ISO 8601 instant is taken as given (UTC without a zone).

    Returns an exclusive upper bound for `end_date` and an inclusive lower bound for `start_date`.
    """
    value = text.strip()
    try:
        day = date.fromisoformat(value)  # any ISO 8601 date without a time (2025-07-01, 20250701)
    except ValueError:
        day = None
    try:
        instant = datetime.combine(day, time()) if day is not None else datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        raise RequestError(f"{name} is not a date (YYYY-MM-DD) or an ISO 8601 timestamp: {text!r}", name) from None
    try:  # a bound past the ends of the calendar (9999-12-31, 0001-01-01T00:00+05:00) is simply no bound
        if instant.tzinfo is not None:
            instant = instant.astimezone(timezone.utc).replace(tzinfo=None)
        return instant + (timedelta(days=1) if day is not None else timedelta(microseconds=1)) if upper else instant
    except OverflowError:
        return datetime.max if upper else datetime.min


AS_OF_FORMAT = '"YYYY-MM-DD HH:MM:SS" (UTC) or an ISO 8601 instant'


def parse_as_of(text: str | None) -> datetime | None:
    """The reference time of `days_since_last_conversion` (CLI `--as-of`, API `?as_of=`) as a naive UTC time."""
    if text is None:
        return None
    try:
        as_of = datetime.fromisoformat(text.strip().replace("z", "Z"))
        return as_of.astimezone(timezone.utc).replace(tzinfo=None) if as_of.tzinfo else as_of
    except (ValueError, OverflowError):
        raise RequestError(f"as_of must be {AS_OF_FORMAT}: {text[:100]!r}", "as_of") from None


def normalise_emails(emails: list[str] | str) -> tuple[str, ...]:
    """Trimmed, lower-cased, empty ones dropped, duplicates dropped keeping the first."""
    items = emails.split(",") if isinstance(emails, str) else emails
    cleaned = (e.strip().lower() for e in items)
    unique = tuple(dict.fromkeys(e for e in cleaned if e))
    if len(unique) > MAX_EMAILS:
        raise RequestError(f"at most {MAX_EMAILS:,} emails per request", "emails")
    return unique


def checked_fields(request: object, validator: Draft202012Validator, messages: dict) -> dict:
    """The given (non-null) fields of a decoded JSON body that passes its schema; else RequestError naming the field."""
    if not isinstance(request, dict):
        raise RequestError("the request must be a JSON object", None)
    error = schema_error(request, validator, messages)
    if error:
        raise error
    unstorable = _unstorable_field(request)
    if unstorable:
        raise RequestError(f"{unstorable} holds a NUL character or invalid Unicode", unstorable)
    return {k: v for k, v in request.items() if v is not None}


def date_bounds(given: dict) -> tuple[datetime | None, datetime | None]:
    """`start_date` (inclusive) and `end_date` (exclusive) of checked fields as UTC instants; start after end is an error."""
    start = parse_bound(given["start_date"], "start_date", upper=False) if "start_date" in given else None
    end = parse_bound(given["end_date"], "end_date", upper=True) if "end_date" in given else None
    if start is not None and end is not None and start >= end:
        raise RequestError("start_date is after end_date", "start_date")
    return start, end


def window_conditions(column, query) -> list:
    """SQL conditions putting a timestamp column in a query's window (`start` inclusive, `end` exclusive)."""
    bounds = []
    if query.start is not None:
        bounds.append(column >= query.start)
    if query.end is not None:
        bounds.append(column < query.end)
    return bounds


def parse_request(request: object) -> ContactsQuery:
    """Validate a decoded JSON request; raise RequestError naming the first bad field."""
    given = checked_fields(request, request_validator(), CONTACTS_MESSAGES)
    start, end = date_bounds(given)
    return ContactsQuery(
        offset=int(given.get("offset", 0)),
        emails=normalise_emails(given["emails"]) if "emails" in given else None,
        start=start,
        end=end,
        session_filters={k: given[k] for k in SESSION_FILTERS if k in given},
        conversion_filters={column: given[k] for k, column in CONVERSION_FILTERS.items() if k in given},
        touch_scope=given.get("touch_scope", "any"),
    )
