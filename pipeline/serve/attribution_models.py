"""Pydantic models of `POST /api/v1/attribution`, used only to document it in OpenAPI: `attribution.py` validates.

They mirror `schemas/attribution_request.schema.json` and `schemas/attribution_response.schema.json`
(tests/serve/test_attribution_api.py checks that the fields agree).
"""

from __future__ import annotations

from typing import Literal, Optional, Union

from pydantic import Field

from pipeline.serve.attribution import GROUPINGS, MODELS
from pipeline.serve.models import DateBound, Strict, Text


def _conversion_filter(text: str) -> Optional[str]:
    return Field(default=None, description=f"{text} Exact and case-sensitive; decides which conversions count.")


class AttributionRequest(Strict):
    """A report request (SPEC section 14). Every field is optional; JSON null counts as absent; other fields are a 400."""

    model: Optional[Literal[MODELS]] = Field(
        default=None,
        description="first_touch, last_touch, last_non_direct, linear (default), position_based, time_decay (rule-based, "
        "from the attribution_credits table) or markov (first-order Markov chain removal effect over the window's paths).",
    )
    by: Optional[Literal[GROUPINGS]] = Field(
        default=None, description="What the path sessions are grouped by: channel (default), source, medium, campaign or "
        "source_medium (`google.com / organic`).",
    )
    start_date: Optional[DateBound] = Field(
        default=None, description="Conversions at or after this time: YYYY-MM-DD (from the start of that UTC day) or an ISO 8601 instant.",
        examples=["2025-07-01"],
    )
    end_date: Optional[DateBound] = Field(
        default=None, description="Conversions at or before this time: YYYY-MM-DD (to the end of that UTC day) or an ISO 8601 "
        "instant. Must not be before `start_date`.", examples=["2025-07-31"],
    )
    meta_type: Optional[Text] = _conversion_filter("Conversion type (e.g. hubspot_form).")
    meta_id: Optional[Text] = _conversion_filter("Conversion id (e.g. a HubSpot form id).")
    conversion_page: Optional[Text] = _conversion_filter("Page URL of the conversion (normalised).")


Number = Union[int, float]


class AttributionRow(Strict):
    """One group value: exactly one of channel / source / medium / campaign / source_medium (the request's `by`)."""

    channel: Optional[str] = None
    source: Optional[str] = None
    medium: Optional[str] = None
    campaign: Optional[str] = None
    source_medium: Optional[str] = Field(default=None, description="`source / medium`, e.g. `google.com / organic`.")
    conversions: Number = Field(ge=0, description="Conversions credited to the value, 2 decimals (half away from zero).")
    share_percent: Number = Field(ge=0, le=100, description="credit / conversions × 100, 2 decimals.")
    touches: int = Field(ge=0, description="(conversion, session) pairs on the window's conversion paths with the value.")


class AttributionReport(Strict):
    """The window's conversions and every value's credit, by credit descending, then value."""

    model: Literal[MODELS]
    by: Literal[GROUPINGS]
    conversions: int = Field(ge=0, description="Conversions in the window passing the conversion filters.")
    rows: list[AttributionRow]
