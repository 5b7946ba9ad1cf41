"""Small column helpers the stages share, where the pandas spelling is slow on millions of rows."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


def _strings(values) -> pa.Array:
    series = values if isinstance(values, pd.Series) else pd.Series(list(values), dtype="str")
    return pa.array(series.astype("str"), from_pandas=True).cast(pa.large_string())


def member(values: pd.Series, keys: Iterable) -> np.ndarray:
    """values.isin(keys) for text keys, in Arrow (pandas' isin builds a Python list of the keys each call)."""
    if len(values) == 0:
        return np.zeros(0, dtype=bool)
    found = pc.is_in(_strings(values), value_set=_strings(keys))
    return found.fill_null(False).to_numpy(zero_copy_only=False)


def stack(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Frames one under the other; empty ones are left out so they cannot widen the column types (all empty: the first)."""
    return pd.concat([f for f in frames if len(f)] or frames[:1], ignore_index=True)
