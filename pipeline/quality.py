"""Quality gates before publish (SPEC section 10)."""

from __future__ import annotations

from pipeline.settings import Settings
from pipeline.workspace import Workspace


def check_run(settings: Settings, run_id: str) -> dict:
    """Validate the run's staged events, sessions and contacts; raise before publish on a critical failure."""
    workspace = Workspace(settings, run_id)
    result = {"summary": "not checked yet"}
    workspace.write_json("validation", result)
    return result
