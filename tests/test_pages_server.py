"""server.py's pages over plain HTTP: /app sends to /login, /login checks next, HANKO_ELEMENTS_URL, the elements."""

from __future__ import annotations

import html
import importlib.util
import json
import pathlib
import re
import urllib.parse
from types import ModuleType
from typing import Any

import tornado.web
from test_server import SERVER, running_server
from tornado.httpclient import HTTPResponse
from tornado.testing import AsyncTestCase, gen_test

from hanko_tornado import CorsSettings
from hanko_tornado.testing import HankoTestCase


def load_server() -> ModuleType:
    """A fresh copy of server.py as a module (a test may change its module-level paths)."""
    spec = importlib.util.spec_from_file_location("hanko_example_server", SERVER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def attribute(page: HTTPResponse, name: str) -> str:
    """An attribute of the page's set-up script, unescaped as the browser reads it."""
    match = re.search(rf'id="hanko-setup"[^>]*{name}="([^"]*)"', page.body.decode(), re.DOTALL)
    assert match is not None, page.body
    return html.unescape(match.group(1))


class PagesTestCase(HankoTestCase):
    app_options: dict[str, Any] = {}  # noqa: RUF012

    def get_app(self) -> tornado.web.Application:
        self.server = load_server()
        self.adjust(self.server)
        app: tornado.web.Application = self.server.make_app(
            self.hanko.settings(), CorsSettings(origins=("http://localhost:3000",)), **self.app_options
        )
        return app

    def adjust(self, server: ModuleType) -> None:
        """Change server.py's module before the app is made."""

    def get(self, path: str, token: str | None = None, **kwargs: Any) -> HTTPResponse:
        headers = {"Cookie": f"hanko={token}", "Sec-Fetch-Site": "same-origin"} if token else {}
        return self.fetch(path, headers=headers, follow_redirects=False, **kwargs)


class AppPageTest(PagesTestCase):
    def test_a_visitor_not_logged_in_is_sent_to_login(self) -> None:
        for token in (None, self.hanko.mint(lifetime=-60), "garbage"):
            for method in ("GET", "HEAD"):
                with self.subTest(token=token and token[:8], method=method):
                    response = self.get("/app?x=1", token, method=method)
                    self.assertEqual((response.code, response.headers["Location"]), (302, "/login?next=%2Fapp%3Fx%3D1"))

    def test_unsafe_methods_keep_their_json(self) -> None:
        for token, error in ((None, "missing_token"), (self.hanko.mint(lifetime=-60), "invalid_token")):
            response = self.get("/app", token, method="POST", body="")
            self.assertEqual((response.code, json.loads(response.body)["error"]), (401, error))

    def test_the_page_greets_the_user_escaped_and_says_when_the_session_ends(self) -> None:
        token = self.hanko.mint(email="<b>bold</b>&co@example.com", lifetime=7200)
        page = self.get("/app", token)
        self.assertEqual(page.code, 200)
        body = page.body.decode()
        self.assertIn('<span id="email">&lt;b&gt;bold&lt;/b&gt;&amp;co@example.com</span>', body)
        self.assertNotIn("<b>bold</b>", body)
        (ends,) = re.findall(r'<time id="session-ends" datetime="([^"]+)"', body)
        self.assertRegex(ends, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$")
        self.assertEqual(page.headers["Cache-Control"], "private")


class LoginPageTest(PagesTestCase):
    def test_next_is_a_path_of_this_site_only(self) -> None:
        for value, expected in [
            ("/app?x=1&y=2", "/app?x=1&y=2"),
            ("/protected", "/protected"),
            ("//evil.com", "/app"),
            ("/\\evil.com", "/app"),
            ("https://evil", "/app"),
            ("/\t/evil.com", "/app"),
            ('/app"><script>alert(1)</script>', "/app"),
            ("javascript:alert(1)", "/app"),
            (self.get_url("/app?from=full-url"), "/app?from=full-url"),  # Tornado's next for an absolute login_url
        ]:
            with self.subTest(next=value):
                page = self.get("/login?" + urllib.parse.urlencode({"next": value}))
                self.assertEqual((page.code, attribute(page, "data-next")), (200, expected))
        self.assertEqual(attribute(self.get("/login"), "data-next"), "/app")
        self.assertEqual(self.get("/login").headers["Cache-Control"], "no-store")

    def test_the_page_loads_hanko_auth_from_node_modules_with_the_hanko_api_url(self) -> None:
        page = self.get("/login")
        self.assertIn("<hanko-auth", page.body.decode())
        self.assertEqual(attribute(page, "data-hanko-api"), self.hanko.api_url)
        url = attribute(page, "data-elements-url")
        self.assertEqual(url, "/static/hanko-elements/elements.js")
        elements = self.get(url)
        self.assertEqual(elements.code, 200)
        self.assertIn(b"register", elements.body)
        self.assertNotIn('id="dev-login"', page.body.decode(), "only --dev offers a token")

    def test_step_up_words_are_escaped(self) -> None:
        page = self.get("/login?" + urllib.parse.urlencode({"acr_values": "<script>x</script>", "max_age": "600"}))
        body = page.body.decode()
        self.assertIn("log in with &lt;script&gt;x&lt;/script&gt;, within the last 10 minute(s)", body)
        self.assertNotIn("<script>x", body)
        for hostile in ("9" * 5000, "١٢", "-5", "1e9"):
            with self.subTest(max_age=hostile[:10]):
                page = self.get("/login?" + urllib.parse.urlencode({"acr_values": "passkey", "max_age": hostile}))
                self.assertEqual(page.code, 200)
                self.assertIn("This page needs a new login: log in with passkey.", page.body.decode())


class ElementsUrlTest(PagesTestCase):
    app_options: dict[str, Any] = {"elements_url": "https://cdn.example/hanko-elements@2.7.0/elements.js"}  # noqa: RUF012

    def test_an_operator_set_url_is_used(self) -> None:
        page = self.get("/login")
        self.assertEqual(attribute(page, "data-elements-url"), "https://cdn.example/hanko-elements@2.7.0/elements.js")


class NoElementsTest(PagesTestCase):
    def adjust(self, server: ModuleType) -> None:
        server.ELEMENTS_DIR = pathlib.Path("/nonexistent/hanko-elements/dist")

    def test_the_login_page_says_the_elements_are_missing(self) -> None:
        page = self.get("/login")
        self.assertEqual(page.code, 200)
        self.assertIn('id="no-elements"', page.body.decode())
        self.assertNotIn("<hanko-auth", page.body.decode())
        self.assertEqual(self.get("/static/hanko-elements/elements.js").code, 404)


class ElementsUrlSettingTest(AsyncTestCase):
    @gen_test(timeout=120)
    async def test_a_bad_hanko_elements_url_is_a_one_line_error(self) -> None:
        for raw in ["javascript:alert(1)", '/x.js"><script>', "//cdn.evil/x.js", "cdn.example/x.js", "/a b.js"]:
            env = {"HANKO_API_URL": "https://x.io", "HANKO_ELEMENTS_URL": raw}
            async with running_server(env, wait=False) as server:
                _, stderr = await server.output()
            self.assertEqual(server.process.returncode, 2, stderr)
            self.assertEqual(len(stderr.strip().splitlines()), 1, stderr)
            self.assertIn("HANKO_ELEMENTS_URL: must be an http(s) URL or a path", stderr)
