"""``python -m hanko_tornado.testing``: a FakeHanko as its own process, used as another language's tests would."""

from __future__ import annotations

import asyncio
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from typing import Any

import jwt
import tornado.web
from tornado.httpclient import AsyncHTTPClient, HTTPResponse
from tornado.testing import AsyncHTTPTestCase, gen_test

from hanko_tornado import HankoAuthMixin, HankoSettings
from hanko_tornado.lifecycle import state_of

STARTUP_SECONDS = 120  # an upper bound for a busy machine: key generation and start-up


FRONTEND = "http://localhost:3000"


class FakeProcess:
    """``python -m hanko_tornado.testing`` running, its stdout read line by line with an upper bound on each wait."""

    def __init__(self, *arguments: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "hanko_tornado.testing", "--key-size", "2048", *arguments],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONWARNINGS": "error"},
        )
        self._pending = b""

    def read_line(self, timeout: float = STARTUP_SECONDS) -> str:
        """The next line on stdout (select and os.read: a buffered reader would hide lines from select)."""
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        while b"\n" not in self._pending:
            ready, _, _ = select.select([self.process.stdout], [], [], max(0.0, deadline - time.monotonic()))
            chunk = os.read(self.process.stdout.fileno(), 65536) if ready else b""
            if not chunk:
                raise AssertionError(f"no line on stdout within {timeout} s (exit code {self.process.poll()})")
            self._pending += chunk
        line, self._pending = self._pending.split(b"\n", 1)
        return line.decode()

    def stop(self) -> tuple[int, str, str]:
        """SIGTERM; the exit code, and what stdout (after the lines read) and stderr said."""
        self.process.send_signal(signal.SIGTERM)
        stdout, stderr = self.process.communicate(timeout=120)
        return self.process.returncode, (self._pending + stdout).decode(), stderr.decode()


def run_fake(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hanko_tornado.testing", *arguments], capture_output=True, text=True, timeout=120
    )


class Receiver(tornado.web.RequestHandler):
    def post(self) -> None:
        token = json.loads(self.request.body)["token"]
        event = jwt.decode(token, options={"verify_signature": False})["evt"]
        self.application.settings["events"].append(f"{self.request.path} {event}")


class Protected(HankoAuthMixin, tornado.web.RequestHandler):
    def get(self) -> None:
        self.write({"user_id": self.hanko_user.id, "email": self.hanko_user.email})


