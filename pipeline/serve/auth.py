"""Who is calling: the API key from either header, checked against its stored hash, within its rate limit."""

from __future__ import annotations

import logging
from datetime import datetime

from fastapi import BackgroundTasks, Request, Security
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.exc import SQLAlchemyError

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


def _touch(engine, name: str, now: datetime) -> None:
    """Bookkeeping after the response: a failure here must not fail the request."""
    try:
        keys.mark_used(engine, name, now)
    except Exception as exc:  # noqa: BLE001
        log.warning("could not record the use of key %r: %s", name, one_line(exc))


def authenticated_key(
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
    found = on_warehouse(_look_up, state.reader, presented)
    if found is None:
        raise ApiError(401, "invalid or revoked API key", headers=CHALLENGE)
    now = keys.utc_now()
    if keys.needs_touch(found, now):
        background.add_task(_touch, get_engine(state.settings.warehouse_url), found.name, now)
    wait = state.limiter.take(found.name)
    if wait is not None:
        limit = state.settings.api_rate_limit_per_minute
        raise ApiError(429, f"rate limit of {limit} requests per minute exceeded; retry in {wait} s", headers={"Retry-After": str(wait)})
    return found.name
