"""server.py's pages in a real headless Chromium: sent to /login and back, <hanko-auth> against a stand-in, logout."""

from __future__ import annotations

import contextlib
import urllib.parse
from collections.abc import AsyncIterator
from typing import Any

import tornado.web
from test_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, BrowserTestCase
from test_pages_server import load_server
from test_server import SERVER, running_server
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port, gen_test

from hanko_tornado import CorsSettings, HankoSettings, verifier_for
from hanko_tornado.pages import HankoPageMixin
from hanko_tornado.requirements import passkey
from hanko_tornado.testing import FakeHanko
from hanko_tornado.testing.frontend import FakeFrontendApi

#: Generous: the machine is shared and busy.  Playwright waits for conditions, never a fixed time.
WAIT_MS = 30_000
ELEMENTS = SERVER.parent / "node_modules" / "@teamhanko" / "hanko-elements" / "dist" / "elements.js"
HOSTILE_EMAIL = "<script>window.pwned=1</script>@example.com"


def console_error(message: Any) -> list[str]:
    """A console message as ``text (url)`` when it is an error: which resource failed says whose it is."""
    return [f"{message.text} ({message.location.get('url')})"] if message.type == "error" else []


class RecentPasskeyPage(HankoPageMixin, tornado.web.RequestHandler):
    """A page for users who logged in with a passkey."""

    hanko_requires = passkey

    def get(self) -> None:
        self.write(f"<link rel=icon href='data:,'><p id=amr>logged in by {', '.join(self.hanko_user.amr)}</p>")


class PagesBrowserTestCase(BrowserTestCase):
    """server.py's app in this process, with a FakeHanko mounted on its own origin under /hanko (as --dev does)."""

    def setUp(self) -> None:
        super().setUp()
        if not ELEMENTS.is_file():
            self.skipTest(f"{ELEMENTS} is missing: make test runs npm ci")
        self.fake = FakeHanko(key_size=2048)
        self.frontend = FakeFrontendApi(self.fake)
        sock, self.port = bind_unused_port()
        self.origin = f"http://localhost:{self.port}"
        settings = HankoSettings(
            api_url=f"{self.origin}/hanko",
            audience=self.fake.audience,
            session_check="validate",
            session_check_ttl=0.01,
        )
        routes = [
            *self.fake.routes("/hanko"),
            *self.frontend.routes("/hanko"),
            (r"/recent-passkey-page", RecentPasskeyPage),
        ]
        self.app = load_server().make_app(settings, CorsSettings(origins=(self.origin,)), routes)
        self.server = HTTPServer(self.app)
        self.server.add_sockets([sock])

    def tearDown(self) -> None:
        self.server.stop()
        self.io_loop.run_sync(verifier_for(self.app).close)
        super().tearDown()

    @contextlib.asynccontextmanager
    async def browser_page(self) -> AsyncIterator[tuple[Any, Any, list[str]]]:
        """A fresh browser profile's page, its context, and the console errors and page errors it shows."""
        from playwright.async_api import async_playwright

        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            context = await browser.new_context()
            context.set_default_timeout(WAIT_MS)
            page = await context.new_page()
            errors: list[str] = []
            page.on("console", lambda message: errors.extend(console_error(message)))
            page.on("pageerror", lambda error: errors.append(f"page error: {error}"))
            try:
                yield page, context, errors
            except Exception:
                ARTIFACTS.mkdir(exist_ok=True)
                shot = ARTIFACTS / f"{self.id()}.png"
                await page.screenshot(path=str(shot), full_page=True)
                print(f"screenshot of the failing page: {shot}")
                raise
            finally:
                await browser.close()

    async def set_cookie(self, context: Any, token: str) -> None:
        # As Hanko's frontend SDK stores it on localhost: not HttpOnly, SameSite=Lax.
        await context.add_cookies([{"name": "hanko", "value": token, "url": self.origin, "sameSite": "Lax"}])

    async def login_next(self, page: Any) -> str:
        """The ``next`` the login page goes on to, as the server checked it."""
        value: str = await page.locator("#hanko-setup").get_attribute("data-next")
        return value


