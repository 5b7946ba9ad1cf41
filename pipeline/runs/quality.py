"""Quality gates before publish (SPEC section 10): a run's staged events, sessions, contacts and attribution
credits checked against the facts of schemas/tables.yml with Great Expectations.

Every suite's outcome is kept (a `validation_results` row per suite, written in its own transaction or, in a chain
of runs, in publish's: `runs/worker_gate.py`; and `validation.json` in the workspace); a failed critical expectation
raises `QualityGateError`, so the run fails before publish and the published tables stay as they were. Non-critical
failures are only recorded.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import pandas as pd
from sqlalchemy import Connection

from pipeline.runs import gx_shortcuts, lock
from pipeline.runs.deferred_imports import defer
from pipeline.runs.expectations import suite_expectations, with_derived, with_run_context
from pipeline.runs.faults import fault_point
from pipeline.runs.workspace import Workspace
from pipeline.settings import Settings
from pipeline.transform.frames import stack
from pipeline.warehouse import tables as t
from pipeline.warehouse.engines import get_engine, transaction
from pipeline.warehouse.event_store import ROW_GROUP_ROWS, EventStore
from pipeline.warehouse.rows import insert_frame
from pipeline.warehouse.state import utc_now

UNUSED_BY_GATES = ("scipy.stats", "altair")  # imported by Great Expectations for checks and charts the gates never use
BATCH_ROWS = 150_000  # rows a validation holds at most (about: a group ends on the batch that reaches it)
BATCH_BYTES = 96 << 20  # and bytes in pandas (GX's checks make a few copies of what they read)
SAMPLE_VALUES = 5  # unexpected values kept per failed expectation
RESULT_FORMAT = {"result_format": "BASIC", "partial_unexpected_count": SAMPLE_VALUES}
PASS_FORMAT = {"result_format": "BOOLEAN_ONLY"}  # pass or fail only: GX skips the metrics of unexpected values


class QualityGateError(RuntimeError):
    """A critical expectation failed: the run must not publish."""


@dataclass
class SuiteOutcome:
    """What one suite found: how many expectations ran and which failed."""

    suite: str
    evaluated: int
    failures: list[dict] = field(default_factory=list)

    @property
    def critical(self) -> list[dict]:
        return [f for f in self.failures if f["critical"]]

    def merged(self, other: SuiteOutcome) -> SuiteOutcome:
        """This outcome and another batch's of the same suite: a check fails if it failed in either."""
        failures = {f["check"]: f for f in self.failures}
        for failure in other.failures:
            if failure["check"] in failures and "unexpected_count" in failure:
                seen = failures[failure["check"]]
                values = (seen.get("unexpected_values", []) + failure.get("unexpected_values", []))[:SAMPLE_VALUES]
                failures[failure["check"]] = {**seen, "unexpected_count": seen.get("unexpected_count", 0) + failure["unexpected_count"], "unexpected_values": values}
            else:
                failures.setdefault(failure["check"], failure)
        return SuiteOutcome(self.suite, max(self.evaluated, other.evaluated), list(failures.values()))

    def summary(self) -> str:
        """`sessions 9/9 ok`, or the failures counted when some failed."""
        passed = f"{self.suite} {self.evaluated - len(self.failures)}/{self.evaluated}"
        minor = len(self.failures) - len(self.critical)
        if self.critical:
            return f"{passed} FAILED ({len(self.critical)} critical, {minor} non-critical)"
        return f"{passed} ok" + (f" ({minor} non-critical failed)" if minor else "")


SUITES = ("events", "sessions", "contacts", "attribution_credits")


def suite_batches(settings: Settings, workspace: Workspace, suite: str) -> Iterator[pd.DataFrame]:
    """What one gate checks, a batch at a time: the run's new event files, or one bucket of a step's output."""
    plan = workspace.plan()
    if suite == "events":
        store = EventStore(settings.event_store_location())
        yield from store.batches([file.path for file in plan.event_files()], ROW_GROUP_ROWS)
        return
    for bucket in range(plan.buckets):
        frame = workspace.read(f"{suite}-{bucket}")
        if suite == "attribution_credits":  # credits are checked against the journeys of the same contacts
            journeys = workspace.read(f"contact_sessions-{bucket}")
            frame = with_run_context(frame, journeys=journeys, lookback_days=settings.attribution_lookback_days)
        yield frame


