"""WebSockets: a handshake authenticated by cookie or subprotocol, origins checked, sockets closed when sessions end."""

from __future__ import annotations

import asyncio
from typing import Any

import tornado.web
import tornado.websocket
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.testing import gen_test

from hanko_tornado import CorsSettings
from hanko_tornado.testing import HankoTestCase
from hanko_tornado.websocket import CLOSE_SESSION_ENDED, CLOSE_TOKEN_EXPIRED, SUBPROTOCOL, HankoWebSocketMixin

FRONTEND = "http://localhost:3000"


class EchoSocket(HankoWebSocketMixin, tornado.websocket.WebSocketHandler):
    hanko_watch_interval = 0.1

    def open(self) -> None:
        self.write_message(f"hello {self.hanko_user.id}")

    def on_message(self, message: str | bytes) -> None:
        self.write_message(message)


class SocketTestCase(HankoTestCase):
    settings_overrides: dict[str, Any] = {}  # noqa: RUF012 - read-only per class

    def get_app(self) -> tornado.web.Application:
        return tornado.web.Application(
            [(r"/ws", EchoSocket)],
            hanko=self.hanko.settings(**self.settings_overrides),
            cors=CorsSettings(origins=[FRONTEND]),
        )

    async def connect(
        self, *, origin: str | None = FRONTEND, cookie: str | None = None, protocols: list[str] | None = None
    ) -> tornado.websocket.WebSocketClientConnection:
        headers = {}
        if origin:
            headers["Origin"] = origin
        if cookie:
            headers["Cookie"] = f"hanko={cookie}"
        request = HTTPRequest(f"ws://127.0.0.1:{self.get_http_port()}/ws", headers=headers)
        return await tornado.websocket.websocket_connect(request, subprotocols=protocols)


class HandshakeTest(SocketTestCase):
    @gen_test
    async def test_cookie_from_an_allowed_origin(self) -> None:
        token = self.hanko.mint()
        connection = await self.connect(cookie=token)
        user_id = self.hanko.sessions[next(iter(self.hanko.sessions))].user_id
        self.assertEqual(await connection.read_message(), f"hello {user_id}")
        connection.write_message("ping")
        self.assertEqual(await connection.read_message(), "ping")
        connection.close()

    @gen_test
    async def test_foreign_origin_is_refused_even_with_the_cookie(self) -> None:
        token = self.hanko.mint()
        (await self.connect(origin=f"http://127.0.0.1:{self.get_http_port()}", cookie=token)).close()  # control
        with self.assertRaises(HTTPClientError) as refused:
            await self.connect(origin="https://evil.example", cookie=token)
        self.assertEqual(refused.exception.code, 403)

    @gen_test
    async def test_no_or_bad_token_is_refused(self) -> None:
        for kwargs in ({}, {"cookie": "forged"}, {"protocols": [SUBPROTOCOL, "forged"]}, {"protocols": [SUBPROTOCOL]}):
            with self.subTest(**kwargs), self.assertRaises(HTTPClientError) as refused:
                await self.connect(**kwargs)  # type: ignore[arg-type]
            self.assertEqual(refused.exception.code, 401)

    @gen_test
    async def test_token_as_a_subprotocol_echoes_the_marker_only(self) -> None:
        token = self.hanko.mint()
        connection = await self.connect(protocols=[SUBPROTOCOL, token])
        self.assertEqual(connection.selected_subprotocol, SUBPROTOCOL)
        self.assertEqual(connection.headers["Sec-WebSocket-Protocol"], SUBPROTOCOL)
        self.assertTrue((await connection.read_message() or "").startswith("hello "))
        connection.close()


class ClosingTest(SocketTestCase):
    settings_overrides = {"session_check": "validate", "session_check_ttl": 0.2, "leeway": 0}  # noqa: RUF012

    @gen_test(timeout=20)
    async def test_closed_when_the_token_expires(self) -> None:
        connection = await self.connect(protocols=[SUBPROTOCOL, self.hanko.mint(lifetime=4)])
        await connection.read_message()
        while await connection.read_message() is not None:
            pass
        self.assertEqual((connection.close_code, connection.close_reason), (CLOSE_TOKEN_EXPIRED, "token expired"))
        connection.close()  # closed by the server, but a client connection warns unless closed here too

    @gen_test(timeout=20)
    async def test_closed_when_the_session_ends(self) -> None:
        session = "5e551011-0000-4000-8000-00000000aaaa"
        connection = await self.connect(cookie=self.hanko.mint(session_id=session))
        other = await self.connect(cookie=self.hanko.mint())
        await connection.read_message()
        await other.read_message()
        self.hanko.revoke(session)
        self.assertIsNone(await asyncio.wait_for(connection.read_message(), 5))
        self.assertEqual((connection.close_code, connection.close_reason), (CLOSE_SESSION_ENDED, "session ended"))
        other.write_message("still here")
        self.assertEqual(await other.read_message(), "still here")
        other.close()
        connection.close()


class SlowPrepareSocket(EchoSocket):
    """Awaits more after authenticating, as a handler loading the user's profile does."""

    hanko_watch_interval = 0.02

    async def prepare(self) -> None:
        await super().prepare()
        await asyncio.sleep(0.1)


class SlowHandshakeTest(SocketTestCase):
    def get_app(self) -> tornado.web.Application:
        return tornado.web.Application(
            [(r"/ws", SlowPrepareSocket)],
            hanko=self.hanko.settings(**self.settings_overrides),
            cors=CorsSettings(origins=[FRONTEND]),
        )

    @gen_test(timeout=20)
    async def test_a_token_expired_within_the_leeway_is_closed_at_once(self) -> None:
        connection = await self.connect(protocols=[SUBPROTOCOL, self.hanko.mint(lifetime=-5)])
        messages = []
        while (message := await asyncio.wait_for(connection.read_message(), 3)) is not None:
            messages.append(message)
        self.assertEqual((connection.close_code, connection.close_reason), (CLOSE_TOKEN_EXPIRED, "token expired"))
        connection.close()


class SlowHandshakeSessionCheckTest(SlowHandshakeTest):
    settings_overrides = {"session_check": "validate", "session_check_ttl": 0.05}  # noqa: RUF012
    test_a_token_expired_within_the_leeway_is_closed_at_once = None  # type: ignore[assignment]

    @gen_test(timeout=20)
    async def test_an_ended_session_is_closed_though_the_handshake_took_longer_than_the_interval(self) -> None:
        session = "5e551011-0000-4000-8000-00000000bbbb"
        connection = await self.connect(cookie=self.hanko.mint(session_id=session))
        await connection.read_message()
        self.hanko.revoke(session)
        self.assertIsNone(await asyncio.wait_for(connection.read_message(), 5))
        self.assertEqual(connection.close_code, CLOSE_SESSION_ENDED)
        connection.close()


class HostileHandshakeTest(SocketTestCase):
    @gen_test
    async def test_an_origin_that_is_not_a_url_is_403_not_500(self) -> None:
        for origin in ("http://[", "https://[x]"):
            with self.subTest(origin=origin), self.assertRaises(HTTPClientError) as refused:
                await self.connect(origin=origin, cookie=self.hanko.mint())
            self.assertEqual(refused.exception.code, 403)
