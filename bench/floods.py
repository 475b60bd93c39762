"""Oversized-request floods against server.py: what they get back, and what they cost its memory.

``python bench/floods.py`` starts server.py against a local FakeHanko, warms it with valid requests, reads
its memory (RSS), then sends a flood over 50 concurrent connections and reads the memory again, with
a fresh server.py for each flood:

- 32 headers of 2 KiB each (64 KiB of headers);
- a 60 KiB cookie;
- bodies announced as 100 MB on the webhook route and on /protected, 256 KiB of each sent.

It prints the answers each flood got and the memory after it, against the warm baseline.  A valid user's
requests run alongside, and their rate is printed too.  ``--server`` runs another server.py (an older one,
for a side-by-side comparison).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import pathlib
import signal
import socket
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from soak import _rss_kib

from hanko_tornado.testing import FakeHanko

FLOODS = {
    "32 headers of 2 KiB": lambda: "".join(f"X-Flood-{i}: {'a' * 2048}\r\n" for i in range(32)).encode(),
    "a 60 KiB cookie": lambda: f"Cookie: hanko={'b' * 60 * 1024}\r\n".encode(),
}


async def _one(port: int, request: bytes, answers: collections.Counter[str]) -> None:
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        answers["connect failed"] += 1
        return
    try:
        writer.write(request)
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
        answers[head.split(b"\r\n", 1)[0].decode()] += 1
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError):
        answers["closed, no answer"] += 1
    finally:
        writer.close()


async def _flood(port: int, request: bytes, total: int, connections: int = 50) -> collections.Counter[str]:
    answers: collections.Counter[str] = collections.Counter()
    left = [total]

    async def worker() -> None:
        while left[0] > 0:
            left[0] -= 1
            await _one(port, request, answers)

    await asyncio.gather(*(worker() for _ in range(connections)))
    return answers


async def _valid_rate(port: int, token: str, until: float) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    done = 0
    request = f"GET /protected HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n".encode()
    while time.monotonic() < until:
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        await reader.readexactly(length)
        done += 1
    writer.close()
    return done


async def _measure(server_py: str, hanko: FakeHanko, name: str, request: bytes, total: int) -> None:
    """A fresh server.py, warmed; its memory; the flood; its memory and the answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "HANKO_API_URL": hanko.api_url, "LOG_LEVEL": "ERROR", "SHUTDOWN_DELAY_SECONDS": "0"}
    server = await asyncio.create_subprocess_exec(
        sys.executable, server_py, "--port", str(port), env=env, cwd=tempfile.gettempdir()
    )
    try:
        for _ in range(200):
            try:
                (await asyncio.open_connection("127.0.0.1", port))[1].close()
                break
            except OSError:
                await asyncio.sleep(0.05)
        token = hanko.mint()
        alone = await _valid_rate(port, token, time.monotonic() + 2) / 2  # and warm: keys, caches, allocator
        baseline = _rss_kib(server.pid)
        started = time.monotonic()
        valid = asyncio.ensure_future(_valid_rate(port, token, started + 2))
        answers = await _flood(port, request, total)
        during = await valid / max(2.0, time.monotonic() - started)
        rss = _rss_kib(server.pid)
        print(
            f"  {name}: {dict(answers)}; RSS {baseline / 1024:.1f} -> {rss / 1024:.1f} MiB "
            f"({(rss - baseline) / 1024:+.1f} MiB); a valid user: {alone:.0f} req/s alone, {during:.0f} during",
            flush=True,
        )
    finally:
        server.send_signal(signal.SIGTERM)
        await server.wait()


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--server", default=str(ROOT / "server.py"))
    parser.add_argument("--requests", type=int, default=2000, help="requests in each flood")
    args = parser.parse_args()
    hanko = FakeHanko(key_size=2048)
    hanko.start()
    get = b"GET /protected HTTP/1.1\r\nHost: x\r\n"
    floods = {name: get + make() + b"\r\n" for name, make in FLOODS.items()}
    for path in ("/webhooks/hanko", "/protected"):
        head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n"
        floods[f"100 MB announced on {path}"] = head.encode() + b"x" * (256 * 1024)
    print(args.server, flush=True)
    try:
        for name, request in floods.items():
            await _measure(args.server, hanko, name, request, args.requests)
    finally:
        await hanko.stop()


if __name__ == "__main__":
    asyncio.run(main())
