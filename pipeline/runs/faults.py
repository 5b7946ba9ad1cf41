"""Test-only fault points: with CONTACTS_FAULT_POINT naming one, the run fails there, as the test asked.

A test sets the point, CONTACTS_FAULT_MARKER (a file the point's name is appended to when it fires, so the test can
tell where the fault landed) and optionally CONTACTS_FAULT_ACTION:
- `kill` (default): SIGKILL, no clean-up, no exception handler: a crash of the run's process;
- `raise`: an `InjectedFault` exception, as a failing step would raise (what an Airflow task failure looks like);
- `pause`: wait until the test appends `continue` to the marker (so it can break the warehouse from outside).
A point fires once per marker file: a retried task or a second run that passes it again goes on, which is what a
transient failure looks like. CONTACTS_FAULT_TRACE names a file every step's name is appended to as a run enters
it, so a test that kills a run at a random moment can tell which step it landed in. Off by default: an unset point
costs one comparison.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from pipeline.settings import Settings

POINTS = (
    "stage.after_first_chunk",  # the first chunk is checked and spilled to the run's workspace, nothing in the store yet
    "stage.after_files",  # the run's new event files are written, not yet listed anywhere
    "check.during",  # the quality gates are running
    "publish.after_first_copy",  # inside the publish transaction, one table's rows copied in
    "publish.before_commit",  # every change made, the transaction not yet committed
    "publish.after_commit",  # committed; the replaced files and the workspace not yet removed
)
START_POINT = "start.after_lock"  # the lock is taken and the run's row written, its plan not yet saved
STEP_POINTS = ("sessionize.during", "identify.during", "summarise.during")  # each step's start, after its heartbeat
EVERY_STEP = (START_POINT, *POINTS[:2], *STEP_POINTS, *POINTS[2:5])  # every step before the commit, in run order
PAUSE_SECONDS = 120  # a paused run goes on by itself after this long, so a broken test cannot hang the suite


class InjectedFault(RuntimeError):
    """The failure a test asked for at a fault point (CONTACTS_FAULT_ACTION=raise)."""


def fault_point(settings: Settings, point: str) -> None:
    """Fail here, as the settings ask, if they name this point and it has not fired yet for this marker."""
    if settings.fault_point != point:
        return
    marker = Path(settings.fault_marker) if settings.fault_marker else None
    if marker is not None:
        if marker.exists() and point in marker.read_text(encoding="utf-8").split():
            return
        with marker.open("a", encoding="utf-8") as file:
            file.write(point + "\n")
    if settings.fault_action == "raise":
        raise InjectedFault(f"injected failure at {point}")
    if settings.fault_action == "pause":
        _wait_for_continue(marker)
        return
    os.kill(os.getpid(), signal.SIGKILL)


def _wait_for_continue(marker: Path | None) -> None:
    """Hold the run still until the test appends `continue` to the marker."""
    deadline = time.monotonic() + PAUSE_SECONDS
    while marker is not None and time.monotonic() < deadline:
        if "continue" in marker.read_text(encoding="utf-8").split():
            return
        time.sleep(0.05)


def trace(settings: Settings, step: str) -> None:
    """Note that the run enters a step (a line in CONTACTS_FAULT_TRACE, when set)."""
    if settings.fault_trace:
        with open(settings.fault_trace, "a", encoding="utf-8") as file:
            file.write(step + "\n")
