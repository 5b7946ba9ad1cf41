"""The same events for the DuckDB reference (`../shared/bench/ref_duckdb.py`) and for the pipeline.

The reference reads NDJSON with a fixed timestamp format (`%Y-%m-%dT%H:%M:%SZ`) and stops at the first line it
cannot read, while generated landing files hold what real trackers send: zone offsets, milliseconds, gzip and
broken lines. `python -m pipeline.bench.reference_input IN OUT LOAD_DAY` writes the valid events of one landing
file (every copy of a re-sent event kept: both sides dedupe) with their UTC time to the second in the reference's format; both
then read OUT, so the ratio compares the same work on the same file.
"""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa

from pipeline.contract.landing import LandingFile
from pipeline.contract.staging import EVENT_COLUMNS, staged_chunk


def write_reference_input(source: Path, out: Path, load_day: date) -> int:
    """Write the valid events of a landing file as the reference reads them; returns how many."""
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        file = LandingFile(source, source.parent)
        events = pa.concat_tables([staged_chunk(con, chunk, load_day)[0].select(EVENT_COLUMNS) for chunk in file.chunks()])
        con.register("events", events)
        target = str(out).replace("'", "''")
        con.execute(
            f"COPY (SELECT * REPLACE (strftime(timestamp, '%Y-%m-%dT%H:%M:%SZ') AS timestamp) FROM events) TO '{target}' (FORMAT JSON)"
        )
    return events.num_rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pipeline.bench.reference_input", description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="a landing file (.jsonl, .jsonl.gz or .parquet)")
    parser.add_argument("out", type=Path, help="the NDJSON file to write")
    parser.add_argument("load_day", type=date.fromisoformat, help="the file's load day (YYYY-MM-DD)")
    args = parser.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    print(f"{write_reference_input(args.source, args.out, args.load_day):,} events written to {args.out}")


if __name__ == "__main__":
    main()