def run_frames(settings: Settings, workspace: Workspace) -> dict[str, pd.DataFrame]:
    """Each gate's whole frame (small runs and tests; runs validate batch by batch)."""
    return {suite: stack(list(suite_batches(settings, workspace, suite)) or [pd.DataFrame()]) for suite in SUITES}


def _plain(value):
    """A value strict JSON can hold: numpy scalars unwrapped, NaN as null, timestamps and the rest as text."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    return value if isinstance(value, (str, int, float, bool)) or value is None else str(value)


def _failure(result) -> dict:
    """One failed expectation, compact: its check, type, criticality, unexpected count and a few values."""
    config, found = result.expectation_config, result.result or {}
    entry = {"check": config.meta["check"], "expectation": config.type, "critical": config.meta["critical"]}
    if result.exception_info.get("raised_exception"):
        entry["error"] = str(result.exception_info.get("exception_message", "")).splitlines()[0][:300]
    elif found.get("details", {}).get("mismatched"):  # only missing columns fail; derived ones are extra
        entry["observed_value"] = {"missing": _plain(found["details"]["mismatched"].get("missing", []))}
    elif "unexpected_count" in found:
        entry["unexpected_count"] = _plain(found["unexpected_count"])
        entry["unexpected_values"] = _plain(list(found.get("partial_unexpected_list") or [])[:SAMPLE_VALUES])
    else:
        entry["observed_value"] = _plain(found.get("observed_value"))
    return entry


class Validator:
    """Great Expectations with its context and suites built once per process (GX's import and set-up cost seconds)."""

    def __init__(self):
        defer(*UNUSED_BY_GATES)  # imported at first use, if any: GX's import 3.0 → 1.8 s
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        gx_shortcuts.install()
        self.gx = gx
        self.context = gx.get_context(mode="ephemeral")
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False)
        self.source = self.context.data_sources.add_pandas("run")
        self.suites: dict[str, tuple] = {}

    def _suite(self, suite: str) -> tuple:
        if suite not in self.suites:
            expectations = suite_expectations(suite)
            batches = self.source.add_dataframe_asset(suite).add_batch_definition_whole_dataframe("whole")
            self.suites[suite] = (batches, self.gx.ExpectationSuite(name=suite, expectations=expectations), expectations)
        return self.suites[suite]

    def _forget_batches(self) -> None:
        """GX's execution engine keeps every validated frame in its caches; drop them, or each suite's last batch stays."""
        manager = self.source.get_execution_engine().batch_manager
        manager.batch_data_cache.clear()
        manager.reset_batch_cache()

    def validate(self, suite: str, batches: Iterable[pd.DataFrame]) -> SuiteOutcome:
        """One suite over every batch; a check failing in any batch fails, its unexpected counts summed.

        A batch is first asked only whether it passes (GX then computes no unexpected values: the four suites of a
        run 1.3-1.7 → 0.85-0.95 s), and validated again for the details when it does not."""
        outcome = SuiteOutcome(suite, 0)
        for frame in _grouped(batches):
            definition, checks, expectations = self._suite(suite)
            with gx_shortcuts.no_batch_fingerprint():
                batch = definition.get_batch(batch_parameters={"dataframe": with_derived(frame, suite)})
                result = batch.validate(checks, result_format=PASS_FORMAT)
                if not result.success:  # the details (counts, sample values) only where something failed
                    result = batch.validate(checks, result_format=RESULT_FORMAT)
            order = {e.meta["check"]: i for i, e in enumerate(expectations)}
            failures = sorted((_failure(r) for r in result.results if not r.success), key=lambda f: order[f["check"]])
            outcome = outcome.merged(SuiteOutcome(suite, len(result.results), failures))
            del frame, batch, result  # before the next group is read: memory holds one group
            self._forget_batches()
        order = {e.meta["check"]: i for i, e in enumerate(suite_expectations(suite))}
        return SuiteOutcome(suite, outcome.evaluated, sorted(outcome.failures, key=lambda f: order[f["check"]]))


