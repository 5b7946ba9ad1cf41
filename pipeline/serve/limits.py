"""Request limits of the HTTP API: a per-key token bucket and a body size cap, so one client cannot starve the rest;
and the body read within the cap and decoded as JSON."""

from __future__ import annotations

import json
import math
import threading
import time

from starlette.requests import Request

from pipeline.serve.auth import ApiError
from pipeline.warehouse.engines import one_line


class BodyTooLarge(Exception):
    """The request body is over the cap (413); it is not read further."""


class RateLimiter:
    """Token buckets in process memory, one per API key: `per_minute` tokens, refilled evenly over a minute."""

    def __init__(self, per_minute: int, clock=time.monotonic):
        self.capacity = float(per_minute)
        self.refill_per_second = per_minute / 60.0
        self.clock = clock
        self.buckets: dict[str, tuple[float, float]] = {}  # key name -> (tokens, time of last refill)
        self.lock = threading.Lock()

    def take(self, name: str) -> int | None:
        """Spend one token of this key; None when allowed, else the whole seconds to wait (Retry-After)."""
        with self.lock:
            now = self.clock()
            tokens, then = self.buckets.get(name, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - then) * self.refill_per_second)
            if tokens >= 1.0:
                self.buckets[name] = (tokens - 1.0, now)
                return None
            self.buckets[name] = (tokens, now)
            return max(1, math.ceil((1.0 - tokens) / self.refill_per_second))


async def read_capped_body(request: Request, max_bytes: int) -> bytes:
    """The request body, refusing (BodyTooLarge) as soon as it is known to exceed max_bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > max_bytes:
        raise BodyTooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


async def capped_body(request: Request) -> bytes:
    """The request body within the app's cap (setting `api_max_body_bytes`); over it is a 413, unread."""
    cap = request.app.state.settings.api_max_body_bytes
    try:
        return await read_capped_body(request, cap)
    except BodyTooLarge:
        raise ApiError(413, f"request body over {cap:,} bytes") from None


def decode_request(body: bytes) -> object:
    """The body as JSON (an empty body is `{}`, as on the CLI; whitespace alone is not JSON there either); bad JSON is
    a 400."""
    if not body:
        return {}
    try:
        return json.loads(body)
    except json.JSONDecodeError as exc:
        raise ApiError(400, f"request is not valid JSON: {exc.msg}") from None
    except (ValueError, RecursionError) as exc:  # bad UTF-8, absurd numbers, nesting deeper than Python's stack
        raise ApiError(400, f"request is not valid JSON: {one_line(exc)[:100]}") from None


def refuse_unknown_query(request: Request, allowed: frozenset[str] = frozenset()) -> None:
    """A query parameter the route does not document is a 400 naming it, as an unknown body field is (a typo such as
    `?asof=` would otherwise be silently ignored)."""
    for name in request.query_params:
        if name not in allowed:
            raise ApiError(400, f"unknown query parameter {name[:50]!r}", name[:100])
