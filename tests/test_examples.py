"""examples/: each application run against a FakeHanko, in this process (its make_app) and as a real process."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import pathlib
import signal
import sys
from collections.abc import AsyncIterator
from types import ModuleType
from typing import Any

import tornado.web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.testing import AsyncTestCase, bind_unused_port, gen_test
from tornado.websocket import websocket_connect

from hanko_tornado import ConfigurationError, HankoSettings
from hanko_tornado.testing import FakeHanko, HankoTestCase

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"
FRONTEND = "http://localhost:3000"


def load_example(name: str) -> ModuleType:
    """``examples/<name>/app.py`` as a module of its own (the examples are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / name / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    sock, port = bind_unused_port()
    sock.close()
    return port


@contextlib.asynccontextmanager
async def running_example(name: str, env: dict[str, str]) -> AsyncIterator[list[str]]:
    """``python examples/<name>/app.py`` until the block ends; yields its output lines so far (stdout and stderr)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("HANKO_", "SHOP_", "ADMIN_"))}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLES / name / "app.py"),
        env={**base, "PYTHONUNBUFFERED": "1", **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert process.stdout is not None
    lines: list[str] = []
    try:
        first = await asyncio.wait_for(process.stdout.readline(), 60)
        lines.append(first.decode())
        assert first.startswith((b"listening on", b"open http")), f"{name} did not start: {first!r}"
        yield lines
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
            rest, _ = await asyncio.wait_for(process.communicate(), 30)
            lines.extend(rest.decode().splitlines())
    assert process.returncode == 0, f"{name} did not stop cleanly on Ctrl-C: {lines}"
    assert not [line for line in lines if "Traceback" in line or "Warning" in line], lines


async def fetch(url: str, **kwargs: Any) -> Any:
    return await AsyncHTTPClient().fetch(url, raise_error=False, request_timeout=30, **kwargs)


class MinimalTest(HankoTestCase):
    """examples/minimal: the seed's example, answer by answer."""

    def get_app(self) -> tornado.web.Application:
        app: tornado.web.Application = load_example("minimal").make_app(self.hanko.settings(), FRONTEND)
        return app

    def test_home_is_open(self) -> None:
        response = self.fetch("/")
        self.assertEqual((response.code, json.loads(response.body)), (200, {"message": "Tornado x Hanko!"}))

    def test_protected_takes_a_bearer_token_or_the_cookie(self) -> None:
        token = self.hanko.mint("aaaaaaaa-0000-4000-8000-000000000027")
        for cookie in (False, True):
            with self.subTest(cookie=cookie):
                response = self.fetch_with_token("/protected", token, cookie=cookie)
                self.assertEqual(response.code, 200)
                self.assertEqual(json.loads(response.body)["user_id"], "aaaaaaaa-0000-4000-8000-000000000027")

    def test_protected_refuses_no_token_an_expired_one_and_another_audience(self) -> None:
        refused = {
            "none": self.fetch("/protected"),
            "expired": self.fetch_with_token("/protected", self.hanko.mint(lifetime=-60)),
            "audience": self.fetch_with_token("/protected", self.hanko.mint(audience=["other.example"])),
        }
        self.assertEqual({name: response.code for name, response in refused.items()}, dict.fromkeys(refused, 401))
        self.assertEqual(json.loads(refused["none"].body)["error"], "missing_token")

    def test_cors_names_the_frontend_with_credentials_and_nobody_else(self) -> None:
        asked = {"Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"}
        ours = self.fetch("/protected", method="OPTIONS", headers={"Origin": FRONTEND, **asked})
        self.assertEqual(ours.headers.get("Access-Control-Allow-Origin"), FRONTEND)
        self.assertEqual(ours.headers.get("Access-Control-Allow-Credentials"), "true")
        foreign = self.fetch("/protected", method="OPTIONS", headers={"Origin": "https://evil.example", **asked})
        self.assertNotIn("Access-Control-Allow-Origin", foreign.headers)


class WebSocketTest(HankoTestCase):
    """examples/websocket: the cookie or the hanko-bearer subprotocol opens it; the session's end closes it."""

    def get_app(self) -> tornado.web.Application:
        settings = self.hanko.settings(session_check="validate", session_check_ttl=0.5)
        app: tornado.web.Application = load_example("websocket").make_app(settings, FRONTEND)
        return app

    @gen_test(timeout=60)
    async def test_opened_by_subprotocol_or_cookie_and_closed_when_the_session_ends(self) -> None:
        sessions = {
            "subprotocol": "bbbbbbbb-0000-4000-8000-000000000271",
            "cookie": "bbbbbbbb-0000-4000-8000-000000000272",
        }
        for via, session_id in sessions.items():
            with self.subTest(via=via):
                token = self.hanko.mint("aaaaaaaa-0000-4000-8000-000000000027", session_id=session_id)
                socket = await self.websocket_connect("/ws", token, via=via, origin=FRONTEND)
                self.assertEqual(socket.selected_subprotocol, "hanko-bearer" if via == "subprotocol" else None)
                hello = await self.websocket_read(socket)
                self.assertEqual(json.loads(hello or "{}"), {"hello": "aaaaaaaa-0000-4000-8000-000000000027"})
                await socket.write_message("hi")
                self.assertEqual(json.loads(await self.websocket_read(socket) or "{}"), {"echo": "hi"})
                self.hanko.revoke(session_id)
                end = await self.websocket_closed(socket, timeout=30)  # the session check sees it within a second
                self.assertEqual((end.code, end.messages), (4002, []))

    @gen_test(timeout=60)
    async def test_no_token_and_a_foreign_origin_are_refused(self) -> None:
        with self.assertRaises(HTTPClientError) as missing:
            await self.websocket_connect("/ws", origin=FRONTEND)
        self.assertEqual(missing.exception.code, 401)
        with self.assertRaises(HTTPClientError) as foreign:
            await self.websocket_connect("/ws", self.hanko.mint(), origin="https://evil.example")
        self.assertEqual(foreign.exception.code, 403)
        socket = await self.websocket_connect("/ws", self.hanko.mint(), origin=FRONTEND)  # control: it opens
        self.assertIn("hello", json.loads(await self.websocket_read(socket) or "{}"))
        socket.close()


class MultiProjectTest(HankoTestCase):
    """examples/multi_project: the path picks the project, and a token counts only in its own."""

    def setUp(self) -> None:
        self.admin_hanko = FakeHanko(key_size=2048, audience=("admin.example.com",))
        super().setUp()
        self.admin_hanko.start()  # on the test's loop, which setUp made

    def tearDown(self) -> None:
        self.io_loop.run_sync(self.admin_hanko.stop)
        super().tearDown()

    def get_app(self) -> tornado.web.Application:
        projects = {"shop": self.hanko.settings(), "admin": self.admin_hanko.settings()}
        app: tornado.web.Application = load_example("multi_project").make_app(projects)
        return app

    def test_each_path_takes_its_own_projects_tokens_only(self) -> None:
        shop, admin = self.hanko.mint(), self.admin_hanko.mint()
        codes = {
            (path, name): self.fetch_with_token(path, token).code
            for path in ("/shop/me", "/admin/me")
            for name, token in (("shop", shop), ("admin", admin))
        }
        expected = {("/shop/me", "shop"): 200, ("/shop/me", "admin"): 401}
        expected |= {("/admin/me", "shop"): 401, ("/admin/me", "admin"): 200}
        self.assertEqual(codes, expected)
        body = json.loads(self.fetch_with_token("/admin/me", admin).body)
        self.assertEqual(body["project"], "admin")
        self.assertEqual(self.fetch_with_token("/other/me", shop).code, 404)

    def test_settings_come_from_each_projects_variables(self) -> None:
        module = load_example("multi_project")
        projects = module.settings_from_env(
            {"SHOP_HANKO_API_URL": "https://shop.hanko.io", "ADMIN_HANKO_API_URL": "https://admin.hanko.io"}
            | {"ADMIN_HANKO_AUDIENCE": "admin.example.com", "HANKO_API_URL": "https://ignored.hanko.io"}
        )
        self.assertEqual(
            {name: (s.api_url, s.audience) for name, s in projects.items()},
            {"shop": ("https://shop.hanko.io", ()), "admin": ("https://admin.hanko.io", ("admin.example.com",))},
        )
        with self.assertRaises(ConfigurationError) as missing:
            module.settings_from_env({"SHOP_HANKO_API_URL": "https://shop.hanko.io"})
        self.assertEqual(missing.exception.setting, "ADMIN_HANKO_API_URL")


class ExamplesAsProcessesTest(AsyncTestCase):
    """Each example started as its README line says, against a FakeHanko on loopback: one protected answer each."""

    def setUp(self) -> None:
        super().setUp()
        self.hanko = FakeHanko(key_size=2048)
        self.hanko.start()

    def tearDown(self) -> None:
        self.io_loop.run_sync(self.hanko.stop)
        super().tearDown()

    def env(self, **more: str) -> dict[str, str]:
        return {"HANKO_API_URL": self.hanko.api_url, "HANKO_AUDIENCE": "localhost", **more}

    def assert_no_token_in(self, lines: list[str], token: str) -> None:
        self.assertNotIn(token, "\n".join(lines))
        self.assertNotIn(token.split(".")[2], "\n".join(lines))

    @gen_test(timeout=120)
    async def test_minimal(self) -> None:
        port, token = free_port(), self.hanko.mint("aaaaaaaa-0000-4000-8000-000000000027")
        async with running_example("minimal", self.env(PORT=str(port))) as lines:
            ok = await fetch(f"http://127.0.0.1:{port}/protected", headers={"Authorization": f"Bearer {token}"})
            missing = await fetch(f"http://127.0.0.1:{port}/protected")
        self.assertEqual((ok.code, json.loads(ok.body)["user_id"]), (200, "aaaaaaaa-0000-4000-8000-000000000027"))
        self.assertEqual(missing.code, 401)
        self.assert_no_token_in(lines, token)

    @gen_test(timeout=120)
    async def test_websocket(self) -> None:
        port, token = free_port(), self.hanko.mint("aaaaaaaa-0000-4000-8000-000000000027")
        async with running_example("websocket", self.env(PORT=str(port))) as lines:
            request = HTTPRequest(f"ws://127.0.0.1:{port}/ws", headers={"Origin": FRONTEND}, request_timeout=30)
            socket = await websocket_connect(request, subprotocols=["hanko-bearer", token])
            hello = await asyncio.wait_for(socket.read_message(), 30)
            socket.close()
        self.assertEqual(json.loads(hello or "{}"), {"hello": "aaaaaaaa-0000-4000-8000-000000000027"})
        self.assert_no_token_in(lines, token)

    @gen_test(timeout=120)
    async def test_multi_project(self) -> None:
        other = FakeHanko(key_size=2048, audience=("admin.example.com",))
        other.start()
        port, token = free_port(), other.mint()
        env = {"PORT": str(port), "SHOP_HANKO_API_URL": self.hanko.api_url, "ADMIN_HANKO_API_URL": other.api_url}
        try:
            async with running_example("multi_project", env) as lines:
                headers = {"Authorization": f"Bearer {token}"}
                admin = await fetch(f"http://127.0.0.1:{port}/admin/me", headers=headers)
                shop = await fetch(f"http://127.0.0.1:{port}/shop/me", headers=headers)
        finally:
            await other.stop()
        self.assertEqual((admin.code, shop.code), (200, 401))
        self.assert_no_token_in(lines, token)

    @gen_test(timeout=120)
    async def test_spa(self) -> None:
        api, frontend = free_port(), free_port()
        token = self.hanko.mint("aaaaaaaa-0000-4000-8000-000000000027")
        async with running_example("spa", self.env(API_PORT=str(api), FRONTEND_PORT=str(frontend))) as lines:
            me = await fetch(f"http://127.0.0.1:{api}/api/me", headers={"Cookie": f"hanko={token}"})
            config = await fetch(f"http://127.0.0.1:{frontend}/config.json")
            page = await fetch(f"http://127.0.0.1:{frontend}/")
            sdk = await fetch(f"http://127.0.0.1:{frontend}/modules/hanko-frontend-sdk/sdk.modern.js")
        self.assertEqual((me.code, json.loads(me.body)["user_id"]), (200, "aaaaaaaa-0000-4000-8000-000000000027"))
        self.assertEqual(
            json.loads(config.body), {"hankoApiUrl": self.hanko.api_url, "apiUrl": f"http://localhost:{api}"}
        )
        self.assertIn(b"<hanko-auth>", page.body)
        self.assertEqual(sdk.code, 200, "the SDK is served from node_modules: make test runs npm ci")
        self.assertIn(b"validateSession", sdk.body)
        self.assert_no_token_in(lines, token)


class SettingsFromEnvironmentTest(AsyncTestCase):
    def test_a_missing_api_url_is_named(self) -> None:
        saved = os.environ.pop("HANKO_API_URL", None)
        try:
            with self.assertRaises(ConfigurationError) as missing:
                load_example("minimal").make_app()
            self.assertEqual(missing.exception.setting, "HANKO_API_URL")
        finally:
            if saved is not None:
                os.environ["HANKO_API_URL"] = saved
        self.assertIsInstance(HankoSettings(api_url="https://x.hanko.io"), HankoSettings)
