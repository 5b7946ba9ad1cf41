"""63-bit keys of ids (half of their md5), and the buckets they fall in.

The event store sorts its files by the key of the anonymous id, and runs split their work into buckets that are
contiguous key ranges, so a bucket reads a key range of each file whatever the bucket count that wrote it. Any
engine can recompute a key: `md5_number(x) >> 65` in DuckDB (the same as `md5_number_lower(x) >> 1`), the last 8
bytes of md5(x) read little-endian and shifted right by one elsewhere.
"""

from __future__ import annotations

from functools import lru_cache

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

# not md5_number_lower: in DuckDB 2.0 that is a macro through a 128-character bit string and back (0.27 → 0.06 s of
# CPU per million keys)
KEY_SQL = "(md5_number({}) >> 65)::BIGINT"


def bucket_sql(key: str, buckets: int) -> str:
    """The bucket of a key column as SQL (see `key_bucket`)."""
    return f"((({key}) >> 31) * {int(buckets)}) >> 32"


def key_bucket(keys: np.ndarray, buckets: int) -> np.ndarray:
    """Bucket b of n holds keys in [b·2^63/n, (b+1)·2^63/n): the top 32 key bits scaled to n."""
    return ((np.asarray(keys, dtype=np.int64) >> 31) * int(buckets)) >> 32


@lru_cache(maxsize=1)
def _engine() -> duckdb.DuckDBPyConnection:
    """One in-memory DuckDB per process for computing keys (a new connection costs more than hashing a bucket)."""
    return duckdb.connect()


def md5_keys(values: pd.Series) -> np.ndarray:
    """The 63-bit key of each text value (the same as KEY_SQL computes in DuckDB)."""
    if len(values) == 0:
        return np.zeros(0, dtype=np.int64)
    texts = pa.table({"v": pa.array(values.astype("str"), type=pa.string(), from_pandas=True)})
    with _engine().cursor() as con:  # a cursor per call: safe from several threads
        con.register("v", texts)
        keys = con.sql(f"SELECT {KEY_SQL.format('v')} AS k FROM v").arrow().read_all()["k"]
    return keys.to_numpy(zero_copy_only=False)


def buckets_of(values: pd.Series, buckets: int) -> np.ndarray:
    """The bucket of each text value (visitors and contacts alike)."""
    if buckets == 1:
        return np.zeros(len(values), dtype=np.int64)
    return key_bucket(md5_keys(values), buckets)


def md5_hex(first: pd.Series, second: pd.Series) -> np.ndarray:
    """md5 of `first \\x1f second` as 32 hex digits, per row (what hashlib gives for the same UTF-8 text)."""
    if len(first) == 0:
        return np.zeros(0, dtype=object)
    texts = pa.table({"a": pa.array(first, type=pa.string(), from_pandas=True), "b": pa.array(second, type=pa.string(), from_pandas=True)})
    with _engine().cursor() as con:
        con.register("t", texts)
        digests = con.sql("SELECT md5(a || chr(31) || b) AS h FROM t").arrow().read_all()["h"]
    return np.asarray(digests.to_numpy(zero_copy_only=False), dtype=object)
