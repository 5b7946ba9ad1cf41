"""Test-only crash points: with CONTACTS_FAULT_POINT naming one, the run's process kills itself (SIGKILL) there.

A test sets the point (and CONTACTS_FAULT_MARKER, a file the point's name is appended to just before the kill, so
the test can tell where the kill landed), runs `python -m pipeline run` in a subprocess, and then checks that the
published state is exactly the old or exactly the new one and that the next run converges. Off by default: an
unset point costs one comparison.
"""

from __future__ import annotations

import os
import signal

from pipeline.settings import Settings

POINTS = (
    "stage.after_first_chunk",  # lines of the first chunk are in the scratch database, nothing written yet
    "stage.after_files",  # the run's new event files are written, not yet listed anywhere
    "check.during",  # the quality gates are running
    "publish.after_first_copy",  # inside the publish transaction, one table's rows copied in
    "publish.before_commit",  # every change made, the transaction not yet committed
    "publish.after_commit",  # committed; the replaced files and the workspace not yet removed
)


def fault_point(settings: Settings, point: str) -> None:
    """Die here (SIGKILL, no clean-up, no exception handler) if the settings name this point."""
    if settings.fault_point != point:
        return
    if settings.fault_marker:
        with open(settings.fault_marker, "a", encoding="utf-8") as marker:
            marker.write(point + "\n")
    os.kill(os.getpid(), signal.SIGKILL)