class StandAloneFakeTest(AsyncHTTPTestCase):
    """The fake process, an application verifying against it, and a webhook receiver, all on loopback."""

    def setUp(self) -> None:
        self.events: list[str] = []
        super().setUp()
        self.fake = FakeProcess("--mint", "--webhook", self.get_url("/hook"), "--cors-origin", FRONTEND)
        first, second = self.fake.read_line(), self.fake.read_line()
        self.assertTrue(first.startswith("HANKO_API_URL=http://127.0.0.1:"), first)
        self.assertTrue(second.startswith("HANKO_TOKEN="), "the token printed, as --mint asks")
        self.api_url, self.printed_token = first.split("=", 1)[1], second.split("=", 1)[1]
        self._app.settings["hanko"] = HankoSettings(api_url=self.api_url, audience=["localhost"])

    def tearDown(self) -> None:
        code, stdout, stderr = self.fake.stop()
        self.assertEqual(code, 0, stderr)
        self.assertEqual(stdout, "", "nothing more on stdout")
        self.assertNotIn("eyJ", stderr, "no token on stderr")
        self.assertNotIn("Warning", stderr)
        verifier = state_of(self._app).verifier
        if verifier is not None:
            self.io_loop.run_sync(verifier.close)
        super().tearDown()

    def get_app(self) -> tornado.web.Application:
        return tornado.web.Application([(r"/hook(?:/2)?", Receiver), (r"/protected", Protected)], events=self.events)

    async def control(self, method: str, path: str, body: Any = None, **headers: str) -> HTTPResponse:
        if body is not None and not isinstance(body, str):
            body = json.dumps(body)
            headers.setdefault("Content-Type", "application/json")
        return await AsyncHTTPClient().fetch(
            f"{self.api_url}{path}",
            method=method,
            body=body,
            headers=headers,
            raise_error=False,
            allow_nonstandard_methods=True,
        )

    async def protected(self, token: str) -> HTTPResponse:
        return await AsyncHTTPClient().fetch(
            self.get_url("/protected"), headers={"Authorization": f"Bearer {token}"}, raise_error=False
        )

    async def events_arrive(self, *wanted: str) -> None:
        deadline = time.monotonic() + 60  # an upper bound; the loop ends as soon as they are there
        while not all(event in self.events for event in wanted):
            self.assertLess(time.monotonic(), deadline, f"webhooks {wanted} never came: {self.events}")
            await asyncio.sleep(0.05)

    @gen_test(timeout=120)
    async def test_the_printed_token_opens_the_application_with_the_served_keys(self) -> None:
        response = await self.protected(self.printed_token)
        self.assertEqual(response.code, 200, response.body)
        self.assertEqual(json.loads(response.body)["email"], "user@example.com")

    @gen_test(timeout=120)
    async def test_the_frontend_origin_named_gets_hankos_cors_and_another_none(self) -> None:
        allowed = await self.control("GET", "/.well-known/jwks.json", Origin=FRONTEND)
        self.assertEqual(allowed.headers.get("Access-Control-Allow-Origin"), FRONTEND)
        self.assertEqual(allowed.headers.get("Access-Control-Allow-Credentials"), "true")
        for other in ("http://localhost:8888", "https://evil.example"):
            refused = await self.control("GET", "/.well-known/jwks.json", Origin=other)
            self.assertNotIn("Access-Control-Allow-Origin", refused.headers, other)

    @gen_test(timeout=120)
    async def test_minted_tokens_sessions_logout_and_webhooks(self) -> None:
        minted = await self.control("POST", "/_fake/tokens", {"email": "ada@example.com", "amr": ["pwd"]})
        self.assertEqual(minted.code, 201, minted.body)
        answer = json.loads(minted.body)
        response = await self.protected(answer["token"])
        self.assertEqual(json.loads(response.body), {"user_id": answer["user_id"], "email": "ada@example.com"})
        sessions = json.loads((await self.control("GET", "/_fake/sessions")).body)["sessions"]
        self.assertIn(answer["session_id"], [session["id"] for session in sessions])
        validate = await AsyncHTTPClient().fetch(
            f"{self.api_url}/sessions/validate", headers={"Authorization": f"Bearer {answer['token']}"}
        )
        self.assertTrue(json.loads(validate.body)["is_valid"])
        await self.events_arrive("/hook session.create.flow")

        ended = await self.control("DELETE", f"/_fake/sessions/{answer['session_id']}")
        self.assertEqual(ended.code, 204)
        await self.events_arrive("/hook session.delete.explicit.logout")
        validate = await AsyncHTTPClient().fetch(
            f"{self.api_url}/sessions/validate", headers={"Authorization": f"Bearer {answer['token']}"}
        )
        self.assertEqual(json.loads(validate.body), {"is_valid": False})
        self.assertEqual((await self.control("DELETE", f"/_fake/sessions/{answer['session_id']}")).code, 404)

    @gen_test(timeout=120)
    async def test_a_webhook_registered_through_the_endpoint(self) -> None:
        hook = self.get_url("/hook/2")
        registered = await self.control("POST", "/_fake/webhooks", {"url": hook, "events": ["session.delete"]})
        self.assertEqual(registered.code, 204, registered.body)
        minted = json.loads((await self.control("POST", "/_fake/tokens", {"lifetime": -60})).body)
        self.assertEqual((await self.protected(minted["token"])).code, 401, "an expired token, as asked")
        await self.control("DELETE", f"/_fake/sessions/{minted['session_id']}")
        await self.events_arrive("/hook session.delete.explicit.logout", "/hook/2 session.delete.explicit.logout")
        self.assertNotIn("/hook/2 session.create.flow", self.events, "only the events subscribed to")

    @gen_test(timeout=120)
    async def test_hostile_requests_are_refused(self) -> None:
        rebound = await self.control("POST", "/_fake/tokens", {}, Host="evil.example")
        self.assertEqual(
            (rebound.code, json.loads(rebound.body)["error"]),
            (403, "only loopback may use the fake's control endpoints"),
        )
        self.assertEqual((await self.control("GET", "/_fake/sessions", Host="evil.example:80")).code, 403)
        form = await self.control("POST", "/_fake/tokens", "{}", **{"Content-Type": "text/plain"})
        self.assertEqual(form.code, 415, "a body a page could send without CORS")
        for body in ("[]", "{", '"x"'):
            self.assertEqual(
                (await self.control("POST", "/_fake/tokens", body, **{"Content-Type": "application/json"})).code, 400
            )
        for wrong in ({"lifetime": "long"}, {"user_id": 7}, {"amr": "pwd"}, {"key": "mine"}, {"lifetime": True}):
            self.assertEqual((await self.control("POST", "/_fake/tokens", wrong)).code, 400, wrong)
        for url in ("http://example.com/hook", "http://127.0.0.1@evil.example/hook", "file:///etc/passwd", 7, None):
            self.assertEqual((await self.control("POST", "/_fake/webhooks", {"url": url})).code, 400, url)
        self.assertEqual(
            (await self.control("POST", "/_fake/webhooks", {"url": self.get_url("/"), "events": []})).code, 400
        )
        self.assertEqual((await self.control("GET", "/_fake/nothing")).code, 404)


