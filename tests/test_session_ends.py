"""Ends that hold: through the leeway, through a gap in the Redis subscription; idle sockets never renew."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any, ClassVar

import tornado.web
import tornado.websocket
from redis_server import RedisServer
from support import captured_logs, memory_cache
from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.testing import gen_test

from hanko_tornado import HankoAuthMixin, TokenVerifier, verifier_for
from hanko_tornado.cache import cache_from_url, close_cache
from hanko_tornado.metrics import NO_METRICS
from hanko_tornado.sessions import SessionChecker
from hanko_tornado.testing import FakeHanko, HankoTestCase
from hanko_tornado.user import HankoUser
from hanko_tornado.webhooks import HankoWebhookHandler
from hanko_tornado.websocket import CLOSE_SESSION_ENDED, SUBPROTOCOL, HankoWebSocketMixin

SECRET = "e" * 32


class UserHandler(HankoAuthMixin, tornado.web.RequestHandler):
    def get(self) -> None:
        self.write({"id": self.hanko_user.id})


class Webhooks(HankoWebhookHandler):
    pass


class Socket(HankoWebSocketMixin, tornado.websocket.WebSocketHandler):
    hanko_watch_interval = 0.05

    def open(self) -> None:
        self.write_message("hello")


class EndsTestCase(HankoTestCase):
    settings_overrides: ClassVar[dict[str, Any]] = {}

    def hanko_settings(self) -> Any:
        return self.hanko.settings(**self.settings_overrides)

    def get_app(self) -> tornado.web.Application:
        return tornado.web.Application(
            [(r"/user", UserHandler), (r"/webhooks/hanko", Webhooks), (r"/ws", Socket)], hanko=self.hanko_settings()
        )

    def status(self, token: str) -> tuple[int, str]:
        response = self.fetch_with_token("/user", token, raise_error=False)
        body = json.loads(response.body)
        return response.code, body.get("message", "")

    async def connect(self, token: str) -> tornado.websocket.WebSocketClientConnection:
        request = HTTPRequest(f"ws://127.0.0.1:{self.get_http_port()}/ws")
        connection = await tornado.websocket.websocket_connect(request, subprotocols=[SUBPROTOCOL, token])
        self.assertEqual(await connection.read_message(), "hello")
        return connection


class LeewayTest(EndsTestCase):
    def test_an_ended_session_stays_refused_through_the_leeway(self) -> None:
        session = str(uuid.uuid4())
        token = self.hanko.mint(session_id=session, lifetime=-5)  # past exp, within the 30 s leeway
        self.assertEqual(self.status(token)[0], 200)
        self.hanko.register_webhook(self.get_url("/webhooks/hanko"))
        self.hanko.revoke(session)  # the webhook's expires_at is the token's exp, 5 s ago
        self.io_loop.run_sync(self.hanko.webhooks_sent)
        self.assertEqual(self.hanko.deliveries[-1][2], 200)
        self.assertEqual(self.status(token), (401, "The session token was refused: session ended."))


class RedisTestCase(EndsTestCase):
    def setUp(self) -> None:
        self.redis = RedisServer()
        self.redis.start()
        self.cache = cache_from_url(self.redis.url)
        super().setUp()

    def tearDown(self) -> None:
        super().tearDown()
        self.redis.stop()

    def hanko_settings(self) -> Any:
        return self.hanko.settings(cache=self.cache, cache_secret=SECRET, **self.settings_overrides)


class SharedLeewayTest(RedisTestCase):
    def test_the_shared_record_lives_until_expires_at_plus_leeway(self) -> None:
        session = str(uuid.uuid4())
        verifier = verifier_for(self._app)
        self.io_loop.run_sync(lambda: verifier.revocations.end("session", session, time.time() + 10))
        key = f"hanko_tornado:ended:{self.hanko.api_url}:records"  # the table of ends, as long as its longest
        self.assertIsNotNone(self.redis.call("HGET", key, f"session:{session}"))
        ttl = self.redis.call("TTL", key)
        assert isinstance(ttl, int)
        self.assertTrue(30 < ttl <= 41, f"TTL {ttl}: 10 s to expires_at, and the 30 s leeway")


class MissedEndTest(RedisTestCase):
    @gen_test(timeout=60)
    async def test_a_socket_learns_of_an_end_published_while_its_process_was_not_listening(self) -> None:
        session = str(uuid.uuid4())
        connection = await self.connect(self.hanko.mint(session_id=session))
        deadline = time.monotonic() + 20
        while self.redis.command("PUBSUB", "CHANNELS").startswith(b"*0"):  # listening since the handshake
            self.assertLess(time.monotonic(), deadline, "never subscribed")
            await asyncio.sleep(0.02)
        with captured_logs() as lines:
            self.redis.stop()
            while not any("stopped hearing of sessions" in line for line in lines):
                self.assertLess(time.monotonic(), deadline, "the subscription never failed")
                await asyncio.sleep(0.02)
        self.redis.start()
        # Another process (a second verifier on the same Redis) ends the session while this one does not listen.
        other = TokenVerifier(self.hanko_settings())
        try:
            await other.revocations.end("session", session, time.time() + 600)
        finally:
            await other.close()
        message = await asyncio.wait_for(connection.read_message(), 30)  # resubscribed after its 5 s back-off
        self.assertIsNone(message)
        self.assertEqual((connection.close_code, connection.close_reason), (CLOSE_SESSION_ENDED, "session ended"))
        connection.close()
        await close_cache(self.cache)


def _user(session: str) -> HankoUser:
    return HankoUser.from_claims({"sub": str(uuid.uuid4()), "session_id": session, "exp": time.time() + 600})


class IdleSocketTest(EndsTestCase):
    settings_overrides: ClassVar[dict[str, Any]] = {"session_check": "renew", "session_check_ttl": 0.1}

    def make_fake_hanko(self) -> FakeHanko:
        return FakeHanko(key_size=self.hanko_key_size, idle_timeout=1.0)

    @gen_test(timeout=60)
    async def test_an_idle_socket_never_renews_its_session(self) -> None:
        connection = await self.connect(self.hanko.mint())
        self.assertEqual(self.hanko.renewals, 1, "the handshake is a request: it renews")
        message = await asyncio.wait_for(connection.read_message(), 30)  # idle past the 1 s idle timeout
        self.assertIsNone(message)
        self.assertEqual(connection.close_code, CLOSE_SESSION_ENDED)
        self.assertEqual(self.hanko.renewals, 1, "the socket's re-checks were passive")
        self.assertGreater(self.hanko.validations, 1)
        connection.close()

    @gen_test(timeout=60)
    async def test_requests_still_renew_beside_an_open_socket(self) -> None:
        token = self.hanko.mint()
        connection = await self.connect(token)
        validations = self.hanko.validations
        deadline = time.monotonic() + 20
        while self.hanko.validations < validations + 2:  # the socket re-checked, passively
            self.assertLess(time.monotonic(), deadline)
            await asyncio.sleep(0.02)
        response = await AsyncHTTPClient().fetch(self.get_url("/user"), headers={"Authorization": f"Bearer {token}"})
        self.assertEqual(response.code, 200)
        self.assertEqual(self.hanko.renewals, 2, "a passive answer does not stand in for a renewing one")
        connection.close()


class _Failing:
    """An HTTP client whose every fetch fails with an exception that has no message, as a bare timeout does."""

    async def fetch(self, *args: Any, **kwargs: Any) -> Any:
        raise asyncio.TimeoutError()

    def close(self) -> None:
        pass


class FailureLogTest(HankoTestCase):
    def get_app(self) -> tornado.web.Application:
        return tornado.web.Application([])

    @gen_test
    async def test_a_failure_with_no_message_is_named_by_its_class(self) -> None:
        settings = self.hanko.settings(session_check="validate", session_check_failure="open")
        checker = SessionChecker(settings, cache=memory_cache(), recorder=NO_METRICS)
        checker.get_http_client = lambda: _Failing()  # type: ignore[assignment,return-value,method-assign]
        with captured_logs() as lines:
            self.assertIsNone(await checker.check("x", _user(str(uuid.uuid4()))))
        failures = [line for line in lines if "Hanko session validation failed" in line]
        self.assertEqual(len(failures), 1, lines)
        self.assertIn("(TimeoutError)", failures[0])
