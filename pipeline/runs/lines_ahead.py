"""A chain of day runs (a backfill) reads the next day's landing files while the current run publishes.

Staging's first half, reading the files and checking their lines (`checked_lines`), needs nothing from the warehouse
but the erased contacts' hashes. In a chain it starts once a run has prepared its rows for publish, and runs on one
thread with one DuckDB thread: the core that the wait for the last gates and publish's transaction (SQLite, one
thread) leave free. Started right after staging it slowed sessionize and publish's preparation more than it saved,
and with two checking threads it slowed the transaction (measured on 10 backfill days). The next run takes those
lines only if they were read from the same files (paths, sizes, modification times) with the same hashes; otherwise
it reads the files itself. A day whose files look staged already (the names and sizes of the last successful run's
manifest) is not read ahead, so a chain of unchanged reruns still costs nothing. A killed process leaves its folder
(`lines-ahead-HOST-PID` under the workspace root); the next chain on that machine removes it.
"""

from __future__ import annotations

import os
import shutil
import socket
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb

from pipeline.contract.landing import partition_files
from pipeline.runs.checked_lines import CheckedLines, check_files
from pipeline.runs.start import looks_unchanged
from pipeline.runs.suppression import suppressed_hashes
from pipeline.settings import Settings
from pipeline.warehouse.engines import get_engine

PREFIX = "lines-ahead-"  # + host name and process id: a folder under the workspace root per process


def _me() -> str:
    """This process among those that may share the workspace (workers on other machines have their own process ids)."""
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass
class _Reading:
    days: list[date]
    files: list[tuple]
    folder: Path
    future: Future


def files_of(settings: Settings, days: list[date]) -> list[tuple]:
    """(path, size, modification time) of each landing file of `days`: what the lines were read from."""
    stats = [(path, path.stat()) for day in days for path in partition_files(settings.landing, day)]
    return [(str(path), stat.st_size, stat.st_mtime_ns) for path, stat in stats]


class LinesAhead:
    """The next interval of a chain, read and checked on a background thread (at most one at a time)."""

    def __init__(self, settings: Settings, intervals: list[list[date]]):
        self.settings, self.intervals = settings, intervals
        self.root = Path(settings.workspace) / f"{PREFIX}{_me()}"
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="lines-ahead")
        self._reading: _Reading | None = None
        remove_orphans(Path(settings.workspace))

    def read_after(self, days: list[date]) -> None:
        """Start reading the interval that follows `days` in the chain, if there is one and it looks new. Reading ahead
        is only a head start: if it cannot begin (a file gone, the warehouse busy), the next run reads its own files."""
        self.discard()
        at = self.intervals.index(days) + 1
        if at < len(self.intervals):
            try:
                self._reading = self._start(self.intervals[at])
            except Exception:
                self._reading = None

    def _start(self, days: list[date]) -> _Reading | None:
        with get_engine(self.settings.warehouse_url).connect() as conn:
            if len(days) == 1 and looks_unchanged(conn, self.settings, days[0]):
                return None
            hashes = suppressed_hashes(conn)
        folder = self.root / days[0].isoformat()
        shutil.rmtree(folder, ignore_errors=True)
        files = files_of(self.settings, days)
        return _Reading(days, files, folder, self._thread.submit(self._check, days, hashes, folder))

    def _check(self, days: list[date], hashes: set[str], folder: Path) -> CheckedLines:
        """Read and check on one core (see the module's docstring)."""
        con = duckdb.connect(config={"memory_limit": f"{self.settings.stage_memory_mb}MB", "threads": 1})
        try:
            return check_files(con, self.settings, days, hashes, folder, workers=1)
        finally:
            con.close()

    def take(self, days: list[date], hashes: set[str]) -> CheckedLines | None:
        """The lines read ahead for exactly these days, files and hashes; None (and nothing kept) otherwise: the run
        then reads the files itself (and meets there any error the reading ahead met)."""
        reading, self._reading = self._reading, None
        if reading is None:
            return None
        try:
            checked = reading.future.result()
        except Exception:
            checked = None
        if checked is None or reading.days != days or checked.hashes != frozenset(hashes) or reading.files != files_of(self.settings, days):
            shutil.rmtree(reading.folder, ignore_errors=True)
            return None
        return checked

    def discard(self) -> None:
        """Drop what is being read (waiting for the thread to finish it)."""
        reading, self._reading = self._reading, None
        if reading is not None:
            wait([reading.future])
            shutil.rmtree(reading.folder, ignore_errors=True)

    def close(self) -> None:
        self.discard()
        self._thread.shutdown()
        shutil.rmtree(self.root, ignore_errors=True)


def remove_orphans(workspace: Path) -> None:
    """Folders that reading ahead left in a process of this machine that is gone (killed mid-chain)."""
    host = f"{PREFIX}{socket.gethostname()}-"
    for folder in workspace.glob(f"{host}*"):
        pid = folder.name.removeprefix(host)
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
