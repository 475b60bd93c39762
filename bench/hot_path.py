"""What metrics cost a request with a remembered token: the mixin's ``prepare``, metrics off and on.

Two applications, one counting into a fresh Prometheus registry and one not, each with a verifier that
verified the token already; a handler of each awaits its ``prepare`` over and over, with the garbage
collector paused.  Rounds of the two alternate, so that a noisy neighbour slows both alike; the cost is the median
of the per-round differences.  Run: ``python bench/hot_path.py`` (``--rounds``, ``--calls``).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import pathlib
import statistics
import sys
import time
from typing import Any

import tornado.web
from prometheus_client import CollectorRegistry
from tornado.httputil import HTTPHeaders, HTTPServerRequest, RequestStartLine

sys.path[:0] = [str(pathlib.Path(__file__).resolve().parent.parent)]  # this checkout's package, not an installed one

from hanko_tornado import HankoAuthMixin, verifier_for
from hanko_tornado.testing import FakeHanko


class ProtectedHandler(HankoAuthMixin, tornado.web.RequestHandler):
    def get(self) -> None:
        self.write({"user_id": self.hanko_user.id})


class _Connection:
    """What a handler needs of its connection before it writes anything."""

    def set_close_callback(self, callback: Any) -> None:
        pass


async def _per_prepare(app: tornado.web.Application, request: HTTPServerRequest, calls: int) -> float:
    """Microseconds per ``prepare`` of one handler (building a handler costs more than prepare, and varies more)."""
    handler = ProtectedHandler(app, request)
    gc.collect()
    gc.disable()
    try:
        started = time.perf_counter()
        for _ in range(calls):
            await handler.prepare()
        elapsed = time.perf_counter() - started
    finally:
        gc.enable()
    assert handler.current_user is not None
    return elapsed / calls * 1e6


def _per_count(count: Any, calls: int) -> float:
    """Microseconds per call of the mixin's count of an accepted request."""
    started = time.perf_counter()
    for _ in range(calls):
        count()
    return (time.perf_counter() - started) / calls * 1e6


async def measure(hanko: FakeHanko, rounds: int, calls: int) -> dict[str, float]:
    token = hanko.mint()
    apps = {
        "off": tornado.web.Application(hanko=hanko.settings()),
        "on": tornado.web.Application(hanko=hanko.settings(metrics=CollectorRegistry())),
    }
    for app in apps.values():
        await verifier_for(app).verify_token(token)  # remembered from now on
    headers = HTTPHeaders({"Authorization": f"Bearer {token}", "Host": "127.0.0.1"})
    start_line = RequestStartLine("GET", "/protected", "HTTP/1.1")
    request = HTTPServerRequest(start_line=start_line, headers=headers, connection=_Connection())
    samples: dict[str, list[float]] = {"off": [], "on": []}
    for _ in range(3):  # warm-up
        for app in apps.values():
            await _per_prepare(app, request, calls)
    for round_number in range(rounds):
        order = ("off", "on") if round_number % 2 == 0 else ("on", "off")
        for name in order:
            samples[name].append(await _per_prepare(apps[name], request, calls))
    counting = {name: _per_count(verifier_for(app).metrics.accepted, calls) for name, app in apps.items()}
    for app in apps.values():
        await verifier_for(app).close()
    differences = [on - off for on, off in zip(samples["on"], samples["off"], strict=True)]
    quartiles = statistics.quantiles(differences, n=4)
    return {
        "prepare, remembered token, metrics off": statistics.median(samples["off"]),
        "prepare, remembered token, metrics on": statistics.median(samples["on"]),
        "on minus off, median of rounds": statistics.median(differences),
        "on minus off, first quartile": quartiles[0],
        "on minus off, third quartile": quartiles[2],
        "the count itself, metrics on": counting["on"],
        "the call that counts nothing, metrics off": counting["off"],
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=61)
    parser.add_argument("--calls", type=int, default=10_000)
    args = parser.parse_args()
    hanko = FakeHanko(key_size=4096)
    hanko.start()
    try:
        for name, micros in (await measure(hanko, args.rounds, args.calls)).items():
            print(f"{name:42} {micros:7.3f} µs")
    finally:
        await hanko.stop()


if __name__ == "__main__":
    asyncio.run(main())
