"""The HTTP API (SPEC section 12): the reader behind API keys and request limits, on read-only warehouse access.

`POST /api/v1/contacts` answers exactly what `python -m pipeline contacts` answers (the reader's
`parse_request` and `answer_query`), `POST /api/v1/attribution` what `python -m pipeline attribution`
answers (SPEC section 14); every error is a one-line JSON body, never a traceback.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from functools import partial

import anyio
from fastapi import APIRouter, FastAPI, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from pipeline.serve.attribution import attribution_report, parse_attribution_request
from pipeline.serve.attribution_models import AttributionReport, AttributionRequest
from pipeline.serve.auth import ApiError, CheckedKeys, authenticated_key, error_response, on_warehouse
from pipeline.serve.limits import RateLimiter, capped_body, decode_request, refuse_unknown_query  # noqa: F401 - decode_request re-exported
from pipeline.serve.models import ContactsPage, ContactsRequest, ErrorBody, Health, NoMatch, Unavailable
from pipeline.serve.query import AS_OF_FORMAT, RequestError, parse_as_of, parse_request
from pipeline.serve.reader import published_page
from pipeline.serve.ui import install_ui
from pipeline.settings import Settings
from pipeline.warehouse import tables as t
from pipeline.warehouse.engines import WarehouseError, one_line, ping, read_only_engine

log = logging.getLogger("pipeline.api")

router = APIRouter()


def _respond(settings: Settings, body: bytes, as_of_text: str | None) -> bytes:
    """Decode, validate and answer on a worker thread (a 10,000-email body is ~90 ms of CPU the event loop
    must not wait for); errors keep their order: the body's, then `as_of`'s, then the warehouse's.
    The answer is the reader's JSON, stored summaries spliced in as they are (no decoding, no re-encoding)."""
    query = parse_request(decode_request(body))
    return published_page(settings, query, as_of=parse_as_of(as_of_text)).as_json()


ERRORS = {
    400: {"model": ErrorBody, "description": "Bad request: unknown field, wrong type, bad date, start after end, negative offset, "
          "more than 10,000 emails, bad `as_of`, or a body that is not a JSON object. `field` names the field."},
    401: {"model": ErrorBody, "description": "Missing, unknown or revoked API key. No data.",
          "headers": {"WWW-Authenticate": {"schema": {"type": "string"}, "required": True}}},
    413: {"model": ErrorBody, "description": "Request body over the size cap (setting `api_max_body_bytes`, default 1 MiB)."},
    429: {"model": ErrorBody, "description": "Over the per-key rate limit (setting `api_rate_limit_per_minute`).",
          "headers": {"Retry-After": {"schema": {"type": "integer"}, "required": True, "description": "Seconds to wait."}}},
    503: {"model": ErrorBody, "description": "The warehouse is unreachable or not built yet."},
}
CONTACTS_DOC = {
    "requestBody": {
        "required": False,
        "description": "The query (SPEC section 11). An empty body is `{}`: every contact, in session order.",
        "content": {"application/json": {"schema": ContactsRequest.model_json_schema()}},
    },
    "parameters": [
        {"name": "as_of", "in": "query", "required": False, "schema": {"type": "string"}, "example": "2025-07-10 12:00:00",
         "description": f"Reference time for `days_since_last_conversion`, {AS_OF_FORMAT}. Default: now. "
                        "Same as the CLI's `--as-of`; for reproducible answers."},
    ],
}


@router.post(
    "/api/v1/contacts",
    response_model=ContactsPage | NoMatch,
    responses=ERRORS,
    openapi_extra=CONTACTS_DOC,
    summary="Contacts matching a query, with their whole-journey summaries",
    description="50 contacts per page; pass `pagination.records_processed` as the next `offset`. "
    "With no match: `{\"message\": \"No contacts found for the given parameters.\"}` (200, not an error).",
)
async def contacts(request: Request, _caller: str = Security(authenticated_key)) -> Response:
    """Limits first (key, rate, size), then the reader's own validation and answer, passed through as JSON."""
    state = request.app.state
    refuse_unknown_query(request, frozenset({"as_of"}))
    body = await capped_body(request)
    respond = partial(on_warehouse, _respond, state.settings, body, request.query_params.get("as_of"))
    answer = await anyio.to_thread.run_sync(respond, limiter=state.readers)
    return Response(answer, media_type="application/json")


def _report(settings: Settings, body: bytes) -> dict:
    """Decode, validate and answer an attribution request (on a worker thread, like /contacts)."""
    return attribution_report(settings, parse_attribution_request(decode_request(body)))


ATTRIBUTION_ERRORS = {
    **ERRORS,
    400: {"model": ErrorBody, "description": "Bad request: unknown field, unknown model or grouping, wrong type, bad date, "
          "start after end, or a body that is not a JSON object. `field` names the field."},
}
ATTRIBUTION_DOC = {
    "requestBody": {
        "required": False,
        "description": "The report (SPEC section 14). An empty body is `{}`: linear credit per channel over every conversion.",
        "content": {"application/json": {"schema": AttributionRequest.model_json_schema()}},
    },
}


