"""examples/spa in a real headless Chromium: <hanko-auth> logs in at a FakeHanko, Hanko's own frontend SDK holds
the token, and the Tornado API gets it as the cookie and as a bearer; validateSession() answers as Hanko would."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from test_browser import CHROMIUM, CHROMIUM_ARGS, BrowserTestCase
from test_examples import load_example
from test_pages_browser import WAIT_MS, console_error
from tornado.httpclient import AsyncHTTPClient
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port, gen_test

from hanko_tornado import close
from hanko_tornado.testing import FakeHanko
from hanko_tornado.testing.frontend import FakeFrontendApi

SPA = load_example("spa")


class SpaTest(BrowserTestCase):
    """The page on http://localhost:F, the API on http://localhost:A, Hanko (a FakeHanko) on http://localhost:H."""

    def setUp(self) -> None:
        super().setUp()
        for package in ("hanko-elements/dist/elements.js", "hanko-frontend-sdk/dist/sdk.modern.js"):
            if not (SPA.TEAMHANKO / package).is_file():
                self.skipTest(f"{SPA.TEAMHANKO / package} is missing: make test runs npm ci")
        frontend_socket, frontend_port = bind_unused_port()
        api_socket, api_port = bind_unused_port()
        self.frontend, self.api = f"http://localhost:{frontend_port}", f"http://localhost:{api_port}"
        self.fake = FakeHanko(key_size=2048, cors_origins=(self.frontend,))
        self.stand_in = FakeFrontendApi(self.fake)  # Hanko's login flow, answered so that an email logs in
        self.fake.start(public_routes=self.stand_in.routes())
        self.hanko_url = f"http://localhost:{self.fake.port}"  # the page's site: localhost, as the API's
        settings = self.fake.settings(session_check="validate", session_check_ttl=0.01)
        self.api_app = SPA.make_api_app(settings, self.frontend)
        self.servers = [HTTPServer(self.api_app), HTTPServer(SPA.make_frontend_app(self.hanko_url, self.api))]
        self.servers[0].add_sockets([api_socket])
        self.servers[1].add_sockets([frontend_socket])

    def tearDown(self) -> None:
        for server in self.servers:
            server.stop()
        self.io_loop.run_sync(lambda: close(self.api_app))
        self.io_loop.run_sync(self.fake.stop)
        super().tearDown()

    @contextlib.asynccontextmanager
    async def browser_page(self) -> AsyncIterator[tuple[Any, Any, list[str]]]:
        """A fresh browser profile's page, its context, and the console and page errors it shows."""
        from playwright.async_api import async_playwright

        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            try:
                context = await browser.new_context()
                context.set_default_timeout(WAIT_MS)
                page = await context.new_page()
                errors: list[str] = []
                page.on("console", lambda message: errors.extend(console_error(message)))
                page.on("pageerror", lambda error: errors.append(f"page error: {error}"))
                yield page, context, errors
            finally:
                await browser.close()

    @gen_test(timeout=240)
    async def test_the_sdks_token_reaches_the_api_as_cookie_and_bearer_and_validate_session_answers(self) -> None:
        async with self.browser_page() as (page, context, errors):
            await self.check_page(page, context, errors)

    @gen_test(timeout=240)
    async def test_a_returning_user_sees_the_profile_and_logs_out_at_hanko(self) -> None:
        session_id = "eeeeeeee-0000-4000-8000-000000000027"
        token = self.fake.mint("aaaaaaaa-0000-4000-8000-000000000027", email="grace@example.com", session_id=session_id)
        async with self.browser_page() as (page, context, errors):
            # As the SDK stores it on localhost after a login: not HttpOnly, SameSite=Lax, for the whole site.
            await context.add_cookies([{"name": "hanko", "value": token, "url": self.frontend, "sameSite": "Lax"}])
            await page.goto(self.frontend + "/")
            await page.locator("html[data-api-called=true]").wait_for(state="attached")
            expected = {"user_id": "aaaaaaaa-0000-4000-8000-000000000027", "email": "grace@example.com"}
            answers = await page.evaluate("() => window.apiAnswers")
            self.assertEqual(
                {name: answer["body"] for name, answer in answers.items()}, dict.fromkeys(answers, expected)
            )
            self.assertEqual(sorted(answers), ["bearer", "cookie"])

            await page.locator("#logout").click()  # hanko.logout(): POST /logout at Hanko, then a reload
            await page.locator("hanko-auth input[type=email]").wait_for()
            self.assertEqual(self.stand_in.logouts, [session_id])
            self.assertNotIn(session_id, self.fake.sessions)
            self.assertNotIn("hanko", [cookie["name"] for cookie in await context.cookies()])
            self.assertIsNone(await page.evaluate("() => document.documentElement.dataset.apiCalled || null"))
            self.assertEqual(errors, [])
        after = await self.api_status_for(token)
        self.assertEqual(after, 401, "the token of the ended session no longer opens the API")

    async def api_status_for(self, token: str) -> int:
        """The API's status for ``token`` as a bearer, asked from outside the browser."""
        response = await AsyncHTTPClient().fetch(
            f"{self.api}/api/me", headers={"Authorization": f"Bearer {token}"}, raise_error=False
        )
        return response.code

    async def check_page(self, page: Any, context: Any, errors: list[str]) -> None:
        validations = self.fake.validations
        await page.goto(self.frontend + "/")
        await page.locator("html[data-hanko-ready=true]").wait_for(state="attached")
        self.assertGreater(self.fake.validations, validations, "the page asked Hanko about a session at load")
        # Logged in through Hanko's own element, against the fake's login flow (cross-origin, with credentials).
        await page.locator("hanko-auth input[type=email]").fill("ada@example.com")
        await page.locator("hanko-auth").get_by_role("button", name="Continue").click()
        await page.locator("html[data-api-called=true]").wait_for(state="attached")
        user_id = self.stand_in.user_id("ada@example.com")
        (session_id,) = [s.id for s in self.fake.sessions.values() if s.user_id == user_id]

        answers = await page.evaluate("() => window.apiAnswers")
        for carrier in ("cookie", "bearer"):  # the cookie call sends no header, the bearer call no cookie
            with self.subTest(carrier=carrier):
                self.assertEqual(answers[carrier]["status"], 200)
                self.assertEqual(answers[carrier]["body"], {"user_id": user_id, "email": "ada@example.com"})
        self.assertEqual(await page.locator("#with-bearer").text_content(), f"{user_id} (ada@example.com)")
        (cookie,) = [c for c in await context.cookies() if c["name"] == "hanko"]
        self.assertEqual((cookie["domain"], cookie["httpOnly"], cookie["sameSite"]), ("localhost", False, "Lax"))
        token = await page.evaluate("() => window.hanko.getSessionToken()")
        self.assertEqual(token, cookie["value"], "getSessionToken() is the cookie the SDK stored")
        self.assertEqual(errors, [], "no console errors, Hanko's element and SDK included")
        # Control: with neither the cookie nor a header, the API refuses.
        bare = await self.fetch_in_page(page, {"credentials": "omit"})
        self.assertEqual((bare["status"], bare["body"].get("error")), (401, "missing_token"))

        live = await page.evaluate("() => window.hanko.validateSession()")
        self.assertEqual(live["is_valid"], True)
        self.assertEqual(live["claims"]["subject"], user_id)
        self.assertEqual(live["claims"]["session_id"], session_id)
        self.assertEqual(live["claims"]["email"]["address"], "ada@example.com")
        self.assertEqual(live["user_id"], user_id)

        self.fake.revoke(session_id)  # the session ends at Hanko (an admin, another tab's logout...)
        ended = await page.evaluate("() => window.hanko.validateSession()")
        self.assertEqual(ended, {"is_valid": False})
        after = await self.fetch_in_page(page, {"headers": {"Authorization": f"Bearer {token}"}})
        self.assertEqual(after["status"], 401, "the API asks Hanko too: the ended session's token is refused")
        refused = (
            f"Failed to load resource: the server responded with a status of 401 (Unauthorized) ({self.api}/api/me)"
        )
        self.assertEqual(errors, [refused, refused], "the two refusals the test asked for, nothing else")

    async def fetch_in_page(self, page: Any, init: dict[str, Any]) -> dict[str, Any]:
        """``fetch(API/api/me, init)`` from the page: the status and the JSON body."""
        script = "async ([u, i]) => { const r = await fetch(u, i); return {status: r.status, body: await r.json()} }"
        result: dict[str, Any] = await page.evaluate(script, [f"{self.api}/api/me", init])
        return result
