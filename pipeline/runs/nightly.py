"""The nightly run without a scheduler: the DAG's steps, in the DAG's order, one load day after another."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta

from pipeline.contract.landing import landing_days
from pipeline.runs.faults import trace
from pipeline.runs.lines_ahead import LinesAhead
from pipeline.runs.lock import this_process
from pipeline.runs.publish import Started, prepare, publish, start_prepare
from pipeline.runs.quality import check_run
from pipeline.runs.quality_worker import QualityWorker
from pipeline.runs.stage import stage_run
from pipeline.runs.start import fail_run, start_run
from pipeline.runs.steps import identify, sessionize, summarise
from pipeline.runs.worker_gate import WorkerGate
from pipeline.runs.workspace import Workspace
from pipeline.settings import Settings

STEPS = ("start", "stage", "sessionize", "identify", "summarise", "check", "publish")


@dataclass
class RunResult:
    """What one run did, as recorded in pipeline_runs."""

    run_id: str
    days: list[date]
    figures: dict = field(default_factory=dict)


def days_between(start: date, end: date) -> list[date]:
    """Every day from start to end inclusive."""
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


class StepClock:
    """Seconds spent in each step over the runs it watches (what the benchmark reports; cheap when nobody reads it);
    with settings, the step is also traced for tests (runs.faults.trace). A step timed inside another (the chained
    check inside publish's transaction) counts as itself only."""

    def __init__(self):
        self.seconds: dict[str, float] = dict.fromkeys(STEPS, 0.0)
        self.open: list[str] = []

    @contextmanager
    def __call__(self, step: str, settings: Settings | None = None) -> Iterator[None]:
        if settings is not None:
            trace(settings, step)
        started = time.perf_counter()
        self.open.append(step)
        try:
            yield
        finally:
            self.open.pop()
            elapsed = time.perf_counter() - started
            self.seconds[step] += elapsed
            if self.open:
                self.seconds[self.open[-1]] -= elapsed


def compute_run(settings: Settings, run_id: str, worker: QualityWorker | None = None, clock: StepClock | None = None) -> Started | None:
    """The steps between staging and the gates: sessionize[b] → identify → summarise[b] (each output handed to the
    quality worker, if any, as soon as it is written). With a worker (a chain of runs), publish's visit rows start on
    their way once identify has run (`start_prepare`): returned for `prepare`, discarded if summarise fails."""
    clock = clock or StepClock()
    buckets = Workspace(settings, run_id).plan().buckets
    with clock("sessionize", settings):
        for bucket in range(buckets):
            sessionize(settings, run_id, bucket)
    if worker:
        worker.submit(settings, run_id, "sessions")
    with clock("identify", settings):
        identify(settings, run_id)
    started = start_prepare(settings, run_id) if worker else None
    try:
        with clock("summarise", settings):
            for bucket in range(buckets):
                summarise(settings, run_id, bucket)
    except BaseException:
        if started:
            started.discard()
        raise
    if worker:
        worker.submit(settings, run_id, "contacts")
        worker.submit(settings, run_id, "attribution_credits")
    return started


def run_steps(
    settings: Settings, run_id: str, *, erase: tuple | None = None, worker: QualityWorker | None = None, clock: StepClock | None = None,
    publishing: Callable[[], None] | None = None,
) -> dict:
    """sessionize[b] → identify → summarise[b] → check → publish (with a quality worker, publish prepares its rows
    while the worker finishes the last gates, and waits for them inside its transaction, before the commit:
    `worker_gate`; `publishing` is called once the rows are prepared); a failure marks the run failed."""
    clock, prepared, gate = clock or StepClock(), None, None
    try:
        started = compute_run(settings, run_id, worker, clock)
        if worker:
            with clock("publish", settings):
                prepared = prepare(settings, run_id, started)
        if publishing:
            publishing()
        with clock("check", settings):
            if worker:
                gate = WorkerGate(settings, run_id, worker, lambda: clock("check"))
            else:
                check_run(settings, run_id)
        with clock("publish", settings):
            return publish(settings, run_id, erase=erase, prepared=prepared, gate=gate)
    except BaseException as exc:
        try:
            if gate:
                gate.keep_failed()
        finally:
            fail_run(settings, run_id, exc)
        raise


class Gates:
    """The quality worker of a chain of runs, started when the first run with work to do has staged its events."""

    def __init__(self, settings: Settings):
        self.enabled, self.worker, self.peak_rss_mb = settings.quality_worker, None, 0.0

    def warm(self, settings: Settings, run_id: str) -> QualityWorker | None:
        """The worker, started if not yet, when the run has work to check (None otherwise). A chain of day runs calls
        this before a run stages: a day's staging is short and the worker's import of Great Expectations long, which
        the first run's check would otherwise wait for."""
        if not self.enabled or Workspace(settings, run_id).plan().unchanged_since:
            return None
        self.worker = self.worker or QualityWorker()
        return self.worker

    def for_run(self, settings: Settings, run_id: str) -> QualityWorker | None:
        worker = self.warm(settings, run_id)
        if worker:
            worker.submit(settings, run_id, "events")
        return worker

    def close(self) -> None:
        if self.worker:
            self.peak_rss_mb = self.worker.close()


def run_interval(
    settings: Settings, days: list[date], *, full_refresh: bool = False, gates: Gates | None = None, clock: StepClock | None = None,
    ahead: LinesAhead | None = None,
) -> RunResult:
    """Start → stage → the steps after staging, as the DAG runs them (in a chain, the next interval's lines are read
    ahead once this run's rows are prepared for publish)."""
    clock = clock or StepClock()
    with clock("start", settings):
        run_id = start_run(settings, days, full_refresh=full_refresh, owner=this_process())
    try:
        if ahead and gates:
            gates.warm(settings, run_id)
        with clock("stage", settings):
            stage_run(settings, run_id, ahead)
        worker = gates.for_run(settings, run_id) if gates else None
    except BaseException as exc:
        fail_run(settings, run_id, exc)
        raise
    publishing = (lambda: ahead.read_after(days)) if ahead else None
    return RunResult(run_id, days, run_steps(settings, run_id, worker=worker, clock=clock, publishing=publishing))


def full_refresh_days(settings: Settings, start: date, end: date) -> list[date]:
    """A full refresh rebuilds everything from the landing data (SPEC §9): every partition up to `end`.

    A later `start` would publish a warehouse without the earlier days, so it is refused, not obeyed.
    """
    days = [day for day in landing_days(settings.landing) if day <= end] or days_between(start, end)
    if start > days[0]:
        raise ValueError(
            f"a full refresh rebuilds from the first landing day ({days[0]}); drop --start, or run {start}..{end} without --full-refresh"
        )
    return days


def run_days(
    settings: Settings, start: date, end: date, *, full_refresh: bool = False, on_done=None, clock: StepClock | None = None,
    gates: Gates | None = None,
) -> list[RunResult]:
    """One run per load day in order (a backfill), or one full-refresh run over every landing day up to `end`."""
    intervals = [full_refresh_days(settings, start, end)] if full_refresh else [[day] for day in days_between(start, end)]
    results, gates = [], gates or Gates(settings)
    ahead = LinesAhead(settings, intervals) if settings.read_ahead and len(intervals) > 1 else None
    try:
        for days in intervals:
            results.append(run_interval(settings, days, full_refresh=full_refresh, gates=gates, clock=clock, ahead=ahead))
            if on_done:
                on_done(results[-1])
    finally:
        if ahead:
            ahead.close()
        gates.close()
    return results
