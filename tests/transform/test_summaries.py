"""The vectorised summary JSON equals a plain per-contact reference built with dicts and json.dumps."""

from __future__ import annotations

import json
from datetime import date

import pandas as pd
import pytest

from pipeline.contract.landing import read_partition
from pipeline.contract.staging import stage_lines
from pipeline.sample.generate import generate_landing
from pipeline.settings import Settings
from pipeline.transform.contacts import build_contacts
from pipeline.transform.identity import assign_identities
from pipeline.transform.sessions import build_sessions


def _stamp(value) -> str | None:
    return None if pd.isna(value) else pd.Timestamp(value).strftime("%Y-%m-%d %H:%M:%S")


def _text(value):
    return None if pd.isna(value) else value


def _number(value):
    return int(value) if float(value).is_integer() else float(value)


def _counts(pages) -> dict:
    counts: dict = {}
    for page in pages:
        if not pd.isna(page):
            counts[page] = counts.get(page, 0) + 1
    return counts


def reference_session(row, conv) -> dict:
    obj = {k: _text(row[k]) for k in ("source", "medium", "content", "campaign", "term", "landing_page")}
    obj = {"timestamp": _stamp(row["timestamp"]), **obj}
    if conv is not None:
        obj["conversion"] = {
            "email": conv["email"], "timestamp": _stamp(conv["timestamp"]), "conversion_page": conv["conversion_page"],
            "previous_page": _text(conv["previous_page"]),
            "conversion_meta": {"type": _text(conv["conversion_type"]), "id": _text(conv["conversion_id"])},
        }
    if not pd.isna(row["exit_page"]):
        obj["exit"] = {"exit_page": row["exit_page"], "previous_page": _text(row["exit_previous_page"]), "timestamp": _stamp(row["exit_timestamp"])}
    obj["session_duration"] = int(row["session_duration"])
    return obj


def reference_summary(email, journey_sessions: pd.DataFrame, conversions: pd.DataFrame) -> dict:
    """SPEC section 7 read literally, one contact at a time."""
    sessions = journey_sessions.sort_values(["timestamp", "session_id"]).reset_index(drop=True)
    conv = conversions[conversions["email"] == email].sort_values(["timestamp", "event_id"]).reset_index(drop=True)
    first_conv = {sid: rows.iloc[0] for sid, rows in conv.groupby("session_id", sort=False)}
    objects = [reference_session(row, first_conv.get(row["session_id"])) for _, row in sessions.iterrows()]
    n, k = len(sessions), len(conv)
    converting = sum(1 for sid in sessions["session_id"] if sid in first_conv)
    first_conv_session = conv.iloc[0]["session_id"]
    conv_rank = sessions.index[sessions["session_id"] == first_conv_session][0]
    rate = round(100 * converting / n + 1e-12, 2)
    gap = lambda a, b, m: None if m < 2 else _number(round((b - a).total_seconds() / 86400 / (m - 1) + 1e-12, 2))  # noqa: E731
    exits = sessions[sessions["exit_page"].notna()]
    return {
        "total_sessions": n,
        "total_conversions": k,
        "conversion_rate_percent": _number(rate),
        "conversion_dates": [_stamp(t) for t in conv["timestamp"]],
        "days_since_last_conversion": None,
        "is_repeat_converter": k > 1,
        "avg_days_between_conversions": gap(conv["timestamp"].iloc[0], conv["timestamp"].iloc[-1], k),
        "avg_days_between_sessions": gap(sessions["timestamp"].iloc[0], sessions["timestamp"].iloc[-1], n),
        "avg_session_duration_seconds": int(sessions["session_duration"].sum() / n + 0.5),
        "days_to_convert": int((conv["timestamp"].iloc[0] - sessions["timestamp"].iloc[0]).total_seconds() // 86400),
        "user_journey": objects,
        "interested_pages": {
            "landing_pages": _counts(sessions["landing_page"]),
            "conversion_pages": _counts(conv["conversion_page"]),
            "exit_pages": _counts(exits["exit_page"]),
            "previous_conversion_pages": _counts(conv["previous_page"]),
            "previous_exit_pages": _counts(exits["exit_previous_page"]),
        },
        "first_touch": objects[0],
        "converting_touch": objects[conv_rank],
        "recent_touch": objects[-1],
    }


@pytest.mark.parametrize("seed", [1, 2])
def test_vectorised_summaries_equal_the_reference(tmp_path, seed):
    generate_landing(tmp_path, visitors=400, days=3, start=date(2025, 3, 1), seed=seed)
    frames = []
    for day in ("2025-03-01", "2025-03-02", "2025-03-03"):
        lines, _ = read_partition(tmp_path, date.fromisoformat(day))
        frames.append(stage_lines(lines, date.fromisoformat(day)).events)
    events = pd.concat(frames, ignore_index=True).drop_duplicates("event_id")
    sessions, conversions = build_sessions(events=events[~events["is_bot"]], settings=Settings())
    identities = assign_identities(conversions=conversions)
    contacts, journey = build_contacts(identities=identities, sessions=sessions, conversions=conversions)
    assert len(contacts) > 20
    by_session = sessions.set_index("session_id")
    for row in contacts.itertuples():
        ids = journey.loc[journey["email"] == row.email, "session_id"]
        expected = reference_summary(row.email, by_session.loc[ids].reset_index(), conversions)
        assert json.loads(row.summary) == expected, row.email
        assert row.summary == json.dumps(json.loads(row.summary), ensure_ascii=False, separators=(",", ":"))


def test_concat_joins_by_position_and_a_missing_piece_makes_the_row_missing():
    from pipeline.transform.journeys import concat

    index = pd.Index(["b", "a", "c"])
    left = pd.Series(["x", None, "é"], index=index, dtype="str")
    right = pd.Series(["1", "2", '"3"'], index=index, dtype="str")
    joined = concat("{", left, ":", right, "}")
    assert joined.index.equals(index)
    assert joined.tolist()[0] == "{x:1}" and pd.isna(joined.iloc[1]) and joined.iloc[2] == '{é:"3"}'
    with pytest.raises(ValueError, match="share one index"):
        concat(left, pd.Series(["1", "2", "3"], dtype="str"))


def test_json_stamps_floor_to_the_second_before_and_after_1970():
    from pipeline.transform.journeys import json_stamps

    values = pd.Series(pd.to_datetime(["1969-12-31 23:59:58.5", "2025-03-01 10:00:00.999999", None], utc=True))
    assert json_stamps(values).tolist() == ['"1969-12-31 23:59:58"', '"2025-03-01 10:00:00"', "null"]


def test_page_counts_keep_each_contacts_order_of_first_appearance():
    from pipeline.transform.summaries import page_counts

    emails = pd.Index(["a@x", "b@x", "c@x"])
    keys = pd.Series(["b@x", "a@x", "b@x", "a@x", "b@x", "a@x"])
    positions = pd.Series([2, 1, 0, 0, 1, 2])
    pages = pd.Series(["/p", "/q", "/q", None, "/p", "/q"], dtype="str")
    assert page_counts(emails, keys, positions, pages).tolist() == ['"/q":2', '"/q":1,"/p":2', ""]
    nothing = pd.Series([None] * 6, dtype="str")
    assert page_counts(emails, keys, positions, nothing).tolist() == ["", "", ""]
