"""Pydantic models of the HTTP API, used only to document it in OpenAPI: the reader validates and answers.

They mirror `schemas/contacts_request.schema.json` and `schemas/contacts_response.schema.json`
(tests/serve/test_api.py checks that the fields agree), with a description per field for `/docs`.
"""

from __future__ import annotations

from typing import Annotated, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from pipeline.serve.query import MAX_EMAILS, TOUCH_SCOPES

STAMP = "UTC time, `YYYY-MM-DD HH:MM:SS`."
# What the reader accepts, said in the document so that generated "valid" requests are valid: no NUL in a
# filter (PostgreSQL cannot compare it), dates as RFC 3339 dates or date-times, at most MAX_EMAILS emails.
Text = Annotated[str, Field(pattern=r"^[^\u0000]*$")]
DateBound = Annotated[str, WithJsonSchema({"type": "string", "anyOf": [{"format": "date"}, {"format": "date-time"}]})]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _filter(text: str) -> Optional[str]:
    return Field(default=None, description=f"{text} Exact and case-sensitive; ignored when `emails` is given.")


class ContactsRequest(Strict):
    """A /contacts query (SPEC section 11). Every field is optional; JSON null counts as absent; other fields are a 400."""

    offset: Optional[int] = Field(
        default=None,
        ge=0,
        description="Pagination. With `emails`: position in the deduplicated list. Without: (contact, session) pairs "
        "already scanned. Pass the previous response's `records_processed`. Default 0.",
    )
    emails: Optional[Annotated[list[Text], Field(max_length=MAX_EMAILS)] | Text] = Field(
        default=None,
        description=f"A JSON list of emails or one comma-separated string (at most {MAX_EMAILS:,}); trimmed, lower-cased, "
        "deduplicated. When given, every other filter is ignored and known contacts are returned in list order, 50 per page.",
    )
    start_date: Optional[DateBound] = Field(
        default=None,
        description="Sessions (and matching conversions) at or after this time: YYYY-MM-DD (from the start of that UTC day) "
        "or an ISO 8601 instant (UTC when it has no zone).",
        examples=["2025-07-01", "2025-07-01T23:59:59Z"],
    )
    end_date: Optional[DateBound] = Field(
        default=None,
        description="Sessions (and matching conversions) at or before this time: YYYY-MM-DD (to the end of that UTC day) "
        "or an ISO 8601 instant. Must not be before `start_date`.",
        examples=["2025-07-31", "2025-07-31T23:59:59Z"],
    )
    conversion_page: Optional[Text] = _filter("Page URL of a conversion of the contact in the matching session.")
    meta_type: Optional[Text] = _filter("Conversion type (e.g. hubspot_form, custom, html_form) of a conversion in the session.")
    meta_id: Optional[Text] = _filter("Conversion id (e.g. a HubSpot form id) of a conversion in the session.")
    source: Optional[Text] = _filter("Traffic source of the session (utm_source, else the referrer's domain, e.g. google.com).")
    medium: Optional[Text] = _filter("Traffic medium of the session (utm_medium, else derived, e.g. cpc, organic).")
    campaign: Optional[Text] = _filter("UTM campaign of the session.")
    content: Optional[Text] = _filter("UTM content of the session.")
    term: Optional[Text] = _filter("UTM term of the session.")
    landing_page: Optional[Text] = _filter("Landing page URL of the session (e.g. https://example.com/pricing).")
    touch_scope: Optional[Literal[TOUCH_SCOPES]] = Field(
        default=None,
        description="Role the matching session must hold in the contact's journey: any (default), first, converting, "
        "assist (between the first and the converting session) or after (after the first converting session).",
    )


class ConversionMeta(Strict):
    type: Optional[str] = Field(description="Kind of conversion (hubspot_form, custom, html_form, ...).")
    id: Optional[str] = Field(description="Conversion point identifier.")


class Conversion(Strict):
    email: str
    timestamp: str = Field(description=STAMP)
    conversion_page: str
    previous_page: Optional[str] = Field(description="Page viewed just before the conversion.")
    conversion_meta: ConversionMeta


class Exit(Strict):
    exit_page: str = Field(description="Last page viewed in the session.")
    previous_page: Optional[str] = Field(description="Page viewed just before the exit page.")
    timestamp: str = Field(description=STAMP)


