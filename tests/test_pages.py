"""Pages: a browser that is not logged in is sent to login_url (GET, HEAD); other methods keep their JSON answers."""

from __future__ import annotations

import json
import re
import time
import unittest
import urllib.parse
from typing import Any

import tornado.template
import tornado.web
from support import captured_logs
from test_readme import example
from tornado.httpclient import HTTPResponse

from hanko_tornado import HankoAuthMixin, HankoUser
from hanko_tornado.pages import HankoPageMixin, safe_next_url
from hanko_tornado.requirements import claim_equals, max_age, passkey, requires
from hanko_tornado.testing import HankoTestCase
from hanko_tornado.testing.keys import SigningKey

USER = "aaaaaaaa-0000-4000-8000-000000000028"


class Page(HankoPageMixin, tornado.web.RequestHandler):
    def get(self) -> None:
        self.write(f"hello {self.hanko_user.id}")

    def post(self) -> None:
        self.write({"posted_by": self.hanko_user.id})


class StepUpPage(Page):
    hanko_requires = passkey & max_age(600)


class AdminPage(Page):
    hanko_requires = claim_equals("role", "admin")


class OptionalPage(HankoPageMixin, tornado.web.RequestHandler):
    """Open to anyone; ``@authenticated`` guards one method, as Tornado applications do."""

    hanko_optional = True

    def get(self) -> None:
        user = self.current_user
        self.write(f"hello {user.id}" if isinstance(user, HankoUser) else "hello stranger")

    @tornado.web.authenticated
    def put(self) -> None:
        self.write("changed")


class DecoratedPage(HankoPageMixin, tornado.web.RequestHandler):
    hanko_optional = True

    @tornado.web.authenticated
    def get(self) -> None:
        self.write(f"hello {self.hanko_user.id}")


class ApiHandler(HankoAuthMixin, tornado.web.RequestHandler):
    """The API mixin, unchanged: a control."""

    def get(self) -> None:
        self.write({"user_id": self.hanko_user.id})


class FormPage(Page):
    @requires(passkey)
    def post(self) -> None:
        self.write({"posted_by": self.hanko_user.id})


class PageTestCase(HankoTestCase):
    settings: dict[str, Any] = {"login_url": "/login"}  # noqa: RUF012
    session_check = "off"

    def get_app(self) -> tornado.web.Application:
        routes = [
            (r"/app", Page),
            (r"/step-up", StepUpPage),
            (r"/admin", AdminPage),
            (r"/optional", OptionalPage),
            (r"/decorated", DecoratedPage),
            (r"/api", ApiHandler),
            (r"/form", FormPage),
        ]
        return tornado.web.Application(
            routes, hanko=self.hanko.settings(session_check=self.session_check, refetch_interval=0.1), **self.settings
        )

    def get(self, path: str, token: str | None = None, **kwargs: Any) -> HTTPResponse:
        """``path`` with ``token`` as the cookie, as a browser on this site sends it (same-origin)."""
        headers = {"Cookie": f"hanko={token}", "Sec-Fetch-Site": "same-origin"} if token else {}
        return self.fetch(path, headers=headers, follow_redirects=False, **kwargs)

    def assert_sent_to_login(self, response: HTTPResponse, expected: str) -> None:
        self.assertEqual(response.code, 302, response.body)
        self.assertEqual(response.headers["Location"], expected)
        self.assertEqual(response.body, b"", "no error page: only the redirect")


