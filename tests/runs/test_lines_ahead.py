"""A chain of day runs reads the next day's landing files ahead (runs.lines_ahead): the same tables as reading them
when staging, and never lines that are not the files' current content or that were checked with other erasures."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from datetime import date

import pytest

from pipeline.contract.landing import LandingFile
from pipeline.runs.lines_ahead import PREFIX, LinesAhead, remove_orphans
from pipeline.settings import Settings
from pipeline.warehouse.engines import create_tables, get_engine
from tests.helpers import conversion, event, run, write_partition
from tests.runs.test_incremental import assert_same_tables, published

DAYS = [date(2025, 3, 1), date(2025, 3, 2), date(2025, 3, 3)]


def three_days(landing) -> None:
    """A visitor converting on day 1 and coming back each day, late and re-sent events, a broken line."""
    write_partition(landing, "2025-03-01", [
        event("a1", "v1", "2025-03-01 10:00:00", "/?utm_source=news&utm_medium=email"),
        conversion("a2", "v1", "2025-03-01 10:05:00", "/signup", "ann@x.co"),
        "{broken",
    ])  # fmt: skip
    write_partition(landing, "2025-03-02", [
        event("a3", "v1", "2025-03-01 23:50:00", referrer="https://www.google.com/"),
        event("b1", "v2", "2025-03-02 09:00:00", referrer="https://www.bing.com/"),
        conversion("b2", "v2", "2025-03-02 09:02:00", "/signup", "bob@x.co"),
    ])  # fmt: skip
    write_partition(landing, "2025-03-03", [
        event("a1", "v1", "2025-03-01 10:00:00", "/?utm_source=news&utm_medium=email"),
        event("a4", "v1", "2025-03-03 08:00:00", "/pricing"),
    ])  # fmt: skip


def settings_for(tmp_path, landing, name: str, **kwargs) -> Settings:
    return Settings(warehouse_url=f"sqlite:///{tmp_path / f'{name}.db'}", landing=landing, workspace=tmp_path / f"{name}-runs", buckets=2, **kwargs)


def test_a_chain_reads_each_next_day_ahead_and_publishes_what_reading_at_staging_publishes(tmp_path, landing, monkeypatch):
    three_days(landing)
    readers: dict[str, str] = {}
    chunks = LandingFile.chunks

    def watched(self, *args):
        readers[self.source] = threading.current_thread().name
        yield from chunks(self, *args)

    monkeypatch.setattr(LandingFile, "chunks", watched)
    ahead = settings_for(tmp_path, landing, "ahead")
    results = run(ahead, "2025-03-01", "2025-03-03")
    assert readers["dt=2025-03-01/events.jsonl"] == "MainThread"
    assert readers["dt=2025-03-02/events.jsonl"].startswith("lines-ahead")
    assert readers["dt=2025-03-03/events.jsonl"].startswith("lines-ahead")
    plain = settings_for(tmp_path, landing, "plain", read_ahead=False)
    assert [r.figures for r in run(plain, "2025-03-01", "2025-03-03")] == [r.figures for r in results]
    assert_same_tables(published(ahead), published(plain))
    assert not list((tmp_path / "ahead-runs").glob(f"{PREFIX}*"))  # nothing read ahead is left behind


def test_lines_read_ahead_are_taken_only_for_the_same_days_files_and_erasures(tmp_path, landing):
    three_days(landing)
    settings = settings_for(tmp_path, landing, "wh")
    create_tables(get_engine(settings.warehouse_url))
    ahead = LinesAhead(settings, [[d] for d in DAYS])
    ahead.read_after([DAYS[0]])
    checked = ahead.take([DAYS[1]], set())
    assert (checked.read, [e["lines_read"] for e in checked.manifest]) == (3, [3])
    ahead.read_after([DAYS[0]])
    assert ahead.take([DAYS[2]], set()) is None  # another day
    ahead.read_after([DAYS[0]])
    assert ahead.take([DAYS[1]], {"some erased contact's hash"}) is None
    ahead.read_after([DAYS[0]])
    path = landing / "dt=2025-03-02" / "events.jsonl"
    ahead._reading.future.result()
    path.write_text(path.read_text() + '{"late": "line"}\n')
    assert ahead.take([DAYS[1]], set()) is None  # the file changed after it was read
    ahead.read_after([DAYS[2]])  # the chain's last day: nothing follows
    assert ahead._reading is None
    ahead.close()
    assert not ahead.root.exists()


def test_a_day_that_looks_staged_already_is_not_read_ahead(tmp_path, landing):
    three_days(landing)
    settings = settings_for(tmp_path, landing, "wh")
    run(settings, "2025-03-01", "2025-03-02")
    ahead = LinesAhead(settings, [[d] for d in DAYS])
    ahead.read_after([DAYS[0]])
    assert ahead._reading is None  # day 2 has the names and sizes its last run staged: a rerun, nothing to read
    ahead.read_after([DAYS[1]])
    assert ahead._reading is not None  # day 3 was never staged
    ahead.close()


def test_folders_of_processes_of_this_machine_that_are_gone_are_removed(tmp_path):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    host = f"{PREFIX}{socket.gethostname()}-"
    orphan, mine, elsewhere = tmp_path / f"{host}{gone.stdout.strip()}", tmp_path / f"{host}{os.getpid()}", tmp_path / f"{PREFIX}other-host-{gone.stdout.strip()}"
    for folder in (orphan, mine, elsewhere):
        (folder / "2025-03-02").mkdir(parents=True)
    remove_orphans(tmp_path)
    assert not orphan.exists() and mine.exists() and elsewhere.exists()  # another machine's processes are not ours to judge


@pytest.mark.parametrize("size, expected", [(40 << 20, (10 << 20) + 1), (400 << 20, 32 << 20), (1000, 1 << 20)])
def test_a_small_file_is_still_read_in_four_chunks(tmp_path, size, expected):
    path = tmp_path / "dt=2025-03-01" / "events.jsonl"
    path.parent.mkdir()
    with open(path, "wb") as file:
        file.truncate(size)
    assert LandingFile(path, tmp_path).chunk_bytes(32 << 20) == expected
    assert LandingFile(path, tmp_path).chunk_bytes(64) == 64  # a smaller setting is kept


def test_a_chain_starts_its_quality_worker_before_the_first_day_stages(tmp_path, landing, monkeypatch):
    import pipeline.runs.nightly as nightly

    three_days(landing)
    order: list[str] = []
    worker, stage = nightly.QualityWorker, nightly.stage_run

    def started_worker():
        order.append("worker")
        return worker()

    def staged(*args):
        order.append("stage")
        return stage(*args)

    monkeypatch.setattr(nightly, "QualityWorker", started_worker)
    monkeypatch.setattr(nightly, "stage_run", staged)
    run(settings_for(tmp_path, landing, "wh", quality_worker=True), "2025-03-01", "2025-03-02")
    assert order == ["worker", "stage", "stage"]
    order.clear()
    run(settings_for(tmp_path, landing, "one", quality_worker=True), "2025-03-01")  # one day: staging first, as the worker slows it
    assert order == ["stage", "worker"]
