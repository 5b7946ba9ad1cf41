"""Identity (SPEC section 6): each anonymous id belongs to the email of its earliest conversion."""

from __future__ import annotations

import pandas as pd

IDENTITY_COLUMNS = ["anonymous_id", "email", "first_conversion_at", "first_conversion_event_id"]


def assign_identities(*, conversions: pd.DataFrame) -> pd.DataFrame:
    """A visitor's earliest conversion (by timestamp, then event id) names its contact; later ones do not."""
    if conversions.empty:
        return pd.DataFrame(columns=IDENTITY_COLUMNS)
    ordered = conversions.sort_values(["anonymous_id", "timestamp", "event_id"], kind="stable")
    first = ordered.drop_duplicates("anonymous_id", keep="first")
    identities = first.rename(columns={"timestamp": "first_conversion_at", "event_id": "first_conversion_event_id"})
    return identities[IDENTITY_COLUMNS].reset_index(drop=True)


def journey_pairs(*, identities: pd.DataFrame, sessions: pd.DataFrame, conversions: pd.DataFrame) -> pd.DataFrame:
    """(email, session_id) of every journey: the sessions of the contact's visitors plus any session it converted in."""
    own = identities[["anonymous_id", "email"]].merge(sessions[["anonymous_id", "session_id"]], on="anonymous_id")
    own = own.assign(is_own_device=True)[["email", "session_id", "is_own_device"]]
    converted = conversions[["email", "session_id"]].drop_duplicates().assign(is_own_device=False)
    pairs = pd.concat([own, converted], ignore_index=True)
    pairs = pairs.sort_values("is_own_device", ascending=False, kind="stable")
    return pairs.drop_duplicates(["email", "session_id"], keep="first").reset_index(drop=True)
