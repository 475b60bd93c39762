"""CorsHandler and CorsSettings: origins echoed only when allowed, preflights, errors readable."""

from __future__ import annotations

import tornado.web

from hanko_tornado import ConfigurationError, CorsHandler, CorsSettings, HankoAuthMixin
from hanko_tornado.testing import HankoTestCase

FRONTEND = "http://localhost:3000"


class ProtectedHandler(HankoAuthMixin, CorsHandler):
    def get(self) -> None:
        self.write({"ok": True})

    def delete(self) -> None:
        self.set_status(204)


class CrashingHandler(CorsHandler):
    def get(self) -> None:
        raise RuntimeError("boom")


class CorsTest(HankoTestCase):
    def get_app(self) -> tornado.web.Application:
        return tornado.web.Application(
            [(r"/protected", ProtectedHandler), (r"/crash", CrashingHandler)],
            hanko=self.hanko.settings(),
            cors=CorsSettings(origins=[FRONTEND, "https://app.example.com/"]),
        )

    def test_allowed_origin_is_echoed_with_credentials(self) -> None:
        response = self.fetch_with_token("/protected", self.hanko.mint(), headers={"Origin": FRONTEND})
        self.assertEqual(response.headers["Access-Control-Allow-Origin"], FRONTEND)
        self.assertEqual(response.headers["Access-Control-Allow-Credentials"], "true")
        self.assertEqual(response.headers["Vary"], "Origin")
        self.assertIn("WWW-Authenticate", response.headers["Access-Control-Expose-Headers"])

    def test_configured_trailing_slash_is_ignored(self) -> None:
        response = self.fetch("/protected", headers={"Origin": "https://app.example.com"}, raise_error=False)
        self.assertEqual(response.headers["Access-Control-Allow-Origin"], "https://app.example.com")

    def test_other_origin_gets_no_cors_headers(self) -> None:
        for origin in ["http://evil.example", "http://localhost:3001", "null", "http://localhost:3000.evil.example"]:
            response = self.fetch("/protected", headers={"Origin": origin}, raise_error=False)
            self.assertNotIn("Access-Control-Allow-Origin", response.headers)
            self.assertNotIn("Access-Control-Allow-Credentials", response.headers)
            self.assertEqual(response.headers["Vary"], "Origin")

    def test_401_and_500_carry_cors_headers(self) -> None:
        for path, code in [("/protected", 401), ("/crash", 500)]:
            response = self.fetch(path, headers={"Origin": FRONTEND}, raise_error=False)
            self.assertEqual(response.code, code)
            self.assertEqual(response.headers["Access-Control-Allow-Origin"], FRONTEND)

    def test_preflight_lists_the_implemented_methods(self) -> None:
        response = self.fetch(
            "/protected",
            method="OPTIONS",
            headers={
                "Origin": FRONTEND,
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "authorization",
            },
        )
        self.assertEqual(response.code, 204)
        self.assertEqual(response.headers["Access-Control-Allow-Methods"], "DELETE, GET, OPTIONS")
        self.assertEqual(response.headers["Access-Control-Allow-Headers"], "Authorization, Content-Type")
        self.assertEqual(response.headers["Access-Control-Max-Age"], "600")
        self.assertEqual(response.headers["Access-Control-Allow-Origin"], FRONTEND)

    def test_preflight_from_other_origin_allows_nothing(self) -> None:
        response = self.fetch(
            "/protected",
            method="OPTIONS",
            headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "GET"},
        )
        self.assertEqual(response.code, 204)
        self.assertNotIn("Access-Control-Allow-Methods", response.headers)
        self.assertNotIn("Access-Control-Allow-Origin", response.headers)


class WildcardTest(HankoTestCase):
    def get_app(self) -> tornado.web.Application:
        cors = CorsSettings(origins=["*"], allow_credentials=False)
        return tornado.web.Application([(r"/protected", ProtectedHandler)], hanko=self.hanko.settings(), cors=cors)

    def test_wildcard_without_credentials(self) -> None:
        response = self.fetch("/protected", headers={"Origin": "http://any.example"}, raise_error=False)
        self.assertEqual(response.headers["Access-Control-Allow-Origin"], "*")
        self.assertNotIn("Access-Control-Allow-Credentials", response.headers)

    def test_wildcard_with_credentials_is_a_configuration_error(self) -> None:
        with self.assertRaisesRegex(ConfigurationError, "cannot be combined with credentials"):
            CorsSettings(origins=["*"])

    def test_not_an_origin(self) -> None:
        for origin in ["localhost:3000", "ftp://x.example", "https://x.example/path"]:
            with self.subTest(origin=origin), self.assertRaises(ConfigurationError):
                CorsSettings(origins=[origin])
