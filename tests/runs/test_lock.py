"""The warehouse lock (pipeline/runs/lock.py): one run at a time; a waiting run waits up to CONTACTS_LOCK_WAIT_SECONDS;
a holder that died or stopped reporting for CONTACTS_LOCK_STALE_MINUTES is taken over. Time is a clock the test
moves, so an hour of silence or a long wait costs nothing."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from pipeline.runs import lock
from pipeline.runs.lock import LockClock, WarehouseBusy, this_process
from pipeline.runs.nightly import compute_run
from pipeline.runs.publish import publish
from pipeline.runs.stage import stage_run
from pipeline.runs.start import start_run
from pipeline.warehouse import tables as t
from pipeline.warehouse.engines import get_engine, transaction
from pipeline.warehouse.state import utc_now
from tests.helpers import event, run, table, write_partition

DAY1, DAY2 = date(2025, 3, 1), date(2025, 3, 2)
ELSEWHERE = "another-host:4242"  # a holder on another machine: only its heartbeat says whether it lives


class ManualClock:
    """A clock that moves only when the run sleeps or the test says so; `on_sleep` runs after each sleep."""

    def __init__(self, on_sleep=lambda seconds: None):
        self.start, self.elapsed, self.slept, self.on_sleep = utc_now(), 0.0, [], on_sleep

    def advance(self, seconds: float) -> None:
        self.elapsed += seconds

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.advance(seconds)
        self.on_sleep(self.elapsed)

    def lock_clock(self) -> LockClock:
        return LockClock(now=lambda: self.start + timedelta(seconds=self.elapsed), monotonic=lambda: self.elapsed, sleep=self.sleep)


def holder(settings) -> dict:
    with get_engine(settings.warehouse_url).connect() as conn:
        return dict(conn.execute(select(t.warehouse_state.c.lock_run_id, t.warehouse_state.c.lock_owner)).mappings().one())


def status_of(settings, run_id: str) -> tuple[str, str | None]:
    with get_engine(settings.warehouse_url).connect() as conn:
        row = conn.execute(select(t.pipeline_runs.c.status, t.pipeline_runs.c.error).where(t.pipeline_runs.c.run_id == run_id)).one()
    return tuple(row)


def held_elsewhere(settings, clock: ManualClock) -> str:
    """A running run whose lock another machine holds, its last heartbeat at the test clock's start."""
    write_partition(settings.landing, DAY1, [event("a", "v1", "2025-03-01 10:00:00")])
    run_id = start_run(settings, [DAY1], owner=ELSEWHERE)
    lock.heartbeat(settings, run_id, clock.lock_clock())
    return run_id


def test_a_silent_holder_is_taken_over_after_the_stale_time_and_marked_failed(settings):
    clock = ManualClock()
    settings = settings.model_copy(update={"lock_stale_minutes": 120, "lock_wait_seconds": 0})
    silent = held_elsewhere(settings, clock)
    clock.advance(120 * 60 - 1)  # a second short of stale: still its lock
    with pytest.raises(WarehouseBusy, match=silent):
        lock.acquire(settings, "newcomer", "here:1", clock.lock_clock())
    assert holder(settings) == {"lock_run_id": silent, "lock_owner": ELSEWHERE}
    clock.advance(2)
    lock.acquire(settings, "newcomer", "here:1", clock.lock_clock())
    assert holder(settings) == {"lock_run_id": "newcomer", "lock_owner": "here:1"}
    assert status_of(settings, silent) == ("failed", "abandoned: its process died or stopped reporting")


def test_a_heartbeat_keeps_the_lock_from_going_stale(settings):
    clock = ManualClock()
    settings = settings.model_copy(update={"lock_stale_minutes": 120, "lock_wait_seconds": 0})
    alive = held_elsewhere(settings, clock)
    clock.advance(119 * 60)
    lock.heartbeat(settings, alive, clock.lock_clock())  # a step starts
    clock.advance(119 * 60)  # 238 minutes after the lock was taken, 119 after the last sign of life
    with pytest.raises(WarehouseBusy, match=alive):
        lock.acquire(settings, "newcomer", "here:1", clock.lock_clock())
    assert status_of(settings, alive) == ("running", None)


def test_a_waiting_run_takes_the_lock_as_soon_as_the_holder_gives_it_back(settings):
    def holder_finishes_after_20_seconds(elapsed: float) -> None:
        if elapsed >= 20:
            with transaction(get_engine(settings.warehouse_url)) as conn:
                lock.release(conn, busy)

    clock = ManualClock(on_sleep=holder_finishes_after_20_seconds)
    busy = held_elsewhere(settings, clock)
    lock.acquire(settings.model_copy(update={"lock_wait_seconds": 60}), "waiter", "here:1", clock.lock_clock())
    assert clock.slept == [5.0, 5.0, 5.0, 5.0] and holder(settings)["lock_run_id"] == "waiter"
    assert status_of(settings, busy) == ("running", None)  # given back, not taken over


def test_a_waiting_run_gives_up_after_the_wait_time(settings):
    clock = ManualClock()
    busy = held_elsewhere(settings, clock)
    with pytest.raises(WarehouseBusy, match=f"run {busy} holds the warehouse lock"):
        lock.acquire(settings.model_copy(update={"lock_wait_seconds": 12}), "waiter", "here:1", clock.lock_clock())
    assert clock.slept == [5.0, 5.0, 2.0] and clock.elapsed == 12
    assert holder(settings)["lock_run_id"] == busy


def _compute(settings, run_id: str) -> None:
    stage_run(settings, run_id)
    compute_run(settings, run_id)


def test_a_second_run_waits_for_the_lock(settings):
    write_partition(settings.landing, DAY1, [event("a", "v1", "2025-03-01 10:00:00")])
    write_partition(settings.landing, DAY2, [event("b", "v1", "2025-03-02 10:00:00")])
    first = start_run(settings, [DAY1])
    with pytest.raises(WarehouseBusy, match=first):
        start_run(settings.model_copy(update={"lock_wait_seconds": 0}), [DAY2])
    _compute(settings, first)
    publish(settings, first)
    second = start_run(settings.model_copy(update={"lock_wait_seconds": 0}), [DAY2])
    _compute(settings, second)
    publish(settings, second)
    assert table(settings, "pipeline_runs", order_by=["started_at"])["status"].tolist() == ["success", "success"]


def test_lock_of_a_dead_process_is_taken_over(settings):
    write_partition(settings.landing, DAY1, [event("a", "v1", "2025-03-01 10:00:00")])
    dead = start_run(settings, [DAY1], owner="some-other-host:1")
    with get_engine(settings.warehouse_url).begin() as conn:  # its owner vanished: a local pid that cannot exist
        conn.execute(t.warehouse_state.update().values(lock_owner=f"{this_process().rsplit(':', 1)[0]}:999999999"))
    run(settings, "2025-03-01")
    assert status_of(settings, dead) == ("failed", "abandoned: its process died or stopped reporting")
