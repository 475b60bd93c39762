"""server.py as a user runs it: a real process on loopback, configured from the environment and .env."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pathlib
import re
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
from prometheus_client.parser import text_string_to_metric_families
from tornado.httpclient import AsyncHTTPClient, HTTPResponse
from tornado.testing import AsyncTestCase, bind_unused_port, gen_test

from hanko_tornado.testing import FakeHanko

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "bench"))

from drops import Count, client

# Each test starts server.py processes, a few seconds each on a busy machine: bounds far above what they take.
pytestmark = pytest.mark.timeout(600)

SERVER = pathlib.Path(__file__).resolve().parent.parent / "server.py"
# server.py shows every warning, and running_server fails a test on any it prints but what setup.cfg excuses.
SHOW_WARNINGS = ",".join(
    [
        "default",
        "ignore:Call to deprecated setex.:DeprecationWarning:aiocache.backends.redis",
        "ignore:Call to deprecated psetex.:DeprecationWarning:aiocache.backends.redis",
    ]
)
# Runs server.py (the next argument) as if python-dotenv were not installed.
WITHOUT_DOTENV = (
    "-c",
    "import os, runpy, sys; sys.modules['dotenv'] = None; sys.argv[:] = sys.argv[1:]; "
    "sys.path[0] = os.path.dirname(sys.argv[0]); runpy.run_path(sys.argv[0], run_name='__main__')",
)


def free_port() -> int:
    sock, port = bind_unused_port()
    sock.close()
    return port


class ServerProcess:
    def __init__(self, process: asyncio.subprocess.Process, port: int) -> None:
        self.process = process
        self.port = port
        self.client = AsyncHTTPClient()
        # stderr is read all along: a server whose log pipe fills up would stall.
        self._lines: list[str] = []
        self._read_up_to = 0
        self._more = asyncio.Event()
        self._pump = asyncio.ensure_future(self._read_stderr())

    async def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        while line := await self.process.stderr.readline():
            self._lines.append(line.decode())
            self._more.set()
        self._more.set()

    async def fetch(self, path: str, **kwargs: object) -> HTTPResponse:
        return await self.client.fetch(f"http://127.0.0.1:{self.port}{path}", raise_error=False, **kwargs)

    async def answers(self) -> bool:
        try:
            return (await self.fetch("/")).code == 200
        except OSError:
            return False

    async def output(self) -> tuple[str, str]:
        """Everything the process wrote, once it has ended."""
        assert self.process.stdout is not None
        stdout = (await self.process.stdout.read()).decode()
        await self.process.wait()
        await self._pump
        return stdout, "".join(self._lines)

    async def log_line(self, text: str, timeout: float = 60) -> str:
        """The next line written to stderr (after the one found last) that contains ``text``."""
        deadline = time.monotonic() + timeout
        while True:
            while self._read_up_to < len(self._lines):
                line = self._lines[self._read_up_to]
                self._read_up_to += 1
                if text in line:
                    return line
            if self._pump.done():
                raise AssertionError(f"server.py ended without logging {text!r}: {self._lines}")
            self._more.clear()
            await asyncio.wait_for(self._more.wait(), max(0.0, deadline - time.monotonic()))


@asynccontextmanager
async def running_server(
    env: dict[str, str], *args: str, cwd: str | None = None, wait: bool = True, launcher: tuple[str, ...] = ()
) -> AsyncIterator[ServerProcess]:
    """server.py on a free port, stopped with SIGTERM at the end of the block; a warning it printed fails the test."""
    port = free_port()
    base = {k: v for k, v in os.environ.items() if not k.startswith(("HANKO_", "CORS_", "SHUTDOWN_"))}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *launcher,
        str(SERVER),
        "--port",
        str(port),
        *args,
        # No load balancer to tell: stopping skips the delay unless a test sets one.
        env={**base, "PYTHONUNBUFFERED": "1", "PYTHONWARNINGS": SHOW_WARNINGS, "SHUTDOWN_DELAY_SECONDS": "0", **env},
        cwd=cwd or tempfile.gettempdir(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    server = ServerProcess(process, port)
    try:
        deadline = time.monotonic() + 30
        while wait and not await server.answers():
            if process.returncode is not None or time.monotonic() > deadline:
                raise AssertionError(f"server.py did not start: {await server.output()}")
            await asyncio.sleep(0.1)
        yield server
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(process.wait(), 20)
    _, stderr = await asyncio.wait_for(server.output(), 20)
    warnings = re.findall(r"^.*\w+Warning: .*$", stderr, re.MULTILINE)
    assert not warnings, f"server.py warned: {warnings}"


def running(pid: int) -> bool:
    """Whether process ``pid`` is alive (not ended, nor a zombie), from Linux's /proc."""
    try:
        return pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def child_pids(parent: int) -> set[int]:
    """The live processes whose parent is ``parent``."""
    children = set()
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError):
            state, ppid = stat.read_text().rsplit(")", 1)[1].split()[:2]
            if int(ppid) == parent and state != "Z":
                children.add(int(stat.parent.name))
    return children


