"""A run of one data interval: start it, stage its partition, and what a run changed (the visitors to redo).

The steps after staging live in `steps.py`, publishing in `publish.py`. `run_days` chains them for the
CLI exactly as the DAG does, one load day after another.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timezone

import pandas as pd
from sqlalchemy import select, update

from pipeline import lock
from pipeline import tables as t
from pipeline.erasure import erase_suppressed, suppressed_hashes
from pipeline.events import EVENT_COLUMNS, ORIGIN, StagedLines, landing_days, no_lines, partition_parts, stage_lines
from pipeline.frames import member, stack
from pipeline.settings import Settings
from pipeline.warehouse import create_tables, get_engine, is_empty, read_where_in, transaction
from pipeline.workspace import RunPlan, Workspace

CHANGE_COLUMNS = [c for c in EVENT_COLUMNS if c != "user_agent"] + ["is_bot"]


def utc_now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def new_run_id(days: list[date], full_refresh: bool) -> str:
    """A readable unique id: the interval plus a random suffix."""
    kind = "full" if full_refresh else "day"
    return f"{kind}_{days[0].isoformat()}_{uuid.uuid4().hex[:12]}"


def current_version(conn) -> int:
    """The published version of the warehouse (0 before the first publish)."""
    version = conn.execute(select(t.warehouse_state.c.version).where(t.warehouse_state.c.id == 1)).scalar()
    if version is None:
        conn.execute(t.warehouse_state.insert().values(id=1, version=0))
        return 0
    return int(version)


def start_run(
    settings: Settings,
    days: list[date],
    *,
    full_refresh: bool = False,
    run_id: str | None = None,
    interval: tuple | None = None,
    owner: str | None = None,
) -> str:
    """Take the warehouse lock, record a `running` row and the run's plan (a retried start starts afresh)."""
    engine = get_engine(settings.warehouse_url)
    create_tables(engine)
    interval = interval or (days[0], days[-1])
    run_id = run_id or new_run_id([interval[0]], full_refresh)
    lock.acquire(settings, run_id, owner)
    now = utc_now()
    with transaction(engine) as conn:
        version = current_version(conn)
        conn.execute(t.pipeline_runs.delete().where(t.pipeline_runs.c.run_id == run_id))
        conn.execute(
            t.pipeline_runs.insert().values(
                run_id=run_id,
                interval_start=interval[0],
                interval_end=interval[1],
                full_refresh=full_refresh,
                started_at=now,
                status="running",
            )
        )
    plan = RunPlan(run_id, list(days), full_refresh, settings.buckets, version, now)
    workspace = Workspace(settings, run_id)
    workspace.remove()
    workspace.save_plan(plan)
    return run_id


def fail_run(settings: Settings, run_id: str, error: BaseException | str) -> None:
    """Mark the run failed with a one-line reason and give the lock back; the published tables are untouched."""
    message = str(error).splitlines()[0] if str(error) else type(error).__name__
    validation = Workspace(settings, run_id).validation_summary()
    engine = get_engine(settings.warehouse_url)
    with transaction(engine) as conn:
        conn.execute(
            update(t.pipeline_runs)
            .where(t.pipeline_runs.c.run_id == run_id)
            .values(status="failed", finished_at=utc_now(), error=f"{type(error).__name__}: {message}"[:2000], validation=validation)
        )
        lock.release(conn, run_id)


def _stage_days(settings: Settings, plan: RunPlan) -> tuple[StagedLines, list[dict], int]:
    """Stage every file of the plan's partitions, one file's lines in memory at a time; events deduplicated
    across files and days in load order (the same result as staging each day whole: every check is per line)."""
    staged, manifest, read = [], [], 0
    for day in plan.days:
        for lines, entry in partition_parts(settings.landing, day):
            staged.append(stage_lines(lines, day))
            manifest.append(dict(entry, load_date=day))
            read += len(lines)
            del lines  # the raw lines go before the next file is read
    if not staged:
        staged.append(stage_lines(no_lines(), plan.days[0]))
    events = stack([s.events for s in staged])
    first = ~events["event_id"].duplicated(keep="first")
    quarantine = stack([s.quarantine for s in staged])
    merged = StagedLines(events[first].reset_index(drop=True), quarantine, sum(s.duplicates for s in staged) + int((~first).sum()))
    return merged, manifest, read


def _origin_key(frame: pd.DataFrame) -> pd.Series:
    """Sortable (load day, file, line) text: the earliest copy of an event wins."""
    return frame["load_date"].astype(str) + "\x1f" + frame["source_file"] + "\x1f" + frame["line_number"].astype("int64").map("{:012d}".format)


