"""Runs over the event store (SPEC §8, §9): files published with the warehouse, reruns that cost nothing when nothing
changed, crashes at every point leaving the old or the new state, readers never failing, cost following the work."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from pipeline.runs.faults import POINTS
from pipeline.runs.forget import forget
from pipeline.runs.nightly import STEPS
from pipeline.runs.stage import sort_slices, stage_run
from pipeline.runs.start import run_buckets, start_run
from pipeline.runs.steps import sessionize
from pipeline.sample.generate import generate_landing
from pipeline.settings import Settings
from pipeline.warehouse import tables as t
from pipeline.warehouse.engines import get_engine
from pipeline.warehouse.event_store import CATALOG, EventStore, live_files
from pipeline.warehouse.rows import read_table
from tests.helpers import REPO_DAGS, conversion, event, run, spy_fsyncs, table, write_partition
from tests.runs.test_incremental import assert_same_tables, published

DAY1, DAY2 = "2025-03-01", "2025-03-02"


def two_days(landing: Path) -> None:
    """v1 converts on day 1 and comes back on day 2 (a session across midnight); v2 is new on day 2; a repeat."""
    write_partition(landing, DAY1, [
        event("a1", "v1", "2025-03-01 10:00:00", "/?utm_source=news&utm_medium=email"),
        conversion("a2", "v1", "2025-03-01 10:05:00", "/signup", "ann@x.co"),
        event("a3", "v1", "2025-03-01 23:50:00", referrer="https://www.google.com/"),
        event("b1", "v3", "2025-03-01 12:00:00"),
        "{not json",
    ])  # fmt: skip
    write_partition(landing, DAY2, [
        event("a4", "v1", "2025-03-02 00:10:00", "/pricing"),
        event("c1", "v2", "2025-03-02 09:00:00", referrer="https://www.bing.com/"),
        conversion("c2", "v2", "2025-03-02 09:02:00", "/signup", "cid@x.co"),
        event("a1", "v1", "2025-03-01 10:00:00", "/?utm_source=news&utm_medium=email"),
    ])  # fmt: skip


def store_of(settings: Settings) -> EventStore:
    return EventStore(settings.event_store_location())


def live(settings: Settings) -> list[str]:
    with get_engine(settings.warehouse_url).connect() as conn:
        return sorted(live_files(conn)["path"])


def runs(settings: Settings) -> pd.DataFrame:
    return table(settings, "pipeline_runs", order_by=["started_at"])


def clean_state(tmp_path: Path, landing: Path, days: list[str]) -> dict:
    """What one run per day, on a fresh warehouse, publishes."""
    settings = Settings(warehouse_url=f"sqlite:///{tmp_path / 'clean.db'}", landing=landing, workspace=tmp_path / "clean-runs", buckets=2)
    for day in days:
        run(settings, day)
    return published(settings)


def test_a_run_publishes_its_events_as_listed_files_and_a_catalog(settings):
    two_days(settings.landing)
    run(settings, DAY1, DAY2)
    store = store_of(settings)
    assert store.files_on_disk() == live(settings)  # nothing left over
    events = table(settings, "events")
    assert sorted(events["event_id"]) == ["a1", "a2", "a3", "a4", "b1", "c1", "c2"]
    assert events.set_index("event_id").loc["a1", "load_date"] == date(2025, 3, 1)  # the earliest copy won
    with duckdb.connect(store.full_path(CATALOG), read_only=True) as con:
        assert con.sql("SELECT count(*), count(DISTINCT event_id) FROM events").fetchall() == [(7, 7)]


def test_publish_lists_only_files_already_forced_to_disk(settings, monkeypatch):
    """A power loss after the commit must not leave a listed file cut short: each file and its folders are fsynced
    before `commit_files` runs in the transaction."""
    import pipeline.runs.publish as publish_module

    synced, real_commit = spy_fsyncs(monkeypatch), publish_module.commit_files

    def commit_after_sync(conn, run_id, new, retired, now):
        store = store_of(settings)
        for file in new:
            path = Path(store.full_path(file.path))
            assert {str(path), str(path.parent), str(path.parent.parent), store.root} <= set(synced)
        return real_commit(conn, run_id, new, retired, now)

    monkeypatch.setattr(publish_module, "commit_files", commit_after_sync)
    two_days(settings.landing)
    run(settings, DAY1, DAY2)
    assert len(live(settings)) >= 2  # both days' files went through the check


def test_a_rerun_of_unchanged_files_does_nothing_and_says_so(settings):
    two_days(settings.landing)
    run(settings, DAY1, DAY2)
    before, files = published(settings), live(settings)
    (again,) = run(settings, DAY2)
    assert again.figures["unchanged_since"] == runs(settings)["run_id"].iloc[1]
    assert (again.figures["sessions_written"], again.figures["contacts_updated"]) == (0, 0)
    assert_same_tables(published(settings), before)
    assert live(settings) == files
    rerun = runs(settings).iloc[-1]
    assert rerun["validation"] == f"unchanged since {rerun['unchanged_since']}"
    assert (rerun["events_read"], rerun["events_loaded"], rerun["events_duplicate"], rerun["events_quarantined"]) == (4, 3, 1, 0)


def test_a_changed_file_redoes_only_the_visitors_it_touches(settings, tmp_path):
    two_days(settings.landing)
    run(settings, DAY1, DAY2)
    write_partition(settings.landing, DAY2, [
        event("a4", "v1", "2025-03-02 00:10:00", "/pricing"),
        event("c1", "v2", "2025-03-02 09:00:00", referrer="https://www.bing.com/"),
        conversion("c2", "v2", "2025-03-02 09:03:00", "/signup", "cid@x.co"),  # a minute later
        event("a1", "v1", "2025-03-01 10:00:00", "/?utm_source=news&utm_medium=email"),
    ])  # fmt: skip
    (rerun,) = run(settings, DAY2)
    assert rerun.figures["sessions_written"] == 1 and rerun.figures["contacts_updated"] == 1  # v2's one session, cid
    assert_same_tables(published(settings), clean_state(tmp_path, settings.landing, [DAY1, DAY2]))


def test_a_nightly_run_reads_only_the_files_its_visitors_need(settings):
    """Day 2 touches v1, whose day-1 session ended 20 minutes before midnight (so it is redone from day 1's file),
    and v2, who is new: the run reads day 1's file of v1's bucket and its own new files, nothing else."""
    two_days(settings.landing)
    write_partition(settings.landing, "2025-02-27", [event("z1", "v9", "2025-02-27 10:00:00")])
    run(settings, "2025-02-27", DAY1)
    run_id = start_run(settings, [date(2025, 3, 2)])
    stage_run(settings, run_id)
    read = {path for bucket in range(settings.buckets) for path in sessionize(settings, run_id, bucket)["files_read"]}
    days = {path.split("/")[1] for path in read}
    assert days == {"dt=2025-03-01", "dt=2025-03-02"}  # never the file of 02-27


def test_the_sql_events_table_mirrors_the_store_when_kept(tmp_path, landing):
    settings = Settings(warehouse_url=f"sqlite:///{tmp_path / 'wh.db'}", landing=landing, workspace=tmp_path / "runs", buckets=2, events_table=True)
    two_days(landing)
    run(settings, DAY2)
    run(settings, DAY1)  # the earlier day, later: a1 moves to day 1
    forget(settings, "cid@x.co")
    with get_engine(settings.warehouse_url).connect() as conn:
        in_sql = read_table(conn, t.events).sort_values("event_id").reset_index(drop=True)
    in_store = store_of(settings).read(live(settings), [c.name for c in t.events.columns]).sort_values("event_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(in_sql, in_store, check_dtype=False)
    assert "c2" not in set(in_sql["event_id"]) and in_sql.set_index("event_id").loc["a1", "load_date"] == date(2025, 3, 1)


def test_a_store_on_another_filesystem_publishes_the_same(tmp_path, landing):
    two_days(landing)
    local = Settings(warehouse_url=f"sqlite:///{tmp_path / 'a.db'}", landing=landing, workspace=tmp_path / "runs", buckets=2)
    remote = local.model_copy(update={"warehouse_url": f"sqlite:///{tmp_path / 'b.db'}", "event_store": f"memory://store-{tmp_path.name}"})
    for settings in (local, remote):
        run(settings, DAY1, DAY2)
    assert_same_tables(published(remote), published(local))


def test_store_rows_are_sorted_a_slice_of_load_days_at_a_time():
    """Consecutive load days while their rows fit in a slice; a bigger day alone, never cut."""
    d1, d2, d3, d4 = (date(2025, 3, day) for day in (1, 2, 3, 4))
    counts = [(d1, 100), (d2, 100), (d3, 300), (d4, 10)]
    assert sort_slices(counts, 250) == [(d1, d2, 200), (d3, d3, 300), (d4, d4, 10)]
    assert sort_slices(counts, 10**9) == [(d1, d4, 510)]
    assert sort_slices([], 250) == []


def store_rows(settings: Settings) -> list[pd.DataFrame]:
    """Each live file's rows as stored (in the file's order), the files by load day and part."""
    files = sorted(live(settings), key=lambda path: (path.split("/")[1], path.rsplit("-", 1)[1]))
    return [store_of(settings).read([path]) for path in files]


@pytest.mark.parametrize("slice_rows", [1, 50])
def test_store_files_are_the_same_whatever_the_slices_they_are_sorted_in(tmp_path, landing, monkeypatch, slice_rows):
    """A full refresh sorted a slice at a time writes the same files, row for row, as sorted all at once: each day
    streamed (1), or the first (44 events) sorted in memory and the second (63) streamed (50)."""
    import pipeline.runs.stage as stage_module

    two_days(landing)
    for day, more in ((DAY1, 40), (DAY2, 60)):  # more visitors a day: each day has events in every part
        write_partition(landing, day, [event(f"{day}-{i}", f"w{i % 20}", f"{day} 0{i % 10}:00:00") for i in range(more)], name="more.jsonl")
    whole = Settings(warehouse_url=f"sqlite:///{tmp_path / 'a.db'}", landing=landing, workspace=tmp_path / "a", buckets=3)
    sliced = whole.model_copy(update={"warehouse_url": f"sqlite:///{tmp_path / 'b.db'}", "workspace": tmp_path / "b"})
    monkeypatch.setattr(stage_module, "SORT_SLICE_ROWS", 10**9)
    run(whole, DAY1, DAY2, full_refresh=True)
    monkeypatch.setattr(stage_module, "SORT_SLICE_ROWS", slice_rows)
    run(sliced, DAY1, DAY2, full_refresh=True)
    expected, got = store_rows(whole), store_rows(sliced)
    assert len(got) == len(expected) == 6  # two days × three parts
    assert sum(map(len, got[:3])) <= 50 < sum(map(len, got[3:]))  # day 1 fits a slice of 50, day 2 does not
    for left, right in zip(got, expected):
        pd.testing.assert_frame_equal(left, right)
    assert_same_tables(published(sliced), published(whole))


def test_a_big_load_gets_more_buckets(tmp_path):
    folder = tmp_path / "landing" / "dt=2025-03-01"
    folder.mkdir(parents=True)
    (folder / "big.jsonl").write_bytes(b" " * 4_000_000)  # about 10,000 events at 400 bytes
    settings = Settings(landing=tmp_path / "landing", buckets=2, bucket_events=1000)
    assert run_buckets(settings, [date(2025, 3, 1)]) == 10
    assert run_buckets(settings.model_copy(update={"bucket_events": 100_000}), [date(2025, 3, 1)]) == 2


def cli(settings: Settings, day: str, **env: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "pipeline", "run", "--landing", str(settings.landing), "--warehouse", settings.warehouse_url,
               "--start", day, "--end", day]  # fmt: skip
    environment = dict(os.environ, PYTHONPATH=str(REPO_DAGS.parent), CONTACTS_WORKSPACE=str(settings.workspace),
                       CONTACTS_BUCKETS=str(settings.buckets), CONTACTS_EVENT_STORE_GRACE_MINUTES="0", **env)  # fmt: skip
    return subprocess.run(command, env=environment, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def states(tmp_path_factory) -> tuple[dict, dict]:
    """The tables after day 1, and after days 1 and 2, from clean runs."""
    root = tmp_path_factory.mktemp("clean")
    two_days(root / "landing")
    settings = Settings(warehouse_url=f"sqlite:///{root / 'clean.db'}", landing=root / "landing", workspace=root / "runs", buckets=2)
    run(settings, DAY1)
    old = published(settings)
    run(settings, DAY2)
    return old, published(settings)


@pytest.mark.parametrize("point", POINTS)
def test_a_kill_at_any_point_leaves_the_old_or_the_new_state_and_the_next_run_converges(sqlite_url, tmp_path, landing, point, states):
    settings = Settings(warehouse_url=sqlite_url, landing=landing, workspace=tmp_path / "runs", buckets=2)
    two_days(landing)
    run(settings, DAY1)
    old, new = states
    assert_same_tables(published(settings), old)
    marker = tmp_path / "marker"
    trace = tmp_path / "trace"
    killed = cli(settings, DAY2, CONTACTS_FAULT_POINT=point, CONTACTS_FAULT_MARKER=str(marker), CONTACTS_QUALITY_WORKER="false",
                 CONTACTS_FAULT_TRACE=str(trace))  # fmt: skip
    assert killed.returncode == -9 and marker.read_text() == f"{point}\n", killed.stderr
    assert trace.read_text().split()[-1] == point.split(".")[0]  # the step it was in when it died
    assert_same_tables(published(settings), new if point == "publish.after_commit" else old)
    assert runs(settings)["status"].tolist() == ["success", "success" if point == "publish.after_commit" else "running"]
    worker = "true" if point == POINTS[0] else "false"  # one of them finishes through the quality worker process
    finished = cli(settings, DAY2, CONTACTS_QUALITY_WORKER=worker)
    assert finished.returncode == 0, finished.stderr
    assert_same_tables(published(settings), new)
    assert store_of(settings).files_on_disk() == live(settings)  # the killed run's files are gone
    statuses = runs(settings)["status"].tolist()
    assert statuses[-1] == "success" and statuses.count("running") == 0


def killed_at(settings: Settings, day: str, seconds: float, trace: Path) -> tuple[int, str]:
    """Start `python -m pipeline run` (quality worker on, as users run it), SIGKILL its process group after `seconds`;
    returns its exit code and the step it was in (the last line of its trace)."""
    command = [sys.executable, "-m", "pipeline", "run", "--landing", str(settings.landing), "--warehouse", settings.warehouse_url,
               "--start", day, "--end", day]  # fmt: skip
    environment = dict(os.environ, PYTHONPATH=str(REPO_DAGS.parent), CONTACTS_WORKSPACE=str(settings.workspace), CONTACTS_BUCKETS="2",
                       CONTACTS_QUALITY_WORKER="true", CONTACTS_FAULT_TRACE=str(trace))  # fmt: skip
    process = subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    steps = trace.read_text().split() if trace.exists() else []
    return process.returncode, steps[-1] if steps else "python start-up"


def test_kills_spread_over_a_real_run_leave_the_old_or_the_new_state_and_the_next_run_converges(tmp_path):
    """Black box: a run's length is measured, then runs are killed at moments spread over it, wherever they are."""
    landing = tmp_path / "landing"
    generate_landing(landing, visitors=1200, days=2, start=date(2025, 3, 1), seed=7)
    clean = Settings(warehouse_url=f"sqlite:///{tmp_path / 'clean.db'}", landing=landing, workspace=tmp_path / "clean-runs", buckets=2)
    run(clean, DAY1)
    old = published(clean)
    started = time.monotonic()
    assert killed_at(clean, DAY2, 600, tmp_path / "measured")[0] == 0
    length, new = time.monotonic() - started, published(clean)
    settings = clean.model_copy(update={"warehouse_url": f"sqlite:///{tmp_path / 'killed.db'}", "workspace": tmp_path / "runs"})
    run(settings, DAY1)
    landed = []
    for i, share in enumerate((0.2, 0.4, 0.6, 0.8)):
        code, step = killed_at(settings, DAY2, share * length, tmp_path / f"trace-{i}")
        landed.append((share, step if code == -signal.SIGKILL else f"finished ({code})"))
        done = "success" in runs(settings)["status"].tolist()[1:]
        assert_same_tables(published(settings), new if done else old)
    print(f"run of {length:.1f} s killed in: {landed}")
    assert sum(step in STEPS for _, step in landed) >= 3 and len({step for _, step in landed}) >= 2, landed
    assert cli(settings, DAY2).returncode == 0
    assert_same_tables(published(settings), new)
    assert store_of(settings).files_on_disk() == live(settings)
    assert runs(settings)["status"].tolist()[-1] == "success" and "running" not in runs(settings)["status"].tolist()


