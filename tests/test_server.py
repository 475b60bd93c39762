"""server.py as a user runs it: a real process on loopback, configured from the environment and .env."""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
import re
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from prometheus_client.parser import text_string_to_metric_families
from tornado.httpclient import AsyncHTTPClient, HTTPResponse
from tornado.testing import AsyncTestCase, bind_unused_port, gen_test

from hanko_tornado.testing import FakeHanko

SERVER = pathlib.Path(__file__).resolve().parent.parent / "server.py"


def free_port() -> int:
    sock, port = bind_unused_port()
    sock.close()
    return port


class ServerProcess:
    def __init__(self, process: asyncio.subprocess.Process, port: int) -> None:
        self.process = process
        self.port = port
        self.client = AsyncHTTPClient()

    async def fetch(self, path: str, **kwargs: object) -> HTTPResponse:
        return await self.client.fetch(f"http://127.0.0.1:{self.port}{path}", raise_error=False, **kwargs)

    async def answers(self) -> bool:
        try:
            return (await self.fetch("/")).code == 200
        except OSError:
            return False

    async def output(self) -> tuple[str, str]:
        stdout, stderr = await self.process.communicate()
        return stdout.decode(), stderr.decode()


@asynccontextmanager
async def running_server(
    env: dict[str, str], *args: str, cwd: str | None = None, wait: bool = True
) -> AsyncIterator[ServerProcess]:
    port = free_port()
    base = {k: v for k, v in os.environ.items() if not k.startswith(("HANKO_", "CORS_"))}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(SERVER),
        "--port",
        str(port),
        *args,
        env={**base, "PYTHONUNBUFFERED": "1", **env},
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
            await asyncio.wait_for(process.wait(), 10)


class ServerTest(AsyncTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.hanko = FakeHanko(key_size=2048)
        self.hanko.start()

    def tearDown(self) -> None:
        self.io_loop.run_sync(self.hanko.stop)
        super().tearDown()

    @gen_test(timeout=60)
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

    @gen_test(timeout=60)
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

    @gen_test(timeout=60)
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

    @gen_test(timeout=60)
    async def test_only_the_dotenv_of_the_current_folder_is_read(self) -> None:
        with tempfile.TemporaryDirectory() as folder:
            pathlib.Path(folder, ".env").write_text("HANKO_API_URL=http://hanko.example.com\n")
            child = pathlib.Path(folder, "app")
            child.mkdir()
            async with running_server({}, cwd=str(child), wait=False) as server:
                _, stderr = await server.output()
            self.assertEqual(server.process.returncode, 2)
            self.assertIn("HANKO_API_URL: is not set", stderr)

    @gen_test(timeout=60)
    async def test_port_option_is_checked_like_port(self) -> None:
        env = {"HANKO_API_URL": self.hanko.api_url}
        for args in [("--port", "99999"), ("--port", "0"), ("--dev", "--port", "0"), ("--port", "eighty")]:
            async with running_server(env, *args, wait=False) as server:
                _, stderr = await asyncio.wait_for(server.output(), 10)  # a server that listens never ends
            self.assertEqual(
                (server.process.returncode, stderr.strip()),
                (2, f"server.py: --port: must be a port number from 1 to 65535, got {args[-1]!r}"),
            )

    @gen_test(timeout=60)
    async def test_unreachable_keys_at_start_up_are_not_fatal(self) -> None:
        async with running_server({"HANKO_API_URL": f"http://127.0.0.1:{free_port()}"}) as server:
            token = self.hanko.mint()
            response = await server.fetch("/protected", headers={"Authorization": f"Bearer {token}"})
            self.assertEqual(response.code, 503)
            self.assertIn("Retry-After", response.headers)

    @gen_test(timeout=60)
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

    @gen_test(timeout=90)
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

    @gen_test(timeout=60)
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

    @gen_test(timeout=60)
    async def test_unready_while_the_keys_cannot_be_had(self) -> None:
        async with running_server({"HANKO_API_URL": f"http://127.0.0.1:{free_port()}"}) as server:
            response = await server.fetch("/readyz")
            self.assertEqual(response.code, 503)
            report = json.loads(response.body)
            self.assertEqual(report["problems"], ["no usable key set: Hanko's key endpoint fails"])
            self.assertEqual((await server.fetch("/healthz")).code, 200)

    @gen_test(timeout=60)
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
