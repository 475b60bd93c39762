"""A real headless Chromium calls server.py from another origin: cookie, bearer, errors, a foreign origin."""

from __future__ import annotations

import html
import json
import pathlib
import shutil
import tempfile
import unittest
from typing import Any

import tornado.web
from test_server import running_server
from tornado.httpserver import HTTPServer
from tornado.testing import AsyncTestCase, bind_unused_port, gen_test

from hanko_tornado.testing import FakeHanko

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = pathlib.Path(tempfile.gettempdir()) / "hanko-tornado-browser"

PAGE = """<!doctype html>
<html><head><title>hanko-tornado browser test</title></head>
<body><h1>Calls from <span id="origin"></span></h1><pre id="log"></pre>
<script>
document.getElementById("origin").textContent = location.origin;
window.callApi = async (name, url, init) => {
  let result;
  try {
    const response = await fetch(url, init);
    let body = null;
    try { body = await response.json(); } catch (error) { body = null; }
    result = {name, status: response.status, body};
  } catch (error) {
    result = {name, error: String(error)};
  }
  document.getElementById("log").textContent += JSON.stringify(result) + "\\n";
  return result;
};
window.openSocket = (url, protocols, seconds) => new Promise(resolve => {
  const events = [];
  const socket = protocols ? new WebSocket(url, protocols) : new WebSocket(url);
  socket.onopen = () => events.push("open");
  socket.onmessage = (event) => {
    events.push(event.data);
    if (events.length === 2) socket.send("ping");
  };
  socket.onclose = (event) => resolve({events, code: event.code, reason: event.reason, protocol: socket.protocol});
  setTimeout(() => socket.close(1000, "done"), seconds * 1000);
});
</script></body></html>"""

# A page on another site that makes the visitor's browser POST a form to the API: the classic forgery.
FORM = """<!doctype html><html><body>
<form method="POST" action="{action}"><input name="amount" value="1000"></form>
<script>document.forms[0].submit();</script></body></html>"""


class PageHandler(tornado.web.RequestHandler):
    def get(self) -> None:
        self.finish(PAGE)


class FormHandler(tornado.web.RequestHandler):
    def get(self) -> None:
        self.finish(FORM.format(action=html.escape(self.get_argument("action"))))


