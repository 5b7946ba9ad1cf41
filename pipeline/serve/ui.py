"""The web UI (SPEC section 15): static files under `/ui/` and the journey route its timeline reads.

The page holds no data: it asks for an API key, keeps it in the browser's session storage and calls the
API with it (`POST /api/v1/contacts`, `POST /api/v1/journey`). Every script and style is served from
`pipeline/serve/ui/`; the Content-Security-Policy forbids anything from elsewhere.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI, Request, Security
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from pipeline.serve.auth import ApiError, authenticated_key, on_warehouse
from pipeline.serve.journey import contact_journey, parse_journey_request
from pipeline.serve.limits import capped_body, decode_request, refuse_unknown_query
from pipeline.serve.models import ErrorBody, Journey, JourneyRequest
from pipeline.settings import Settings

UI_DIR = Path(__file__).resolve().parent / "ui"
UI_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

router = APIRouter()


class UiFiles(StaticFiles):
    """The UI's files with headers that keep the page to its own server."""

    async def get_response(self, path: str, scope):
        response = await super().get_response(path, scope)
        response.headers.update(UI_HEADERS)
        return response


def _journey(settings: Settings, body: bytes) -> dict:
    """Decode, validate and read on a worker thread; an unknown contact is a 404."""
    email = parse_journey_request(decode_request(body))
    found = contact_journey(settings, email)
    if found is None:
        raise ApiError(404, "no contact with this email", "email")
    return found


@router.post(
    "/api/v1/journey",
    response_model=Journey,
    responses={
        400: {"model": ErrorBody, "description": "The body is not `{\"email\": \"...\"}`."},
        401: {"model": ErrorBody, "description": "Missing, unknown or revoked API key. No data."},
        404: {"model": ErrorBody, "description": "No contact with this email."},
    },
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": JourneyRequest.model_json_schema()}}}},
    summary="One contact's sessions for a timeline: channel, touch roles and conversions of each",
    description="What the web UI draws. The email travels in the body (not the URL), so it stays out of access logs.",
)
async def journey(request: Request, _caller: str = Security(authenticated_key)) -> JSONResponse:
    """The contact's journey, behind the same key, rate limit and body cap as /contacts."""
    refuse_unknown_query(request)
    body = await capped_body(request)
    return JSONResponse(await run_in_threadpool(on_warehouse, _journey, request.app.state.settings, body))


@router.get("/", include_in_schema=False)
def home() -> RedirectResponse:
    """The server's root opens the UI."""
    return RedirectResponse("/ui/")


def install_ui(app: FastAPI) -> None:
    """Add the journey route and serve the UI's files at /ui/ (index.html for the folder)."""
    app.include_router(router)
    app.mount("/ui", UiFiles(directory=UI_DIR, html=True), name="ui")