READER = """
import json, sys, time, duckdb
from pipeline.settings import Settings
from pipeline.warehouse.engines import get_engine
from pipeline.warehouse.event_store import EventStore, published_events
settings = Settings(warehouse_url=sys.argv[1], workspace=sys.argv[2])
store, counts, deadline = EventStore(settings.event_store_location()), set(), time.monotonic() + float(sys.argv[3])
while time.monotonic() < deadline:
    with get_engine(settings.warehouse_url).connect() as conn:
        conn.exec_driver_sql("BEGIN")
        counts.add(("python", len(published_events(conn, store))))
        conn.rollback()
    with duckdb.connect(store.full_path("catalog.duckdb"), read_only=True) as con:
        counts.add(("catalog", con.sql("SELECT count(*) FROM events").fetchall()[0][0]))
print(json.dumps(sorted(counts)))
"""


def test_readers_of_the_store_never_fail_while_runs_publish(sqlite_url, tmp_path, landing):
    settings = Settings(warehouse_url=sqlite_url, landing=landing, workspace=tmp_path / "runs", buckets=2)
    two_days(landing)
    run(settings, DAY1)
    env = dict(os.environ, PYTHONPATH=str(REPO_DAGS.parent))
    reader = subprocess.Popen([sys.executable, "-c", READER, sqlite_url, str(settings.workspace), "8"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    for day in (DAY2, DAY1, DAY2):  # new events, then a rerun of day 1 that moves a1's winning copy back and forth
        write_partition(landing, day, [*open(landing / f"dt={day}" / "events.jsonl").read().splitlines(), f'{{"event_id": "x{day}", "anonymous_id": "vx", "timestamp": "{day}T08:00:00Z", "event_type": "page_view", "page_url": "https://shop.example.com/"}}'])
        run(settings, day)
    out, err = reader.communicate(timeout=120)
    assert reader.returncode == 0, err
    seen = json.loads(out)
    assert {count for _, count in seen} <= {4, 8, 9} and len(seen) >= 4  # each reader saw more than one state


def test_a_warehouse_with_events_in_sql_asks_for_a_full_refresh_once(settings):
    """A warehouse made before the event store holds its events in SQL: an incremental run would miss them."""
    from pipeline.warehouse.engines import create_tables, transaction
    from pipeline.warehouse.rows import insert_frame

    two_days(settings.landing)
    create_tables(get_engine(settings.warehouse_url))
    old = store_of(settings).read([])  # the events table's columns
    old = pd.DataFrame([{**{c: None for c in old.columns}, "event_id": "old-1", "anonymous_id": "v0", "timestamp": pd.Timestamp("2025-02-01", tz="UTC"),
                         "event_type": "page_view", "page_url": "https://shop.example.com/", "is_bot": False, "load_date": date(2025, 2, 1),
                         "source_file": "dt=2025-02-01/e.jsonl", "line_number": 1}])  # fmt: skip
    with transaction(get_engine(settings.warehouse_url)) as conn:
        insert_frame(conn, t.events, old)
    with pytest.raises(ValueError, match="rebuild it once with --full-refresh"):
        run(settings, DAY1)
    assert runs(settings).empty and table(settings, "warehouse_state")["lock_run_id"].isna().all()
    run(settings, DAY1, DAY2, full_refresh=True)
    assert len(table(settings, "events")) == 7 and live(settings)
    run(settings, DAY2)  # incremental runs work again
