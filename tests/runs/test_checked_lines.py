"""Checked chunks kept for staging's insert: in memory up to a budget, in files beyond it, every row inserted once."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pytest

from pipeline.runs.checked_lines import ChunkFiles


@pytest.mark.parametrize("held_bytes", [0, 100, 10**9])
def test_every_chunk_is_inserted_once_whether_held_or_written(tmp_path, held_bytes):
    chunks = ChunkFiles(tmp_path / "chunks", held_bytes=held_bytes)
    for start in range(0, 30, 10):
        chunks.add("t", pa.table({"n": pa.array(range(start, start + 10), pa.int64()), "s": pa.array([str(start)] * 10)}))
    chunks.add("t", pa.table({"n": pa.array([], pa.int64()), "s": pa.array([], pa.string())}))  # nothing to keep
    with duckdb.connect() as con:
        con.execute("CREATE TABLE t (n BIGINT, s VARCHAR, doubled BIGINT)")
        chunks.insert(con, "t", ", n * 2 AS doubled")
        rows = con.sql("SELECT n, s, doubled FROM t ORDER BY n").fetchall()
        assert rows == [(n, str(n // 10 * 10), 2 * n) for n in range(30)]
        chunks.insert(con, "t")  # inserted once: nothing is left to insert again
        assert con.sql("SELECT count(*) FROM t").fetchall() == [(30,)]
    assert not list((tmp_path / "chunks").iterdir())  # written chunks are removed once inserted
