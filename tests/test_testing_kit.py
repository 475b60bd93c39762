"""The testing kit's helpers: HankoTestCase's WebSocket helper and cookie, FakeHanko on a chosen port."""

from __future__ import annotations

import asyncio
import json
import socket

import tornado.web
import tornado.websocket
from tornado.httpclient import AsyncHTTPClient, HTTPClientError
from tornado.testing import AsyncTestCase, gen_test

from hanko_tornado import CorsSettings, HankoAuthMixin
from hanko_tornado.testing import FakeHanko, HankoTestCase, SocketEnd
from hanko_tornado.websocket import CLOSE_SESSION_ENDED, CLOSE_TOKEN_EXPIRED, SUBPROTOCOL, HankoWebSocketMixin

FRONTEND = "http://localhost:3000"
CLOSE_ASKED = 4321


class Feed(HankoWebSocketMixin, tornado.websocket.WebSocketHandler):
    hanko_watch_interval = 0.05

    def open(self) -> None:
        self.write_message(f"hello {self.hanko_user.id}")

    def on_message(self, message: str | bytes) -> None:
        if message == "bye":
            self.close(CLOSE_ASKED, "asked to")
        else:
            self.write_message(message)


class Profile(HankoAuthMixin, tornado.web.RequestHandler):
    def get(self) -> None:
        self.write({"user_id": self.hanko_user.id})


class SocketHelperTest(HankoTestCase):
    cookie_name = "session"

    def get_app(self) -> tornado.web.Application:
        return tornado.web.Application(
            [(r"/ws", Feed), (r"/profile", Profile)],
            hanko=self.hanko.settings(cookie_name=self.cookie_name),
            cors=CorsSettings(origins=[FRONTEND]),
        )

    @gen_test(timeout=120)
    async def test_each_way_of_carrying_the_token_opens_the_socket(self) -> None:
        for via in ("subprotocol", "cookie", "bearer"):
            user = f"6b0d9f2e-4f7a-4c1e-9a55-1b2c3d4e5f6{len(via) % 10}"
            socket_ = await self.websocket_connect("/ws", self.hanko.mint(user), via=via, origin=FRONTEND)
            self.assertEqual(await self.websocket_read(socket_), f"hello {user}", via)
            self.assertEqual(socket_.selected_subprotocol, SUBPROTOCOL if via == "subprotocol" else None)
            socket_.write_message("ping")
            self.assertEqual(await self.websocket_read(socket_), "ping")
            socket_.write_message("bye")
            self.assertEqual(await self.websocket_closed(socket_), SocketEnd([], CLOSE_ASKED, "asked to"))

    @gen_test(timeout=120)
    async def test_the_cookie_is_the_one_the_settings_name(self) -> None:
        # The application reads "session": a "hanko" cookie would be no token at all.
        socket_ = await self.websocket_connect("/ws", self.hanko.mint(), via="cookie")
        self.assertTrue(str(await self.websocket_read(socket_)).startswith("hello "))
        socket_.close()

    @gen_test(timeout=120)
    async def test_refused_handshakes_raise_with_the_status(self) -> None:
        for token, origin, status in (
            (None, FRONTEND, 401),
            ("not.a.token", FRONTEND, 401),
            (self.hanko.mint(), "https://evil.example", 403),
        ):
            with self.assertRaises(HTTPClientError) as refused:
                await self.websocket_connect("/ws", token, origin=origin)
            self.assertEqual(refused.exception.code, status)

    @gen_test(timeout=120)
    async def test_close_codes_and_the_messages_before_them(self) -> None:
        token = self.hanko.mint(lifetime=2)
        socket_ = await self.websocket_connect("/ws", token, via="cookie")
        end = await self.websocket_closed(socket_)
        self.assertEqual((len(end.messages), end.code, end.reason), (1, CLOSE_TOKEN_EXPIRED, "token expired"))

    @gen_test(timeout=120)
    async def test_read_gives_none_once_closed_and_a_silent_socket_times_out(self) -> None:
        socket_ = await self.websocket_connect("/ws", self.hanko.mint())
        await self.websocket_read(socket_)
        with self.assertRaises(asyncio.TimeoutError):
            await self.websocket_read(socket_, timeout=0.2)  # nothing was sent: no wait is long enough
        socket_.write_message("bye")
        self.assertIsNone(await self.websocket_read(socket_))
        self.assertEqual(socket_.close_code, CLOSE_ASKED)
        socket_.close()

    def test_fetch_with_token_sends_the_cookie_the_settings_name(self) -> None:
        # Regression: the cookie was always "hanko", so this answered 401 missing token.
        token = self.hanko.mint("6b0d9f2e-4f7a-4c1e-9a55-1b2c3d4e5f60")
        response = self.fetch_with_token("/profile", token, cookie=True)
        self.assertEqual(json.loads(response.body), {"user_id": "6b0d9f2e-4f7a-4c1e-9a55-1b2c3d4e5f60"})
        self.assertEqual(self.hanko_cookie_name(), self.cookie_name)


class DefaultCookieTest(SocketHelperTest):
    cookie_name = "hanko"


class SessionEndTest(HankoTestCase):
    def get_app(self) -> tornado.web.Application:
        return tornado.web.Application([(r"/ws", Feed)], hanko=self.hanko.settings(session_check="validate"))

    @gen_test(timeout=120)
    async def test_a_logout_closes_with_4002(self) -> None:
        token = self.hanko.mint()
        socket_ = await self.websocket_connect("/ws", token, via="bearer")
        await self.websocket_read(socket_)
        self.hanko.revoke(next(iter(self.hanko.sessions)))
        self.assertEqual((await self.websocket_closed(socket_)).code, CLOSE_SESSION_ENDED)


class ChosenPortTest(AsyncTestCase):
    @gen_test(timeout=120)
    async def test_served_on_the_port_asked_for_on_loopback_only(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        hanko = FakeHanko(key_size=2048, port=port)
        hanko.start()
        try:
            self.assertEqual((hanko.port, hanko.api_url), (port, f"http://127.0.0.1:{port}"))
            keys = await AsyncHTTPClient().fetch(f"http://127.0.0.1:{port}/.well-known/jwks.json")
            self.assertEqual(len(json.loads(keys.body)["keys"]), 1)
            with self.assertRaises(OSError):
                FakeHanko(key_size=2048, port=port).start()  # taken
        finally:
            await hanko.stop()

    @gen_test(timeout=120)
    async def test_a_webhook_to_nowhere_is_599_not_an_exception(self) -> None:
        # Regression: raise_error=False still raises for a refused connection, so send_webhook raised.
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            closed = probe.getsockname()[1]
        hanko = FakeHanko(key_size=2048)
        status = await hanko.send_webhook(f"http://127.0.0.1:{closed}/hook", "user.delete", {})
        self.assertEqual((status, hanko.deliveries[-1][2]), (599, 599))
