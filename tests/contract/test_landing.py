"""Reading a landing file's lines: what a line is, where it ends, which lines are blank, and the manifest entry."""

from __future__ import annotations

import hashlib

import pytest

from pipeline.contract.landing import LandingFile

RAW = (
    b"\xef\xbb\xbf{\"a\": 1}\r\n"  # a byte-order mark before the first line, a Windows line end
    b"\n"  # empty: not a line of the file's events, but it has a number
    b"  \t\r\n"  # white space only: blank
    b"\xe2\x80\x83\n"  # a Unicode space (em space) only: blank
    b" {\"b\": 2}\n"  # leading white space, then an event: not blank
    b"x\r\r\n"  # one carriage return is cut with the newline, not two
    b"bad \xff byte\n"  # invalid UTF-8 is replaced, the line is kept
    b"last without a newline"
)


@pytest.mark.parametrize("chunk_bytes", [1, 7, 1 << 20])
def test_lines_numbers_and_manifest_whatever_the_chunk_size(tmp_path, chunk_bytes):
    path = tmp_path / "dt=2025-03-01" / "a.jsonl"
    path.parent.mkdir()
    path.write_bytes(RAW)
    file = LandingFile(path, tmp_path)
    rows = [row for chunk in file.chunks(chunk_bytes) for row in chunk.to_pylist()]
    assert [(r["line_number"], r["raw"]) for r in rows] == [
        (1, '{"a": 1}'),
        (5, ' {"b": 2}'),
        (6, "x\r"),
        (7, "bad \ufffd byte"),
        (8, "last without a newline"),
    ]
    assert {r["source_file"] for r in rows} == {"dt=2025-03-01/a.jsonl"}
    assert file.manifest_entry() == {"source_file": "dt=2025-03-01/a.jsonl", "bytes": len(RAW), "sha256": hashlib.sha256(RAW).hexdigest(), "lines_read": 5}
