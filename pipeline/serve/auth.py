"""Who is calling: the API key from either header, checked against its stored hash, within its rate limit.

A checked key is trusted for `api_key_cache_seconds` by the process (a revoked key stops working within
that time), so most requests check their key without a thread hop or a warehouse read.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from datetime import datetime

from fastapi import BackgroundTasks, Request, Security
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from pipeline.serve import keys
from pipeline.warehouse.engines import WarehouseError, get_engine, one_line

log = logging.getLogger("pipeline.api")
CHALLENGE = {"WWW-Authenticate": "Bearer"}

api_key_header = APIKeyHeader(
    name="Authentication", auto_error=False, scheme_name="ApiKey", description="The API key, as the seed shows: `Authentication: KEY`."
)
bearer = HTTPBearer(auto_error=False, scheme_name="Bearer", description="The API key as a bearer token: `Authorization: Bearer KEY`.")


class ApiError(Exception):
    """An error answer: status, one-line message, the request field it concerns, extra headers."""

    def __init__(self, status: int, message: str, field: str | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.field, self.headers = status, message, field, headers


def error_response(status: int, message: str, field: str | None = None, headers: dict | None = None) -> JSONResponse:
    """The one error shape of the API, the same the CLI prints for a bad request."""
    return JSONResponse({"error": message, "field": field}, status_code=status, headers=headers)


def on_warehouse(function, *args):
    """Call into the warehouse; an outage (unreachable, missing file or tables) becomes a 503, never a 500."""
    try:
        return function(*args)
    except (SQLAlchemyError, WarehouseError) as exc:
        log.warning("warehouse unavailable: %s", one_line(exc))
        raise ApiError(503, "warehouse unavailable, try again later") from None


def presented_key(api_key: str | None, credentials: HTTPAuthorizationCredentials | None) -> str | None:
    """The key from `Authentication: KEY` (also `Authentication: Bearer KEY`), else from `Authorization: Bearer KEY`."""
    if api_key and api_key.strip():
        scheme, _, rest = api_key.strip().partition(" ")
        return rest.strip() if scheme.lower() == "bearer" and rest.strip() else api_key.strip()
    return credentials.credentials if credentials else None


def _look_up(engine, presented: str) -> keys.KeyInfo | None:
    """The live key on the read-only engine (the API never writes to check a key)."""
    with engine.connect() as conn:
        return keys.find_key(conn, presented)


class CheckedKeys:
    """Live keys this process checked lately, by hash; unknown and revoked keys are never kept."""

    def __init__(self, seconds: float, clock=time.monotonic):
        self.seconds, self.clock = seconds, clock
        self.live: dict[str, tuple[keys.KeyInfo, float]] = {}
        self.lock = threading.Lock()

    def get(self, presented: str) -> keys.KeyInfo | None:
        with self.lock:
            found = self.live.get(keys.key_hash(presented))
            return found[0] if found and self.clock() < found[1] else None

    def put(self, presented: str, info: keys.KeyInfo) -> None:
        if self.seconds > 0:
            with self.lock:
                self.live[keys.key_hash(presented)] = (info, self.clock() + self.seconds)

    def used(self, presented: str, now: datetime) -> None:
        """Remember that last_used_at is being written, so the next requests do not write it again."""
        with self.lock:
            hashed = keys.key_hash(presented)
            if hashed in self.live:
                info, until = self.live[hashed]
                self.live[hashed] = (replace(info, last_used_at=now), until)


def _touch(engine, name: str, now: datetime) -> None:
    """Bookkeeping after the response: a failure here must not fail the request."""
    try:
        keys.mark_used(engine, name, now)
    except Exception as exc:  # noqa: BLE001
        log.warning("could not record the use of key %r: %s", name, one_line(exc))


async def authenticated_key(
    request: Request,
    background: BackgroundTasks,
    api_key: str | None = Security(api_key_header),
    credentials: HTTPAuthorizationCredentials | None = Security(bearer),
) -> str:
    """The name of the request's live API key (else 401), within its rate limit (else 429)."""
    state = request.app.state
    presented = presented_key(api_key, credentials)
    if not presented:
        raise ApiError(401, "missing API key: send `Authentication: KEY` or `Authorization: Bearer KEY`", headers=CHALLENGE)
    found = state.checked_keys.get(presented)
    if found is None:
        found = await run_in_threadpool(on_warehouse, _look_up, state.reader, presented)
        if found is None:
            raise ApiError(401, "invalid or revoked API key", headers=CHALLENGE)
        state.checked_keys.put(presented, found)
    now = keys.utc_now()
    if keys.needs_touch(found, now):
        state.checked_keys.used(presented, now)
        background.add_task(_touch, get_engine(state.settings.warehouse_url), found.name, now)
    wait = state.limiter.take(found.name)
    if wait is not None:
        limit = state.settings.api_rate_limit_per_minute
        raise ApiError(429, f"rate limit of {limit} requests per minute exceeded; retry in {wait} s", headers={"Retry-After": str(wait)})
    return found.name
