"""Sample landing data: realistic raw tracking events in `OUT/dt=YYYY-MM-DD/events-NNNN.jsonl[.gz]`.

Deterministic (same arguments, same bytes) and fast enough for the benchmark's millions of events.
The data exercises what staging, sessions, attribution and identity must handle: late arrivals,
duplicates, broken lines, bots, campaign parameters, repeat converters, second and shared devices.
The simulation lives in `sample_journeys` (bulk traffic) and `sample_stories` (hand-written edge cases);
this module decides when each line arrives and writes the partitions.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import BinaryIO

import numpy as np
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from pipeline.sample import site as site
from pipeline.sample.journeys import CONVERTER_SHARE, DAY_MS, Journeys, simulate_journeys
from pipeline.sample.lines import BROKEN_KINDS, IdMaker, broken_line, simulated_lines
from pipeline.sample.stories import STORY_DAYS, StoryEvent, story_events

LINES_PER_FILE = 250_000
CHUNK_LINES = 50_000
PROGRESS_MIN_LINES = 100_000
LATE_SESSION_SHARE = 0.03  # sessions whose tail (or all of it) arrives 1-3 days late
DUPLICATE_SHARE = 0.004  # extra exact copies of lines, per event
CROSS_PARTITION_DUPLICATE_SHARE = 0.3
BACKLOG_DAYS = 3  # single-day samples also hold a few visits from the days before, arriving late
BLANK_LINES = 3


@dataclass(frozen=True)
class BrokenLine:
    """Where a deliberately broken line was written and what is wrong with it (a `BROKEN_KINDS` name)."""

    file: str  # relative to the landing folder, e.g. "dt=2025-03-01/events-0000.jsonl"
    line: int  # 1-based physical line number (blank lines count)
    kind: str


@dataclass(frozen=True)
class GenerateSummary:
    """What was written. `lines` counts non-blank lines (what staging reads): events + duplicates + broken lines."""

    out: Path
    days: list[str]
    files: int
    lines: int
    events: int
    broken_lines: int
    duplicates: int
    late_events: int
    bot_events: int
    conversions: int
    visitors: int
    broken: tuple[BrokenLine, ...] = field(default=())


@dataclass
class _Layout:
    """Every line to write in partition order: row >= 0 is a simulated event, row < 0 is texts[-1 - row]."""

    rows: np.ndarray
    days: np.ndarray  # load day offset from the window start, ascending
    texts: list[str]
    text_kinds: list[str | None]  # BROKEN_KINDS name, "blank", or None for a story event


def generate_landing(out: Path, *, visitors: int = 2000, days: int = 7, start: date = date(2025, 3, 1), seed: int = 42,
                     target_events: int | None = None, progress: bool = False,
                     lines_per_file: int = LINES_PER_FILE, converter_share: float = CONVERTER_SHARE) -> GenerateSummary:
    """Write a sample landing folder: `visitors` over `days` load days, or exactly `target_events` lines on `start`;
    `converter_share` of the human visitors convert."""
    out = Path(out)
    _check_arguments(out, visitors=visitors, days=days, target_events=target_events, lines_per_file=lines_per_file)
    seeds = np.random.SeedSequence(seed).spawn(5)
    ids = IdMaker.from_rng(_rng(seeds[0]))
    n_days, start_ms = (1 if target_events else days), _epoch_ms(start)
    stories = story_events(start, ids) if target_events is None and days >= STORY_DAYS else []
    n_duplicates = max(2, target_events // 250) if target_events else None
    needed = target_events - len(BROKEN_KINDS) - n_duplicates if target_events else None
    journeys = _simulate(seeds[1], visitors=visitors, n_days=n_days, start_ms=start_ms, needed=needed, converter_share=converter_share)
    load_day, arrival = _late_arrivals(_rng(seeds[2]), journeys, start_ms, n_days)
    n_duplicates = n_duplicates or max(2, round(DUPLICATE_SHARE * len(journeys)))
    duplicates = _duplicates(_rng(seeds[3]), load_day, arrival, n_days, start_ms, n_duplicates)
    texts = _text_lines(_rng(seeds[4]), stories, start, start_ms, n_days, ids, blanks=0 if target_events else BLANK_LINES)
    layout = _arrange(load_day, arrival, duplicates, texts)
    del arrival, texts
    gz_day = None if target_events else min(1, n_days - 1)
    written, broken, files = _write_partitions(out, layout, journeys, ids, start, gz_day, lines_per_file, progress)
    return _summary(out, journeys, load_day, stories, start_ms, n_duplicates=len(duplicates[0]), days=written,
                    files=files, broken=broken)


def _summary(out: Path, journeys: Journeys, load_day: np.ndarray, stories: list[StoryEvent], start_ms: int, *,
             n_duplicates: int, days: list[str], files: int, broken: list[BrokenLine]) -> GenerateSummary:
    """Counts of what was written, from the arrays rather than by re-reading the files."""
    late = _day_offset(journeys.ts_ms, start_ms) < load_day
    bot_agents = np.arange(len(site.AGENTS) + 1) >= len(site.HUMAN_AGENTS)
    bot_agents[-1] = False  # no user agent at all is not a bot
    events = len(journeys) + len(stories)
    return GenerateSummary(
        out=out, days=days, files=files, lines=events + n_duplicates + len(BROKEN_KINDS), events=events,
        broken_lines=len(BROKEN_KINDS), duplicates=n_duplicates,
        late_events=int(late.sum()) + sum(s.load_offset > _day_offset(s.ts_ms, start_ms) for s in stories),
        bot_events=int(bot_agents[journeys.agent[journeys.visitor]].sum()) + sum(s.is_bot for s in stories),
        conversions=int(journeys.is_conversion.sum()) + sum(s.is_conversion for s in stories),
        visitors=int(np.count_nonzero(np.bincount(journeys.visitor))) + len({s.anonymous_id for s in stories}),
        broken=tuple(broken),
    )


def _check_arguments(out: Path, *, visitors: int, days: int, target_events: int | None, lines_per_file: int) -> None:
    """Fail early, in one clear sentence, on arguments that cannot give a sensible sample."""
    if visitors < 1 or days < 1 or lines_per_file < 1:
        raise ValueError("visitors, days and lines_per_file must be at least 1")
    if target_events is not None and target_events < 100:
        raise ValueError("target_events must be at least 100 (the broken lines and duplicates alone take some)")
    if out.exists() and any(out.glob("dt=*")):
        raise FileExistsError(f"{out} already holds dt=* partitions; generate into an empty folder")


def _rng(seed: np.random.SeedSequence) -> np.random.Generator:
    """A generator for one independent part of the sample, so the parts do not shift each other's draws."""
    return np.random.Generator(np.random.PCG64(seed))


