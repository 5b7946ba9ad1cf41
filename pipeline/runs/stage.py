"""Step 1 of a run: stage its partitions against the published events, and note what the run changed (the visitors to redo)."""

from __future__ import annotations

import pandas as pd

from pipeline.contract.landing import no_lines, partition_parts
from pipeline.contract.staging import EVENT_COLUMNS, ORIGIN, StagedLines, stage_lines
from pipeline.runs import lock
from pipeline.runs.suppression import erase_suppressed, suppressed_hashes
from pipeline.runs.workspace import RunPlan, Workspace
from pipeline.settings import Settings
from pipeline.transform.frames import member, stack
from pipeline.warehouse import tables as t
from pipeline.warehouse.engines import get_engine
from pipeline.warehouse.rows import is_empty, read_where_in

CHANGE_COLUMNS = [c for c in EVENT_COLUMNS if c != "user_agent"] + ["is_bot"]


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