async def until(condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"still not so after {timeout} s")
        await asyncio.sleep(0.05)


class FakeHankoTestCase(AsyncTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.hanko = FakeHanko(key_size=2048)
        self.hanko.start()

    def tearDown(self) -> None:
        self.io_loop.run_sync(self.hanko.stop)
        super().tearDown()


class ServerTest(FakeHankoTestCase):
    @gen_test(timeout=300)
    async def test_open_and_protected_routes(self) -> None:
        env = {"HANKO_API_URL": self.hanko.api_url, "HANKO_AUDIENCE": "localhost"}
        async with running_server(env) as server:
            self.assertEqual(json.loads((await server.fetch("/")).body), {"message": "Tornado x Hanko!"})
            token = self.hanko.mint("aaaaaaaa-0000-4000-8000-000000000008")
            response = await server.fetch("/protected", headers={"Authorization": f"Bearer {token}"})
            self.assertEqual(response.code, 200)
            self.assertEqual(
                json.loads(response.body),
                {"message": "Hello from protected route!", "user_id": "aaaaaaaa-0000-4000-8000-000000000008"},
            )
            refused = await server.fetch("/protected", headers={"Cookie": f"hanko={self.hanko.mint(lifetime=-99)}"})
            self.assertEqual(refused.code, 401)
            self.assertEqual(json.loads(refused.body)["error"], "invalid_token")
            preflight = await server.fetch(
                "/protected",
                method="OPTIONS",
                headers={"Origin": "http://localhost:3000", "Access-Control-Request-Method": "GET"},
            )
            self.assertEqual(preflight.code, 204)
            self.assertEqual(preflight.headers["Access-Control-Allow-Origin"], "http://localhost:3000")
            missing = await server.fetch("/nowhere")
            self.assertEqual((missing.code, json.loads(missing.body)["error"]), (404, "not_found"))
        self.assertEqual(server.process.returncode, 0)
        stdout, stderr = await server.output()
        self.assertIn("serving on", stderr)
        self.assertNotIn(token.split(".")[2], stdout + stderr)
        self.assertEqual(self.hanko.jwks_fetches, 1, "the key cache is warmed at start-up")

    @gen_test(timeout=300)
    async def test_recent_passkey_route(self) -> None:
        env = {"HANKO_API_URL": self.hanko.api_url, "HANKO_STEP_UP_MAX_AGE": "120"}
        async with running_server(env) as server:
            user = "aaaaaaaa-0000-4000-8000-000000000018"
            response = await server.fetch(
                "/protected/recent-passkey", headers={"Authorization": f"Bearer {self.hanko.mint(user)}"}
            )
            self.assertEqual(json.loads(response.body), {"message": "Hello from protected route!", "user_id": user})
            old = int(time.time()) - 3600
            refusals = [
                (self.hanko.mint(amr=("pwd",)), 'acr_values="passkey"', {"acr_values": "passkey"}),
                (self.hanko.mint(claims={"iat": old}), 'max_age="120"', {"max_age": 120}),
            ]
            for token, challenge, fields in refusals:
                refused = await server.fetch("/protected/recent-passkey", headers={"Cookie": f"hanko={token}"})
                self.assertEqual(refused.code, 401)
                self.assertTrue(
                    refused.headers["WWW-Authenticate"].startswith(
                        'Bearer realm="hanko", error="insufficient_user_authentication", error_description="'
                    )
                )
                self.assertTrue(refused.headers["WWW-Authenticate"].endswith(challenge))
                body = json.loads(refused.body)
                self.assertEqual(body["error"], "insufficient_user_authentication")
                self.assertEqual({name: body[name] for name in fields}, fields)
            self.assertEqual((await server.fetch("/protected/recent-passkey")).code, 401)
        _, stderr = await server.output()
        self.assertIn("needs a login with passkey", stderr)

    @gen_test(timeout=300)
    async def test_dotenv_is_read_and_the_environment_wins(self) -> None:
        with tempfile.TemporaryDirectory() as folder:
            dotenv = f"HANKO_API_URL={self.hanko.api_url}\nHANKO_AUDIENCE=other\nCORS_ORIGINS=http://app.test\n"
            pathlib.Path(folder, ".env").write_text(dotenv)
            async with running_server({"HANKO_AUDIENCE": "localhost"}, cwd=folder) as server:
                token = self.hanko.mint()
                response = await server.fetch(
                    "/protected", headers={"Authorization": f"Bearer {token}", "Origin": "http://app.test"}
                )
                self.assertEqual(response.code, 200)
                self.assertEqual(response.headers["Access-Control-Allow-Origin"], "http://app.test")

    @gen_test(timeout=300)
    async def test_only_the_dotenv_of_the_current_folder_is_read(self) -> None:
        with tempfile.TemporaryDirectory() as folder:
            pathlib.Path(folder, ".env").write_text("HANKO_API_URL=http://hanko.example.com\n")
            child = pathlib.Path(folder, "app")
            child.mkdir()
            async with running_server({}, cwd=str(child), wait=False) as server:
                _, stderr = await server.output()
            self.assertEqual(server.process.returncode, 2)
            self.assertIn("HANKO_API_URL: is not set", stderr)

    @gen_test(timeout=300)
    async def test_port_option_is_checked_like_port(self) -> None:
        env = {"HANKO_API_URL": self.hanko.api_url}
        for args in [("--port", "99999"), ("--port", "0"), ("--dev", "--port", "0"), ("--port", "eighty")]:
            async with running_server(env, *args, wait=False) as server:
                _, stderr = await asyncio.wait_for(server.output(), 10)  # a server that listens never ends
            self.assertEqual(
                (server.process.returncode, stderr.strip()),
                (2, f"server.py: --port: must be a port number from 1 to 65535, got {args[-1]!r}"),
            )

    @gen_test(timeout=300)
    async def test_unreachable_keys_at_start_up_are_not_fatal(self) -> None:
        async with running_server({"HANKO_API_URL": f"http://127.0.0.1:{free_port()}"}) as server:
            token = self.hanko.mint()
            response = await server.fetch("/protected", headers={"Authorization": f"Bearer {token}"})
            self.assertEqual(response.code, 503)
            self.assertIn("Retry-After", response.headers)

    @gen_test(timeout=300)
    async def test_configuration_errors_are_one_line_and_exit_2(self) -> None:
        cases = [
            ({}, (), "HANKO_API_URL: is not set: set it to your Hanko API URL (see .env.example)"),
            ({"HANKO_API_URL": "http://hanko.example.com"}, (), "HANKO_API_URL: must use https"),
            ({"HANKO_API_URL": "https://x.io", "CORS_ORIGINS": "*"}, (), "CORS_ORIGINS: '*' cannot be combined"),
            ({}, ("--dev", "--host", "0.0.0.0"), "--dev: issues its own tokens, so it only runs on a loopback"),
            ({"HANKO_API_URL": "https://x.io", "LOG_LEVEL": "chatty"}, (), "LOG_LEVEL: must be DEBUG, INFO"),
            ({"HANKO_API_URL": "https://x.io"}, ("--processes", "-1"), "--processes: must be 0 (one per core)"),
            (
                {"HANKO_API_URL": "https://x.io", "HANKO_STEP_UP_MAX_AGE": "ten"},
                (),
                "HANKO_STEP_UP_MAX_AGE: must be a whole number of seconds of at least 1, got 'ten'",
            ),
            (
                {"HANKO_API_URL": "https://x.io", "SHUTDOWN_GRACE_SECONDS": "soon"},
                (),
                "SHUTDOWN_GRACE_SECONDS: must be a number of seconds from 0 to 3600, got 'soon'",
            ),
            (
                {"HANKO_API_URL": "https://x.io", "SHUTDOWN_DELAY_SECONDS": "20"},
                (),
                "SHUTDOWN_DELAY_SECONDS: must not be more than SHUTDOWN_GRACE_SECONDS (10), got 20",
            ),
            (
                {"HANKO_API_URL": "https://x.io", "MAX_HEADER_SIZE": "16k"},
                (),
                "MAX_HEADER_SIZE: must be a whole number of bytes from 1024 to 1048576, got '16k'",
            ),
            (
                {"HANKO_API_URL": "https://x.io", "BODY_TIMEOUT": "0"},
                (),
                "BODY_TIMEOUT: must be a number of seconds from 1 to 3600, got '0'",
            ),
            (
                {"HANKO_API_URL": "https://x.io", "HANKO_KEYS_FILE": "/tmp/keys"},
                (),
                "HANKO_KEYS_FILE: needs HANKO_CACHE_SECRET (32 characters or more) to seal the copy",
            ),
        ]
        for env, args, message in cases:
            async with running_server(env, *args, wait=False) as server:
                _, stderr = await server.output()
            self.assertEqual(server.process.returncode, 2)
            self.assertEqual(len(stderr.strip().splitlines()), 1, stderr)
            self.assertIn(message, stderr)
        environ = {**os.environ, "HANKO_API_URL": "https://x.io", "PORT": "eighty"}
        process = await asyncio.create_subprocess_exec(
            sys.executable, str(SERVER), env=environ, stderr=asyncio.subprocess.PIPE
        )
        _, stderr_bytes = await process.communicate()
        self.assertEqual(
            (process.returncode, stderr_bytes.decode().strip()),
            (2, "server.py: PORT: must be a port number from 1 to 65535, got 'eighty'"),
        )

    @gen_test(timeout=300)
    async def test_dev_mode_prints_a_working_curl_command(self) -> None:
        async with running_server({}, "--dev") as server:
            assert server.process.stdout is not None
            banner = (await server.process.stdout.read(4096)).decode()
            self.assertIn("DEV MODE", banner)
            bearer = re.search(r"curl -H 'Authorization: Bearer ([\w.-]+)' (\S+)", banner)
            cookie = re.search(r"curl --cookie 'hanko=([\w.-]+)' (\S+)", banner)
            assert bearer is not None and cookie is not None, banner
            self.assertEqual(bearer.group(2), f"http://127.0.0.1:{server.port}/protected")
            response = await server.fetch("/protected", headers={"Authorization": f"Bearer {bearer.group(1)}"})
            self.assertEqual(json.loads(response.body)["user_id"], "aaaaaaaa-0000-4000-8000-000000000014")
            response = await server.fetch("/protected", headers={"Cookie": f"hanko={cookie.group(1)}"})
            self.assertEqual(response.code, 200)
            jwks = json.loads((await server.fetch("/_dev/hanko/.well-known/jwks.json")).body)
            self.assertEqual(jwks["keys"][0]["alg"], "RS256")
            self.assertGreaterEqual(len(jwks["keys"][0]["n"]), 680, "4096-bit keys, as Hanko makes them")


class OperationsTest(AsyncTestCase):
    """/healthz, /readyz and /metrics as an operator's probes and Prometheus see them."""

    def setUp(self) -> None:
        super().setUp()
        self.hanko = FakeHanko(key_size=2048)
        self.hanko.start()

    def tearDown(self) -> None:
        self.io_loop.run_sync(self.hanko.stop)
        super().tearDown()

    @gen_test(timeout=300)
    async def test_probes_and_metrics(self) -> None:
        env = {"HANKO_API_URL": self.hanko.api_url, "HANKO_AUDIENCE": "localhost"}
        async with running_server(env) as server:
            live = await server.fetch("/healthz")
            self.assertEqual((live.code, json.loads(live.body)), (200, {"status": "ok"}))
            ready = await server.fetch("/readyz")
            self.assertEqual(ready.code, 200, ready.body)
            self.assertEqual(json.loads(ready.body)["keys"]["count"], 1)
            token = self.hanko.mint()
            for headers in [{"Authorization": f"Bearer {token}"}] * 2 + [
                {"Cookie": f"hanko={self.hanko.mint(lifetime=-99)}"}
            ]:
                await server.fetch("/protected", headers=headers)
            response = await server.fetch("/metrics")
            self.assertEqual(response.code, 200)
            self.assertTrue(response.headers["Content-Type"].startswith("text/plain; version=0.0.4"))
            text = response.body.decode()
        samples = {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }
        accepted = ("hanko_authentications_total", (("reason", "valid"), ("result", "accepted")))
        expired = ("hanko_authentications_total", (("reason", "expired"), ("result", "refused")))
        self.assertEqual((samples[accepted], samples[expired]), (2, 1))
        self.assertEqual(samples[("hanko_jwks_fetches_total", (("result", "success"),))], 1)
        self.assertEqual(samples[("hanko_token_cache_lookups_total", (("result", "hit"),))], 1)
        self.assertEqual(samples[("hanko_jwks_stale", ())], 0)
        self.assertIn(("process_cpu_seconds_total", ()), samples, "the default registry's own collectors")
        self.assertNotIn(token.split(".")[2], text)

    @gen_test(timeout=300)
    async def test_unready_while_the_keys_cannot_be_had(self) -> None:
        async with running_server({"HANKO_API_URL": f"http://127.0.0.1:{free_port()}"}) as server:
            response = await server.fetch("/readyz")
            self.assertEqual(response.code, 503)
            report = json.loads(response.body)
            self.assertEqual(report["problems"], ["no usable key set: Hanko's key endpoint fails"])
            self.assertEqual((await server.fetch("/healthz")).code, 200)

    @gen_test(timeout=300)
    async def test_metrics_turned_off_or_not_installed(self) -> None:
        with tempfile.TemporaryDirectory() as folder:
            pathlib.Path(folder, "sitecustomize.py").write_text("import sys\nsys.modules['prometheus_client'] = None\n")
            missing = {"PYTHONPATH": folder}
            env = {"HANKO_API_URL": self.hanko.api_url}
            for extra, why in [
                ({"HANKO_METRICS": "false"}, "HANKO_METRICS=false"),
                (missing, "prometheus_client is not installed: pip install 'hanko-tornado[metrics]'"),
            ]:
                async with running_server({**env, **extra}) as server:
                    self.assertEqual((await server.fetch("/metrics")).code, 404)
                    self.assertEqual((await server.fetch("/readyz")).code, 200)
                _, stderr = await server.output()
                self.assertIn(f"not serving /metrics ({why})", stderr)
            async with running_server({**env, **missing, "HANKO_METRICS": "true"}, wait=False) as server:
                _, stderr = await server.output()
            self.assertEqual(
                (server.process.returncode, stderr.strip()),
                (2, "server.py: HANKO_METRICS: needs prometheus_client: pip install 'hanko-tornado[metrics]'"),
            )


USER = "aaaaaaaa-0000-4000-8000-000000000021"


async def raw_answer(port: int, request: bytes) -> tuple[bytes, bytes]:
    """The head and body of the one answer to ``request``, sent as it is on a new connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
        length = re.search(rb"\r\nContent-Length: (\d+)", head)
        return head, await reader.readexactly(int(length.group(1)) if length else 0)
    finally:
        writer.close()


class RequestBoundsTest(FakeHankoTestCase):
    """Oversized requests are refused from their headers: the handler never runs, the body is never read."""

    @gen_test(timeout=300)
    async def test_oversized_headers_and_bodies(self) -> None:
        env = {"HANKO_API_URL": self.hanko.api_url, "MAX_HEADER_SIZE": "4096", "MAX_BODY_SIZE": "1024"}
        token = self.hanko.mint(USER)
        async with running_server(env) as server:
            port = server.port
            within = await server.fetch("/", headers={"X-Padding": "a" * 3000})
            self.assertEqual(within.code, 200)
            head, body = await raw_answer(port, f"GET / HTTP/1.1\r\nX-Padding: {'a' * 5000}\r\n\r\n".encode())
            self.assertTrue(head.startswith(b"HTTP/1.1 431 "), head)
            self.assertIn(b"\r\nConnection: close\r\n", head)
            self.assertEqual(json.loads(body)["error"], "header_fields_too_large")
            many = "".join(f"X-{i}: {'b' * 200}\r\n" for i in range(40))  # each small, 8 KiB together
            head, _ = await raw_answer(port, f"GET / HTTP/1.1\r\n{many}\r\n".encode())
            self.assertTrue(head.startswith(b"HTTP/1.1 431 "), head)
            # The body is announced, never sent: the answer comes from the headers alone.
            post = f"POST /protected HTTP/1.1\r\nAuthorization: Bearer {token}\r\nContent-Length: 2000\r\n\r\n"
            head, body = await raw_answer(port, post.encode())
            self.assertTrue(head.startswith(b"HTTP/1.1 413 "), head)
            self.assertEqual(json.loads(body)["error"], "payload_too_large")
            huge = "POST /webhooks/hanko HTTP/1.1\r\nContent-Length: 104857600\r\n\r\n"
            head, _ = await raw_answer(port, huge.encode())
            self.assertTrue(head.startswith(b"HTTP/1.1 413 "), head)
            chunked = f"POST /protected HTTP/1.1\r\nAuthorization: Bearer {token}\r\nTransfer-Encoding: chunked\r\n\r\n"
            head, _ = await raw_answer(port, f"{chunked}800\r\n{'c' * 2048}\r\n0\r\n\r\n".encode())
            self.assertTrue(head.startswith(b"HTTP/1.1 400 "), head)
            answered = await server.fetch(
                "/protected", method="POST", body="x" * 1000, headers={"Authorization": f"Bearer {token}"}
            )
            self.assertEqual(answered.code, 200)
            webhook = await server.fetch("/webhooks/hanko", method="POST", body="{" + " " * 200_000 + "}")
            self.assertNotIn(webhook.code, (413, 500), "the webhook route takes up to 1 MiB, as Hanko's handler")
        _, stderr = await server.output()
        self.assertNotIn(token.split(".")[2], stderr)


class LifecycleTest(FakeHankoTestCase):
    """Stopping gracefully, workers restarted and stopped, and server.py without its optional dependency."""

    def environment(self, **more: str) -> dict[str, str]:
        return {"HANKO_API_URL": self.hanko.api_url, "HANKO_AUDIENCE": "localhost", **more}

    @gen_test(timeout=300)
    async def test_sigterm_turns_readiness_503_and_keeps_serving_through_the_delay(self) -> None:
        environment = self.environment(SHUTDOWN_DELAY_SECONDS="600", SHUTDOWN_GRACE_SECONDS="900")
        async with running_server(environment) as server:
            count, going = Count(), [True]
            load = asyncio.gather(*(client(server.port, "/", count, lambda: going[0]) for _ in range(8)))
            await until(lambda: count.requests >= 100, 60)
            self.assertEqual(count.closes, 0, "keep-alive until the signal")
            server.process.send_signal(signal.SIGTERM)
            self.assertIn("serving 600 s more", await server.log_line("shutting down"))
            ready = await server.fetch("/readyz")  # on a new connection: still accepted
            self.assertEqual((ready.code, json.loads(ready.body)["status"]), (503, "stopping"))
            self.assertEqual(ready.headers["Connection"], "close")
            served, closed = count.requests, count.closes
            await until(lambda: count.closes >= closed + 100, 60)  # told to go, each client is still served
            going[0] = False
            await load
            self.assertEqual(count.failures, [])
            self.assertGreater(count.requests, served + 100 - 8, "sent after the signal (8 clients)")
            server.process.send_signal(signal.SIGINT)  # a second signal cuts the delay short
            self.assertEqual(await asyncio.wait_for(server.process.wait(), 60), 0)
        _, stderr = await server.output()
        self.assertIn("no longer listening", stderr)
        self.assertNotIn("still in flight", stderr)

    @gen_test(timeout=300)
    async def test_a_request_in_flight_at_sigterm_is_answered(self) -> None:
        self.hanko.session_fault, self.hanko.slow_seconds = "slow", 3  # within the check's 5 s timeout
        environment = self.environment(HANKO_SESSION_CHECK="validate", SHUTDOWN_GRACE_SECONDS="60")
        async with running_server(environment) as server:
            idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", server.port)
            idle_writer.write(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            await idle_reader.readuntil(b'Tornado x Hanko!"}')  # answered, and kept alive
            token = self.hanko.mint(USER)
            slow = asyncio.ensure_future(server.fetch("/protected", headers={"Authorization": f"Bearer {token}"}))
            await until(lambda: self.hanko.validations == 1)
            server.process.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            shutting_down = await server.log_line("shutting down")
            self.assertIn("up to 60 s in all for what is in flight (1 request(s) in flight)", shutting_down)
            await server.log_line("no longer listening")
            with self.assertRaises(ConnectionRefusedError):
                await asyncio.open_connection("127.0.0.1", server.port)
            response = await slow
            self.assertEqual((response.code, json.loads(response.body)["user_id"]), (200, USER))
            self.assertEqual(await asyncio.wait_for(idle_reader.read(), 30), b"", "the idle connection is closed")
            idle_writer.close()
            self.assertEqual(await asyncio.wait_for(server.process.wait(), 60), 0)
            self.assertLess(time.monotonic() - signalled, 40, "an idle connection does not hold the stop up (60 s)")
        _, stderr = await server.output()
        order = [stderr.index(text) for text in ("shutting down", "200 GET /protected", "server INFO stopped")]
        self.assertEqual(order, sorted(order), stderr)
        self.assertNotIn("still in flight after", stderr)

    @gen_test(timeout=300)
    async def test_requests_still_in_flight_after_the_grace_are_cut_off(self) -> None:
        async with running_server(self.environment(SHUTDOWN_GRACE_SECONDS="1")) as server:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            head = f"POST /protected HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {self.hanko.mint()}\r\n"
            writer.write(f"{head}Content-Length: 2\r\n\r\n".encode())  # and the body never comes
            # Its headers arrived by the signal, or are waiting in the connection: either way it is not idle.
            server.process.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            self.assertIn("1 request(s) still in flight after 1 s", await server.log_line("WARNING"))
            self.assertEqual(await asyncio.wait_for(reader.read(), 30), b"", "closed, unanswered")
            writer.close()
            self.assertEqual(await asyncio.wait_for(server.process.wait(), 30), 0)
            self.assertLess(time.monotonic() - signalled, 30, "cut off after the grace, not when the body comes")

    @gen_test(timeout=300)
    async def test_no_request_is_lost_when_a_worker_stops_or_the_workers_roll(self) -> None:
        async with running_server(self.environment(SHUTDOWN_DELAY_SECONDS="1"), "--processes", "2") as server:
            for _ in range(2):
                await server.log_line("serving on")
            first = child_pids(server.process.pid)
            count, going = Count(), [True]
            load = asyncio.gather(*(client(server.port, "/", count, lambda: going[0]) for _ in range(8)))

            async def more_requests(number: int) -> None:
                mark = count.requests
                await until(lambda: count.requests >= mark + number, 60)

            await more_requests(100)
            victim = min(first)
            os.kill(victim, signal.SIGTERM)
            self.assertIn(f"(pid {victim}) is stopping: pid ", await server.log_line("is stopping"))
            await until(lambda: not running(victim), 60)
            await more_requests(100)
            server.process.send_signal(signal.SIGHUP)
            await server.log_line("rolling restart done: 2 worker(s) replaced", timeout=120)
            await more_requests(100)
            going[0] = False
            await load
            self.assertEqual(count.failures, [])
            now = child_pids(server.process.pid)
            self.assertEqual(len(now), 2)
            self.assertFalse(now & first, "every worker was replaced")
        _, stderr = await server.output()
        self.assertEqual(len(re.findall(r"worker \d replaced: pid \d+ by pid \d+", stderr)), 2, stderr)
        self.assertNotIn("restarting", stderr, "no worker died")

    @gen_test(timeout=300)
    async def test_workers_started_during_an_outage_serve_from_the_fleets_keys(self) -> None:
        async with running_server(self.environment(), "--processes", "2") as server:
            for _ in range(2):
                await server.log_line("serving on")
            folder = pathlib.Path(tempfile.gettempdir())
            await until(lambda: any(folder.glob(f"hanko-tornado-{server.process.pid}-*/keys")), 60)
            bearer = {"Authorization": f"Bearer {self.hanko.mint(USER)}"}
            self.hanko.fault = "error"  # Hanko's key endpoint fails from now on
            for victim in sorted(child_pids(server.process.pid)):  # both workers die, and are restarted in it
                os.kill(victim, signal.SIGKILL)
                await server.log_line(f"(pid {victim}) killed by signal {signal.SIGKILL.value}, restarting")
                await server.log_line("starting from the key set copy")
                await server.log_line("serving on")
            codes = [(await server.fetch("/protected", headers=bearer)).code for _ in range(20)]
            self.assertEqual(codes, [200] * 20)
            self.assertEqual([(await server.fetch("/readyz")).code for _ in range(10)], [200] * 10)
        self.assertFalse(list(folder.glob(f"hanko-tornado-{server.process.pid}-*")), "the copy is removed at exit")

    @gen_test(timeout=300)
    async def test_a_killed_worker_is_restarted_and_stopping_the_parent_stops_every_worker(self) -> None:
        async with running_server(self.environment(), "--processes", "2") as server:
            for _ in range(2):
                await server.log_line("serving on")
            workers = child_pids(server.process.pid)
            self.assertEqual(len(workers), 2)
            victim = min(workers)
            os.kill(victim, signal.SIGKILL)
            restart = await server.log_line("restarting")
            self.assertIn(f"(pid {victim}) killed by signal {signal.SIGKILL.value}, restarting", restart)
            await server.log_line("serving on")
            await until(lambda: len(child_pids(server.process.pid)) == 2)
            workers = child_pids(server.process.pid)
            self.assertNotIn(victim, workers)
            for _ in range(6):
                self.assertEqual((await server.fetch("/")).code, 200)
            server.process.send_signal(signal.SIGTERM)
            self.assertEqual(await asyncio.wait_for(server.process.wait(), 20), 0)
            await until(lambda: not any(running(pid) for pid in workers))
        _, stderr = await server.output()
        self.assertEqual(stderr.count("server INFO stopped"), 2, stderr)

    @gen_test(timeout=300)
    async def test_workers_stop_when_the_parent_is_killed(self) -> None:
        async with running_server(self.environment(), "--processes", "2") as server:
            for _ in range(2):
                await server.log_line("serving on")
            workers = child_pids(server.process.pid)
            server.process.kill()
            await server.process.wait()
            await until(lambda: not any(running(pid) for pid in workers), 20)
        _, stderr = await server.output()
        self.assertEqual(stderr.count("server INFO stopped"), 2, "each worker stops gracefully")

    @gen_test(timeout=300)
    async def test_without_python_dotenv_the_environment_alone_and_one_line_says_so(self) -> None:
        with tempfile.TemporaryDirectory() as folder:
            pathlib.Path(folder, ".env").write_text("CORS_ORIGINS=http://app.test\n")
            async with running_server(self.environment(), cwd=folder, launcher=WITHOUT_DOTENV) as server:
                response = await server.fetch("/", headers={"Origin": "http://app.test"})
                self.assertNotIn("Access-Control-Allow-Origin", response.headers, ".env is not read")
            _, stderr = await server.output()
        notes = [line for line in stderr.splitlines() if ".env" in line]
        self.assertEqual(
            notes,
            [
                "server.py: .env not read (python-dotenv is not installed: pip install 'hanko-tornado[server]'); "
                "using the environment alone"
            ],
        )
        async with running_server(self.environment(), launcher=WITHOUT_DOTENV) as server:
            self.assertEqual((await server.fetch("/")).code, 200)
        _, stderr = await server.output()
        self.assertNotIn(".env", stderr, "no .env, nothing to say")