class RedirectTest(PageTestCase):
    def test_no_cookie_expired_cookie_and_a_foreign_key_are_sent_to_log_in(self) -> None:
        stranger = SigningKey.generate(key_size=2048)  # a key rotated out, or never Hanko's
        for name, token in [
            ("no cookie", None),
            ("expired", self.hanko.mint(USER, lifetime=-3600)),
            ("signed by an unknown key", self.hanko.mint(USER, key=stranger)),
            ("garbage", "not-a-token"),
        ]:
            with self.subTest(name), captured_logs() as lines:
                response = self.get("/app?tab=1&x=%2F", token)
                self.assert_sent_to_login(response, "/login?next=%2Fapp%3Ftab%3D1%26x%3D%252F")
                if token is not None:
                    self.assertTrue(any("refused a session token" in line for line in lines), lines)
                    self.assertFalse(any(token in line for line in lines), "the token is never logged")
        # Control: a valid cookie gets the page.
        self.assertEqual(self.get("/app", self.hanko.mint(USER)).body.decode(), f"hello {USER}")

    def test_the_reason_is_logged_as_for_any_refusal(self) -> None:
        with captured_logs() as lines:
            self.get("/app", self.hanko.mint(USER, lifetime=-3600))
        (line,) = [line for line in lines if "refused a session token" in line]
        self.assertRegex(line, r"INFO refused a session token from 127\.0\.0\.1: .*expired")

    def test_head_is_redirected_as_get(self) -> None:
        response = self.get("/app", method="HEAD")
        self.assert_sent_to_login(response, "/login?next=%2Fapp")

    def test_unsafe_methods_keep_their_json_answers(self) -> None:
        expired = self.hanko.mint(USER, lifetime=-3600)
        for token, error in [(None, "missing_token"), (expired, "invalid_token")]:
            for method in ("POST", "PUT", "DELETE", "PATCH"):
                with self.subTest(method=method, error=error):
                    body = "{}" if method in ("POST", "PUT", "PATCH") else None
                    response = self.get("/app", token, method=method, body=body)
                    self.assertEqual((response.code, json.loads(response.body)["error"]), (401, error))
                    self.assertIn("WWW-Authenticate", response.headers)
        # A cookie-authenticated POST from another origin: still 403 JSON.
        foreign = {"Cookie": f"hanko={self.hanko.mint(USER)}", "Origin": "https://evil.example"}
        response = self.fetch("/app", method="POST", body="{}", headers=foreign, follow_redirects=False)
        self.assertEqual(response.code, 403)
        if not self._app.settings.get("cross_origin_protection"):  # else Tornado refuses it first, with its page
            self.assertEqual(json.loads(response.body)["error"], "cross_origin_request")

    def test_the_api_mixin_is_unchanged(self) -> None:
        response = self.get("/api", self.hanko.mint(USER, lifetime=-3600))
        self.assertEqual((response.code, json.loads(response.body)["error"]), (401, "invalid_token"))

    def test_step_up_sends_the_browser_to_log_in_with_what_is_needed(self) -> None:
        old_password_login = self.hanko.mint(USER, amr=("pwd",), claims={"iat": int(time.time()) - 3600})
        response = self.get("/step-up", old_password_login)
        self.assert_sent_to_login(response, "/login?next=%2Fstep-up&acr_values=passkey&max_age=600")
        # The same page's POST keeps RFC 9470's 401 JSON.
        response = self.get("/form", old_password_login, method="POST", body="{}")
        self.assertEqual(json.loads(response.body)["error"], "insufficient_user_authentication")
        self.assertEqual(response.code, 401)
        # Control: a fresh passkey login gets the page.
        self.assertEqual(self.get("/step-up", self.hanko.mint(USER)).code, 200)

    def test_a_requirement_a_login_cannot_meet_keeps_its_403(self) -> None:
        response = self.get("/admin", self.hanko.mint(USER))
        self.assertEqual((response.code, json.loads(response.body)["error"]), (403, "insufficient_scope"))
        self.assertEqual(self.get("/admin", self.hanko.mint(USER, claims={"role": "admin"})).code, 200)

    def test_keys_unavailable_is_not_a_login(self) -> None:
        self.hanko.fault = "error"
        response = self.get("/app", self.hanko.mint(USER))
        self.assertEqual((response.code, json.loads(response.body)["error"]), (503, "keys_unavailable"))

    def test_an_optional_page_with_authenticated(self) -> None:
        self.assertEqual(self.get("/optional").body, b"hello stranger")
        self.assertEqual(self.get("/optional", self.hanko.mint(USER)).body.decode(), f"hello {USER}")
        # Tornado's own decorator redirects the anonymous visit, with the same next.
        self.assert_sent_to_login(self.get("/decorated?a=b"), "/login?next=%2Fdecorated%3Fa%3Db")
        self.assertEqual(self.get("/decorated", self.hanko.mint(USER)).code, 200)
        # A stale cookie on an optional page: sent to log in too, as on any page, not a 401.
        self.assert_sent_to_login(self.get("/optional", self.hanko.mint(lifetime=-60)), "/login?next=%2Foptional")
        # Tornado's decorator answers an anonymous PUT 403, as it does without Hanko.
        self.assertEqual(self.get("/optional", method="PUT", body="").code, 403)


