"""The summary JSON of each contact (SPEC section 7), assembled as text in the seed's key order.

Every piece is built for all contacts at once: session objects per journey row, then per-contact lists
joined with one groupby each. `days_since_last_conversion` depends on when the summary is read, so it is
stored as null and filled in by the reader.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.transform.journeys import concat, json_decimal, json_stamps, json_text, members, session_objects


def _joined(keys: pd.Series, items: pd.Series, emails: pd.Index) -> pd.Series:
    """Items joined with commas per contact, in their current order ("" for a contact with none).

    The rows of one contact are contiguous (every caller sorts by email first), so the groups are list
    offsets and Arrow joins them without a Python call (or a Python string) per contact or item.
    """
    if len(keys) == 0:
        return pd.Series("", index=emails, dtype="str")
    codes = pd.factorize(keys)[0]
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    offsets = pa.array(np.r_[starts, len(codes)].astype(np.int32))
    values = pa.chunked_array(pa.array(items.astype("str"))).combine_chunks().cast(pa.large_string())
    joined = pc.binary_join(pa.ListArray.from_arrays(offsets, values), pa.scalar(",", pa.large_string())).to_pandas()
    joined.index = keys.iloc[starts].to_numpy()
    return joined.reindex(emails).fillna("").astype("str")


def page_counts(emails: pd.Index, keys: pd.Series, positions: pd.Series, pages: pd.Series) -> pd.Series:
    """`"page":count` pairs per contact, pages in order of first appearance (positions are distinct within a contact).

    The (contact, page) groups come from one sort of integer codes: a pandas groupby cost ~8 ms a call, five calls a
    bucket, whatever its size."""
    present = pages.notna().to_numpy()
    if not present.any():
        return pd.Series("", index=emails, dtype="str")
    contact, contacts = pd.factorize(keys.to_numpy()[present])
    page, names = pd.factorize(pages.to_numpy()[present])
    position = positions.to_numpy()[present]
    pair = contact.astype(np.int64) * (len(names) + 1) + page
    order = np.lexsort((position, pair))
    grouped = pair[order]
    starts = np.flatnonzero(np.r_[True, grouped[1:] != grouped[:-1]])
    counts = np.diff(np.r_[starts, len(order)])
    firsts = order[starts]  # each group's earliest row
    shown = np.lexsort((position[firsts], contact[firsts]))  # per contact, by first appearance
    firsts, counts = firsts[shown], counts[shown]
    literals = json_text(pd.Series(names, dtype="str")).to_numpy()[page[firsts]]
    items = concat(pd.Series(literals, dtype="str"), ":", pd.Series(counts, dtype="int64").astype("str"))
    return _joined(pd.Series(np.asarray(contacts)[contact[firsts]]), items, emails)


def _interested_pages(journey: pd.DataFrame, conversions: pd.DataFrame, emails: pd.Index) -> pd.Series:
    exits = journey[journey["exit_page"].notna()]
    order = conversions.groupby("email").cumcount()
    parts = {
        "landing_pages": page_counts(emails, journey["email"], journey["rank"], journey["landing_page"]),
        "conversion_pages": page_counts(emails, conversions["email"], order, conversions["conversion_page"]),
        "exit_pages": page_counts(emails, exits["email"], exits["rank"], exits["exit_page"]),
        "previous_conversion_pages": page_counts(emails, conversions["email"], order, conversions["previous_page"]),
        "previous_exit_pages": page_counts(emails, exits["email"], exits["rank"], exits["exit_previous_page"]),
    }
    return concat("{", *members(*((name, ["{", items, "}"]) for name, items in parts.items())), "}")


def _optional_decimal(units: pd.Series) -> pd.Series:
    present = units.notna()
    text = pd.Series("null", index=units.index, dtype="str")
    text[present] = json_decimal(units[present], 2)
    return text


def summary_texts(*, journey: pd.DataFrame, conversions: pd.DataFrame, stats: pd.DataFrame) -> pd.Series:
    """Per contact (index: email, as in `stats`), its summary JSON text."""
    emails = stats.index
    objects = session_objects(journey)

    def by_rank(mask) -> pd.Series:
        return pd.Series(objects[mask].to_numpy(), index=journey.loc[mask, "email"].to_numpy()).reindex(emails)

    last_rank = journey["email"].map(stats["total_sessions"]) - 1
    dates = _joined(conversions["email"], json_stamps(conversions["timestamp"]), emails)
    summary = members(
        ("total_sessions", stats["total_sessions"].astype(str)),
        ("total_conversions", stats["total_conversions"].astype(str)),
        ("conversion_rate_percent", json_decimal(stats["rate_units"], 2)),
        ("conversion_dates", ["[", dates, "]"]),
        ("days_since_last_conversion", "null"),  # filled in by the reader from the query's as-of time
        ("is_repeat_converter", stats["is_repeat_converter"].map({True: "true", False: "false"})),
        ("avg_days_between_conversions", _optional_decimal(stats["conversion_gap_units"])),
        ("avg_days_between_sessions", _optional_decimal(stats["session_gap_units"])),
        ("avg_session_duration_seconds", stats["avg_session_duration_seconds"].astype(str)),
        ("days_to_convert", stats["days_to_convert"].astype(str)),
        ("user_journey", ["[", _joined(journey["email"], objects, emails), "]"]),
        ("interested_pages", _interested_pages(journey, conversions, emails)),
        ("first_touch", by_rank(journey["is_first"].to_numpy())),
        ("converting_touch", by_rank((journey["rank"] == journey["converting_rank"]).to_numpy())),
        ("recent_touch", by_rank((journey["rank"] == last_rank).to_numpy())),
    )
    return concat("{", *summary, "}")
