"""The reader's per-conversion index: each contact conversion joined to its (contact, session) pair.

`/contacts` conversion filters (`meta_type`, `meta_id`, `conversion_page`) ask for pairs holding a
conversion of the contact that matches them (SPEC section 11). One row per contact conversion, carrying
the pair's scan key, touch roles and session attributes, lets the reader walk an index on a conversion
column in pair order instead of probing the conversions of every pair; the `first_in_pair_by_*` flags
mark one conversion per (pair, value), so a pair with two matching conversions is counted once.
"""

from __future__ import annotations

import pandas as pd

PAIR_COLUMNS = [
    "session_timestamp", "is_first", "is_converting", "is_assist", "is_after",
    "source", "medium", "campaign", "content", "term", "landing_page",
]
CONTACT_CONVERSION_COLUMNS = [
    "email", "event_id", "session_id", *PAIR_COLUMNS, "conversion_timestamp", "conversion_type", "conversion_id",
    "conversion_page", "first_in_pair_by_type", "first_in_pair_by_id", "first_in_pair_by_page",
]
FIRST_FLAGS = {
    "first_in_pair_by_type": "conversion_type", "first_in_pair_by_id": "conversion_id", "first_in_pair_by_page": "conversion_page",
}


def build_contact_conversions(*, contact_sessions: pd.DataFrame, conversions: pd.DataFrame) -> pd.DataFrame:
    """One row per conversion of the contacts in `contact_sessions`, with its pair's key, roles and attributes.

    A conversion always lies in a session of its contact's journey (SPEC section 6), so the inner join keeps
    every conversion of those contacts.
    """
    if contact_sessions.empty or conversions.empty:
        return pd.DataFrame(columns=CONTACT_CONVERSION_COLUMNS)
    own = conversions.rename(columns={"timestamp": "conversion_timestamp"})
    own = own[["email", "event_id", "session_id", "conversion_timestamp", "conversion_type", "conversion_id", "conversion_page"]]
    rows = own.merge(contact_sessions[["email", "session_id", *PAIR_COLUMNS]], on=["email", "session_id"], how="inner")
    rows = rows.sort_values(["email", "session_id", "conversion_timestamp", "event_id"], kind="stable").reset_index(drop=True)
    for flag, column in FIRST_FLAGS.items():
        rows[flag] = ~rows.duplicated(["email", "session_id", column], keep="first")
    return rows[CONTACT_CONVERSION_COLUMNS]