class EndedSessionTest(PageTestCase):
    session_check = "validate"

    def test_a_cookie_of_an_ended_session_is_sent_to_log_in(self) -> None:
        live = self.hanko.mint(USER, session_id="bbbbbbbb-0000-4000-8000-000000000001")
        self.assertEqual(self.get("/app", live).code, 200, "control: a live session gets the page")
        ended = self.hanko.mint(USER, session_id="bbbbbbbb-0000-4000-8000-000000000002")
        self.hanko.revoke("bbbbbbbb-0000-4000-8000-000000000002")
        with captured_logs() as lines:
            self.assert_sent_to_login(self.get("/app", ended), "/login?next=%2Fapp")
        self.assertTrue(any("refused a session token" in line and "session ended" in line for line in lines), lines)


class NoLoginUrlTest(PageTestCase):
    settings: dict[str, Any] = {}  # noqa: RUF012

    def test_without_login_url_the_page_answers_as_the_api(self) -> None:
        response = self.get("/app", self.hanko.mint(USER, lifetime=-3600))
        self.assertEqual((response.code, json.loads(response.body)["error"]), (401, "invalid_token"))


class LoginUrlFormsTest(PageTestCase):
    settings: dict[str, Any] = {"login_url": "https://login.example/sign-in"}  # noqa: RUF012

    def test_an_absolute_login_url_gets_an_absolute_next_as_tornado_builds_it(self) -> None:
        response = self.get("/app?a=1")
        self.assertEqual(
            response.headers["Location"],
            "https://login.example/sign-in?next=" + urllib.parse.quote(self.get_url("/app?a=1"), safe=""),
        )


class LoginUrlWithQueryTest(PageTestCase):
    settings: dict[str, Any] = {"login_url": "/login?from=pages"}  # noqa: RUF012

    def test_a_login_url_with_a_query_is_used_as_it_is(self) -> None:
        self.assert_sent_to_login(self.get("/app"), "/login?from=pages")
        old = self.hanko.mint(USER, amr=("pwd",))
        self.assert_sent_to_login(self.get("/step-up", old), "/login?from=pages&acr_values=passkey")


class XsrfFormsTest(PageTestCase):
    settings: dict[str, Any] = {"login_url": "/login", "xsrf_cookies": True}  # noqa: RUF012

    def test_forms_need_tornados_xsrf_token_and_a_session(self) -> None:
        token = self.hanko.mint(USER)
        # Tornado checks the form's _xsrf before the mixin runs: 403 without it, whatever the session.
        self.assertEqual(self.get("/app", token, method="POST", body="a=1").code, 403)
        cookies = self.form_cookies(token)
        form = urllib.parse.urlencode({"_xsrf": cookies["_xsrf"], "a": "1"})
        done = self.post_form(form, cookies)
        self.assertEqual((done.code, json.loads(done.body)), (200, {"posted_by": USER}))
        # The form's _xsrf with an expired session: the 401 JSON, not a redirect.
        stale = self.post_form(form, {**cookies, "hanko": self.hanko.mint(USER, lifetime=-60)})
        self.assertEqual((stale.code, json.loads(stale.body)["error"]), (401, "invalid_token"))

    def post_form(self, form: str, cookies: dict[str, str]) -> HTTPResponse:
        cookie = "; ".join(f"{name}={value}" for name, value in cookies.items())
        headers = {"Cookie": cookie, "Sec-Fetch-Site": "same-origin"}
        return self.fetch("/app", method="POST", body=form, headers=headers, follow_redirects=False)

    def form_cookies(self, token: str) -> dict[str, str]:
        """The cookies a browser holds after a page rendered a form: the session, and Tornado's _xsrf."""

        class XsrfPage(Page):
            def get(self) -> None:
                self.write(self.xsrf_form_html())

        self._app.add_handlers(r".*", [(r"/xsrf-form", XsrfPage)])
        response = self.get("/xsrf-form", token)
        match = re.search(r'name="_xsrf" value="([^"]+)"', response.body.decode())
        assert match is not None, response.body
        return {"hanko": token, "_xsrf": match.group(1)}


