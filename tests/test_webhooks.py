"""Hanko's webhooks: verified as Hanko signs them, handed on once, and sessions ended at once."""

from __future__ import annotations

import asyncio
import base64
import json
import string
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
from hanko_tornado.deliveries import Deliveries
from hanko_tornado.testing import FakeHanko, HankoTestCase, SigningKey
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
        self.hanko.register_webhook(self.get_url("/webhooks/hanko"), ("session.delete", "user"))

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


def respelled(token: str) -> str:
    """``token`` with its signature's last base64url character written another way that decodes to the same bytes."""
    head, _, signature = token.rpartition(".")
    alphabet = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"
    assert len(signature) % 4 in (2, 3), "the last character carries unused bits"
    return f"{head}.{signature[:-1]}{alphabet[alphabet.index(signature[-1]) ^ 1]}"  # flips the lowest, unused, bit


def signature_bytes(token: str) -> bytes:
    signature = token.rpartition(".")[2]
    return base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))


class ReplayTest(WebhookTestCase):
    def test_a_respelled_signature_is_a_replay(self) -> None:
        token = self.hanko.mint_webhook("user.create", {"id": str(uuid.uuid4())})
        again = respelled(token)
        self.assertNotEqual(again, token)
        self.assertEqual(signature_bytes(again), signature_bytes(token), "the same signature, spelled otherwise")
        self.assertEqual(self.post({"token": token, "event": "user.create"}), (200, {"status": "accepted"}))
        code, _ = self.post({"token": again, "event": "user.create"})
        # A replay (200), or refused as non-canonical base64url (401) where the token parser refuses that.
        self.assertIn(code, (200, 401))
        self.assertEqual(len(RecordingWebhooks.events), 1, "handed on once")

    def test_the_replay_record_knows_a_token_by_what_hanko_signed(self) -> None:
        token = self.hanko.mint_webhook("user.create", {"id": str(uuid.uuid4())})
        deliveries, until = Deliveries(), time.time() + 300
        self.assertTrue(deliveries.first_time("hooks.Users", token, until))
        self.assertFalse(deliveries.first_time("hooks.Users", respelled(token), until))
        self.assertFalse(deliveries.first_time("hooks.Users", token, until))
        self.assertTrue(deliveries.first_time("hooks.Deletions", respelled(token), until), "another endpoint")


class UserEvents(HankoWebhookHandler):
    events: ClassVar[list[str]] = []

    async def on_hanko_event(self, event: str, data: Mapping[str, Any]) -> None:
        self.events.append(event)


class DeletionEvents(UserEvents):
    events: ClassVar[list[str]] = []


class TwoEndpointsTest(HankoTestCase):
    """Hanko posts one token per event to every hook subscribed to it: each endpoint hands it on once."""

    def get_app(self) -> tornado.web.Application:
        return tornado.web.Application(
            [(r"/hooks/users", UserEvents), (r"/hooks/deletions", DeletionEvents)], hanko=self.hanko.settings()
        )

    def setUp(self) -> None:
        super().setUp()
        UserEvents.events, DeletionEvents.events = [], []

    def test_both_endpoints_receive_one_event_once(self) -> None:
        self.hanko.register_webhook(self.get_url("/hooks/users"), ("user",))
        self.hanko.register_webhook(self.get_url("/hooks/deletions"), ("user.delete",))
        self.hanko.fire_webhook("user.delete", {"id": str(uuid.uuid4())})
        self.io_loop.run_sync(self.hanko.webhooks_sent)
        self.assertEqual([code for _, _, code in self.hanko.deliveries], [200, 200])
        self.assertEqual((UserEvents.events, DeletionEvents.events), (["user.delete"], ["user.delete"]))

        token = self.hanko.mint_webhook("user.delete", {"id": str(uuid.uuid4())})
        for _ in range(2):
            for path in ("/hooks/users", "/hooks/deletions"):
                send = self.hanko.send_webhook(self.get_url(path), "user.delete", {}, token=token)
                self.assertEqual(self.io_loop.run_sync(lambda send=send: send), 200)  # type: ignore[misc]
        self.assertEqual((len(UserEvents.events), len(DeletionEvents.events)), (2, 2), "each once, replays not")


