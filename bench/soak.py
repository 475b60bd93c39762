"""Soak: server.py under a bounded mixed load while Hanko's key endpoint fails, recovers and rotates keys.

Every answer is checked against what it must be and counted:

- a valid token: 200; signed by a key rotated in during the outage: 401 (unknown
  signing key) for at most ``refetch_interval`` after the rotation, while the key
  set fetched last is still taken at its word; 503 (keys unavailable) while the
  endpoint fails; 200 once it answers again;
- expired, forged (another key under the published kid) and missing tokens: 401;
- CORS preflights: 204.

Anything else is a mismatch.  The server's memory is read half-way and at the
end; then, with every cache warm and every kind of request seen, the same load
runs again (half of it) with Hanko healthy (the settled round), and the memory before
and after it shows whether requests leak: the process's own baseline, so the
check holds whatever the Python version's allocator starts from.
``python bench/soak.py`` runs 20,000 requests over 200 connections;
tests/test_soak.py runs a short version in CI.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import dataclasses
import os
import pathlib
import random
import signal
import socket
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from loadgen import read_response

from hanko_tornado.testing import FakeHanko, SigningKey

ORIGIN = "http://localhost:3000"
REFETCH_INTERVAL = 0.5


@dataclasses.dataclass
class Report:
    answers: collections.Counter[tuple[str, int]] = dataclasses.field(default_factory=collections.Counter)
    mismatches: list[str] = dataclasses.field(default_factory=list)
    rss_half_kib: int = 0
    rss_end_kib: int = 0
    rss_settled_start_kib: int = 0
    rss_settled_end_kib: int = 0
    jwks_fetches: int = 0
    seconds: float = 0.0

    @property
    def requests(self) -> int:
        return sum(self.answers.values())

    def server_errors(self) -> int:
        return sum(count for (kind, status), count in self.answers.items() if status >= 500 and status != 503)


def _rss_kib(pid: int) -> int:
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Soak:
    """The load, its schedule of key-endpoint events, and the checks of every answer."""

    def __init__(
        self, hanko: FakeHanko, rotated: SigningKey, server_pid: int, port: int, total: int, pools: dict[str, list[str]]
    ) -> None:
        self.hanko, self.rotated, self.server_pid, self.port = hanko, rotated, server_pid, port
        self.total, self.pools = total, pools
        self.sent = 0
        self.report = Report()
        self.outage_started: float | None = None
        self.rotated_at: float | None = None
        self.recovered_at: float | None = None
        self.random = random.Random(7)

    def advance(self) -> None:
        """The key endpoint fails at 20% of the requests, a key rotates in at 30%, and it recovers at 70%
        (but not before the outage has lasted three refetch intervals)."""
        progress, now = self.sent / self.total, time.monotonic()
        if progress >= 0.2 and self.outage_started is None:
            self.hanko.fault = "error"
            self.outage_started = now
        if progress >= 0.3 and self.rotated_at is None:
            self.hanko.keys.append(self.rotated)
            self.rotated_at = now
        if progress >= 0.5 and not self.report.rss_half_kib:
            self.report.rss_half_kib = _rss_kib(self.server_pid)
        if (
            progress >= 0.7
            and self.recovered_at is None
            and self.outage_started is not None
            and now > self.outage_started + 3 * REFETCH_INTERVAL
        ):
            self.recover()

    def recover(self) -> None:
        self.hanko.fault = None
        self.recovered_at = time.monotonic()

    def next_kind(self) -> str | None:
        if self.sent >= self.total:
            return None
        self.sent += 1
        self.advance()
        kinds, weights = ["valid", "expired", "forged", "missing", "preflight"], [5, 1, 1, 1, 1]
        if self.rotated_at is not None:
            kinds.append("rotated")
            weights.append(3)
        return self.random.choices(kinds, weights=weights)[0]

    def request(self, kind: str) -> bytes:
        head = f"Host: localhost:{self.port}\r\nOrigin: {ORIGIN}\r\n"
        if kind == "preflight":
            head += "Access-Control-Request-Method: GET\r\nAccess-Control-Request-Headers: authorization\r\n"
            return f"OPTIONS /protected HTTP/1.1\r\n{head}\r\n".encode()
        if kind != "missing":
            head += f"Authorization: Bearer {self.random.choice(self.pools[kind])}\r\n"
        return f"GET /protected HTTP/1.1\r\n{head}\r\n".encode()

    def expected(self, kind: str, started: float) -> set[int]:
        if kind == "rotated":
            assert self.rotated_at is not None
            slack = REFETCH_INTERVAL + 0.5
            if self.recovered_at is not None and started > self.recovered_at + slack:
                return {200}
            return {200, 503, 401} if started < self.rotated_at + slack else {200, 503}
        return {"valid": {200}, "preflight": {204}}.get(kind, {401})

    async def connection(self, kinds: list[str] | None = None) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            while (kind := kinds.pop() if kinds else None if kinds is not None else self.next_kind()) is not None:
                started = time.monotonic()
                writer.write(self.request(kind))
                status, body = await read_response(reader)
                self.report.answers[(kind, status)] += 1
                if status not in self.expected(kind, started):
                    self.report.mismatches.append(f"{kind}: {status} {body[:120]!r}")
        finally:
            writer.close()


async def soak(total: int = 20_000, connections: int = 200, key_size: int = 4096) -> Report:
    """Run the soak and return its report."""
    hanko = FakeHanko(key_size=key_size, max_age=2)
    rotated = SigningKey.generate(key_size=key_size)
    attacker = SigningKey.generate(key_size=key_size, kid=hanko.keys[0].kid)
    pools = {
        "valid": [hanko.mint() for _ in range(200)],
        "rotated": [hanko.mint(key=rotated) for _ in range(100)],
        "expired": [hanko.mint(lifetime=-3600) for _ in range(50)],
        "forged": [hanko.mint(key=attacker) for _ in range(50)],
    }
    hanko.start()
    port = _free_port()
    env = {
        **os.environ,
        "HANKO_API_URL": hanko.api_url,
        "HANKO_AUDIENCE": "localhost",
        "HANKO_JWKS_REFETCH_INTERVAL_SECONDS": str(REFETCH_INTERVAL),
        "CORS_ORIGINS": ORIGIN,
        "LOG_LEVEL": "ERROR",
        "SHUTDOWN_DELAY_SECONDS": "0",  # no load balancer to tell: stop at once
    }
    server = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "server.py"), "--port", str(port), env=env, cwd=tempfile.gettempdir()
    )
    try:
        for _ in range(200):
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            except OSError:
                await asyncio.sleep(0.05)
        run = Soak(hanko, rotated, server.pid, port, total, pools)
        started = time.monotonic()
        await asyncio.gather(*(run.connection() for _ in range(connections)))
        run.report.rss_end_kib = _rss_kib(server.pid)
        if run.recovered_at is None:  # a short run ends inside the outage: recover, and check the rotated key
            run.recover()
        await asyncio.sleep(max(0.0, run.recovered_at + REFETCH_INTERVAL + 0.6 - time.monotonic()))  # type: ignore[operator]
        await run.connection(["rotated"] * 5)
        run.report.rss_settled_start_kib = _rss_kib(server.pid)
        run.sent = total // 2  # the settled round: half the load again, every event of the schedule behind it
        await asyncio.gather(*(run.connection() for _ in range(connections)))
        run.report.rss_settled_end_kib = _rss_kib(server.pid)
        run.report.seconds = time.monotonic() - started
        run.report.jwks_fetches = hanko.jwks_fetches
        return run.report
    finally:
        server.send_signal(signal.SIGTERM)
        await server.wait()
        await hanko.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--connections", type=int, default=200)
    args = parser.parse_args()
    report = asyncio.run(soak(args.requests, args.connections))
    print(f"{report.requests} requests over {args.connections} connections in {report.seconds:.1f} s")
    for (kind, status), count in sorted(report.answers.items()):
        print(f"  {kind:10} {status}  {count}")
    print(f"mismatches: {len(report.mismatches)}; 5xx other than 503: {report.server_errors()}")
    print(f"JWKS fetches: {report.jwks_fetches}")
    half, end = report.rss_half_kib / 1024, report.rss_end_kib / 1024
    print(f"server memory (RSS): {half:.1f} MiB half-way, {end:.1f} MiB at the end")
    before, after = report.rss_settled_start_kib / 1024, report.rss_settled_end_kib / 1024
    settled = args.requests - args.requests // 2
    print(f"settled round of {settled} requests: {before:.1f} MiB before, {after:.1f} MiB after")
    for line in report.mismatches[:10]:
        print("  ", line)
    sys.exit(1 if report.mismatches or report.server_errors() else 0)


if __name__ == "__main__":
    main()
