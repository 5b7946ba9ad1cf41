"""Multi-touch attribution credits (SPEC section 14): each conversion's path and its credit under six rule-based models.

A conversion's path is the journey sessions of its contact that started at or before it and at most the
lookback before it, plus always the session it happened in, in (session timestamp, session id) order.
Paths are found with one range join (a sorted search per conversion over the contact's sorted journey), so
the work follows the rows on the paths, not conversions × sessions; the models are array arithmetic over
contiguous path segments.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.settings import Settings

RULE_MODELS = ("first_touch", "last_touch", "last_non_direct", "linear", "position_based", "time_decay")
TOUCH_COLUMNS = ["source", "medium", "campaign", "channel"]
CREDIT_COLUMNS = [
    "conversion_event_id",
    "email",
    "conversion_timestamp",
    "conversion_type",
    "conversion_id",
    "session_id",
    "session_timestamp",
    "position",
    "path_length",
    *TOUCH_COLUMNS,
    *RULE_MODELS,
]
US_PER_DAY = 86_400_000_000


def _microseconds(stamps: pd.Series) -> np.ndarray:
    """UTC timestamps as integer microseconds since the epoch."""
    return pd.to_datetime(stamps, utc=True).to_numpy(dtype="datetime64[us]").view("int64")


def _range_keys(emails: list[np.ndarray], stamps: list[np.ndarray]) -> list[np.ndarray]:
    """One sortable integer per (email, instant), comparable across the given arrays: email code, then time rank."""
    codes = pd.factorize(np.concatenate(emails), sort=True)[0].astype("int64")
    ranks = np.unique(np.concatenate(stamps), return_inverse=True)[1].astype("int64")
    keys = codes * (int(ranks.max(initial=0)) + 1) + ranks
    return np.split(keys, np.cumsum([len(e) for e in emails])[:-1])


def conversion_paths(*, journey: pd.DataFrame, conversions: pd.DataFrame, lookback_days: int) -> pd.DataFrame:
    """One row per (conversion, path session), in path order, with `position` (1..n) and `path_length` (n).

    `journey`: the contacts' journey rows (email, session_id, session_timestamp and the touch columns).
    `conversions`: their conversions (event_id, email, session_id, timestamp, conversion_type, conversion_id).
    """
    journey = journey.sort_values(["email", "session_timestamp", "session_id"], kind="stable").reset_index(drop=True)
    row_of = pd.Series(np.arange(len(journey)), index=pd.MultiIndex.from_frame(journey[["email", "session_id"]]))
    own = row_of.reindex(pd.MultiIndex.from_frame(conversions[["email", "session_id"]])).to_numpy()
    conversions = conversions[~np.isnan(own)].reset_index(drop=True)  # a conversion always lies in its contact's journey
    own = own[~np.isnan(own)].astype("int64")
    at = _microseconds(conversions["timestamp"])
    journey_key, earliest_key, latest_key = _range_keys(
        [journey["email"].to_numpy(dtype=object), conversions["email"].to_numpy(dtype=object), conversions["email"].to_numpy(dtype=object)],
        [_microseconds(journey["session_timestamp"]), at - lookback_days * US_PER_DAY, at],
    )
    first = np.searchsorted(journey_key, earliest_key, side="left")  # the earliest session within the lookback
    stop = np.searchsorted(journey_key, latest_key, side="right")  # past the last session starting by the conversion
    earlier_own = (own < first).astype("int64")  # its own session started before the lookback: position 1
    lengths = stop - first + earlier_own
    conversion = np.repeat(np.arange(len(conversions)), lengths)
    offset = np.arange(len(conversion)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    prepended = np.repeat(earlier_own, lengths).astype(bool) & (offset == 0)
    rows = np.where(prepended, own[conversion], first[conversion] + offset - np.repeat(earlier_own, lengths))
    sessions = journey.iloc[rows].reset_index(drop=True)
    converted = conversions.iloc[conversion].reset_index(drop=True)
    return pd.DataFrame(
        {
            "conversion_event_id": converted["event_id"].astype("str"),
            "email": converted["email"].astype("str"),
            "conversion_timestamp": pd.to_datetime(converted["timestamp"], utc=True).astype("datetime64[us, UTC]"),
            "conversion_type": converted["conversion_type"].astype("str"),
            "conversion_id": converted["conversion_id"].astype("str"),
            "session_id": sessions["session_id"].astype("str"),
            "session_timestamp": pd.to_datetime(sessions["session_timestamp"], utc=True).astype("datetime64[us, UTC]"),
            "position": (offset + 1).astype("int64"),
            "path_length": lengths[conversion].astype("int64"),
            **{column: sessions[column].astype("str") for column in TOUCH_COLUMNS},
        }
    )


def _segments(paths: pd.DataFrame) -> np.ndarray:
    """Start row of each conversion's path (paths are contiguous and non-empty)."""
    return np.flatnonzero(paths["position"].to_numpy() == 1)


def _per_path(values: np.ndarray, starts: np.ndarray, reduce: np.ufunc, lengths: np.ndarray) -> np.ndarray:
    """A per-path reduction (sum, max, min) repeated onto every row of the path."""
    return np.repeat(reduce.reduceat(values, starts), lengths)


def rule_based_credits(paths: pd.DataFrame, half_life_days: float) -> pd.DataFrame:
    """The six rule-based models' credit of every path row; each model's credits of a conversion sum to 1."""
    position, n = paths["position"].to_numpy(), paths["path_length"].to_numpy()
    starts = _segments(paths)
    lengths = n[starts] if len(starts) else np.zeros(0, dtype="int64")
    non_direct = np.where(paths["source"].to_numpy(dtype=object) != "direct", position, 0)
    last_non_direct = _per_path(non_direct, starts, np.maximum, lengths) if len(starts) else non_direct
    last_non_direct = np.where(last_non_direct == 0, n, last_non_direct)  # all direct: the last touch
    ends = (position == 1) | (position == n)
    middle = 0.2 / np.maximum(n - 2, 1)
    age = _microseconds(paths["conversion_timestamp"]) - _microseconds(paths["session_timestamp"])  # exact, in µs
    nearest = _per_path(age, starts, np.minimum, lengths) if len(starts) else age
    # 2^(-days / h), taken relative to the path's nearest touch: the same credits after normalising, but the
    # largest weight is 1, so old touches and short half-lives cannot underflow to 0 / 0
    weight = np.exp2(-((age - nearest) / US_PER_DAY) / half_life_days)
    credits = {
        "first_touch": (position == 1).astype("float64"),
        "last_touch": (position == n).astype("float64"),
        "last_non_direct": (position == last_non_direct).astype("float64"),
        "linear": 1.0 / n,
        "position_based": np.select([n == 1, n == 2, ends], [1.0, 0.5, 0.4], default=middle),
        "time_decay": weight / (_per_path(weight, starts, np.add, lengths) if len(starts) else weight),
    }
    return paths.assign(**{model: np.asarray(credits[model], dtype="float64") for model in RULE_MODELS})


def build_credits(*, journey: pd.DataFrame, conversions: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """attribution_credits rows for every conversion in `conversions`, whose contacts' whole journeys are in `journey`."""
    paths = conversion_paths(journey=journey, conversions=conversions, lookback_days=settings.attribution_lookback_days)
    return rule_based_credits(paths, settings.attribution_half_life_days)[CREDIT_COLUMNS]
