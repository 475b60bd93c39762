"""A real headless Chromium calls server.py from another origin: cookie, bearer, errors, a foreign origin."""

from __future__ import annotations

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
</script></body></html>"""


class PageHandler(tornado.web.RequestHandler):
    def get(self) -> None:
        self.finish(PAGE)


class BrowserTest(AsyncTestCase):
    """The seed's set-up: a frontend on one origin, the API on http://localhost:PORT."""

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
        self.pages = HTTPServer(tornado.web.Application([(r"/", PageHandler)]))
        self.pages.add_sockets([sock])

    def tearDown(self) -> None:
        self.pages.stop()
        self.io_loop.run_sync(self.hanko.stop)
        super().tearDown()

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

    async def call(self, page: Any, name: str, url: str, init: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await page.evaluate("([n, u, i]) => window.callApi(n, u, i)", [name, url, init])
        result["body"] = result.get("body") or {}
        return result

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