class ReadmePagesTest(HankoTestCase):
    """The README's pages example, as written, with its two templates."""

    def get_app(self) -> tornado.web.Application:
        pages = example("pages")
        templates = tornado.template.DictLoader(
            {"account.html": "<p>{{ user.email }}</p>", "login.html": "<a href='{{ next }}'>go on</a>"}
        )
        return tornado.web.Application(
            [
                (r"/account", pages.AccountPage),
                (r"/account/security", pages.SecurityPage),
                (r"/login", pages.LoginPage),
            ],
            hanko=self.hanko.settings(),
            login_url="/login",
            template_loader=templates,
        )

    def test_the_example_sends_to_login_and_checks_next(self) -> None:
        get = {"follow_redirects": False, "raise_error": False}
        self.assertEqual(self.fetch("/account", **get).headers["Location"], "/login?next=%2Faccount")
        fresh = self.fetch_with_token("/account", self.hanko.mint(email="<i>@example.com"), **get)
        self.assertEqual(fresh.body, b"<p>&lt;i&gt;@example.com</p>")
        old = self.fetch_with_token(
            "/account/security", self.hanko.mint(amr=("pwd",), claims={"iat": int(time.time()) - 3600}), **get
        )
        self.assertEqual(old.headers["Location"], "/login?next=%2Faccount%2Fsecurity&acr_values=passkey&max_age=300")
        self.assertEqual(self.fetch("/login?next=//evil.example", **get).body, b"<a href='/account'>go on</a>")
        self.assertEqual(
            self.fetch("/login?next=/account/security", **get).body, b"<a href='/account/security'>go on</a>"
        )


HOSTILE_NEXT = [
    "//evil.com",
    "//evil.com/app",
    "/\\evil.com",
    "\\\\evil.com",
    "/\\/evil.com",
    "https://evil",
    "https://evil.example/app",
    "http://localhost:8000@evil.example/",
    "http://localhost:8000.evil.example/",
    "https://localhost:8000/app",  # another scheme is another origin
    "javascript:alert(1)",
    "JAVASCRIPT:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "/\t/evil.com",
    "/\n/evil.com",
    "\t//evil.com",
    " //evil.com",
    "/app\r\nSet-Cookie: x=y",
    "/app\x00",
    "/app\x7f",
    '/app"><script>alert(1)</script>',
    "/app`x`",
    "/app<x>",
    "/app{x}",
    "/\u3000/evil.com",
    "/\uff0fevil.com",
    "app",
    "evil.com",
    "http://[",
    "/" + "a" * 2048,
    "",
]


class SafeNextUrlTest(unittest.TestCase):
    ORIGIN = "http://localhost:8000"

    def test_hostile_next_values_give_the_default(self) -> None:
        for value in HOSTILE_NEXT:
            with self.subTest(value=value):
                self.assertEqual(safe_next_url(value, self.ORIGIN, default="/app"), "/app")
        self.assertEqual(safe_next_url(None, self.ORIGIN), "/")

    def test_paths_of_this_site_are_let_through(self) -> None:
        for value, expected in [
            ("/app", "/app"),
            ("/app?tab=1&x=%2F%2Fevil.com", "/app?tab=1&x=%2F%2Fevil.com"),
            ("/", "/"),
            ("/%2F%2Fevil.com", "/%2F%2Fevil.com"),  # a path on this site: browsers do not decode %2F
            ("http://localhost:8000/app?a=1", "/app?a=1"),
            ("HTTP://LOCALHOST:8000", "/"),
            ("/a" * 1000, "/a" * 1000),
            ("/app?q='x'", "/app?q='x'"),  # RFC 3986's apostrophe: Tornado's templates escape it in attributes
            ("/app#part", "/app#part"),
        ]:
            with self.subTest(value=value):
                self.assertEqual(safe_next_url(value, self.ORIGIN), expected)
