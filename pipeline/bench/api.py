"""The reader through the HTTP API: `python -m pipeline serve` in a child process, the query mix sent over HTTP.

One client sends the mix one request at a time: a first pass right after the server starts (cold: no
cached counts or positions), then `rounds` passes after it (warm). Then `clients` clients send the mix
concurrently, each in its own order, each with its own API key (as separate integrations would, so the
per-key rate limit does not throttle the benchmark). Keys are created for the run and revoked after it.
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import threading
import time
import uuid
from contextlib import contextmanager

import httpx

from pipeline.bench.reader import AS_OF, percentiles, query_mix, reader_latency
from pipeline.serve.keys import create_key, revoke_key
from pipeline.settings import Settings


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def api_server(settings: Settings, workers: int = 1):
    """`python -m pipeline serve` on a free port; yields its base URL once /healthz answers."""
    port = _free_port()
    env = dict(os.environ, CONTACTS_WAREHOUSE_URL=settings.warehouse_url)
    command = [sys.executable, "-m", "pipeline", "serve", "--port", str(port)] + (["--workers", str(workers)] if workers > 1 else [])
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the API server did not start (exit {server.poll()})")
            time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)


@contextmanager
def bench_keys(settings: Settings, count: int):
    """`count` fresh API keys, revoked afterwards."""
    names = [f"bench-{uuid.uuid4().hex[:8]}-{i}" for i in range(count)]
    keys = [create_key(settings, name) for name in names]
    try:
        yield keys
    finally:
        for name in names:
            revoke_key(settings, name)


def _send(client: httpx.Client, request: dict) -> tuple[float, bool]:
    """One request: milliseconds and whether it was answered 200."""
    started = time.perf_counter()
    response = client.post("/api/v1/contacts", json=request, params={"as_of": AS_OF.isoformat(sep=" ")})
    elapsed = (time.perf_counter() - started) * 1000
    return elapsed, response.status_code == 200


def one_client(base: str, key: str, mix: list[dict], rounds: int) -> dict:
    """The mix one request at a time: the cold first pass, then `rounds` warm passes."""
    with httpx.Client(base_url=base, headers={"Authentication": key}, timeout=60) as client:
        cold = [_send(client, request) for request in mix]
        warm = [_send(client, request) for _ in range(rounds) for request in mix]
    errors = sum(not ok for _, ok in cold + warm)
    return {"cold": percentiles([ms for ms, _ in cold]), "warm": percentiles([ms for ms, _ in warm]), "errors": errors,
            "requests": len(cold) + len(warm)}


def concurrent_clients(base: str, keys: list[str], mix: list[dict], rounds: int) -> dict:
    """Every client sends the mix `rounds` times in its own shuffled order, all at once: requests/s and errors."""
    results: list[list[tuple[float, bool]]] = [[] for _ in keys]

    def client_loop(index: int) -> None:
        order = [request for r in range(rounds) for request in random.Random(index * 1000 + r).sample(mix, len(mix))]
        with httpx.Client(base_url=base, headers={"Authentication": keys[index]}, timeout=60) as client:
            results[index] = [_send(client, request) for request in order]

    threads = [threading.Thread(target=client_loop, args=(i,)) for i in range(len(keys))]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    sent = [item for result in results for item in result]
    return {"clients": len(keys), "requests": len(sent), "seconds": wall, "requests_per_second": len(sent) / wall,
            "errors": sum(not ok for _, ok in sent), **percentiles([ms for ms, _ in sent])}


def api_benchmark(settings: Settings, *, size: int | None = None, rounds: int = 3, clients: int = 8) -> dict:
    """The mix (its first `size` requests) through the reader function, then through a real API server: one
    client (a cold pass, `rounds` warm passes), then `clients` clients at once."""
    mix = query_mix(settings)[:size]
    figures = {"mix": len(mix), "function": reader_latency(settings, mix)}
    with bench_keys(settings, clients) as keys, api_server(settings) as base:
        figures["single"] = one_client(base, keys[0], mix, rounds)
        figures["concurrent"] = concurrent_clients(base, keys, mix, rounds)
    return figures


def api_report(figures: dict, settings: Settings) -> str:
    """The reader's figures as a few text lines."""
    f, s, c = figures["function"], figures["single"], figures["concurrent"]
    line = "p50 {p50_ms:6.1f} ms   p95 {p95_ms:6.1f} ms   max {max_ms:6.1f} ms"
    return "\n".join([
        f"  reader ({settings.warehouse_url.split(':')[0]}, {figures['mix']} distinct requests)",
        f"    function, warm            {line.format(**f)}",
        f"    HTTP API, first pass      {line.format(**s['cold'])}",
        f"    HTTP API, later passes    {line.format(**s['warm'])}   errors {s['errors']}",
        f"    HTTP API, {c['clients']} clients      {line.format(**c)}   {c['requests_per_second']:6.0f} requests/s   errors {c['errors']}",
    ])


def bench_reader(warehouse: str, *, size: int | None = None, rounds: int = 3, clients: int = 8, out=print) -> dict:
    """`bench --reader-only`: the reader's figures on an existing warehouse."""
    settings = Settings(warehouse_url=warehouse)
    figures = api_benchmark(settings, size=size, rounds=rounds, clients=clients)
    out(api_report(figures, settings))
    return figures
