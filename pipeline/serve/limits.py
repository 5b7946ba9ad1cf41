"""Request limits of the HTTP API: a per-key token bucket and a body size cap, so one client cannot starve the rest."""

from __future__ import annotations

import math
import threading
import time

from starlette.requests import Request


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
