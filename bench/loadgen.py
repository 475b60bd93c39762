"""A small keep-alive HTTP/1.1 load generator, for machines without wrk.

It measures what the wrk script measures: requests per second, p50 and p99
latency and non-2xx answers, for GET requests that cycle through tokens.
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
import time
from typing import Any
from urllib.parse import urlsplit


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """The status and body of one HTTP/1.1 answer with a Content-Length."""
    head = await reader.readuntil(b"\r\n\r\n")
    lengths = [line.split(b":", 1)[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")]
    return int(head.split(b" ", 2)[1]), await reader.readexactly(int(lengths[0]) if lengths else 0)


async def _connection(
    host: str, port: int, path: str, tokens: itertools.cycle[str], deadline: float, latencies: list[float]
) -> int:
    reader, writer = await asyncio.open_connection(host, port)
    bad = 0
    try:
        while time.perf_counter() < deadline:
            request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {next(tokens)}\r\n\r\n"
            started = time.perf_counter()
            writer.write(request.encode())
            status, _ = await read_response(reader)
            latencies.append(time.perf_counter() - started)
            bad += not 200 <= status < 300
    finally:
        writer.close()
    return bad


async def run(url: str, tokens: list[str], connections: int, seconds: float) -> dict[str, Any]:
    """Load ``url`` for ``seconds`` over ``connections`` keep-alive connections."""
    parts = urlsplit(url)
    cycle = itertools.cycle(tokens)
    latencies: list[float] = []
    started = time.perf_counter()
    deadline = started + seconds
    bad = await asyncio.gather(
        *(
            _connection(parts.hostname or "127.0.0.1", parts.port or 80, parts.path, cycle, deadline, latencies)
            for _ in range(connections)
        )
    )
    elapsed = time.perf_counter() - started
    quantiles = statistics.quantiles(latencies, n=100)
    return {
        "requests": len(latencies),
        "seconds": elapsed,
        "p50_ms": quantiles[49] * 1e3,
        "p99_ms": quantiles[98] * 1e3,
        "bad_status": sum(bad),
        "socket_errors": 0,
        "tokens": len(tokens),
    }