def _grouped(batches: Iterable[pd.DataFrame], rows: int = BATCH_ROWS, size: int = BATCH_BYTES) -> Iterator[pd.DataFrame]:
    """Batches stacked up to about `rows` rows or `size` bytes, whichever comes first: GX costs a fixed few hundred
    milliseconds a validation, so small batches go together, while memory holds one group at a time (a bucket of
    contacts is few rows of long journey texts)."""
    group, count, used = [], 0, 0
    for frame in batches:
        if frame.empty:
            continue
        group, count, used = group + [frame], count + len(frame), used + int(frame.memory_usage(deep=True).sum())
        if count >= rows or used >= size:
            yield stack(group)
            group, count, used = [], 0, 0
    if group:
        yield stack(group)


@lru_cache(maxsize=1)
def validator() -> Validator:
    return Validator()


def validate_frames(frames: dict[str, pd.DataFrame | list[pd.DataFrame]]) -> list[SuiteOutcome]:
    """Each suite on its frame (or list of batches); an empty frame passes without checks."""
    return [validator().validate(suite, [frame] if isinstance(frame, pd.DataFrame) else frame) for suite, frame in frames.items()]


def validate_run(settings: Settings, run_id: str, suites: Iterable[str] = SUITES) -> list[SuiteOutcome]:
    """The gates of a run's outputs, read batch by batch from its workspace and the event store."""
    workspace = Workspace(settings, run_id)
    return [validator().validate(suite, suite_batches(settings, workspace, suite)) for suite in suites]


def record_outcomes(settings: Settings, run_id: str, outcomes: list[SuiteOutcome], conn: Connection | None = None) -> None:
    """Replace the run's validation_results rows (a retried check leaves one row per suite), in their own transaction
    or in the one given (publish's, when a chain of runs checks there)."""
    now = utc_now()
    rows = pd.DataFrame(
        [
            {
                "run_id": run_id,
                "suite": o.suite,
                "success": not o.failures,
                "evaluated": o.evaluated,
                "failed": len(o.failures),
                "critical_failed": len(o.critical),
                "results": json.dumps(o.failures, separators=(",", ":"), ensure_ascii=False),
                "created_at": now,
            }
            for o in outcomes
        ]
    )
    if conn is None:
        with transaction(get_engine(settings.warehouse_url)) as own:
            record_outcomes(settings, run_id, outcomes, own)
        return
    conn.execute(t.validation_results.delete().where(t.validation_results.c.run_id == run_id))
    insert_frame(conn, t.validation_results, rows)


def _found(failure: dict) -> str:
    """What a failed expectation saw, in a few words."""
    if "unexpected_count" in failure:
        return f"{failure['unexpected_count']} unexpected"
    if "error" in failure:
        return f"error: {failure['error']}"
    observed = failure.get("observed_value")
    if isinstance(observed, dict):
        return "; ".join(f"{kind} {', '.join(map(str, names))}" for kind, names in observed.items())
    return f"observed {observed}"


def gate_message(outcomes: list[SuiteOutcome]) -> str:
    """One line naming each failing suite, its failed critical checks and their unexpected counts."""
    parts = []
    for outcome in outcomes:
        if outcome.critical:
            checks = ", ".join(f"{f['check']} ({_found(f)})" for f in outcome.critical)
            parts.append(f"{outcome.suite}: {checks}")
    return "quality gate failed before publish: " + "; ".join(parts)


def check_run(settings: Settings, run_id: str, outcomes: list[SuiteOutcome] | None = None) -> dict:
    """Validate the run's staged events, sessions and contacts (or take the outcomes a quality worker found); raise
    before publish on a critical failure."""
    lock.heartbeat(settings, run_id)
    fault_point(settings, "check.during")
    workspace = Workspace(settings, run_id)
    if workspace.plan().unchanged_since:
        return {"summary": "unchanged", "suites": {}}
    outcomes = validate_run(settings, run_id) if outcomes is None else outcomes
    record_outcomes(settings, run_id, outcomes)
    return gate_result(workspace, outcomes)


def gate_result(workspace: Workspace, outcomes: list[SuiteOutcome]) -> dict:
    """The check's result, kept in the workspace (`validation.json`); raises QualityGateError on a critical failure."""
    result = {
        "summary": ", ".join(o.summary() for o in outcomes),
        "suites": {
            o.suite: {"evaluated": o.evaluated, "failed": len(o.failures), "critical_failed": len(o.critical), "failures": o.failures}
            for o in outcomes
        },
    }
    workspace.write_json("validation", result)
    if any(o.critical for o in outcomes):
        raise QualityGateError(gate_message(outcomes))
    return result
