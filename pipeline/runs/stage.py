"""Step 1 of a run: stage its landing files into new event-store files, and note which visitors changed.

Lines are read and checked against the contract a chunk at a time (`contract.staging`); the valid events go into a
DuckDB scratch database that spills to the workspace beyond `stage_memory_mb`. There the run's copies of an event
are deduplicated (the earliest load day, file and line wins), then against the published events (by a 63-bit key of
the event id, so history costs 8 bytes an event to look through), and written as new store files, one per load day
and bucket, sorted by visitor. Nothing is live before publish lists the files. What changed — events added, removed
or altered, compared with what was published — names the visitors to re-sessionize, each from its earliest change.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from itertools import groupby
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from pipeline.contract.staging import EVENT_COLUMNS
from pipeline.runs import lock
from pipeline.runs.checked_lines import check_files
from pipeline.runs.faults import fault_point
from pipeline.runs.lines_ahead import LinesAhead
from pipeline.runs.scratch import as_frame, scratch_duckdb, utc_cursor
from pipeline.runs.suppression import ERASED_RAW, ERASED_REASON, suppressed_hashes
from pipeline.runs.threads import ordered_map
from pipeline.runs.workspace import RunPlan, Workspace
from pipeline.settings import Settings
from pipeline.transform.keys import KEY_SQL, bucket_sql
from pipeline.warehouse.engines import get_engine
from pipeline.warehouse.event_store import STORED_COLUMNS, EventFile, EventStore, live_files

CHANGE_COLUMNS = [c for c in EVENT_COLUMNS if c != "user_agent"] + ["is_bot"]  # what makes an event "changed"
KEYS = f", {KEY_SQL.format('event_id')} AS event_key, {KEY_SQL.format('anonymous_id')} AS visitor_key"
SORT_SLICE_ROWS = 150_000  # store rows sorted at once in memory (`sorted_slices`): ~55 MB, a full refresh's 100k-event day
QUARANTINE_COLUMNS = ["load_date", "source_file", "line_number", "raw", "reason", "event_id", "email"]


def _load_lines(con, settings: Settings, plan: RunPlan, hashes: set[str], spill: Path, ahead: LinesAhead | None) -> tuple[int, list[dict]]:
    """Every landing file of the plan checked into the tables `staged` and `quarantine`: read here, or read ahead
    while the run before published (a chain of day runs). Returns (non-blank lines read, manifest entries)."""
    checked = ahead.take(plan.days, hashes) if ahead else None
    if checked is None:
        checked = check_files(con, settings, plan.days, hashes, spill, lambda: fault_point(settings, "stage.after_first_chunk"))
    else:
        fault_point(settings, "stage.after_first_chunk")
    checked.chunks.insert(con, "staged", KEYS)
    checked.chunks.insert(con, "quarantine")
    return checked.read, checked.manifest


def _create_tables(con) -> None:
    """The scratch tables staging fills: the valid events of every chunk (with their keys), and the quarantined lines."""
    text = ", ".join(f"{c} VARCHAR" for c in EVENT_COLUMNS if c != "timestamp")
    con.execute(
        f"CREATE TABLE staged ({text}, timestamp TIMESTAMPTZ, source_file VARCHAR, line_number BIGINT, load_date DATE, "
        "is_bot BOOLEAN, erased BOOLEAN DEFAULT false, event_key BIGINT, visitor_key BIGINT)"
    )
    con.execute("CREATE TABLE quarantine (load_date DATE, source_file VARCHAR, line_number BIGINT, raw VARCHAR, reason VARCHAR, event_id VARCHAR, email VARCHAR)")


def _one(con, sql: str) -> tuple:
    return con.sql(sql).fetchall()[0]


def _first_copies(con) -> int:
    """Keep the earliest copy (load day, file, line) of each event id the run staged; returns the copies dropped.

    Only ids that occur more than once are ranked (a hash aggregate finds them), the rest is left in place.
    """
    return _one(
        con,
        """DELETE FROM staged WHERE rowid IN (
            SELECT rowid FROM (
                SELECT rowid, row_number() OVER (PARTITION BY event_id ORDER BY load_date, source_file, line_number) AS copy
                FROM staged WHERE event_id IN (SELECT event_id FROM staged GROUP BY event_id HAVING count(*) > 1))
            WHERE copy > 1)""",
    )[0]


def _move_erased(con) -> None:
    """Events of erased contacts leave the run as redacted quarantine rows (right to erasure)."""
    con.execute(
        f"INSERT INTO quarantine BY NAME SELECT load_date, source_file, line_number, '{ERASED_RAW}' AS raw, "
        f"'{ERASED_REASON}' AS reason, NULL AS event_id, NULL AS email FROM staged WHERE erased"
    )
    con.execute("DELETE FROM staged WHERE erased")


def _against_history(con, store: EventStore, history: list[str]) -> tuple[int, pd.DataFrame]:
    """Drop the run's events that a published earlier copy beats; return (dropped, the published copies the run beats
    with their files).

    Earliest (load day, file, line) wins, whichever day is staged first. Only the 8-byte keys of the history are read
    in full; the files behind a matching key are then read for the rows' event ids and origins.
    """
    hits = con.sql(
        f"SELECT DISTINCT event_key FROM {store.relation(con, history)} WHERE event_key IN (SELECT event_key FROM staged)"
    ).arrow().read_all()["event_key"]
    files = store.rows_where(history, ds.field("event_key").isin(hits), ["event_key"])["path"].unique().tolist() if len(hits) else []
    twins = store.rows_where(files, ds.field("event_key").isin(hits), ["event_id", "load_date", "source_file", "line_number"])
    con.register("twins", twins.astype({"load_date": "datetime64[s]"}))
    con.execute(
        """CREATE TABLE duels AS
        SELECT c.event_id, t.path, (c.load_date, c.source_file, c.line_number) < (t.load_date::DATE, t.source_file, t.line_number) AS run_wins
        FROM staged c JOIN twins t USING (event_id)"""
    )
    (dropped,) = _one(con, "SELECT count(*) FROM duels WHERE NOT run_wins")
    con.execute("DELETE FROM staged WHERE event_id IN (SELECT event_id FROM duels WHERE NOT run_wins)")
    return int(dropped), con.sql("SELECT event_id, path FROM duels WHERE run_wins").df()


def _removed(con, store: EventStore, replaced: list[str], beaten: pd.DataFrame) -> None:
    """`removed`: the published events this run takes away: its days' old files and the copies it beats."""
    parts = []
    if replaced:
        parts.append(f"SELECT {', '.join(CHANGE_COLUMNS)} FROM {store.relation(con, replaced)}")
    if len(beaten):
        con.register("beaten", beaten)
        parts.append(
            f"SELECT {', '.join(CHANGE_COLUMNS)} FROM {store.relation(con, sorted(set(beaten['path'])))} WHERE event_id IN (SELECT event_id FROM beaten)"
        )
    columns = ", ".join(f"NULL::{kind} AS {name}" for name, kind in _change_types(con))
    con.execute(f"CREATE TABLE removed AS {' UNION ALL BY NAME '.join(parts) if parts else f'SELECT {columns} LIMIT 0'}")


