"""Every token a request carries, tried as Hanko's middleware tries them: the bearer token first, then the cookie."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any, ClassVar

import tornado.web
import tornado.websocket
from tornado.httpclient import HTTPRequest
from tornado.testing import gen_test

from hanko_tornado import CorsHandler, CorsSettings, HankoAuthMixin, verifier_for
from hanko_tornado.candidates import HankoToken
from hanko_tornado.testing import HankoTestCase, SigningKey
from hanko_tornado.websocket import CLOSE_SESSION_ENDED, SUBPROTOCOL, HankoWebSocketMixin

FRONTEND = "http://localhost:3000"
FOREIGN = "https://evil.example"


class Handler(HankoAuthMixin, CorsHandler):
    runs: ClassVar[int] = 0

    def get(self) -> None:
        self.write({"id": self.hanko_user.id})

    def post(self) -> None:
        type(self).runs += 1
        self.write({"id": self.hanko_user.id})


class HeaderSourceHandler(Handler):
    """A token source of the application's own, added through the one hook."""

    def get_hanko_tokens(self, cookie_name: str) -> Iterator[HankoToken]:
        yield from super().get_hanko_tokens(cookie_name)
        token = self.request.headers.get("X-Session-Token")
        if token:
            yield HankoToken(token, sent_by_browser=False)


class Socket(HankoWebSocketMixin, tornado.websocket.WebSocketHandler):
    hanko_watch_interval = 0.05

    def open(self) -> None:
        self.write_message(self.hanko_user.id)


class HeaderSourceSocket(Socket):
    def get_hanko_tokens(self, cookie_name: str) -> Iterator[HankoToken]:
        yield from super().get_hanko_tokens(cookie_name)
        yield HankoToken(self.request.headers.get("X-Session-Token", ""), sent_by_browser=False)


class TokenOrderTestCase(HankoTestCase):
    settings_overrides: ClassVar[dict[str, Any]] = {}

    def get_app(self) -> tornado.web.Application:
        return tornado.web.Application(
            [(r"/api", Handler), (r"/own", HeaderSourceHandler), (r"/ws", Socket), (r"/own-ws", HeaderSourceSocket)],
            hanko=self.hanko.settings(refetch_interval=0.2, **self.settings_overrides),
            cors=CorsSettings(origins=[FRONTEND]),
            # The mixin's own check is what these tests look at; Tornado's protection (which refuses a foreign
            # bearer POST too, where Tornado has it) is tested in test_csrf.py and test_wildcard.py.
            cross_origin_protection=False,
        )

    def setUp(self) -> None:
        super().setUp()
        Handler.runs = 0
        self.ada = "aaaaaaaa-0000-4000-8000-00000000000a"
        self.cookie = self.hanko.mint(self.ada)

    def send(self, bearer: str | None, cookie: str | None, method: str = "GET", **headers: str) -> tuple[int, Any]:
        if bearer is not None:
            headers["Authorization"] = f"Bearer {bearer}"
        if cookie is not None:
            headers["Cookie"] = f"hanko={cookie}"
        body = "{}" if method == "POST" else None
        response = self.fetch("/api", method=method, body=body, headers=headers, raise_error=False)
        return response.code, json.loads(response.body)