class SessionLimitTest(WebhookTestCase):
    @gen_test
    async def test_the_sixth_login_of_a_user_ends_the_first_session_everywhere(self) -> None:
        user = str(uuid.uuid4())
        tokens = [self.hanko.mint(user) for _ in range(5)]

        async def status(token: str) -> int:
            headers = {"Authorization": f"Bearer {token}"}
            return (await self.http_client.fetch(self.get_url("/user"), headers=headers, raise_error=False)).code

        self.assertEqual([await status(token) for token in tokens], [200] * 5)  # each remembered from now on
        request = HTTPRequest(
            f"ws://127.0.0.1:{self.get_http_port()}/ws", headers={"Authorization": f"Bearer {tokens[0]}"}
        )
        connection = await tornado.websocket.websocket_connect(request)
        self.assertEqual(await connection.read_message(), "hello")
        tokens.append(self.hanko.mint(user))  # Hanko's session.limit is 5: the oldest session goes
        await self.hanko.webhooks_sent()
        self.assertEqual(self.hanko.deliveries[-1][1:], ("session.delete.passive.limit", 200))
        self.assertEqual([await status(token) for token in tokens], [401] + [200] * 5)
        self.assertIsNone(await connection.read_message())
        self.assertEqual(connection.close_code, CLOSE_SESSION_ENDED)
        self.assertEqual(self.hanko.validations, 0, "ended through the webhook, with the session check off")
        connection.close()


class PatientWebhooks(RecordingWebhooks):
    hanko_verify_timeout = 0.3


class SwitchOffTest(WebhookTestCase):
    """Hanko switches a hook off after more than five failed deliveries in a row: answer 2xx wherever one can."""

    settings_overrides: ClassVar[dict[str, Any]] = {"jwks_min_ttl": 0, "refetch_interval": 0.2, "jwks_timeout": 15}

    def make_fake_hanko(self) -> FakeHanko:
        return FakeHanko(key_size=self.hanko_key_size, max_age=1)

    def get_app(self) -> tornado.web.Application:
        app = super().get_app()
        app.add_handlers(r".*", [(r"/webhooks/patient", PatientWebhooks)])
        return app

    def test_stale_keys_in_the_grace_time_still_verify_webhooks(self) -> None:
        self.assertEqual(self.send("user.create", {"id": str(uuid.uuid4())}), 200)
        self.io_loop.run_sync(lambda: asyncio.sleep(1.3))  # past the key set's TTL (max-age=1)
        self.hanko.fault = "error"
        with captured_logs() as lines:
            self.assertEqual(self.send(LOGOUT, {"id": str(uuid.uuid4())}), 200)
        self.assertEqual(len(RecordingWebhooks.events), 2)
        self.assertFalse([line for line in lines if "failed delivery" in line])

    def test_a_failure_answer_is_a_warning_that_hanko_counts_it(self) -> None:
        forged = self.hanko.mint_webhook(LOGOUT, {"id": "x"}, key=SigningKey.generate(key_size=2048))
        with captured_logs() as lines:
            self.assertEqual(self.post(b"not json")[0], 400)
            self.assertEqual(self.post({"token": forged, "event": LOGOUT})[0], 401)
            self.assertEqual(self.fetch("/webhooks/hanko").code, 405)  # not Hanko: it only POSTs
        warnings = [line for line in lines if "WARNING" in line and "hanko_tornado" in line]
        self.assertEqual(len(warnings), 2, lines)
        for warning, (status, reason) in zip(warnings, [(400, "malformed_body"), (401, "unknown_key")], strict=True):
            self.assertIn(f"with {status} ({reason}): Hanko counts it as a failed delivery", warning)
            self.assertIn("more than 5 failures in a row", warning)
        self.assertFalse(any(forged.rpartition(".")[2][-30:] in line for line in lines), "no part of a token")

    def test_the_answer_comes_before_hankos_10_second_timeout_while_keys_do_not(self) -> None:
        self.hanko.fault, self.hanko.slow_seconds = "slow", 16  # past jwks_timeout (15 s), past Hanko's 10 s
        body = json.dumps({"token": self.hanko.mint_webhook("user.create", {"id": "u"}), "event": "user.create"})
        started = time.monotonic()
        with captured_logs() as lines:
            response = self.fetch("/webhooks/patient", method="POST", body=body, raise_error=False, request_timeout=30)
        self.assertLess(time.monotonic() - started, 10, "answered before Hanko gives up")
        self.assertEqual((response.code, json.loads(response.body)["error"]), (503, "keys_unavailable"))
        self.assertTrue([line for line in lines if "with 503 (timeout): Hanko counts it" in line], lines)
        self.assertEqual(RecordingWebhooks.events, [])
