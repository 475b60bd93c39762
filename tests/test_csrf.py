"""Cookie sessions a cross-site page cannot ride: Tornado's cross-origin protection and our own check after it."""

from __future__ import annotations

import json
import unittest
from typing import Any, ClassVar

import tornado.web

from hanko_tornado import CorsHandler, CorsSettings, HankoAuthMixin
from hanko_tornado.testing import HankoTestCase

FRONTEND = "http://localhost:3000"
FOREIGN = "https://evil.example"


class CountingHandler(HankoAuthMixin, CorsHandler):
    runs: ClassVar[int] = 0

    def get(self) -> None:
        self.write({"user_id": self.hanko_user.id})

    def post(self) -> None:
        type(self).runs += 1
        self.write({"user_id": self.hanko_user.id})

    delete = put = patch = post


class UncheckedHandler(CountingHandler):
    hanko_cookie_origin_check = False


class OwnCacheControlHandler(CountingHandler):
    def get(self) -> None:
        self.set_header("Cache-Control", "no-store")
        self.write({})


class CsrfTestCase(HankoTestCase):
    protection: ClassVar[bool] = False

    def get_app(self) -> tornado.web.Application:
        return tornado.web.Application(
            [(r"/api", CountingHandler), (r"/unchecked", UncheckedHandler), (r"/own", OwnCacheControlHandler)],
            hanko=self.hanko.settings(),
            cors=CorsSettings(origins=[FRONTEND]),
            cross_origin_protection=self.protection,
        )

    def setUp(self) -> None:
        super().setUp()
        CountingHandler.runs = 0
        self.token = self.hanko.mint()

    def send(self, method: str, *, cookie: bool = True, path: str = "/api", **headers: str) -> Any:
        credentials = {"Cookie": f"hanko={self.token}"} if cookie else {"Authorization": f"Bearer {self.token}"}
        body = None if method in ("GET", "HEAD", "DELETE") else "{}"
        response = self.fetch(path, method=method, body=body, headers={**credentials, **headers}, raise_error=False)
        return response

    def assert_refused(self, response: Any) -> None:
        self.assertEqual(response.code, 403, response.body)
        self.assertEqual(json.loads(response.body)["error"], "cross_origin_request")
        self.assertEqual(CountingHandler.runs, 0, "the handler never runs for a refused request")


class CookieOriginCheckTest(CsrfTestCase):
    """With Tornado's protection off (as before 6.6), the mixin's own check after authentication."""

    def test_cross_site_unsafe_requests_with_the_cookie_are_refused(self) -> None:
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            with self.subTest(method=method):
                self.assert_refused(self.send(method, Origin=FOREIGN, **{"Sec-Fetch-Site": "cross-site"}))
                self.assert_refused(
                    self.send(method, Origin="http://localhost:3001", **{"Sec-Fetch-Site": "same-site"})
                )
                self.assert_refused(self.send(method, Origin=FOREIGN))
                self.assert_refused(self.send(method))  # no Origin at all: nothing shows where it came from

    def test_same_origin_and_allowed_origins_pass(self) -> None:
        host = f"http://127.0.0.1:{self.get_http_port()}"
        passing = [
            {"Sec-Fetch-Site": "same-origin", "Origin": host},
            {"Sec-Fetch-Site": "none"},
            {"Origin": host},
            {"Sec-Fetch-Site": "cross-site", "Origin": FRONTEND},
            {"Sec-Fetch-Site": "same-site", "Origin": FRONTEND},
        ]
        for headers in passing:
            with self.subTest(**headers):
                response = self.send("POST", **headers)
                self.assertEqual(response.code, 200, response.body)
        self.assertEqual(CountingHandler.runs, len(passing))

    def test_a_cross_site_origin_claiming_the_host_is_not_same_origin(self) -> None:
        host = f"http://127.0.0.1:{self.get_http_port()}"
        self.assert_refused(self.send("POST", Origin=host, **{"Sec-Fetch-Site": "cross-site"}))

    def test_bearer_tokens_and_safe_methods_are_not_subject_to_it(self) -> None:
        cross = {"Origin": FOREIGN, "Sec-Fetch-Site": "cross-site"}
        self.assertEqual(self.send("POST", cookie=False, **cross).code, 200)
        self.assertEqual(self.send("GET", **cross).code, 200)
        self.assertEqual(self.send("POST", path="/unchecked", **cross).code, 200, "settable per handler")

    def test_a_bad_bearer_token_falls_back_to_a_cookie_that_is_then_checked_for_origin(self) -> None:
        headers = {"Cookie": f"hanko={self.token}", "Authorization": "Bearer forged", "Origin": FOREIGN}
        # As Hanko, the cookie is tried once the bearer token failed; the request is then cookie-authenticated.
        self.assert_refused(self.fetch("/api", method="POST", body="{}", headers=headers, raise_error=False))

    def test_hostile_origins_get_403_not_500(self) -> None:
        for origin in ("http://[", "null", "\u00e9", "http://" + "a" * 5000):
            with self.subTest(origin=origin[:20]):
                self.assert_refused(self.send("POST", Origin=origin))

    def test_authenticated_answers_are_private(self) -> None:
        self.assertEqual(self.send("GET").headers["Cache-Control"], "private")
        self.assertEqual(self.send("GET", path="/own").headers["Cache-Control"], "no-store")
        self.assertNotIn("private", self.fetch("/api", raise_error=False).headers.get("Cache-Control", ""))


@unittest.skipIf(tornado.version_info < (6, 6), "Tornado has cross_origin_protection from 6.6 on")
class CrossOriginProtectionTest(CookieOriginCheckTest):
    """The same answers with Tornado 6.6's ``cross_origin_protection`` on: JSON refusals, allowed origins trusted."""

    protection = True

    def test_tornado_refusal_is_json_with_cors_headers(self) -> None:
        response = self.send("POST", cookie=False, Origin=FOREIGN, **{"Sec-Fetch-Site": "cross-site"})
        self.assertEqual((response.code, json.loads(response.body)["error"]), (403, "cross_origin_request"))
        self.assertEqual(response.headers["Vary"], "Origin")
        allowed = self.send("POST", cookie=False, Origin=FRONTEND, **{"Sec-Fetch-Site": "cross-site"})
        self.assertEqual(allowed.code, 200, "an origin CorsSettings allows passes Tornado's check")
        self.assertEqual(allowed.headers["Access-Control-Allow-Origin"], FRONTEND)

    def test_bearer_tokens_and_safe_methods_are_not_subject_to_it(self) -> None:
        cross = {"Origin": FOREIGN, "Sec-Fetch-Site": "cross-site"}
        self.assertEqual(self.send("GET", **cross).code, 200)
        # Tornado refuses before authentication, so a foreign origin is refused even with a bearer token.
        self.assert_refused(self.send("POST", cookie=False, **cross))
