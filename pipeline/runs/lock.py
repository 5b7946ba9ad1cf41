"""The warehouse lock: one run at a time computes and publishes (a pessimistic lease in warehouse_state).

A run takes the lock when it starts and gives it back when it publishes or fails. The owner is the CLI
process (`host:pid`) or the Airflow DAG run (`airflow:<run id>`, whose tasks run in many processes). A
holder that died (a local process that no longer exists, or no heartbeat for `lock_stale_minutes`) is
taken over, and its
pipeline_runs row is marked failed. Publish also checks the warehouse version (an optimistic check), so
even a run that somehow lost its lock can never overwrite newer data.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

from sqlalchemy import Connection, select, update

from pipeline.settings import Settings
from pipeline.warehouse import tables as t
from pipeline.warehouse.engines import get_engine, transaction
from pipeline.warehouse.state import current_version, utc_now

STATE = t.warehouse_state


class WarehouseBusy(RuntimeError):
    """Another run holds the warehouse lock and did not finish in time."""


@dataclass(frozen=True)
class LockClock:
    """The time the lock goes by: the wall clock of heartbeats, a monotonic clock for waiting, and the wait itself.
    Tests pass their own, so a stale heartbeat or a long wait takes no real time."""

    now: Callable[[], datetime] = utc_now
    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep


SYSTEM_CLOCK = LockClock()


def this_process() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _holder_is_dead(owner: str | None, heartbeat, now, stale_after: timedelta) -> bool:
    """A lock is free to take when its holder is a dead process on this host, or silent for too long."""
    if heartbeat is None or now - heartbeat > stale_after:
        return True
    host, _, pid = (owner or "").rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
    return False


def _try_acquire(conn: Connection, run_id: str, owner: str, settings: Settings, now: datetime) -> bool:
    current_version(conn)  # makes sure the state row exists
    row = conn.execute(select(STATE).where(STATE.c.id == 1).with_for_update()).mappings().one()
    holder = row["lock_run_id"]
    heartbeat = row["lock_heartbeat_at"]
    if holder not in (None, run_id) and not _holder_is_dead(row["lock_owner"], heartbeat, now, timedelta(minutes=settings.lock_stale_minutes)):
        return False
    if holder not in (None, run_id):
        conn.execute(
            update(t.pipeline_runs)
            .where((t.pipeline_runs.c.run_id == holder) & (t.pipeline_runs.c.status == "running"))
            .values(status="failed", finished_at=now, error="abandoned: its process died or stopped reporting")
        )
    conn.execute(update(STATE).where(STATE.c.id == 1).values(lock_run_id=run_id, lock_owner=owner, lock_heartbeat_at=now))
    return True


def acquire(settings: Settings, run_id: str, owner: str | None = None, clock: LockClock = SYSTEM_CLOCK) -> None:
    """Take the lock for a run, waiting up to settings.lock_wait_seconds for the current holder."""
    engine = get_engine(settings.warehouse_url)
    deadline = clock.monotonic() + settings.lock_wait_seconds
    while True:
        with transaction(engine) as conn:
            if _try_acquire(conn, run_id, owner or this_process(), settings, clock.now()):
                return
            holder = conn.execute(select(STATE.c.lock_run_id).where(STATE.c.id == 1)).scalar()
        if clock.monotonic() >= deadline:
            raise WarehouseBusy(f"run {holder} holds the warehouse lock; try again when it has finished")
        clock.sleep(min(5.0, max(0.2, deadline - clock.monotonic())))


def heartbeat(settings: Settings, run_id: str, clock: LockClock = SYSTEM_CLOCK) -> None:
    """Show the holder is alive: every step calls this when it starts."""
    with transaction(get_engine(settings.warehouse_url)) as conn:
        conn.execute(update(STATE).where((STATE.c.id == 1) & (STATE.c.lock_run_id == run_id)).values(lock_heartbeat_at=clock.now()))


def release(conn: Connection, run_id: str) -> None:
    """Give the lock back (inside publish's or fail's transaction)."""
    conn.execute(
        update(STATE).where((STATE.c.id == 1) & (STATE.c.lock_run_id == run_id)).values(lock_run_id=None, lock_owner=None, lock_heartbeat_at=None)
    )
