"""A real redis-server on a loopback port, started and stopped by the tests."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
import unittest


class RedisServer:
    """``redis-server`` on a free loopback port, with no persistence."""

    def __init__(self) -> None:
        executable = shutil.which("redis-server")
        if executable is None:
            raise unittest.SkipTest("redis-server is not installed (.ci/run installs it)")
        self.executable = executable
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.folder = tempfile.mkdtemp(prefix="hanko-redis-")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = [self.executable, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(command, cwd=self.folder, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def command(self, *words: str) -> bytes:
        """Send one command in Redis's inline form and return the raw reply."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
            sock.sendall(" ".join(words).encode() + b"\r\n")
            return sock.recv(1 << 20)

    def call(self, *words: str | bytes) -> bytes | int | None:
        """Send one command in RESP, so that any bytes pass, and return its one reply (a string, number or nil)."""
        parts = [word if isinstance(word, bytes) else word.encode() for word in words]
        request = b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(part), part) for part in parts)
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
            sock.sendall(request)
            reply = sock.makefile("rb")
            line = reply.readline()
            kind, rest = line[:1], line[1:-2]
            if kind == b"-":
                raise RuntimeError(rest.decode())
            if kind == b":":
                return int(rest)
            if kind == b"$":
                return None if int(rest) < 0 else reply.read(int(rest) + 2)[:-2]
            return rest

    def get(self, key: str) -> bytes:
        """The raw value at ``key``, which must exist."""
        value = self.call("GET", key)
        assert isinstance(value, bytes), f"nothing at {key}"
        return value

    def set(self, key: str, value: str | bytes, *, seconds: int | None = 600) -> None:
        """Write ``value`` at ``key`` as anyone with access to Redis could, for ``seconds`` (``None``: no TTL)."""
        expiry = () if seconds is None else ("EX", str(seconds))
        self.call("SET", key, value, *expiry)