class BrowserTestCase(AsyncTestCase):
    """A FakeHanko and a page server on loopback; skipped with a message when the browser is missing."""

    def setUp(self) -> None:
        super().setUp()
        try:
            import playwright.async_api  # noqa: F401
        except ImportError:
            raise unittest.SkipTest("playwright is not installed (pip install -e '.[test]')") from None
        if not pathlib.Path(CHROMIUM).exists():
            raise unittest.SkipTest("Chromium is not installed (.ci/run installs Debian's chromium)")
        self.hanko = FakeHanko(key_size=2048)
        self.hanko.start()
        sock, self.page_port = bind_unused_port()
        self.pages = HTTPServer(tornado.web.Application([(r"/", PageHandler), (r"/form", FormHandler)]))
        self.pages.add_sockets([sock])

    def tearDown(self) -> None:
        self.pages.stop()
        self.io_loop.run_sync(self.hanko.stop)
        super().tearDown()

    async def call(self, page: Any, name: str, url: str, init: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await page.evaluate("([n, u, i]) => window.callApi(n, u, i)", [name, url, init])
        result["body"] = result.get("body") or {}
        return result


class BrowserTest(BrowserTestCase):
    """The seed's set-up: a frontend on one origin, the API on http://localhost:PORT."""

    @gen_test(timeout=120)
    async def test_cross_origin_calls_from_a_real_browser(self) -> None:
        from playwright.async_api import async_playwright

        frontend = f"http://localhost:{self.page_port}"
        env = {"HANKO_API_URL": self.hanko.api_url, "HANKO_AUDIENCE": "localhost", "CORS_ORIGINS": frontend}
        async with running_server(env) as server, async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            context = await browser.new_context()
            page = await context.new_page()
            try:
                await self.check_calls(page, context, frontend, f"http://localhost:{server.port}/protected")
            except Exception:
                ARTIFACTS.mkdir(exist_ok=True)
                shot = ARTIFACTS / "browser-failure.png"
                await page.screenshot(path=str(shot), full_page=True)
                print(f"screenshot of the failing page: {shot}")
                raise
            finally:
                await browser.close()
        _, stderr = await server.output()
        self.assertIn("204 OPTIONS /protected", stderr, "the bearer header made the browser send a preflight")

    async def check_calls(self, page: Any, context: Any, frontend: str, api: str) -> None:
        await page.goto(frontend + "/")
        token = self.hanko.mint("aaaaaaaa-0000-4000-8000-000000000015")
        # As Hanko's frontend SDK stores the token on localhost: not HttpOnly, SameSite=Lax, not Secure on http.
        await page.evaluate("t => { document.cookie = `hanko=${t}; path=/; SameSite=Lax`; }", token)
        (cookie,) = [c for c in await context.cookies() if c["name"] == "hanko"]
        self.assertEqual(
            (cookie["domain"], cookie["path"], cookie["httpOnly"], cookie["secure"], cookie["sameSite"]),
            ("localhost", "/", False, False, "Lax"),
        )

        by_cookie = await self.call(page, "cookie", api, {"credentials": "include"})
        self.assertEqual(
            (by_cookie.get("status"), by_cookie["body"]["user_id"]),
            (200, "aaaaaaaa-0000-4000-8000-000000000015"),
            by_cookie,
        )

        await page.evaluate("() => { document.cookie = 'hanko=; path=/; max-age=0'; }")
        bearer = {"headers": {"Authorization": f"Bearer {token}"}}
        by_bearer = await self.call(page, "bearer", api, bearer)
        self.assertEqual(
            (by_bearer.get("status"), by_bearer["body"]["user_id"]),
            (200, "aaaaaaaa-0000-4000-8000-000000000015"),
            by_bearer,
        )

        anonymous = await self.call(page, "no token", api, {"credentials": "include"})
        self.assertEqual((anonymous.get("status"), anonymous["body"]["error"]), (401, "missing_token"), anonymous)

        expired = {"headers": {"Authorization": f"Bearer {self.hanko.mint(lifetime=-3600)}"}}
        refused = await self.call(page, "expired", api, expired)
        self.assertEqual((refused.get("status"), refused["body"]["error"]), (401, "invalid_token"), refused)
        self.assertIn("expired", refused["body"]["message"])

        # Another origin (127.0.0.1 is not localhost to a browser) is not on the allowlist.
        await page.goto(f"http://127.0.0.1:{self.page_port}/")
        foreign = await self.call(page, "foreign origin", api, bearer)
        self.assertIn("TypeError", foreign.get("error", ""), json.dumps(foreign))


class CookieSessionBrowserTest(BrowserTestCase):
    """Tornado's cross-origin protection on and off; a cookie set as Hanko's SDK sets it for cross-site set-ups."""

    @gen_test(timeout=180)
    async def test_cookie_sessions_and_sockets_across_origins(self) -> None:
        from playwright.async_api import async_playwright

        frontend = f"http://localhost:{self.page_port}"
        foreign = f"http://127.0.0.1:{self.page_port}"  # another site to the browser
        for protection in ("true", "false"):
            env = {
                "HANKO_API_URL": self.hanko.api_url,
                "HANKO_AUDIENCE": "localhost",
                "CORS_ORIGINS": frontend,
                "CROSS_ORIGIN_PROTECTION": protection,
            }
            async with running_server(env) as server, async_playwright() as playwright:
                browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
                page = None
                try:
                    context = await browser.new_context()
                    token = self.hanko.mint()
                    cookie = {"name": "hanko", "value": token, "domain": "localhost", "path": "/"}
                    await context.add_cookies([{**cookie, "sameSite": "None", "secure": True}])
                    page = await context.new_page()
                    with self.subTest(cross_origin_protection=protection):
                        await self.check_cookie_session(page, frontend, foreign, f"http://localhost:{server.port}")
                except Exception:
                    if page is not None:
                        ARTIFACTS.mkdir(exist_ok=True)
                        await page.screenshot(path=str(ARTIFACTS / "browser-failure.png"), full_page=True)
                    raise
                finally:
                    await browser.close()
            _, stderr = await server.output()
            self.assertIn("403 GET /ws", stderr, "the foreign origin's handshake reached the server and was refused")

    async def submit_form(self, page: Any, page_origin: str, api: str) -> tuple[int, dict[str, Any], bool]:
        """Load a page on ``page_origin`` that POSTs a form to the API; the answer, and whether the cookie went."""
        form = f"{page_origin}/form?action={api}/protected"
        async with page.expect_response(lambda r: r.request.method == "POST") as answer:
            await page.goto(form)
        response = await answer.value
        sent = await response.request.all_headers()
        return response.status, json.loads(await response.text()), "hanko=" in sent.get("cookie", "")

    async def check_cookie_session(self, page: Any, frontend: str, foreign: str, api: str) -> None:
        await page.goto(frontend + "/")
        post = {"method": "POST", "credentials": "include", "body": "{}", "headers": {"Content-Type": "text/plain"}}
        by_cookie = await self.call(page, "POST with the cookie", f"{api}/protected", post)
        self.assertEqual(by_cookie.get("status"), 200, by_cookie)
        token = self.hanko.mint()
        bearer = {"method": "POST", "body": "{}", "headers": {"Authorization": f"Bearer {token}"}}
        by_bearer = await self.call(page, "POST with a bearer token", f"{api}/protected", bearer)
        self.assertEqual(by_bearer.get("status"), 200, by_bearer)

        # The forgery: a page on another site submits a form; the SameSite=None cookie rides along.
        status, body, cookie_sent = await self.submit_form(page, foreign, api)
        self.assertTrue(cookie_sent, "the browser did send the session cookie with the forged form")
        self.assertEqual((status, body["error"]), (403, "cross_origin_request"), body)
        # Control: the same form from the allowed origin goes through.
        status, body, cookie_sent = await self.submit_form(page, frontend, api)
        self.assertEqual((status, cookie_sent), (200, True), body)

        await page.goto(frontend + "/")
        socket = f"ws://localhost:{api.rsplit(':', 1)[1]}/ws"
        by_cookie_socket = await page.evaluate("([u]) => window.openSocket(u, null, 1.5)", [socket])
        self.assertEqual(by_cookie_socket["events"][:3], ["open", by_cookie_socket["events"][1], "ping"])
        self.assertIn('"user_id"', by_cookie_socket["events"][1])
        self.assertEqual(by_cookie_socket["code"], 1000)

        protocols = ["hanko-bearer", self.hanko.mint(lifetime=3)]
        expiring = await page.evaluate("([u, p]) => window.openSocket(u, p, 15)", [socket, protocols])
        self.assertEqual(expiring["protocol"], "hanko-bearer", "the marker is echoed, never the token")
        self.assertEqual((expiring["code"], expiring["reason"]), (4001, "token expired"), expiring)

        await page.goto(foreign + "/")
        refused = await page.evaluate("([u, p]) => window.openSocket(u, p, 3)", [socket, ["hanko-bearer", token]])
        self.assertNotIn("open", refused["events"], refused)
