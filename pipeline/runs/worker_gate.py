"""A chain of runs checks its quality gates inside publish's transaction, just before the commit.

The quality worker validates a run's last suites (contacts, attribution credits) while publish prepares its rows;
on a small day it was still at it when preparing ended, and the run waited (a 30-day backfill: ~7 s of waiting).
Publish's transaction now does its work meanwhile and waits for the outcomes only before it commits: passing, they
are recorded in the same transaction; failing, the transaction rolls back (nothing was visible), and the outcomes
are recorded in their own transaction once it has (SQLite has one writer), so they stay readable. The heartbeat and
the fault point `check.during` come before the transaction, as the DAG's check task has them. The transaction holds
the write lock for the wait too (well under a second where it was measured): other writers (the API's `last_used_at`)
wait that much longer, readers not at all.
"""

from __future__ import annotations

from sqlalchemy import Connection

from pipeline.runs import lock
from pipeline.runs.faults import fault_point
from pipeline.runs.quality import SuiteOutcome, gate_result, record_outcomes
from pipeline.runs.quality_worker import QualityWorker
from pipeline.runs.workspace import Workspace
from pipeline.settings import Settings


class WorkerGate:
    """The check step of a run whose suites a quality worker validates; called by publish with its connection."""

    def __init__(self, settings: Settings, run_id: str, worker: QualityWorker, waiting):
        lock.heartbeat(settings, run_id)
        fault_point(settings, "check.during")
        self.settings, self.run_id, self.worker, self.waiting = settings, run_id, worker, waiting
        self.failed: list[SuiteOutcome] = []

    def __call__(self, conn: Connection) -> dict:
        """The run's outcomes, recorded in publish's transaction; QualityGateError (and nothing recorded yet) on a
        critical failure. `waiting` times the wait (the step clock's `check`)."""
        with self.waiting():
            outcomes = self.worker.outcomes(self.run_id)
        if any(o.critical for o in outcomes):
            self.failed = outcomes
        else:
            record_outcomes(self.settings, self.run_id, outcomes, conn)
        return gate_result(Workspace(self.settings, self.run_id), outcomes)

    def keep_failed(self) -> None:
        """After the rollback: the failing outcomes in their own transaction, where readers find them."""
        if self.failed:
            record_outcomes(self.settings, self.run_id, self.failed)