class CommandLineTest(AsyncHTTPTestCase):
    def get_app(self) -> tornado.web.Application:
        return tornado.web.Application([])

    def test_bad_options_get_one_line_and_exit_2(self) -> None:
        for arguments, says in (
            (["--host", "0.0.0.0"], "loopback only"),
            (["--host", "192.168.1.1"], "loopback only"),
            (["--webhook", "https://example.com/hook"], "on loopback"),
            (["--port", "70000"], "not a port"),
            (["--session-limit", "0"], "at least 1"),
            (["--path", "tenant"], "starts with /"),
            (["--cors-origin", "http://localhost:3000/app"], "an origin"),
            (["--cors-origin", "localhost:3000"], "an origin"),
        ):
            result = run_fake(*arguments)
            self.assertEqual(result.returncode, 2, arguments)
            self.assertEqual(len(result.stderr.strip().splitlines()), 1, result.stderr)
            self.assertIn(says, result.stderr)
            self.assertEqual(result.stdout, "")

    def test_without_mint_only_the_url_is_printed_and_a_taken_port_is_one_line(self) -> None:
        fake = FakeProcess()
        try:
            line = fake.read_line()
            port = int(line.rsplit(":", 1)[1])
            taken = run_fake("--key-size", "2048", "--port", str(port))
            self.assertEqual(taken.returncode, 2)
            self.assertIn(f"cannot serve on port {port}", taken.stderr)
            self.assertEqual(len(taken.stderr.strip().splitlines()), 1, taken.stderr)
        finally:
            code, stdout, stderr = fake.stop()
        self.assertEqual(code, 0, stderr)
        self.assertEqual(stdout, "", "nothing but the URL on stdout, no token")
        self.assertNotIn("eyJ", stderr)

    def test_a_chosen_port(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        fake = FakeProcess("--port", str(port), "--path", "/tenant-1")
        try:
            self.assertEqual(fake.read_line(), f"HANKO_API_URL=http://127.0.0.1:{port}/tenant-1")
            keys = self.io_loop.run_sync(
                lambda: AsyncHTTPClient().fetch(f"http://127.0.0.1:{port}/tenant-1/.well-known/jwks.json")
            )
            self.assertEqual([key["kty"] for key in json.loads(keys.body)["keys"]], ["RSA"])
        finally:
            code, _, stderr = fake.stop()
        self.assertEqual(code, 0, stderr)
