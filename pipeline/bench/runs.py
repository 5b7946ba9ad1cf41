"""`python -m pipeline bench`: time the pipeline stage by stage, its peak memory, and the reader's latency.

The events are generated in a child process (so the peak RSS is the pipeline's own), into a temporary
landing folder; the warehouse is a fresh temporary SQLite file unless --warehouse names one. The reader is
then measured on the warehouse built (`bench.api`: the query mix through the function and the HTTP API).
"""

from __future__ import annotations

import multiprocessing
import resource
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from pipeline.settings import Settings

START = date(2025, 3, 1)
STEPS = ("stage", "sessionize", "identify", "summarise", "check", "publish")


@dataclass
class Timings:
    """Seconds per step, summed over the runs of a backfill."""

    seconds: dict = field(default_factory=lambda: dict.fromkeys(STEPS, 0.0))

    def add(self, step: str, started: float) -> None:
        self.seconds[step] += time.perf_counter() - started


def _generate(landing: str, events: int, days: int, seed: int) -> None:
    from pipeline.sample.generate import generate_landing

    if days == 1:
        generate_landing(Path(landing), target_events=events, start=START, seed=seed)
        return
    for day in range(days):  # one load day of `events` per day
        generate_landing(Path(landing) / f"part{day}", target_events=events, start=START + timedelta(days=day), seed=seed + day)
        for partition in (Path(landing) / f"part{day}").iterdir():
            partition.rename(Path(landing) / partition.name)
        (Path(landing) / f"part{day}").rmdir()


def generate_in_child(landing: Path, events: int, days: int, seed: int = 7) -> float:
    """Generate the landing folder in another process; returns the seconds it took."""
    started = time.perf_counter()
    child = multiprocessing.get_context("spawn").Process(target=_generate, args=(str(landing), events, days, seed))
    child.start()
    child.join()
    if child.exitcode != 0:
        raise RuntimeError(f"generating the benchmark events failed (exit {child.exitcode})")
    return time.perf_counter() - started


def timed_run(settings: Settings, day: date, timings: Timings) -> dict:
    """One load day through every step, as `nightly.run_interval` runs it, with a clock around each step."""
    from pipeline.runs.publish import publish
    from pipeline.runs.quality import check_run
    from pipeline.runs.stage import stage_run
    from pipeline.runs.start import fail_run, start_run
    from pipeline.runs.steps import identify, sessionize, summarise

    run_id = start_run(settings, [day])
    try:
        for step, call in (
            ("stage", lambda: stage_run(settings, run_id)),
            ("sessionize", lambda: [sessionize(settings, run_id, b) for b in range(settings.buckets)]),
            ("identify", lambda: identify(settings, run_id)),
            ("summarise", lambda: [summarise(settings, run_id, b) for b in range(settings.buckets)]),
            ("check", lambda: check_run(settings, run_id)),
        ):
            started = time.perf_counter()
            call()
            timings.add(step, started)
        started = time.perf_counter()
        figures = publish(settings, run_id)
        timings.add("publish", started)
    except BaseException as exc:
        fail_run(settings, run_id, exc)
        raise
    return figures


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench(*, events: int, days: int = 1, warehouse: str | None = None, landing: Path | None = None,
          buckets: int | None = None, queries: int | None = None, rounds: int = 3, clients: int = 8, out=print) -> dict:
    """Run the benchmark and print its figures; returns them too."""
    from pipeline.bench.api import api_benchmark, api_report

    scratch = Path(tempfile.mkdtemp(prefix="contacts-bench-"))
    generated = 0.0
    if landing is None:
        landing = scratch / "landing"
        generated = generate_in_child(landing, events, days)
    settings = Settings(
        warehouse_url=warehouse or f"sqlite:///{scratch / 'warehouse.db'}",
        landing=landing,
        workspace=scratch / "runs",
        **({"buckets": buckets} if buckets else {}),
    )
    from pipeline.contract.landing import landing_days

    timings, total_events = Timings(), 0
    started = time.perf_counter()
    for day in landing_days(landing):
        total_events += timed_run(settings, day, timings)["events_read"]
    wall = time.perf_counter() - started
    figures = {"events": total_events, "days": days, "buckets": settings.buckets, "wall_seconds": wall,
               "events_per_second": total_events / wall if wall else 0.0, "peak_rss_mb": peak_rss_mb(),
               "generate_seconds": generated, "steps": timings.seconds}
    figures["reader"] = api_benchmark(settings, size=queries, rounds=rounds, clients=clients)
    out(report(figures, settings) + "\n" + api_report(figures["reader"], settings))
    return figures


def report(f: dict, settings: Settings) -> str:
    """The figures as a small text table."""
    lines = [f"benchmark: {f['events']:,} events over {f['days']} load day(s), {f['buckets']} buckets, warehouse {settings.warehouse_url.split(':')[0]}"]
    lines += [f"  {step:<11} {seconds:8.2f} s" for step, seconds in f["steps"].items()]
    lines += [
        f"  {'total':<11} {f['wall_seconds']:8.2f} s   ({f['events_per_second']:,.0f} events/s; generating took {f['generate_seconds']:.1f} s, not counted)",
        f"  peak RSS    {f['peak_rss_mb']:8.0f} MB (the pipeline's; measured before the reader's benchmark)",
    ]
    return "\n".join(lines)