def _change_types(con) -> list[tuple[str, str]]:
    types = dict(con.sql("SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'staged'").fetchall())
    return [(name, types[name]) for name in CHANGE_COLUMNS]


def _changes(con) -> pd.DataFrame:
    """Visitors whose events changed (added, removed or altered), with the earliest changed event's time.

    An event removed and staged again unchanged (a rerun of a day) is no change; neither is a new origin.
    """
    same = " AND ".join(f"n.{c} IS NOT DISTINCT FROM o.{c}" for c in CHANGE_COLUMNS if c != "event_id")
    return as_frame(con.sql(
        f"""WITH n AS (SELECT {', '.join(CHANGE_COLUMNS)} FROM staged),
        changed AS (
            SELECT n.anonymous_id AS a1, n.timestamp AS t1, o.anonymous_id AS a2, o.timestamp AS t2
            FROM n FULL OUTER JOIN removed o ON n.event_id = o.event_id
            WHERE n.event_id IS NULL OR o.event_id IS NULL OR NOT ({same})),
        sides AS (SELECT a1 AS anonymous_id, t1 AS ts FROM changed WHERE a1 IS NOT NULL
                  UNION ALL SELECT a2, t2 FROM changed WHERE a2 IS NOT NULL)
        SELECT anonymous_id, {KEY_SQL.format('anonymous_id')} AS visitor_key, min(ts) AS change_at
        FROM sides GROUP BY anonymous_id ORDER BY anonymous_id"""
    ))


def _write_new_files(con, store: EventStore, plan: RunPlan) -> list[EventFile]:
    """The run's events as store files, one per (load day, bucket), sorted by visitor (`sorted_slices`)."""
    order = "load_date, part, visitor_key, anonymous_id, timestamp, event_type = 'conversion', event_id"
    select = f"SELECT {', '.join(STORED_COLUMNS)}, {bucket_sql('visitor_key', plan.buckets)} AS part FROM staged"
    days = con.sql("SELECT load_date, count(*) FROM staged GROUP BY ALL ORDER BY ALL").fetchall()
    queries = [
        (f"{select} WHERE load_date BETWEEN DATE '{first.isoformat()}' AND DATE '{last.isoformat()}' ORDER BY {order}", rows)
        for first, last, rows in sort_slices(days, SORT_SLICE_ROWS)
    ]  # fmt: skip
    return [file for rows in sorted_slices(con, queries) for file in store.write_parts(rows, plan.run_id)]