class SentToLoginTest(PagesBrowserTestCase):
    @gen_test(timeout=180)
    async def test_no_cookie_an_expired_cookie_and_an_ended_session_land_on_login(self) -> None:
        ended = self.fake.mint(session_id="cccccccc-0000-4000-8000-000000000028")
        self.fake.revoke("cccccccc-0000-4000-8000-000000000028")
        async with self.browser_page() as (page, context, errors):
            for name, token in [("no cookie", None), ("expired", self.fake.mint(lifetime=-60)), ("ended", ended)]:
                with self.subTest(name):
                    await context.clear_cookies()
                    if token is not None:
                        await self.set_cookie(context, token)
                    response = await page.goto(f"{self.origin}/app?tab=a%2Fb&x=1")
                    self.assertEqual(page.url, f"{self.origin}/login?next=%2Fapp%3Ftab%3Da%252Fb%26x%3D1")
                    self.assertEqual(response.status, 200)
                    self.assertEqual(await self.login_next(page), "/app?tab=a%2Fb&x=1")
                    await page.locator("hanko-auth input[type=email]").wait_for()
            # Control: a live session gets the page.
            await self.set_cookie(context, self.fake.mint(email="ada@example.com"))
            await page.goto(f"{self.origin}/app")
            self.assertEqual(
                (page.url, await page.locator("#email").text_content()), (f"{self.origin}/app", "ada@example.com")
            )
            self.assertEqual(errors, [])

    @gen_test(timeout=120)
    async def test_the_email_is_escaped(self) -> None:
        async with self.browser_page() as (page, context, errors):
            await self.set_cookie(context, self.fake.mint(email=HOSTILE_EMAIL))
            await page.goto(f"{self.origin}/app")
            self.assertEqual(await page.locator("#email").text_content(), HOSTILE_EMAIL)
            self.assertIsNone(await page.evaluate("() => window.pwned"), "the email's script did not run")
            self.assertIn("&lt;script&gt;window.pwned=1&lt;/script&gt;@example.com", await page.content())
            ends = await page.locator("#session-ends").get_attribute("datetime")
            self.assertRegex(ends, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")
            self.assertEqual(errors, [])


class LoginPageTest(PagesBrowserTestCase):
    @gen_test(timeout=180)
    async def test_hanko_auth_logs_in_and_goes_on_to_next(self) -> None:
        async with self.browser_page() as (page, _context, errors):
            await page.goto(f"{self.origin}/app?x=1")
            self.assertEqual(page.url, f"{self.origin}/login?next=%2Fapp%3Fx%3D1")
            await self.log_in_with_the_element(page, "grace@example.com")
            await page.wait_for_url(f"{self.origin}/app?x=1")
            self.assertEqual(await page.locator("#email").text_content(), "grace@example.com")
            self.assertEqual(self.frontend.logins, ["grace@example.com"])
            self.assertEqual(errors, [], "no console errors, the element's included")

    @gen_test(timeout=240)
    async def test_a_next_to_another_site_is_refused(self) -> None:
        async with self.browser_page() as (page, context, errors):
            for hostile in ["//evil.example/", "/\\evil.example", "https://evil.example/", "/\t/evil.example"]:
                with self.subTest(next=hostile):
                    await context.clear_cookies()
                    await page.goto(f"{self.origin}/login?next={urllib.parse.quote(hostile, safe='')}")
                    self.assertEqual(await self.login_next(page), "/app")
            # After a login from the last one, the browser is on this site's /app, not the other site.
            await self.log_in_with_the_element(page, "eve@example.com")
            await page.wait_for_url(f"{self.origin}/app")
            self.assertEqual(errors, [])

    @gen_test(timeout=180)
    async def test_logout_ends_the_session_and_returns_to_login(self) -> None:
        async with self.browser_page() as (page, context, errors):
            token = self.fake.mint(email="ada@example.com", session_id="dddddddd-0000-4000-8000-000000000028")
            await self.set_cookie(context, token)
            await page.goto(f"{self.origin}/app")
            await page.locator("#logout").click()
            await page.wait_for_url(f"{self.origin}/login")
            self.assertEqual(self.frontend.logouts, ["dddddddd-0000-4000-8000-000000000028"])
            self.assertNotIn("hanko", [cookie["name"] for cookie in await context.cookies()])
            # The old token, sent again, is refused: the session ended at Hanko.
            await self.set_cookie(context, token)
            await page.goto(f"{self.origin}/app")
            self.assertEqual(page.url, f"{self.origin}/login?next=%2Fapp")
            self.assertEqual(errors, [])

    @gen_test(timeout=180)
    async def test_a_step_up_page_sends_the_browser_to_log_in_again(self) -> None:
        async with self.browser_page() as (page, context, errors):
            await self.set_cookie(context, self.fake.mint(amr=("password",)))
            await page.goto(f"{self.origin}/recent-passkey-page")
            await page.wait_for_url(f"{self.origin}/login?*")
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(page.url).query)
            self.assertEqual(query, {"next": ["/recent-passkey-page"], "acr_values": ["passkey"]})
            self.assertIn("log in with passkey", await page.locator("#step-up").text_content())
            # The login page does not bounce back by itself on the old session: no redirect loop.
            await page.locator("hanko-auth input[type=email]").wait_for()
            await page.locator("html[data-hanko-ready=true]").wait_for(state="attached")
            self.assertTrue(page.url.startswith(f"{self.origin}/login?"))
            await self.log_in_with_the_element(page, "ada@example.com")
            await page.wait_for_url(f"{self.origin}/recent-passkey-page")
            self.assertEqual(await page.locator("#amr").text_content(), "logged in by passkey")
            self.assertEqual(errors, [])

    async def log_in_with_the_element(self, page: Any, email: str) -> None:
        # Typed into before register() has resolved, the element can re-render and lose what was typed.
        await page.locator("html[data-hanko-ready=true]").wait_for(state="attached")
        field = page.locator("hanko-auth input[type=email]")
        await field.fill(email)
        # The element may still re-render once (its config arriving) and drop what was typed: the value must
        # stay put for a moment before the form is sent.  A bound on tries, not on time.
        for _ in range(20):
            await page.wait_for_timeout(100)
            if await field.input_value() == email:
                break
            await field.fill(email)
        await page.locator("hanko-auth").get_by_role("button", name="Continue").click()