class FallbackTest(TokenOrderTestCase):
    def test_an_expired_bearer_token_gives_way_to_a_valid_cookie(self) -> None:
        expired = self.hanko.mint(lifetime=-3600)
        self.assertEqual(self.send(expired, self.cookie), (200, {"id": self.ada}))
        for bad in ["", "not.a.token", self.hanko.mint(key=SigningKey.generate(key_size=2048))]:
            with self.subTest(bearer=bad[:10]):
                self.assertEqual(self.send(bad, self.cookie), (200, {"id": self.ada}))

    def test_a_request_that_fell_back_to_the_cookie_is_cookie_authenticated(self) -> None:
        expired = self.hanko.mint(lifetime=-3600)
        code, body = self.send(expired, self.cookie, "POST", Origin=FOREIGN, **{"Sec-Fetch-Site": "cross-site"})
        self.assertEqual((code, body["error"]), (403, "cross_origin_request"))
        self.assertEqual(Handler.runs, 0)
        self.assertEqual(self.send(expired, self.cookie, "POST", **{"Sec-Fetch-Site": "same-origin"})[0], 200)
        self.assertEqual(self.send(self.cookie, "not.a.token", "POST", Origin=FOREIGN)[0], 200, "the bearer won")

    def test_when_every_token_fails_the_first_ones_reason_is_answered(self) -> None:
        expired, foreign = self.hanko.mint(lifetime=-3600), self.hanko.mint(audience=["elsewhere"])
        code, body = self.send(expired, foreign)
        self.assertEqual((code, body["message"]), (401, "The session token was refused: token expired."))
        code, body = self.send(foreign, expired)
        self.assertEqual((code, body["message"]), (401, "The session token was refused: wrong audience."))

    def test_duplicate_session_cookies_stay_refused_behind_a_failing_bearer(self) -> None:
        other = self.hanko.mint()
        headers = {"Authorization": "Bearer not.a.token", "Cookie": f"hanko={self.cookie}; hanko={other}"}
        response = self.fetch("/api", headers=headers, raise_error=False)
        self.assertEqual(response.code, 401)
        self.assertEqual(self.send(None, f"{self.cookie}; hanko={other}")[1]["error"], "invalid_token")
        headers["Authorization"] = f"Bearer {self.cookie}"
        self.assertEqual(self.fetch("/api", headers=headers).code, 200, "a valid bearer never reads the cookies")

    def test_a_remembered_bearer_of_an_ended_session_gives_way_to_the_cookie(self) -> None:
        session = str(uuid.uuid4())
        bearer = self.hanko.mint(self.ada, session_id=session)
        self.assertEqual(self.send(bearer, None)[0], 200)
        verifier = verifier_for(self._app)
        self.io_loop.run_sync(lambda: verifier.revocations.end("session", session, 4102444800.0))
        self.assertEqual(self.send(bearer, None)[1]["message"], "The session token was refused: session ended.")
        self.assertEqual(self.send(bearer, self.cookie), (200, {"id": self.ada}))

    def test_unavailable_keys_for_one_token_are_a_503_only_when_none_verifies(self) -> None:
        self.assertEqual(self.send(self.cookie, None)[0], 200)  # the keys are held
        self.hanko.fault = "error"
        rotated = self.hanko.mint(key=self.hanko.rotate_key())  # a kid the held set lacks, endpoint failing
        self.assertEqual(self.send(rotated, self.cookie), (200, {"id": self.ada}))
        code, body = self.send(rotated, "not.a.token")
        self.assertEqual((code, body["error"]), (503, "keys_unavailable"))

    def test_a_source_added_through_the_hook_is_tried_after_the_others(self) -> None:
        token = self.hanko.mint(self.ada)
        response = self.fetch("/own", headers={"X-Session-Token": token})
        self.assertEqual(json.loads(response.body), {"id": self.ada})
        headers = {"X-Session-Token": token, "Authorization": "Bearer not.a.token", "Origin": FOREIGN}
        response = self.fetch("/own", method="POST", body="{}", headers=headers, raise_error=False)
        self.assertEqual(response.code, 200, "sent on purpose: no cross-origin check")


class SessionCheckFallbackTest(TokenOrderTestCase):
    settings_overrides: ClassVar[dict[str, Any]] = {"session_check": "validate"}

    def test_a_bearer_token_whose_session_ended_gives_way_to_a_live_cookie(self) -> None:
        session = str(uuid.uuid4())
        bearer = self.hanko.mint(self.ada, session_id=session)
        self.hanko.revoke(session)
        self.assertEqual(self.send(bearer, None)[1]["message"], "The session token was refused: session ended.")
        self.assertEqual(self.send(bearer, self.cookie), (200, {"id": self.ada}))


class SocketFallbackTest(TokenOrderTestCase):
    settings_overrides: ClassVar[dict[str, Any]] = {"session_check": "validate", "session_check_ttl": 0.05}

    async def connect(self, path: str, headers: dict[str, str], protocols: list[str] | None = None) -> Any:
        request = HTTPRequest(f"ws://127.0.0.1:{self.get_http_port()}{path}", headers={"Origin": FRONTEND, **headers})
        return await tornado.websocket.websocket_connect(request, subprotocols=protocols)

    @gen_test
    async def test_an_expired_subprotocol_token_gives_way_to_the_cookie_which_is_then_watched(self) -> None:
        session = str(uuid.uuid4())
        cookie = self.hanko.mint(self.ada, session_id=session)
        expired = self.hanko.mint(lifetime=-3600)
        connection = await self.connect("/ws", {"Cookie": f"hanko={cookie}"}, [SUBPROTOCOL, expired])
        self.assertEqual(await connection.read_message(), self.ada)
        self.hanko.revoke(session)
        self.assertIsNone(await connection.read_message())
        self.assertEqual(connection.close_code, CLOSE_SESSION_ENDED)
        connection.close()

    @gen_test
    async def test_the_watched_token_is_the_one_a_custom_source_gave(self) -> None:
        session = str(uuid.uuid4())
        token = self.hanko.mint(self.ada, session_id=session)
        connection = await self.connect("/own-ws", {"X-Session-Token": token})
        self.assertEqual(await connection.read_message(), self.ada)
        self.hanko.revoke(session)
        self.assertIsNone(await connection.read_message())
        self.assertEqual(connection.close_code, CLOSE_SESSION_ENDED)
        connection.close()
