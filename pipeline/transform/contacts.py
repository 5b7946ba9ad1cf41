"""Contact summaries (SPEC section 7): one row per contact over its whole journey, plus its journey rows.

Statistics are computed per contact with vectorised groupbys and exact integer rounding (half away from
zero); `summaries.py` assembles the summary JSON in the seed's key order.
"""

from __future__ import annotations

import pandas as pd

from pipeline.settings import Settings
from pipeline.transform.credits import build_credits
from pipeline.transform.identity import journey_pairs
from pipeline.transform.reader_index import build_contact_conversions
from pipeline.transform.summaries import summary_texts

US_PER_DAY = 86_400_000_000
FILTER_COLUMNS = ["source", "medium", "campaign", "content", "term", "channel", "landing_page"]
CONTACT_SESSION_COLUMNS = [
    "email",
    "session_id",
    "session_timestamp",
    "anonymous_id",
    *FILTER_COLUMNS,
    "is_first",
    "is_converting",
    "is_assist",
    "is_after",
    "is_own_device",
]


def rounded_units(numerator: pd.Series, denominator: pd.Series, decimals: int) -> pd.Series:
    """numerator / denominator in units of 10^-decimals, rounded half away from zero exactly (non-negative inputs)."""
    num = numerator.astype("int64") * 10**decimals
    den = denominator.astype("int64")
    return (2 * num + den) // (2 * den)


def rounded(numerator: pd.Series, denominator: pd.Series, decimals: int) -> pd.Series:
    """numerator / denominator rounded half away from zero, exactly."""
    units = rounded_units(numerator, denominator, decimals)
    return units / 10**decimals if decimals else units


