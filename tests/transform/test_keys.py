"""The 63-bit keys: the value every store file already holds, whatever SQL computes it."""

import hashlib

import duckdb
import pandas as pd

from pipeline.transform.keys import KEY_SQL, md5_keys

TEXTS = ["visitor-1", "a", "", "é∂ 😀", "4274cdae-e69e-add8-28ae-a127ce38cc9e"]


def test_keys_are_the_last_eight_md5_bytes_little_endian_shifted_by_one():
    expected = [int.from_bytes(hashlib.md5(text.encode()).digest()[8:], "little") >> 1 for text in TEXTS]
    assert md5_keys(pd.Series(TEXTS)).tolist() == expected


def test_key_sql_equals_the_md5_number_lower_form_files_were_written_with():
    with duckdb.connect() as con:
        con.register("t", pd.DataFrame({"x": TEXTS}))
        rows = con.sql(f"SELECT {KEY_SQL.format('x')} = (md5_number_lower(x) >> 1)::BIGINT FROM t").fetchall()
    assert rows == [(True,)] * len(TEXTS)
