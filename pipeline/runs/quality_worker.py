"""The quality gates in a second process, for runs chained in one process (`nightly`): Great Expectations is imported
once while the run stages, and each step's output is validated while the next step computes.

Importing GX and building its context cost seconds a process; validating a million events a couple more. On a
machine with a spare core that work then hides behind staging and sessionizing instead of adding to the run. The
outcomes are the same as `check_run` finds in-process (the DAG's check task does exactly that).

The worker is `python -m pipeline.runs.quality_worker`, speaking JSON lines: a job (settings, run id, suite) in, an
outcome (or an error) out.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from pipeline.runs.long_lived import kept_for_good
from pipeline.runs.quality import SuiteOutcome, validate_run
from pipeline.settings import REPO_ROOT, Settings


def serve(lines=sys.stdin, out=sys.stdout) -> None:
    """The worker's loop: warm GX up, then answer one job per input line until the input ends."""
    from pipeline.runs.quality import validator

    with kept_for_good():
        validator()
    for line in lines:
        job = json.loads(line)
        try:
            outcome = validate_run(Settings(**job["settings"]), job["run_id"], [job["suite"]])[0]
            answer = {"outcome": outcome.__dict__}
        except Exception as exc:  # noqa: BLE001 - reported back, raised in the run's own process
            answer = {"error": f"{type(exc).__name__}: {exc}".splitlines()[0]}
        out.write(json.dumps({"run_id": job["run_id"], "suite": job["suite"], **answer}) + "\n")
        out.flush()


class QualityWorker:
    """The worker process; `submit` hands it a suite of a run, `outcomes` collects a run's suites in submission order."""

    def __init__(self):
        # the run's own working directory, so relative paths in its settings name the same files; the package is found
        # through PYTHONPATH instead
        path = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pipeline.runs.quality_worker"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": path},
        )  # fmt: skip
        self.pending: list[tuple[str, str]] = []

    def submit(self, settings: Settings, run_id: str, suite: str) -> None:
        job = {"settings": settings.model_dump(mode="json"), "run_id": run_id, "suite": suite}
        self.process.stdin.write(json.dumps(job) + "\n")
        self.process.stdin.flush()
        self.pending.append((run_id, suite))

    def outcomes(self, run_id: str) -> list[SuiteOutcome]:
        """The run's outcomes, in the order its suites were submitted; a failure inside the worker is raised here."""
        order, found = [suite for job_run, suite in self.pending if job_run == run_id], {}
        while any(job_run == run_id for job_run, _ in self.pending):
            line = self.process.stdout.readline()
            if not line:
                raise RuntimeError(f"the quality-gate process stopped (exit code {self.process.wait()})")
            answer = json.loads(line)
            self.pending.remove((answer["run_id"], answer["suite"]))
            if answer["run_id"] != run_id:  # left over from a run that failed before its check
                continue
            if "error" in answer:
                raise RuntimeError(f"quality gate {answer['suite']} could not run: {answer['error']}")
            found[answer["suite"]] = SuiteOutcome(**answer["outcome"])
        return [found[suite] for suite in order]

    def close(self) -> float:
        """Stop the worker; returns its peak resident memory in MB (0 where /proc does not say)."""
        peak = _peak_rss_mb(self.process.pid)
        self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        return peak


def _peak_rss_mb(pid: int) -> float:
    try:
        status = open(f"/proc/{pid}/status", encoding="ascii").read()
    except OSError:
        return 0.0
    return next((int(line.split()[1]) / 1024 for line in status.splitlines() if line.startswith("VmHWM:")), 0.0)


def main() -> None:
    """Serve the run on stdin/stdout, then leave at once: every answer is written and flushed by then, and the
    interpreter's own shutdown with GX loaded (its objects collected, its exit hooks) took 0.9 s that the run waited
    for in `close`."""
    protocol, sys.stdout = sys.stdout, sys.stderr  # anything a library prints goes to stderr, not into the answers
    serve(sys.stdin, protocol)
    protocol.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