def sort_slices(days: list[tuple], rows: int) -> list[tuple]:
    """(first load day, last load day, rows) slices of the (load day, rows) counts, in order: consecutive days up to
    `rows` rows a slice, or one day however big (a day is not cut: its buckets' slices would each read the whole
    staged table again, from disk on a big day: the exact 5M-event day 78 → 88 s)."""
    slices: list[list] = []
    for day, count in days:
        if slices and slices[-1][2] + count <= rows:
            slices[-1][1:] = [day, slices[-1][2] + count]
        else:
            slices.append([day, day, count])
    return [tuple(bounds) for bounds in slices]


def sorted_slices(con, queries: list[tuple[str, int]]) -> Iterator[pa.RecordBatchReader]:
    """Each (query, rows) slice's sorted rows, in order. Slices within SORT_SLICE_ROWS are sorted two at a time, each on
    a cursor of its own, in memory (a few at once); a bigger one is streamed, DuckDB sorting it beyond its memory
    limit on disk. All a full refresh's rows sorted at once went to disk too, and a small slice sorts on one thread
    (the full refresh's 3M events over 30 days: 5.8-6.9 → 4.2 s for the store files; whole refreshes 43.7 and 42.6 s
    against 45.6 and 44.4 s, peak RSS 1.09-1.11 → 0.93-0.94 GB)."""
    for small, run in groupby(queries, key=lambda query: query[1] <= SORT_SLICE_ROWS):
        if small:
            for table in ordered_map(partial(_sorted, con), [sql for sql, _ in run], 2):
                yield pa.RecordBatchReader.from_batches(table.schema, table.to_batches())
        else:
            yield from (con.sql(sql).arrow() for sql, _ in run)


def _sorted(con, query: str) -> pa.Table:
    with utc_cursor(con) as cursor:
        return cursor.sql(query).arrow().read_all()


def stage_run(settings: Settings, run_id: str, ahead: LinesAhead | None = None) -> dict:
    """Step 1: the plan's landing files → new store files, quarantine rows, the manifest and the changed visitors."""
    workspace = Workspace(settings, run_id)
    plan = workspace.plan()
    lock.heartbeat(settings, run_id)
    if plan.unchanged_since is None:
        _stage(settings, workspace, plan, ahead)
    return {**plan.stats, "buckets": list(range(plan.buckets))}


def _stage(settings: Settings, workspace: Workspace, plan: RunPlan, ahead: LinesAhead | None) -> None:
    store = EventStore(settings.event_store_location())
    with get_engine(settings.warehouse_url).connect() as conn:
        hashes = suppressed_hashes(conn)
        live = live_files(conn)
    mine = live["load_date"].isin(plan.days) | plan.full_refresh
    replaced, history = live.loc[mine, "path"].tolist(), live.loc[~mine, "path"].tolist()
    with scratch_duckdb(settings, workspace) as con:
        _create_tables(con)
        read, manifest = _load_lines(con, settings, plan, hashes, workspace.root / "stage-chunks", ahead)
        duplicates = _first_copies(con)
        _move_erased(con)
        late, beaten = _against_history(con, store, history)
        rewrites, rewritten = store.rewrite_without(beaten, dict(zip(live["path"], live["load_date"])), plan.run_id)
        _removed(con, store, [] if plan.full_refresh else replaced, beaten)  # a full refresh redoes every visitor
        workspace.write_changes(_changes(con), plan.buckets)
        new_files = _write_new_files(con, store, plan) + rewrites
        quarantine = con.sql(f"SELECT {', '.join(QUARANTINE_COLUMNS)} FROM quarantine ORDER BY load_date, source_file, line_number").df()
        loaded, bots = _one(con, "SELECT count(*), count(*) FILTER (WHERE is_bot) FROM staged")
    workspace.write("quarantine", quarantine)
    workspace.write("manifest", pd.DataFrame(manifest, columns=["load_date", "source_file", "bytes", "sha256", "lines_read"]))
    plan.new_files = [f.to_json() for f in new_files]
    plan.retired_files = replaced + rewritten
    plan.stats = {
        "events_read": read,
        "events_loaded": int(loaded),
        "events_duplicate": duplicates + late,
        "events_quarantined": len(quarantine),
        "events_bot": int(bots),
    }
    workspace.save_plan(plan)
    fault_point(settings, "stage.after_files")