@router.post(
    "/api/v1/attribution",
    response_model=AttributionReport,
    responses=ATTRIBUTION_ERRORS,
    openapi_extra=ATTRIBUTION_DOC,
    summary="Conversions credited per channel, source, medium or campaign under an attribution model",
    description="Every conversion in the window (on its timestamp) gives 1.0 of credit, spread over its path under the model; "
    "rows by credit descending, then value; credits and shares rounded to 2 decimals (half away from zero).",
)
async def attribution(request: Request, _caller: str = Security(authenticated_key)) -> JSONResponse:
    """Limits first (key, rate, size), then the report's own validation and answer, as JSON."""
    refuse_unknown_query(request)
    body = await capped_body(request)
    report = partial(on_warehouse, _report, request.app.state.settings, body)
    return JSONResponse(await anyio.to_thread.run_sync(report, limiter=request.app.state.readers))


@router.get("/healthz", response_model=Health, responses={503: {"model": Unavailable, "description": "Warehouse unreachable."}},
            summary="Warehouse reachability and the last successful run (no key needed)")
def healthz(request: Request) -> JSONResponse:
    """For load balancers and monitoring: can the reader reach the warehouse, and how fresh is it."""
    engine = request.app.state.reader
    try:
        ping(engine)
        with engine.connect() as conn:
            runs = t.pipeline_runs
            row = conn.execute(
                select(runs.c.run_id, runs.c.interval_start, runs.c.finished_at)
                .where(runs.c.status == "success").order_by(runs.c.finished_at.desc()).limit(1)
            ).first()
    except (SQLAlchemyError, WarehouseError) as exc:
        return JSONResponse({"status": "unavailable", "error": one_line(exc)}, status_code=503)
    last = None if row is None else {
        "run_id": row.run_id, "interval_start": str(row.interval_start)[:10], "finished_at": str(row.finished_at)[:19]
    }
    return JSONResponse({"status": "ok", "warehouse": "reachable", "last_successful_run": last})


def _install_error_handlers(app: FastAPI) -> None:
    """Every error path answers `{"error", "field"}` JSON; unexpected ones are logged, not shown."""

    async def api_error(_request, exc: ApiError):
        return error_response(exc.status, exc.message, exc.field, exc.headers)

    async def request_error(_request, exc: RequestError):
        return error_response(400, exc.message, exc.field)

    async def http_error(_request, exc: StarletteHTTPException):
        return error_response(exc.status_code, str(exc.detail), None, getattr(exc, "headers", None))

    async def validation_error(_request, exc: RequestValidationError):
        first = (exc.errors() or [{}])[0]
        return error_response(400, str(first.get("msg", "bad request")), str((first.get("loc") or [None])[-1]))

    async def unexpected(_request, exc: Exception):
        log.error("unexpected error", exc_info=exc)
        return error_response(500, "internal error")

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(RequestError, request_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, unexpected)


def create_app(settings: Settings) -> FastAPI:
    """The API over one warehouse; its reader engine is read-only and closed at shutdown."""
    reader = read_only_engine(settings.warehouse_url)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        reader.dispose()

    app = FastAPI(
        title="Contact snapshots API",
        version="1.0",
        description="CRM-style contact summaries from the marketing-attribution warehouse (read-only). "
        "Authenticate with `Authentication: KEY` or `Authorization: Bearer KEY`; create keys with "
        "`python -m pipeline keys create NAME`. Errors are `{\"error\": ..., \"field\": ...}`. A web UI is served at `/ui/`.",
        lifespan=lifespan,
    )
    app.state.settings, app.state.reader = settings, reader
    app.state.limiter = RateLimiter(settings.api_rate_limit_per_minute)
    app.state.checked_keys = CheckedKeys(settings.api_key_cache_seconds)
    app.state.readers = anyio.CapacityLimiter(settings.api_reader_threads)  # answers on worker threads at once
    _install_error_handlers(app)
    app.include_router(router)
    install_ui(app)
    return app


def app_from_environment() -> FastAPI:
    """The app of one worker process of `serve --workers N`: settings from the environment `serve` exported."""
    return create_app(Settings())


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 8000, workers: int = 1) -> None:
    """Run the API with uvicorn until interrupted; an address that cannot be bound is one clear error first.

    With several workers, each is a process with its own reader engine, memo and checked keys; they get the
    settings through the environment (`CONTACTS_*`), the warehouse URL included.
    """
    import os
    import socket

    import uvicorn

    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        socket.create_server((host, port), family=family).close()
    except OSError as exc:
        raise ValueError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    if workers == 1:
        uvicorn.run(create_app(settings), host=host, port=port, log_level="info")
        return
    os.environ["CONTACTS_WAREHOUSE_URL"] = settings.warehouse_url
    uvicorn.run("pipeline.serve.api:app_from_environment", factory=True, workers=workers, host=host, port=port, log_level="info")