class DevModeTest(BrowserTestCase):
    """`make serve`'s whole page flow with no tenant: server.py --dev, as a user runs it."""

    @gen_test(timeout=240)
    async def test_dev_mode_shows_the_whole_page_flow(self) -> None:
        from playwright.async_api import async_playwright

        if not ELEMENTS.is_file():
            self.skipTest(f"{ELEMENTS} is missing: make test runs npm ci")
        async with running_server({}, "--dev", "--host", "127.0.0.1") as server, async_playwright() as playwright:
            origin = f"http://127.0.0.1:{server.port}"
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            try:
                context = await browser.new_context()
                context.set_default_timeout(WAIT_MS)
                page = await context.new_page()
                errors: list[str] = []
                page.on("console", lambda message: errors.extend(console_error(message)))
                await page.goto(f"{origin}/app")
                self.assertEqual(page.url, f"{origin}/login?next=%2Fapp")
                self.assertIn("there is no Hanko tenant", await page.locator("#dev").text_content())
                await page.locator("hanko-auth input[type=email]").wait_for()  # the element, against the stand-in
                await page.locator("#dev-login").click()
                await page.wait_for_url(f"{origin}/app")
                self.assertEqual(await page.locator("#email").text_content(), "user@example.com")
                await page.locator("#logout").click()
                await page.wait_for_url(f"{origin}/login")
                await page.goto(f"{origin}/app")
                self.assertEqual(page.url, f"{origin}/login?next=%2Fapp")
                self.assertEqual(errors, [])
            finally:
                await browser.close()
        _, stderr = await server.output()
        self.assertIn("302 GET /app", stderr)
