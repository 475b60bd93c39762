"""Requests lost across stops and restarts: server.py under keep-alive load while processes are replaced.

``python bench/drops.py`` runs wrk (``apt-get install wrk``; without it, this module's own client) with
keep-alive connections against server.py and a local FakeHanko, and counts failed requests (socket
errors, non-2xx answers) in three runs:

- one process, SIGTERM half-way: the load ends inside ``SHUTDOWN_DELAY_SECONDS``, as a load
  balancer's does once ``/readyz`` fails;
- ``--processes 2``, SIGTERM to one worker: the parent starts a replacement, the load goes on;
- ``--processes 2``, SIGHUP to the parent: a rolling restart of both workers.

Every one of them must lose nothing.  tests/test_server.py counts the same with :func:`client`.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]


@dataclasses.dataclass
class Count:
    """Requests sent and what went wrong with them; ``closes`` counts answers that said Connection: close."""

    requests: int = 0
    closes: int = 0
    failures: list[str] = dataclasses.field(default_factory=list)


async def client(port: int, path: str, count: Count, going: Callable[[], bool], headers: str = "") -> None:
    """Send requests one after the other on a keep-alive connection while ``going()``, as a client should:

    after an answer that says ``Connection: close`` (or a connection closed between two requests, which
    HTTP allows), it connects again.  A request with no complete 200 answer is a failure.
    """
    reader = writer = None
    try:
        while going():
            if writer is None:
                try:
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                except OSError as error:
                    count.failures.append(f"connect: {error}")
                    return
            assert reader is not None
            count.requests += 1
            writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}\r\n".encode())
            try:
                head = await reader.readuntil(b"\r\n\r\n")
                length = re.search(rb"\r\ncontent-length: *(\d+)", head, re.IGNORECASE)
                await reader.readexactly(int(length.group(1)) if length else 0)
            except (OSError, asyncio.IncompleteReadError) as error:
                count.failures.append(f"no answer: {error!r}")
                writer.close()
                writer = None
                continue
            if not head.startswith(b"HTTP/1.1 200 "):
                count.failures.append(head.split(b"\r\n", 1)[0].decode())
            if re.search(rb"\r\nconnection: *close\r\n", head, re.IGNORECASE):
                count.closes += 1
                writer.close()
                writer = None
    finally:
        if writer is not None:
            writer.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _children(parent: int) -> list[int]:
    found = []
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        try:
            state, ppid = stat.read_text().rsplit(")", 1)[1].split()[:2]
        except (OSError, IndexError):
            continue
        if int(ppid) == parent and state != "Z":
            found.append(int(stat.parent.name))
    return sorted(found)


def _wrk(port: int, seconds: int, connections: int) -> dict[str, int]:
    out = subprocess.run(
        ["wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds}s", f"http://127.0.0.1:{port}/"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    numbers = {"requests": int(re.search(r"(\d+) requests in", out).group(1))}  # type: ignore[union-attr]
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    for index, name in enumerate(("connect", "read", "write", "timeout"), 1):
        numbers[name] = int(errors.group(index)) if errors else 0
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    numbers["non_2xx"] = int(non_2xx.group(1)) if non_2xx else 0
    return numbers


async def _asyncio_load(port: int, seconds: int, connections: int) -> dict[str, int]:
    count, until = Count(), time.monotonic() + seconds
    await asyncio.gather(*(client(port, "/", count, lambda: time.monotonic() < until) for _ in range(connections)))
    return {"requests": count.requests, "failed": len(count.failures)}


def _load(port: int, seconds: int, connections: int) -> dict[str, int]:
    if shutil.which("wrk"):
        return _wrk(port, seconds, connections)
    return asyncio.run(_asyncio_load(port, seconds, connections))


def _start(api_url: str, port: int, log: int, *args: str, **env: str) -> subprocess.Popen[bytes]:
    environ = {**os.environ, "HANKO_API_URL": api_url, **env}
    command = [sys.executable, str(ROOT / "server.py"), "--port", str(port), *args]
    process = subprocess.Popen(command, env=environ, cwd=tempfile.gettempdir(), stderr=log)
    for _ in range(600):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    time.sleep(1)  # every worker serving
    return process


def _run(
    name: str,
    api_url: str,
    load: tuple[int, int],
    event: Callable[[subprocess.Popen[bytes]], None],
    *args: str,
    **env: str,
) -> int:
    """One run: the load for ``load[0]`` seconds over ``load[1]`` connections, ``event`` after a third."""
    port = _free_port()
    log = tempfile.TemporaryFile()
    process = _start(api_url, port, log.fileno(), *args, **env)
    try:
        timer = threading.Timer(load[0] / 3, event, [process])
        timer.start()
        numbers = _load(port, *load)
        timer.join()
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(120)
    failed = sum(value for key, value in numbers.items() if key != "requests")
    print(f"{name}: {numbers['requests']} requests, {failed} failed  {numbers}", flush=True)
    log.seek(0)
    for line in log.read().decode().splitlines():  # what server.py said it did (not each request's line)
        if " server " in line:
            print("   ", line.split(" ", 2)[2], flush=True)
    return failed


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=int, default=12)
    parser.add_argument("--connections", type=int, default=50)
    args = parser.parse_args()
    from hanko_tornado.testing import FakeHanko

    hanko = FakeHanko(key_size=2048)
    loop = asyncio.new_event_loop()
    loop.call_soon(hanko.start)
    threading.Thread(target=loop.run_forever, daemon=True).start()
    load = (args.seconds, args.connections)

    def term_worker(process: subprocess.Popen[bytes]) -> None:
        os.kill(_children(process.pid)[0], signal.SIGTERM)

    two = ("--processes", "2")
    failed = _run(
        "one process, SIGTERM after a third of the load",
        hanko.api_url,
        load,
        lambda process: process.send_signal(signal.SIGTERM),
        SHUTDOWN_DELAY_SECONDS=str(args.seconds * 2),  # the load ends inside the delay, as a balancer's does
        SHUTDOWN_GRACE_SECONDS=str(args.seconds * 3),
    )
    failed += _run(
        "--processes 2, SIGTERM to one worker", hanko.api_url, load, term_worker, *two, SHUTDOWN_DELAY_SECONDS="1"
    )
    failed += _run(
        "--processes 2, SIGHUP (rolling restart)",
        hanko.api_url,
        load,
        lambda process: process.send_signal(signal.SIGHUP),
        *two,
        SHUTDOWN_DELAY_SECONDS="1",  # one host: the delay only moves keep-alive clients to the other worker
    )
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
