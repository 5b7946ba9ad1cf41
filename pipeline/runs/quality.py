"""Quality gates before publish (SPEC section 10): a run's staged events, sessions, contacts and attribution
credits checked against the facts of schemas/tables.yml with Great Expectations.

Every suite's outcome is kept (a `validation_results` row per suite, written in its own transaction, and
`validation.json` in the workspace); a failed critical expectation raises `QualityGateError`, so the run
fails before publish and the published tables stay as they were. Non-critical failures are only recorded.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pipeline.runs import lock
from pipeline.runs.expectations import suite_expectations, with_derived, with_run_context
from pipeline.runs.workspace import Workspace
from pipeline.settings import Settings
from pipeline.warehouse import tables as t
from pipeline.warehouse.engines import get_engine, transaction
from pipeline.warehouse.rows import insert_frame
from pipeline.warehouse.state import utc_now

SAMPLE_VALUES = 5  # unexpected values kept per failed expectation
RESULT_FORMAT = {"result_format": "BASIC", "partial_unexpected_count": SAMPLE_VALUES}


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

    def summary(self) -> str:
        """`sessions 9/9 ok`, or the failures counted when some failed."""
        passed = f"{self.suite} {self.evaluated - len(self.failures)}/{self.evaluated}"
        minor = len(self.failures) - len(self.critical)
        if self.critical:
            return f"{passed} FAILED ({len(self.critical)} critical, {minor} non-critical)"
        return f"{passed} ok" + (f" ({minor} non-critical failed)" if minor else "")


def run_frames(workspace: Workspace, settings: Settings) -> dict[str, pd.DataFrame]:
    """The frames the gates check, read from the run's workspace (attribution credits with their run context)."""
    buckets = workspace.plan().buckets
    credits = with_run_context(
        workspace.read_buckets("attribution_credits", buckets),
        journeys=workspace.read_buckets("contact_sessions", buckets),
        lookback_days=settings.attribution_lookback_days,
    )
    return {
        "events": workspace.read_buckets("events", buckets),
        "sessions": workspace.read_buckets("sessions", buckets),
        "contacts": workspace.read_buckets("contacts", buckets),
        "attribution_credits": credits,
    }


@contextmanager
def _no_batch_fingerprint():
    """GX hashes every in-memory batch for a marker nobody reads here; on 1M rows that costs more than the checks."""
    from great_expectations.execution_engine import pandas_execution_engine as engine

    if not hasattr(engine, "HASH_THRESHOLD"):  # a later GX without the fingerprint: nothing to turn off
        yield
        return
    saved, engine.HASH_THRESHOLD = engine.HASH_THRESHOLD, 0
    try:
        yield
    finally:
        engine.HASH_THRESHOLD = saved


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


def validate_frames(frames: dict[str, pd.DataFrame]) -> list[SuiteOutcome]:
    """Run each frame's suite on one ephemeral GX context; an empty frame passes without checks."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    source = context.data_sources.add_pandas("run")
    outcomes = []
    for suite, frame in frames.items():
        if frame.empty:
            outcomes.append(SuiteOutcome(suite, 0))
            continue
        batches = source.add_dataframe_asset(suite).add_batch_definition_whole_dataframe("whole")
        expectations = suite_expectations(suite)
        checks = gx.ExpectationSuite(name=suite, expectations=expectations)
        with _no_batch_fingerprint():
            batch = batches.get_batch(batch_parameters={"dataframe": with_derived(frame, suite)})
            result = batch.validate(checks, result_format=RESULT_FORMAT)
        order = {e.meta["check"]: i for i, e in enumerate(expectations)}
        failures = sorted((_failure(r) for r in result.results if not r.success), key=lambda f: order[f["check"]])
        outcomes.append(SuiteOutcome(suite, len(result.results), failures))
    return outcomes


def record_outcomes(settings: Settings, run_id: str, outcomes: list[SuiteOutcome]) -> None:
    """Replace the run's validation_results rows (a retried check leaves one row per suite)."""
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
    with transaction(get_engine(settings.warehouse_url)) as conn:
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


def check_run(settings: Settings, run_id: str) -> dict:
    """Validate the run's staged events, sessions and contacts; raise before publish on a critical failure."""
    lock.heartbeat(settings, run_id)
    workspace = Workspace(settings, run_id)
    outcomes = validate_frames(run_frames(workspace, settings))
    record_outcomes(settings, run_id, outcomes)
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