def _epoch_ms(day: date) -> int:
    """Midnight UTC of a day in epoch milliseconds."""
    return int(datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp()) * 1000


def _day_offset(ts_ms, start_ms: int):
    """UTC day of an instant (or an array of them) relative to the window start."""
    return ts_ms // DAY_MS - start_ms // DAY_MS


def _simulate(seed: np.random.SeedSequence, *, visitors: int, n_days: int, start_ms: int, needed: int | None,
              converter_share: float) -> Journeys:
    """The simulated traffic: `visitors` visitors, or as many visitors as it takes to cut exactly `needed` events."""
    if needed is None:
        return simulate_journeys(_rng(seed), visitors=visitors, window_start_ms=start_ms, window_days=n_days,
                                 converter_share=converter_share)
    # every visitor has at least one event, so `needed` visitors are always enough; the last journey is cut short
    return simulate_journeys(_rng(seed), visitors=needed, window_start_ms=start_ms, window_days=1,
                             backlog_days=BACKLOG_DAYS, max_events=needed, converter_share=converter_share)


def _late_arrivals(rng: np.random.Generator, journeys: Journeys, start_ms: int, n_days: int):
    """Load day and arrival time of every event: its own UTC day, later for the tails of a few sessions.

    Load days never leave the window: a delay past the last day is cut short, and the backlog of a
    single-day sample (events from the days before) arrives on the first day.
    """
    n_sessions = int(journeys.session.max()) + 1 if len(journeys) else 0
    size = np.bincount(journeys.session, minlength=n_sessions)
    late = rng.random(n_sessions) < LATE_SESSION_SHARE
    cut = (rng.random(n_sessions) * size).astype(np.int32)  # 0: the whole session is late
    lag = rng.integers(1, 4, n_sessions, dtype=np.int16)
    s = journeys.session
    ts_day = _day_offset(journeys.ts_ms, start_ms).astype(np.int16)
    delay = np.where(late[s] & (journeys.position >= cut[s]), lag[s], np.int16(0))
    load_day = np.clip(ts_day + delay, 0, n_days - 1).astype(np.int16)
    return load_day, journeys.ts_ms + (load_day - ts_day).astype(np.int64) * DAY_MS


def _duplicates(rng, load_day, arrival, n_days: int, start_ms: int, count: int) -> tuple[np.ndarray, ...]:
    """Rows sent twice: mostly again a little later in the same file, some again in a later partition."""
    count = min(count, len(load_day))
    rows = np.sort(rng.choice(len(load_day), size=count, replace=False))
    movable = load_day[rows] < n_days - 1
    cross = movable & (rng.random(count) < CROSS_PARTITION_DUPLICATE_SHARE)
    candidates = np.flatnonzero(load_day < n_days - 1)
    if count and len(candidates) and not cross.any():  # always at least one copy in a later partition
        rows[0] = candidates[rng.integers(0, len(candidates))]
        cross[0] = True
    day = np.where(cross, load_day[rows] + rng.integers(1, np.maximum(n_days - load_day[rows], 2)), load_day[rows])
    later = start_ms + day * DAY_MS + rng.integers(0, DAY_MS, count)
    return rows, day, np.where(cross, later, arrival[rows] + rng.integers(1_000, 120_000, count))


