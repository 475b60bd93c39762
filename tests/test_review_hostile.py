"""Review: server.py's routes against hostile requests: never a 500, never a token in a log line or body."""

from __future__ import annotations

import urllib.parse
from typing import Any

import tornado.web
from support import captured_logs
from test_pages_server import attribute, load_server
from tornado.httpclient import HTTPResponse

from hanko_tornado import CorsSettings
from hanko_tornado.pages import safe_next_url
from hanko_tornado.testing import HankoTestCase

ORIGIN = "http://localhost:3000"


class HostileRequestsTest(HankoTestCase):
    def get_app(self) -> tornado.web.Application:
        app: tornado.web.Application = load_server().make_app(self.hanko.settings(), CorsSettings(origins=(ORIGIN,)))
        return app

    def send(self, path: str, method: str = "GET", headers: dict[str, str] | None = None, **kw: Any) -> HTTPResponse:
        body = b"{}" if method in ("POST", "PUT", "PATCH") else None
        return self.fetch(
            path, method=method, headers=headers or {}, body=body, raise_error=False, follow_redirects=False, **kw
        )

    def test_expired_bearer_then_cookie_from_a_foreign_page_is_refused(self) -> None:
        # A page of another site cannot set Authorization itself, but an allowed CORS preflight lets it; the
        # fallback to the cookie must still meet the cookie-origin check.
        cookie = self.hanko.mint()
        for bearer in (self.hanko.mint(lifetime=-60), "garbage", ""):
            for site in ("cross-site", "same-site", None):
                headers = {
                    "Authorization": f"Bearer {bearer}",
                    "Cookie": f"hanko={cookie}",
                    "Origin": "https://evil.example",
                }
                if site:
                    headers["Sec-Fetch-Site"] = site
                with self.subTest(bearer=bearer[:8], site=site):
                    response = self.send("/protected", "POST", headers)
                    self.assertEqual(response.code, 403, response.body)
        # The same from the allowed origin passes by the cookie.
        headers = {"Authorization": "Bearer garbage", "Cookie": f"hanko={cookie}", "Origin": ORIGIN}
        self.assertEqual(self.send("/protected", "POST", {**headers, "Sec-Fetch-Site": "same-site"}).code, 200)

    def test_hostile_requests_get_a_clear_answer_and_no_token_is_logged(self) -> None:
        token = self.hanko.mint()
        expired = self.hanko.mint(lifetime=-60)
        secrets = [token, expired, token[-30:], expired[-30:]]
        huge = "a" * 60_000
        cases: list[tuple[str, str, dict[str, str]]] = [
            ("/protected", "GET", {"Cookie": f"hanko={token}; hanko={token}"}),
            ("/protected", "GET", {"Cookie": f"hanko={expired}; Hanko={token}"}),
            ("/protected", "GET", {"Authorization": f"Bearer {expired}", "Cookie": f"hanko={token}; hanko=x"}),
            ("/protected", "GET", {"Authorization": f"bearer  {token}\t"}),
            ("/protected", "GET", {"Authorization": f"Bearer {huge}"}),
            ("/protected", "GET", {"Cookie": f"hanko={huge}"}),
            ("/protected", "GET", {"Authorization": f"Bearer {token}.{token}"}),
            ("/protected", "GET", {"Authorization": "Bearer \u00e9\u00e9.\u00e9.\u00e9"}),
            ("/protected", "POST", {"Cookie": f"hanko={token}", "Origin": "http://["}),
            ("/protected", "POST", {"Cookie": f"hanko={token}", "Origin": "*"}),
            ("/protected", "POST", {"Cookie": f"hanko={token}", "Origin": "null"}),
            ("/protected", "POST", {"Cookie": f"hanko={token}", "Origin": ORIGIN.upper() + "/"}),
            ("/protected", "OPTIONS", {"Origin": "http://[", "Access-Control-Request-Method": "POST"}),
            ("/app", "GET", {"Cookie": f"hanko={expired}"}),
            ("/app", "POST", {"Cookie": f"hanko={expired}", "Origin": "https://evil.example"}),
            ("/app", "HEAD", {"Cookie": "hanko=garbage"}),
            ("/app?next=%0d%0aSet-Cookie:%20x=1", "GET", {}),
            ("/login?next=" + "%2F" * 5000, "GET", {}),
            ("/login?next=%ff%fe", "GET", {}),
            ("/login?max_age=" + "9" * 5000 + "&acr_values=%3Cscript%3E", "GET", {}),
            (
                "/ws",
                "GET",
                {
                    "Upgrade": "websocket",
                    "Connection": "Upgrade",
                    "Sec-WebSocket-Version": "13",
                    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                    "Origin": "http://[",
                    "Sec-WebSocket-Protocol": f"hanko-bearer, {token}",
                },
            ),
            (
                "/ws",
                "GET",
                {
                    "Upgrade": "websocket",
                    "Connection": "Upgrade",
                    "Sec-WebSocket-Version": "13",
                    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                    "Sec-WebSocket-Protocol": ",,hanko-bearer" + ", x" * 2000,
                },
            ),
            ("/webhooks/hanko", "POST", {"Content-Type": "application/json"}),
        ]
        with captured_logs() as lines:
            for path, method, headers in cases:
                with self.subTest(path=path[:40], method=method, headers=str(headers)[:80]):
                    response = self.send(path, method, headers)
                    self.assertLess(response.code, 500, response.body[:300])
                    self.assertNotIn(token.encode(), response.body)
                    self.assertNotIn(token, str(response.headers))
        logged = "\n".join(lines)
        for secret in secrets:
            self.assertNotIn(secret, logged)

    def test_the_login_redirect_never_leaves_the_site(self) -> None:
        own = "http://127.0.0.1"
        hostile = [
            "//evil.example",
            "///evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "/%5Cevil.example",
            "https:evil.example",
            "https:/evil.example",
            "javascript:alert(1)",
            "JaVaScRiPt:alert(1)",
            "data:text/html,x",
            "/\t/evil.example",
            " //evil.example",
            "\u3002evil.example",
            "/\uff0fevil.example",
            "\uff0f\uff0fevil.example",
            "http://127.0.0.1@evil.example",
            "http://127.0.0.1.evil.example/",
            "http://evil.example#http://127.0.0.1",
            "http://127.0.0.1:80@evil.example/",
            "HTTP://127.0.0.1//evil.example",
            "http://127.0.0.1\\@evil.example",
            "/x\r\nSet-Cookie: a=b",
            "\x00//evil.example",
        ]
        for value in hostile:
            with self.subTest(value=value):
                result = safe_next_url(value, own, default="/app")
                self.assertTrue(result.startswith("/") and not result.startswith("//"), result)
                self.assertNotIn("\\", result)
                parts = urllib.parse.urlsplit(result)
                self.assertEqual((parts.scheme, parts.netloc), ("", ""), result)
                page = self.fetch("/login?" + urllib.parse.urlencode({"next": value}))
                self.assertEqual(page.code, 200)
                goes_to = attribute(page, "data-next")
                login = self.get_url("/login")
                self.assertEqual(
                    urllib.parse.urlsplit(urllib.parse.urljoin(login, goes_to)).netloc,
                    urllib.parse.urlsplit(login).netloc,
                    goes_to,
                )


class PageRedirectTest(HankoTestCase):
    def get_app(self) -> tornado.web.Application:
        app: tornado.web.Application = load_server().make_app(self.hanko.settings(), CorsSettings(origins=(ORIGIN,)))
        return app

    def test_only_get_and_head_are_sent_to_log_in_and_the_token_never_travels(self) -> None:
        expired = self.hanko.mint(lifetime=-60)
        for method in ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"):
            body = b"{}" if method in ("POST", "PUT", "PATCH") else None
            headers = {"Cookie": f"hanko={expired}", "Sec-Fetch-Site": "same-origin"}
            with self.subTest(method=method):
                response = self.fetch(
                    "/app?x=1", method=method, headers=headers, body=body, follow_redirects=False, raise_error=False
                )
                if method in ("GET", "HEAD"):
                    self.assertEqual(response.code, 302)
                    self.assertEqual(response.headers["Location"], "/login?next=%2Fapp%3Fx%3D1")
                else:
                    self.assertIn(response.code, (401, 405))
                    self.assertNotIn("Location", response.headers)
                self.assertNotIn(expired, str(response.headers) + response.body.decode())
