"""Hanko's webhooks: verified as Hanko signs them, handed on once, and sessions ended at once."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from typing import Any, ClassVar

import tornado.web
import tornado.websocket
from support import captured_logs
from tornado.httpclient import HTTPRequest
from tornado.testing import gen_test

from hanko_tornado import HankoAuthMixin
from hanko_tornado.testing import HankoTestCase, SigningKey
from hanko_tornado.webhooks import HankoWebhookHandler
from hanko_tornado.websocket import CLOSE_SESSION_ENDED, HankoWebSocketMixin

LOGOUT = "session.delete.explicit.logout"


class RecordingWebhooks(HankoWebhookHandler):
    events: ClassVar[list[tuple[str, Mapping[str, Any]]]] = []

    async def on_hanko_event(self, event: str, data: Mapping[str, Any]) -> None:
        self.events.append((event, data))


class UserHandler(HankoAuthMixin, tornado.web.RequestHandler):
    def get(self) -> None:
        self.write({"id": self.hanko_user.id})


class Socket(HankoWebSocketMixin, tornado.websocket.WebSocketHandler):
    hanko_watch_interval = 0.05

    def open(self) -> None:
        self.write_message("hello")


class WebhookTestCase(HankoTestCase):
    settings_overrides: ClassVar[dict[str, Any]] = {}

    def get_app(self) -> tornado.web.Application:
        return tornado.web.Application(
            [(r"/webhooks/hanko", RecordingWebhooks), (r"/user", UserHandler), (r"/ws", Socket)],
            hanko=self.hanko.settings(**self.settings_overrides),
        )

    def setUp(self) -> None:
        super().setUp()
        RecordingWebhooks.events = []
        self.hanko.register_webhook(self.get_url("/webhooks/hanko"))

    def post(self, body: Any) -> tuple[int, dict[str, Any]]:
        raw = body if isinstance(body, (bytes, str)) else json.dumps(body)
        response = self.fetch("/webhooks/hanko", method="POST", body=raw, raise_error=False)
        return response.code, json.loads(response.body)

    def send(self, event: str, data: Mapping[str, Any], **kwargs: Any) -> int:
        return self.io_loop.run_sync(
            lambda: self.hanko.send_webhook(self.get_url("/webhooks/hanko"), event, data, **kwargs)
        )

    def status(self, token: str) -> int:
        return self.fetch_with_token("/user", token, raise_error=False).code


class VerificationTest(WebhookTestCase):
    def test_a_webhook_as_hanko_sends_it_is_accepted_and_handed_on(self) -> None:
        data = {"id": str(uuid.uuid4()), "emails": [{"address": "ada@example.com"}]}
        self.assertEqual(self.send("user.create", data), 200)
        ((event, received),) = RecordingWebhooks.events
        self.assertEqual(event, "user.create")
        self.assertEqual(json.loads(json.dumps(received)), data, "the data, deeply frozen (arrays as tuples)")
        with self.assertRaises(TypeError):
            received["id"] = "changed"  # type: ignore[index]
        self.assertEqual(
            self.post({"token": self.hanko.mint_webhook("user.update", data), "event": "user.update"}),
            (200, {"status": "accepted"}),
        )

    def test_forged_webhooks_get_401_and_no_event(self) -> None:
        data = {"id": str(uuid.uuid4())}
        forged = {
            "foreign key": (self.hanko.mint_webhook(LOGOUT, data, key=SigningKey.generate(key_size=2048)), LOGOUT),
            "expired": (self.hanko.mint_webhook(LOGOUT, data, lifetime=-3600), LOGOUT),
            "wrong sub": (self.hanko.mint_webhook(LOGOUT, data, claims={"sub": str(uuid.uuid4())}), LOGOUT),
            "evt not the event": (self.hanko.mint_webhook("user.create", data), LOGOUT),
            "no data": (self.hanko.mint_webhook(LOGOUT, data, claims={"data": None}), LOGOUT),
            "no exp": (self.hanko.mint_webhook(LOGOUT, data, claims={"exp": None}), LOGOUT),
            "wrong audience": (self.hanko.mint_webhook(LOGOUT, data, audience=["evil.example"]), LOGOUT),
            "a session token": (self.hanko.mint(), LOGOUT),
            "alg none": ("eyJhbGciOiJub25lIn0.eyJzdWIiOiJoYW5rbyB3ZWJob29rcyJ9.", LOGOUT),
        }
        with captured_logs() as lines:
            for name, (token, event) in forged.items():
                with self.subTest(name):
                    code, body = self.post({"token": token, "event": event})
                    self.assertEqual((code, body["error"]), (401, "invalid_token"))
        self.assertEqual(RecordingWebhooks.events, [])
        for token, _ in forged.values():
            self.assertFalse(any(token[-30:] in line for line in lines), "no part of a token is logged")

    def test_malformed_bodies_get_400(self) -> None:
        token = self.hanko.mint_webhook("user.create", {"id": "x"})
        for body in (
            b"not json",
            b"[]",
            b"null",
            {"event": "user.create"},
            {"token": token},
            {"token": token, "event": 7},
            {"token": 7, "event": "user.create"},
            {"token": token, "event": "e" * 500},
            b"[" * 100_000,
            b'{"token": "' + b"a" * 2_000_000 + b'"}',
        ):
            with self.subTest(body=str(body)[:40]):
                code, answer = self.post(body)
                self.assertEqual((code, answer["error"]), (400, "malformed_webhook"))
        self.assertEqual(RecordingWebhooks.events, [])

    def test_keys_unavailable_is_503(self) -> None:
        self.hanko.fault = "error"
        code, body = self.post({"token": self.hanko.mint_webhook("user.create", {}), "event": "user.create"})
        self.assertEqual((code, body["error"]), (503, "keys_unavailable"))

    def test_a_replay_is_answered_200_and_handed_on_once(self) -> None:
        token = self.hanko.mint_webhook("user.create", {"id": "u"})
        self.assertEqual([self.post({"token": token, "event": "user.create"})[0] for _ in range(3)], [200] * 3)
        self.assertEqual(len(RecordingWebhooks.events), 1)


class IssuerConfiguredTest(WebhookTestCase):
    settings_overrides: ClassVar[dict[str, Any]] = {"issuer": "https://auth.example.com"}

    def test_webhooks_carry_no_issuer_and_are_still_accepted(self) -> None:
        self.assertEqual(self.send("user.create", {"id": "u"}), 200)


class EndedSessionTest(WebhookTestCase):
    def test_logout_webhook_ends_the_session_at_once_without_asking_hanko(self) -> None:
        session = str(uuid.uuid4())
        token, other, same_session = self.hanko.mint(session_id=session), self.hanko.mint(), None
        self.assertEqual((self.status(token), self.status(token), self.status(other)), (200, 200, 200))
        same_session = self.hanko.mint(session_id=session)
        self.hanko.revoke(session)  # fires session.delete.explicit.logout to the app, as Hanko does
        self.io_loop.run_sync(self.hanko.webhooks_sent)
        self.assertEqual(self.hanko.deliveries[-1][1:], (LOGOUT, 200))
        response = self.fetch_with_token("/user", token, raise_error=False)
        self.assertEqual(
            (response.code, json.loads(response.body)["message"]),
            (401, "The session token was refused: session ended."),
        )
        self.assertEqual(self.status(same_session), 401, "a token of the session never seen before")
        self.assertEqual(self.status(other), 200)
        self.assertEqual(self.hanko.validations, 0, "no call to Hanko per request")
        self.assertEqual(RecordingWebhooks.events[0][0], LOGOUT)

    def test_user_delete_ends_every_session_of_the_user(self) -> None:
        user = str(uuid.uuid4())
        first, second, other = self.hanko.mint(user), self.hanko.mint(user), self.hanko.mint()
        self.assertEqual([self.status(t) for t in (first, second, other)], [200] * 3)
        self.assertEqual(self.send("user.delete", {"id": user}), 200)
        self.assertEqual([self.status(t) for t in (first, second, other)], [401, 401, 200])

    def test_other_events_end_nothing(self) -> None:
        token = self.hanko.mint()
        user = self.hanko.sessions[next(iter(self.hanko.sessions))]
        for event in ("session.create", "user.update", "user.login", "email.send"):
            self.send(event, user.as_webhook_data())
        self.assertEqual(self.status(token), 200)

    @gen_test
    async def test_an_open_socket_is_closed_when_its_session_ends(self) -> None:
        session = str(uuid.uuid4())
        request = HTTPRequest(
            f"ws://127.0.0.1:{self.get_http_port()}/ws",
            headers={"Authorization": f"Bearer {self.hanko.mint(session_id=session)}"},
        )
        connection = await tornado.websocket.websocket_connect(request)
        self.assertEqual(await connection.read_message(), "hello")
        started = time.monotonic()
        self.hanko.revoke(session)
        await self.hanko.webhooks_sent()
        self.assertIsNone(await connection.read_message())
        self.assertEqual(connection.close_code, CLOSE_SESSION_ENDED)
        self.assertLess(time.monotonic() - started, 15, "closed by the webhook, not by the token's expiry")
        connection.close()
