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
from datetime import date, timedelta
from pathlib import Path

from pipeline.settings import Settings

START = date(2025, 3, 1)


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


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench(*, events: int, days: int = 1, warehouse: str | None = None, landing: Path | None = None,
          buckets: int | None = None, queries: int | None = None, rounds: int = 3, clients: int = 8, out=print) -> dict:
    """Run the benchmark and print its figures; returns them too."""
    from pipeline.bench.api import api_benchmark, api_report
    from pipeline.bench.attribution import attribution_timings

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
    from pipeline.runs.nightly import Gates, StepClock, run_days

    clock, days_landed, gates = StepClock(), landing_days(landing), Gates(settings)
    started = time.perf_counter()
    results = run_days(settings, days_landed[0], days_landed[-1], clock=clock, gates=gates)
    wall = time.perf_counter() - started
    total_events = sum(result.figures["events_read"] for result in results)
    figures = {"events": total_events, "days": days, "buckets": settings.buckets, "wall_seconds": wall,
               "events_per_second": total_events / wall if wall else 0.0, "peak_rss_mb": peak_rss_mb(),
               "worker_rss_mb": gates.peak_rss_mb, "generate_seconds": generated, "steps": clock.seconds,
               **attribution_timings(settings)}
    figures["reader"] = api_benchmark(settings, size=queries, rounds=rounds, clients=clients)
    out(report(figures, settings) + "\n" + api_report(figures["reader"], settings))
    return figures


def report(f: dict, settings: Settings) -> str:
    """The figures as a small text table."""
    from pipeline.bench.attribution import report_lines

    lines = [f"benchmark: {f['events']:,} events over {f['days']} load day(s), {f['buckets']} buckets, warehouse {settings.warehouse_url.split(':')[0]}"]
    lines += [f"  {step:<11} {seconds:8.2f} s" for step, seconds in f["steps"].items()]
    lines += [
        f"  {'total':<11} {f['wall_seconds']:8.2f} s   ({f['events_per_second']:,.0f} events/s; generating took {f['generate_seconds']:.1f} s, not counted)",
        f"  peak RSS    {f['peak_rss_mb']:8.0f} MB (the run's process, before the reader's benchmark; its quality-gate worker {f['worker_rss_mb']:.0f} MB)",
        *report_lines(f),
    ]
    return "\n".join(lines)