def whole_days(later: pd.Series, earlier: pd.Series) -> pd.Series:
    """Complete 24-hour periods between two timestamps (floor of elapsed seconds / 86,400)."""
    return ((later - earlier) // pd.Timedelta(days=1)).astype("int64")


def journey_frame(*, pairs: pd.DataFrame, sessions: pd.DataFrame, conversions: pd.DataFrame) -> pd.DataFrame:
    """Journey rows in order with each contact's first conversion per session and the touch roles.

    `conversions` come sorted by (email, timestamp, event_id), as `build_contacts` sorts them.
    """
    journey = pairs.merge(sessions, on="session_id", how="inner")
    journey = journey.sort_values(["email", "timestamp", "session_id"], kind="stable").reset_index(drop=True)
    journey["rank"] = journey.groupby("email").cumcount()
    first_in_session = conversions.drop_duplicates(["email", "session_id"], keep="first")  # sorted by build_contacts
    shown = first_in_session.rename(columns={"timestamp": "conversion_timestamp", "event_id": "conversion_event_id"})
    journey = journey.merge(
        shown[["email", "session_id", "conversion_event_id", "conversion_timestamp", "conversion_page", "previous_page", "conversion_type", "conversion_id"]],
        on=["email", "session_id"],
        how="left",
    )
    journey["is_converting"] = journey["conversion_event_id"].notna()
    first_conv = conversions.drop_duplicates("email", keep="first")[["email", "session_id"]]
    converting_rank = journey.merge(first_conv, on=["email", "session_id"]).set_index("email")["rank"]
    journey["converting_rank"] = journey["email"].map(converting_rank)
    journey["is_first"] = journey["rank"] == 0
    journey["is_assist"] = (journey["rank"] > 0) & (journey["rank"] < journey["converting_rank"])
    journey["is_after"] = journey["rank"] > journey["converting_rank"]
    return journey


def contact_statistics(journey: pd.DataFrame, conversions: pd.DataFrame) -> pd.DataFrame:
    """The numeric summary fields per contact (index: email)."""
    by_contact = journey.groupby("email", sort=True)
    conv = conversions.groupby("email", sort=True)["timestamp"]
    stats = pd.DataFrame(
        {
            "total_sessions": by_contact.size(),
            "converting_sessions": by_contact["is_converting"].sum(),
            "first_session_at": by_contact["timestamp"].min(),
            "last_session_at": by_contact["timestamp"].max(),
            "duration_sum": by_contact["session_duration"].sum(),
        }
    )
    stats["total_conversions"] = conv.size()
    stats["first_conversion_at"] = conv.min()
    stats["last_conversion_at"] = conv.max()
    n, k = stats["total_sessions"], stats["total_conversions"]
    stats["rate_units"] = rounded_units(100 * stats["converting_sessions"], n, 2)
    stats["conversion_rate_percent"] = stats["rate_units"] / 100
    stats["is_repeat_converter"] = k > 1
    span = (stats["last_conversion_at"] - stats["first_conversion_at"]) // pd.Timedelta(microseconds=1)
    stats["conversion_gap_units"] = rounded_units(span, (k - 1).clip(lower=1) * US_PER_DAY, 2).where(k > 1)
    stats["avg_days_between_conversions"] = stats["conversion_gap_units"] / 100
    span = (stats["last_session_at"] - stats["first_session_at"]) // pd.Timedelta(microseconds=1)
    stats["session_gap_units"] = rounded_units(span, (n - 1).clip(lower=1) * US_PER_DAY, 2).where(n > 1)
    stats["avg_days_between_sessions"] = stats["session_gap_units"] / 100
    stats["avg_session_duration_seconds"] = rounded(stats["duration_sum"], n, 0).astype("int64")
    stats["days_to_convert"] = whole_days(stats["first_conversion_at"], stats["first_session_at"])
    return stats


def _touch_columns(journey: pd.DataFrame, stats: pd.DataFrame) -> pd.DataFrame:
    """Flat BI columns of the first, converting and recent touch."""
    picks = {
        "first_touch": journey["is_first"],
        "converting_touch": journey["rank"] == journey["converting_rank"],
        "recent_touch": journey["rank"] == journey["email"].map(stats["total_sessions"]) - 1,
    }
    flat = pd.DataFrame(index=stats.index)
    for touch, mask in picks.items():
        rows = journey[mask].set_index("email")
        flat[f"{touch}_timestamp"] = rows["timestamp"]
        for column in ("source", "medium", "campaign", "channel", "landing_page"):
            flat[f"{touch}_{column}"] = rows[column]
    return flat


def build_contact_tables(
    *, identities: pd.DataFrame, sessions: pd.DataFrame, conversions: pd.DataFrame, settings: Settings
) -> dict[str, pd.DataFrame]:
    """Every contact-keyed table (warehouse.tables.CONTACT_TABLES) for the contacts in `conversions`, by table name.

    The inputs hold the whole journey of those contacts (see `build_contacts`); publish replaces each table's
    rows of these contacts with the frames returned here.
    """
    contacts, contact_sessions = build_contacts(identities=identities, sessions=sessions, conversions=conversions)
    credits = build_credits(journey=contact_sessions, conversions=conversions, settings=settings)
    contact_conversions = build_contact_conversions(contact_sessions=contact_sessions, conversions=conversions)
    return {"contacts": contacts, "contact_sessions": contact_sessions, "attribution_credits": credits, "contact_conversions": contact_conversions}


def build_contacts(
    *, identities: pd.DataFrame, sessions: pd.DataFrame, conversions: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(contacts, contact_sessions) for every email with a conversion in `conversions`.

    The inputs must hold the whole journey of those contacts: their visitors' identities and sessions and
    every session they converted in.
    """
    if conversions.empty:
        return pd.DataFrame(columns=["email", "summary"]), pd.DataFrame(columns=CONTACT_SESSION_COLUMNS)
    conversions = conversions.sort_values(["email", "timestamp", "event_id"], kind="stable").reset_index(drop=True)
    emails = conversions["email"].drop_duplicates()
    identities = identities[identities["email"].isin(emails)]
    pairs = journey_pairs(identities=identities, sessions=sessions, conversions=conversions)
    journey = journey_frame(pairs=pairs, sessions=sessions, conversions=conversions)
    stats = contact_statistics(journey, conversions)
    contacts = stats.join(_touch_columns(journey, stats))
    contacts["summary"] = summary_texts(journey=journey, conversions=conversions, stats=stats)
    helpers = ["converting_sessions", "duration_sum", "rate_units", "conversion_gap_units", "session_gap_units"]
    contacts = contacts.reset_index().drop(columns=helpers)
    journey["session_timestamp"] = journey["timestamp"]
    return contacts, journey[CONTACT_SESSION_COLUMNS]