def _text_lines(rng, stories: list[StoryEvent], start: date, start_ms: int, n_days: int, ids: IdMaker, *, blanks: int):
    """Story events, one broken line of each kind and a few blank lines, with their load days and arrival times."""
    texts = [s.line for s in stories]
    kinds: list[str | None] = [None] * len(stories)
    days = [s.load_offset for s in stories]
    arrival = [s.ts_ms + (s.load_offset - _day_offset(s.ts_ms, start_ms)) * DAY_MS for s in stories]
    for number, kind in enumerate(BROKEN_KINDS):
        day = number % n_days
        texts.append(broken_line(kind, start + timedelta(days=day), number, ids))
        kinds.append(kind)
        days.append(day)
        arrival.append(start_ms + day * DAY_MS + int(rng.integers(0, DAY_MS)))
    for number in range(blanks):
        day = number * (n_days - 1) // max(blanks - 1, 1)
        texts.append("")
        kinds.append("blank")
        days.append(day)
        arrival.append(start_ms + day * DAY_MS + int(rng.integers(0, DAY_MS)))
    return texts, kinds, np.array(days, dtype=np.int64), np.array(arrival, dtype=np.int64)


def _arrange(load_day, arrival, duplicates, texts) -> _Layout:
    """All lines sorted by load day, then arrival time (a stable sort: ties keep a fixed order)."""
    dup_rows, dup_day, dup_arrival = duplicates
    text_lines, text_kinds, text_day, text_arrival = texts
    rows = np.concatenate([np.arange(len(load_day), dtype=np.int32), dup_rows.astype(np.int32),
                           -1 - np.arange(len(text_lines), dtype=np.int32)])
    days = np.concatenate([load_day, dup_day.astype(np.int16), text_day.astype(np.int16)])
    order = np.lexsort((np.concatenate([arrival, dup_arrival, text_arrival]), days))
    return _Layout(rows=rows[order], days=days[order], texts=text_lines, text_kinds=text_kinds)


def _write_partitions(out: Path, layout: _Layout, journeys: Journeys, ids: IdMaker, start: date, gz_day: int | None,
                      lines_per_file: int, progress: bool) -> tuple[list[str], list[BrokenLine], int]:
    """Write every partition in files of at most `lines_per_file` lines; report partitions, broken lines, file count."""
    total = len(layout.rows)
    bar = _progress_bar() if progress and total >= PROGRESS_MIN_LINES else None
    partitions, broken, files = [], [], 0
    with bar or nullcontext():
        task = bar.add_task("Writing events", total=total) if bar else None
        bounds = np.searchsorted(layout.days, np.arange(int(layout.days.max()) + 2))
        for day in range(len(bounds) - 1):
            lo, hi = int(bounds[day]), int(bounds[day + 1])
            if lo == hi:
                continue
            dt = f"dt={start + timedelta(days=day):%Y-%m-%d}"
            partitions.append(dt[3:])
            (out / dt).mkdir(parents=True, exist_ok=True)
            for number, first in enumerate(range(lo, hi, lines_per_file)):
                suffix = ".jsonl.gz" if day == gz_day else ".jsonl"
                name = f"{dt}/events-{number:04d}{suffix}"
                last = min(first + lines_per_file, hi)
                with _open_for_writing(out / name) as fh:
                    for chunk in range(first, last, CHUNK_LINES):
                        end = min(chunk + CHUNK_LINES, last)
                        lines = _render(layout, layout.rows[chunk:end], journeys, ids)
                        fh.write(("\n".join(lines) + "\n").encode())
                        broken += _broken_in(layout, layout.rows[chunk:end], name, chunk - first)
                        if bar:
                            bar.advance(task, end - chunk)
                files += 1
    return partitions, broken, files


def _progress_bar() -> Progress:
    """A rich progress bar for big samples."""
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())


@contextmanager
def _open_for_writing(path: Path) -> Iterator[BinaryIO]:
    """A binary file; `.gz` files get a fixed header (no name, no time) so the bytes are reproducible."""
    with open(path, "wb") as raw:
        if path.suffix != ".gz":
            yield raw
            return
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as packed:
            yield packed


def _render(layout: _Layout, rows: np.ndarray, journeys: Journeys, ids: IdMaker) -> list[str]:
    """The text of a run of lines: simulated rows formatted in one batch, the few text rows slotted in."""
    simulated = rows >= 0
    lines = simulated_lines(journeys, rows[simulated], ids)
    for i in np.flatnonzero(~simulated).tolist():  # ascending, so earlier inserts keep later positions right
        lines.insert(i, layout.texts[-1 - int(rows[i])])
    return lines


def _broken_in(layout: _Layout, rows: np.ndarray, name: str, offset: int) -> list[BrokenLine]:
    """The broken lines among a run of rows, with their physical line numbers in the file."""
    found = []
    for i in np.flatnonzero(rows < 0).tolist():
        kind = layout.text_kinds[-1 - int(rows[i])]
        if kind not in (None, "blank"):
            found.append(BrokenLine(file=name, line=offset + i + 1, kind=kind))
    return found
