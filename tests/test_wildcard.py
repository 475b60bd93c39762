"""``CorsSettings(origins=("*",), allow_credentials=False)``: any page may read answers, no page is trusted."""

from __future__ import annotations

import json
from typing import Any, ClassVar

import tornado.web
import tornado.websocket
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.testing import gen_test

from hanko_tornado import CorsHandler, CorsSettings, HankoAuthMixin
from hanko_tornado.testing import HankoTestCase
from hanko_tornado.websocket import HankoWebSocketMixin

FOREIGN = "https://evil.example"
LISTED = "https://app.example.com"


class Handler(HankoAuthMixin, CorsHandler):
    runs: ClassVar[int] = 0

    def get(self) -> None:
        self.write({"user_id": self.hanko_user.id})

    def post(self) -> None:
        type(self).runs += 1
        self.write({"user_id": self.hanko_user.id})


class Socket(HankoWebSocketMixin, tornado.websocket.WebSocketHandler):
    def open(self) -> None:
        self.write_message(self.hanko_user.id)


class WildcardTestCase(HankoTestCase):
    protection: ClassVar[bool] = False
    origins: ClassVar[tuple[str, ...]] = ("*",)

    def get_app(self) -> tornado.web.Application:
        return tornado.web.Application(
            [(r"/api", Handler), (r"/ws", Socket)],
            hanko=self.hanko.settings(),
            cors=CorsSettings(origins=self.origins, allow_credentials=False),
            cross_origin_protection=self.protection,
        )

    def setUp(self) -> None:
        super().setUp()
        Handler.runs = 0
        self.token = self.hanko.mint()

    def post(self, origin: str, *, cookie: bool = True) -> Any:
        credentials = {"Cookie": f"hanko={self.token}"} if cookie else {"Authorization": f"Bearer {self.token}"}
        headers = {**credentials, "Origin": origin, "Sec-Fetch-Site": "cross-site"}
        return self.fetch("/api", method="POST", body="{}", headers=headers, raise_error=False)

    async def open_socket(self, origin: str) -> tornado.websocket.WebSocketClientConnection:
        headers = {"Origin": origin, "Cookie": f"hanko={self.token}"}
        request = HTTPRequest(f"ws://127.0.0.1:{self.get_http_port()}/ws", headers=headers)
        return await tornado.websocket.websocket_connect(request)


class WildcardWithoutProtectionTest(WildcardTestCase):
    def test_a_cross_site_cookie_post_is_refused(self) -> None:
        response = self.post(FOREIGN)
        self.assertEqual((response.code, json.loads(response.body)["error"]), (403, "cross_origin_request"))
        self.assertEqual(Handler.runs, 0)

    def test_a_cross_site_bearer_post_and_any_pages_reads_still_work(self) -> None:
        response = self.post(FOREIGN, cookie=False)
        self.assertEqual(response.code, 200, response.body)
        self.assertEqual(response.headers["Access-Control-Allow-Origin"], "*")
        self.assertNotIn("Access-Control-Allow-Credentials", response.headers)
        read = self.fetch_with_token("/api", self.token, cookie=True, headers={"Origin": FOREIGN})
        self.assertEqual((read.code, read.headers["Access-Control-Allow-Origin"]), (200, "*"))

    @gen_test
    async def test_a_cross_site_page_cannot_open_a_cookie_socket(self) -> None:
        with self.assertRaises(HTTPClientError) as refused:
            await self.open_socket(FOREIGN)
        self.assertEqual(refused.exception.code, 403)


class WildcardWithProtectionTest(WildcardTestCase):
    protection: ClassVar[bool] = True

    def test_tornados_protection_trusts_no_origin_through_the_wildcard(self) -> None:
        for cookie in (True, False):
            with self.subTest(cookie=cookie):
                response = self.post(FOREIGN, cookie=cookie)
                self.assertEqual((response.code, json.loads(response.body)["error"]), (403, "cross_origin_request"))
        self.assertEqual(Handler.runs, 0)


class ListedBesideWildcardTest(WildcardTestCase):
    """An origin listed by name beside "*" is trusted; every other one is not."""

    protection: ClassVar[bool] = True
    origins: ClassVar[tuple[str, ...]] = ("*", LISTED)

    def test_only_the_listed_origin_is_trusted(self) -> None:
        self.assertEqual(self.post(LISTED).code, 200)
        self.assertEqual(self.post(FOREIGN).code, 403)
        self.assertEqual(Handler.runs, 1)

    @gen_test
    async def test_only_the_listed_origin_opens_a_socket(self) -> None:
        connection = await self.open_socket(LISTED)
        self.assertIsNotNone(await connection.read_message())
        connection.close()
        with self.assertRaises(HTTPClientError) as refused:
            await self.open_socket(FOREIGN)
        self.assertEqual(refused.exception.code, 403)
