"""Session objects as a contact's journey shows them (the seed's keys and order, SPEC section 4)."""

from __future__ import annotations

import pandas as pd

STAMP = "%Y-%m-%d %H:%M:%S"


def _stamps(values: pd.Series) -> list:
    """UTC timestamps as `YYYY-MM-DD HH:MM:SS` text (None where missing)."""
    text = pd.to_datetime(values, utc=True).dt.strftime(STAMP)
    return text.astype(object).where(text.notna(), None).tolist()


def _texts(values: pd.Series) -> list:
    return values.astype(object).where(values.notna(), None).tolist()


def session_objects(journey: pd.DataFrame) -> pd.Series:
    """One dict per journey row; `conversion` only where this contact converted, `exit` unless it ended on one."""
    columns = {
        "timestamp": _stamps(journey["timestamp"]),
        "source": _texts(journey["source"]),
        "medium": _texts(journey["medium"]),
        "content": _texts(journey["content"]),
        "campaign": _texts(journey["campaign"]),
        "term": _texts(journey["term"]),
        "landing_page": _texts(journey["landing_page"]),
        "email": _texts(journey["email"]),
        "conversion_timestamp": _stamps(journey["conversion_timestamp"]),
        "conversion_page": _texts(journey["conversion_page"]),
        "previous_page": _texts(journey["previous_page"]),
        "conversion_type": _texts(journey["conversion_type"]),
        "conversion_id": _texts(journey["conversion_id"]),
        "exit_page": _texts(journey["exit_page"]),
        "exit_previous_page": _texts(journey["exit_previous_page"]),
        "exit_timestamp": _stamps(journey["exit_timestamp"]),
        "session_duration": journey["session_duration"].astype("int64").tolist(),
    }
    converted = journey["is_converting"].tolist()
    objects = []
    for i, row in enumerate(zip(*columns.values())):
        values = dict(zip(columns, row))
        obj = {key: values[key] for key in ("timestamp", "source", "medium", "content", "campaign", "term", "landing_page")}
        if converted[i]:
            obj["conversion"] = {
                "email": values["email"],
                "timestamp": values["conversion_timestamp"],
                "conversion_page": values["conversion_page"],
                "previous_page": values["previous_page"],
                "conversion_meta": {"type": values["conversion_type"], "id": values["conversion_id"]},
            }
        if values["exit_page"] is not None:
            obj["exit"] = {
                "exit_page": values["exit_page"],
                "previous_page": values["exit_previous_page"],
                "timestamp": values["exit_timestamp"],
            }
        obj["session_duration"] = values["session_duration"]
        objects.append(obj)
    return pd.Series(objects, index=journey.index, dtype=object)