class Session(Strict):
    """One session of the journey, with its attribution; `conversion` and `exit` only when they apply."""

    timestamp: str = Field(description=f"When the session began. {STAMP}")
    source: str
    medium: str
    content: str
    campaign: str
    term: str
    landing_page: str
    conversion: Optional[Conversion] = Field(default=None, description="The session's first conversion, if any (key absent otherwise).")
    exit: Optional[Exit] = Field(default=None, description="How the session ended, if known (key absent otherwise).")
    session_duration: int = Field(ge=0, description="Seconds from the first to the last event.")


class InterestedPages(Strict):
    landing_pages: dict[str, int]
    conversion_pages: dict[str, int]
    exit_pages: dict[str, int]
    previous_conversion_pages: dict[str, int]
    previous_exit_pages: dict[str, int]


class Summary(Strict):
    """The contact's whole known journey, not only the sessions that matched the filters."""

    total_sessions: int = Field(ge=1)
    total_conversions: int = Field(ge=1)
    conversion_rate_percent: float = Field(ge=0, le=100)
    conversion_dates: list[str] = Field(description=f"Every conversion. {STAMP}")
    days_since_last_conversion: int = Field(description="Whole days from the last conversion to now (or to `as_of`).")
    is_repeat_converter: bool
    avg_days_between_conversions: Optional[float] = Field(ge=0, description="Null with a single conversion.")
    avg_days_between_sessions: Optional[float] = Field(ge=0, description="Null with a single session.")
    avg_session_duration_seconds: int = Field(ge=0)
    days_to_convert: int = Field(ge=0)
    user_journey: list[Session]
    interested_pages: InterestedPages
    first_touch: Session
    converting_touch: Session
    recent_touch: Session


class Contact(Strict):
    email: str
    summary: Summary


class Pagination(Strict):
    records_processed: int = Field(ge=0, description="Pass as the next request's `offset`.")
    total_records: int = Field(ge=0, description="Emails in the list, or matching (contact, session) pairs.")
    has_more: bool


class ContactsPage(Strict):
    """Up to 50 contacts and how to get the next page."""

    contacts: list[Contact] = Field(max_length=50)
    pagination: Pagination


class NoMatch(Strict):
    """Not an error: no contact matches the request."""

    message: Literal["No contacts found for the given parameters."]


class ErrorBody(Strict):
    """Every error: a one-line message and the request field it concerns (null when none)."""

    error: str
    field: Optional[str]


class LastRun(Strict):
    run_id: str
    interval_start: str = Field(description="Load day of the run, YYYY-MM-DD.")
    finished_at: str = Field(description=STAMP)


class Health(Strict):
    status: Literal["ok"]
    warehouse: Literal["reachable"]
    last_successful_run: Optional[LastRun] = Field(description="The latest successful pipeline run; null before the first.")


class Unavailable(Strict):
    status: Literal["unavailable"]
    error: str


class JourneyRequest(Strict):
    """Whose journey: the contact's email (trimmed, lower-cased)."""

    email: Text


class JourneyConversion(Strict):
    timestamp: str = Field(description=STAMP)
    conversion_page: str
    type: Optional[str] = Field(description="Conversion type (the seed's meta type).")
    id: Optional[str] = Field(description="Conversion point id (the seed's meta id).")


class JourneySession(Strict):
    """One session of the journey with what a timeline needs beyond the seed's keys."""

    session_id: str
    timestamp: str = Field(description=f"When the session began. {STAMP}")
    source: str
    medium: str
    campaign: str
    content: str
    term: str
    channel: str = Field(description="GA4 default channel group (SPEC section 5).")
    landing_page: str
    session_duration: int = Field(ge=0, description="Seconds from the first to the last event.")
    exit_page: Optional[str] = Field(description="Last page viewed; null when the session ended on a conversion.")
    own_device: bool = Field(description="False for another visitor's session the contact converted in (a shared device).")
    roles: list[Literal["first", "converting", "assist", "after"]] = Field(description="Touch roles (SPEC section 7).")
    touches: list[Literal["first", "converting", "recent"]] = Field(description="Which of the summary's touches this session is.")
    conversions: list[JourneyConversion] = Field(description="The contact's conversions in this session, in time order.")


class Journey(Strict):
    email: str
    sessions: list[JourneySession] = Field(description="Every session of the journey, by (timestamp, session id).")