def dedupe_against_published(staged: pd.DataFrame, published: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """(events to insert, published copies they displace, duplicates dropped) by earliest origin."""
    twins = staged[["event_id"]].merge(published[["event_id", *ORIGIN]], on="event_id", how="inner")
    if twins.empty:
        return staged, published.iloc[0:0], 0
    ours = staged.set_index("event_id").loc[twins["event_id"]]
    staged_wins = (_origin_key(ours.reset_index()).to_numpy() < _origin_key(twins).to_numpy())
    losers = set(twins.loc[~staged_wins, "event_id"])
    displaced = published[member(published["event_id"], twins.loc[staged_wins, "event_id"])]
    return staged[~member(staged["event_id"], losers)].reset_index(drop=True), displaced, len(losers)


def _same_rows(left: pd.DataFrame, right: pd.DataFrame) -> pd.Series:
    """Row-wise equality of two aligned frames, NA equal to NA."""
    equal = pd.Series(True, index=left.index)
    for column in left.columns:
        a, b = left[column], right[column]
        equal &= ((a == b).fillna(False).astype(bool) | (a.isna() & b.isna())).to_numpy()
    return equal


def changed_visitors(inserted: pd.DataFrame, removed: pd.DataFrame) -> pd.DataFrame:
    """Visitors whose events changed, with the earliest changed event's timestamp (where to redo from).

    An event deleted and inserted again unchanged (a rerun of a day) is no change.
    """
    pairs = inserted[CHANGE_COLUMNS].merge(removed[CHANGE_COLUMNS], on="event_id", suffixes=("", "_old"))
    old = pairs[[f"{c}_old" for c in CHANGE_COLUMNS if c != "event_id"]].set_axis(CHANGE_COLUMNS[1:], axis=1)
    unchanged = set(pairs.loc[_same_rows(pairs[CHANGE_COLUMNS[1:]], old).to_numpy(), "event_id"])
    changes = pd.concat(
        [frame.loc[~member(frame["event_id"], unchanged), ["anonymous_id", "timestamp"]] for frame in (inserted, removed)],
        ignore_index=True,
    )
    return changes.groupby("anonymous_id", as_index=False)["timestamp"].min().rename(columns={"timestamp": "change_at"})


def stage_run(settings: Settings, run_id: str) -> dict:
    """Step 1: stage the plan's partitions against the published events; note the visitors to redo."""
    workspace = Workspace(settings, run_id)
    plan = workspace.plan()
    lock.heartbeat(settings, run_id)
    staged, manifest, read = _stage_days(settings, plan)
    engine = get_engine(settings.warehouse_url)
    with engine.connect() as conn:
        staged = erase_suppressed(staged, suppressed_hashes(conn), settings)
        if plan.full_refresh or is_empty(conn, t.events):
            published = read_where_in(conn, t.events, "event_id", [])
            replaced = published
        else:
            published = read_where_in(conn, t.events, "event_id", staged.events["event_id"])
            replaced = read_where_in(conn, t.events, "load_date", plan.days)
    published = published[~published["load_date"].isin(plan.days)]
    events, displaced, late_duplicates = dedupe_against_published(staged.events, published)
    removed = pd.concat([replaced, displaced], ignore_index=True).drop_duplicates("event_id")
    workspace.write_buckets("events", events, "anonymous_id", plan.buckets)
    workspace.write("event_deletes", removed[["event_id"]])
    workspace.write("quarantine", staged.quarantine)
    workspace.write("manifest", pd.DataFrame(manifest, columns=["load_date", "source_file", "bytes", "sha256", "lines_read"]))
    workspace.write("changes", changed_visitors(events, removed))
    plan.stats = {
        "events_read": read,
        "events_loaded": len(events),
        "events_duplicate": staged.duplicates + late_duplicates,
        "events_quarantined": len(staged.quarantine),
        "events_bot": int(events["is_bot"].sum()),
    }
    workspace.save_plan(plan)
    return {**plan.stats, "buckets": list(range(plan.buckets))}



def start_interval(settings: Settings, day: str, run_key: str, full_refresh: bool) -> str:
    """Start the run of one load day (YYYY-MM-DD); a full refresh covers every landing partition."""
    load_day = date.fromisoformat(day)
    days = landing_days(settings.landing) if full_refresh else [load_day]
    run_id = safe_run_id(run_key)
    return start_run(settings, days or [load_day], full_refresh=full_refresh, run_id=run_id, owner=f"airflow:{run_id}")


def safe_run_id(run_key: str) -> str:
    """An orchestrator's run id made safe for a folder name, stable across task retries."""
    return "airflow_" + "".join(c if c.isalnum() or c in "-_." else "_" for c in run_key)
