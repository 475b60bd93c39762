"""The testing kit: FakeHanko answers as Hanko does, mints Hanko-shaped tokens, and fails on demand."""

from __future__ import annotations

import asyncio
import json
import re
import time
import unittest
import uuid
from typing import Any

import jwt
import tornado.web
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPResponse
from tornado.httpserver import HTTPServer
from tornado.testing import AsyncTestCase, bind_unused_port, gen_test

from hanko_tornado.session_protocol import parse_rfc3339
from hanko_tornado.testing import FakeHanko, SigningKey
from hanko_tornado.testing.sessions import rfc3339


class FakeHankoTest(AsyncTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.hanko = FakeHanko(key_size=2048, path="/tenant-1/")
        self.hanko.start()
        self.client = AsyncHTTPClient()

    def tearDown(self) -> None:
        self.io_loop.run_sync(self.hanko.stop)
        super().tearDown()

    async def get(self, path: str, **kwargs: object) -> HTTPResponse:
        return await self.client.fetch(f"{self.hanko.api_url}{path}", raise_error=False, **kwargs)

    @gen_test
    async def test_jwks_as_hanko_serves_it(self) -> None:
        self.assertTrue(self.hanko.api_url.endswith("/tenant-1"))
        response = await self.get("/.well-known/jwks.json")
        self.assertEqual(response.headers["Cache-Control"], "max-age=600")
        (key,) = json.loads(response.body)["keys"]
        self.assertEqual(
            (key["kty"], key["alg"], key["use"], key["kid"]), ("RSA", "RS256", "sig", self.hanko.keys[0].kid)
        )
        self.assertEqual(sorted(key), ["alg", "e", "kid", "kty", "n", "use"], "exactly Hanko's members")
        self.assertEqual(self.hanko.jwks_fetches, 1)

    @gen_test
    async def test_minted_token_is_hanko_shaped(self) -> None:
        before = time.time()
        token = self.hanko.mint(
            "aaaaaaaa-0000-4000-8000-000000000012",
            email="ada@example.com",
            username="ada",
            session_id="5e551011-0000-4000-8000-000000000001",
            lifetime=60,
        )
        header = jwt.get_unverified_header(token)
        self.assertEqual((header["alg"], header["typ"], header["kid"]), ("RS256", "JWT", self.hanko.keys[0].kid))
        claims = jwt.decode(token, options={"verify_signature": False})
        self.assertEqual(claims["sub"], "aaaaaaaa-0000-4000-8000-000000000012")
        self.assertEqual(claims["aud"], ["localhost"])
        self.assertEqual(claims["email"], {"address": "ada@example.com", "is_primary": True, "is_verified": True})
        self.assertEqual(
            (claims["username"], claims["session_id"], claims["amr"]),
            ("ada", "5e551011-0000-4000-8000-000000000001", ["passkey"]),
        )
        self.assertTrue(int(before) + 60 <= claims["exp"] <= time.time() + 60, claims["exp"])
        self.assertNotIn("iss", claims)

    @gen_test
    async def test_session_validation_get_and_post(self) -> None:
        token = self.hanko.mint(
            "aaaaaaaa-0000-4000-8000-000000000012", session_id="5e551011-0000-4000-8000-000000000001"
        )
        by_header = json.loads(
            (await self.get("/sessions/validate", headers={"Authorization": f"Bearer {token}"})).body
        )
        self.assertTrue(by_header["is_valid"])
        self.assertEqual(by_header["claims"]["subject"], "aaaaaaaa-0000-4000-8000-000000000012")
        self.assertEqual(by_header["claims"]["session_id"], "5e551011-0000-4000-8000-000000000001")
        by_cookie = json.loads((await self.get("/sessions/validate", headers={"Cookie": f"hanko={token}"})).body)
        self.assertTrue(by_cookie["is_valid"])
        posted = await self.get("/sessions/validate", method="POST", body=json.dumps({"session_token": token}))
        self.assertTrue(json.loads(posted.body)["is_valid"])
        self.hanko.revoke("5e551011-0000-4000-8000-000000000001")
        posted = await self.get("/sessions/validate", method="POST", body=json.dumps({"session_token": token}))
        self.assertEqual((posted.code, json.loads(posted.body)), (200, {"is_valid": False}))
        missing = await self.get("/sessions/validate", method="POST", body="{}")
        self.assertEqual(missing.code, 400)
        expired = self.hanko.mint(lifetime=-10)
        answer = await self.get("/sessions/validate", headers={"Authorization": f"Bearer {expired}"})
        self.assertEqual(json.loads(answer.body), {"is_valid": False})
        self.assertEqual(self.hanko.validations, 6)

    @gen_test
    async def test_faults(self) -> None:
        self.hanko.fault = "error"
        self.assertEqual((await self.get("/.well-known/jwks.json")).code, 500)
        self.hanko.fault = "garbage"
        with self.assertRaises(ValueError):
            json.loads((await self.get("/.well-known/jwks.json")).body)
        self.hanko.fault = "drop"
        with self.assertRaises(HTTPClientError):
            await self.get("/.well-known/jwks.json")
        self.hanko.fault = "slow"
        self.hanko.slow_seconds = 0.5
        started = time.monotonic()
        self.assertEqual((await self.get("/.well-known/jwks.json")).code, 200)
        self.assertGreaterEqual(time.monotonic() - started, 0.5)
        self.assertEqual(self.hanko.jwks_fetches, 4)

    @gen_test
    async def test_rotation_publishes_old_and_new_keys(self) -> None:
        first = self.hanko.keys[0]
        second = self.hanko.rotate_key("ES256")
        self.assertEqual(jwt.get_unverified_header(self.hanko.mint())["kid"], second.kid)
        kids = [key["kid"] for key in json.loads((await self.get("/.well-known/jwks.json")).body)["keys"]]
        self.assertEqual(kids, [first.kid, second.kid])

    async def validate(self, token: str, *, post: bool = False, cookie: str | None = None) -> tuple[int, Any]:
        if post:
            response = await self.get("/sessions/validate", method="POST", body=json.dumps({"session_token": token}))
        elif cookie:
            response = await self.get("/sessions/validate", headers={"Cookie": f"{cookie}={token}"})
        else:
            response = await self.get("/sessions/validate", headers={"Authorization": f"Bearer {token}"})
        return response.code, json.loads(response.body)

    @gen_test
    async def test_validation_answers_as_hanko_does(self) -> None:
        before = time.time()
        token = self.hanko.mint(lifetime=600)
        code, answer = await self.validate(token)
        self.assertEqual(code, 200)
        self.assertEqual(sorted(answer), ["claims", "expiration_time", "is_valid", "user_id"])
        rfc3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z")
        for value in (answer["expiration_time"], answer["claims"]["expiration"], answer["claims"]["issued_at"]):
            self.assertRegex(value, rfc3339)
        expires = parse_rfc3339(answer["expiration_time"])
        self.assertTrue(int(before) + 600 <= expires.timestamp() <= time.time() + 600, expires)
        self.assertEqual(answer["claims"]["amr"], ["passkey"])

    @gen_test
    async def test_tokens_that_are_not_sessions_get_400(self) -> None:
        webhook = self.hanko.mint_webhook("user.create", {"id": "x"})
        for token in (webhook, self.hanko.mint("not-a-uuid"), self.hanko.mint(session_id="s-1")):
            for post in (False, True):
                code, answer = await self.validate(token, post=post)
                self.assertEqual((code, answer["code"]), (400, 400))
                self.assertIn("failed to parse token claims", answer["message"])

    @gen_test(timeout=60)
    async def test_idle_timeout_get_deletes_post_renews(self) -> None:
        self.hanko.idle_timeout = 1.5  # each renewal comes 0.5 s after the last, and four outlast the timeout
        renewed, passive = self.hanko.mint(), self.hanko.mint()
        for _ in range(4):
            await asyncio.sleep(0.5)
            before = time.time()
            _, answer = await self.validate(renewed, post=True)
            self.assertTrue(answer["is_valid"])
            idle = parse_rfc3339(answer["idle_expires_at"])
            self.assertTrue(before + 1.5 - 0.01 <= idle.timestamp() <= time.time() + 1.5 + 0.01, idle)
        self.assertEqual(await self.validate(passive), (200, {"is_valid": False}))
        self.assertEqual(len(self.hanko.sessions), 1, "GET deleted the idle-expired session")
        self.assertEqual(self.hanko.renewals, 4)

    @gen_test
    async def test_get_reads_the_configured_cookie(self) -> None:
        self.hanko.cookie_name = "session"
        token = self.hanko.mint()
        self.assertTrue((await self.validate(token, cookie="session"))[1]["is_valid"])
        self.assertFalse((await self.validate(token, cookie="hanko"))[1]["is_valid"])

    def test_webhook_tokens_are_hanko_shaped(self) -> None:
        data = {"id": "5e551011-0000-4000-8000-000000000001", "user_id": "aaaaaaaa-0000-4000-8000-000000000001"}
        token = self.hanko.mint_webhook("session.delete.explicit.logout", data)
        header = jwt.get_unverified_header(token)
        self.assertEqual(header, {"alg": "RS256", "kid": self.hanko.keys[0].kid, "typ": "JWT"})
        claims = jwt.decode(token, options={"verify_signature": False})
        self.assertEqual(sorted(claims), ["aud", "data", "evt", "exp", "iat", "sub"])
        self.assertEqual(
            (claims["sub"], claims["evt"], claims["data"]), ("hanko webhooks", "session.delete.explicit.logout", data)
        )
        self.assertEqual((claims["aud"], claims["exp"] - claims["iat"]), (["localhost"], 300))


class SigningKeyTest(unittest.TestCase):
    def test_ec_coordinates_are_full_length_even_with_a_leading_zero_byte(self) -> None:
        for alg, curve, size in [("ES256", ec.SECP256R1(), 32), ("ES384", ec.SECP384R1(), 48)]:
            # The smallest private scalar whose public x starts with a zero byte: found the same way every run.
            scalar = next(
                d
                for d in range(1, 5000)
                if ec.derive_private_key(d, curve).public_key().public_numbers().x.bit_length() <= 8 * size - 8
            )
            key = SigningKey(kid="k", alg=alg, private_key=ec.derive_private_key(scalar, curve))
            jwk = key.public_jwk()
            with self.subTest(alg=alg):
                self.assertEqual([len(jwt.utils.base64url_decode(jwk[c])) for c in "xy"], [size, size])
                self.assertIsNotNone(ECAlgorithm.from_jwk(json.dumps(jwk)))


class _Receiver(tornado.web.RequestHandler):
    """A webhook endpoint that answers 200 and keeps what came, read without checking the signature."""

    def initialize(self, received: list[tuple[str, dict[str, Any]]], tokens: list[str]) -> None:
        self.received = received
        self.tokens = tokens

    def post(self) -> None:
        body = json.loads(self.request.body)
        claims = jwt.decode(body["token"], options={"verify_signature": False})
        self.received.append((body["event"], claims["data"]))
        self.tokens.append(body["token"])


class FakeHankoAsHankoTest(AsyncTestCase):
    """Where FakeHanko once differed from Hanko's backend: session limit, session webhooks, validate's answer."""

    def setUp(self) -> None:
        super().setUp()
        self.hanko = FakeHanko(key_size=2048)
        self.hanko.start()
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.tokens: list[str] = []
        sock, port = bind_unused_port()
        routes = [(r"/hooks", _Receiver, {"received": self.received, "tokens": self.tokens})]
        self.receiver = HTTPServer(tornado.web.Application(routes))
        self.receiver.add_sockets([sock])
        self.hook = f"http://127.0.0.1:{port}/hooks"
        self.client = AsyncHTTPClient()

    def tearDown(self) -> None:
        self.receiver.stop()
        self.io_loop.run_sync(self.hanko.stop)
        super().tearDown()

    async def validate(self, token: str, *, post: bool = False) -> tuple[int, Any]:
        url = f"{self.hanko.api_url}/sessions/validate"
        if post:
            response = await self.client.fetch(
                url, method="POST", body=json.dumps({"session_token": token}), raise_error=False
            )
        else:
            response = await self.client.fetch(url, headers={"Authorization": f"Bearer {token}"}, raise_error=False)
        return response.code, json.loads(response.body)

    @gen_test
    async def test_the_sixth_session_of_a_user_deletes_the_oldest_and_says_so(self) -> None:
        self.hanko.register_webhook(self.hook, ("session",))
        user, other_user = str(uuid.uuid4()), str(uuid.uuid4())
        sessions = [str(uuid.uuid4()) for _ in range(6)]
        tokens = [self.hanko.mint(user, session_id=session) for session in sessions[:5]]
        other = self.hanko.mint(other_user)
        await self.hanko.webhooks_sent()
        self.assertEqual([event for event, _ in self.received], ["session.create.flow"] * 6)
        self.assertEqual(self.hanko.session_limit, 5, "Hanko's default session.limit")
        self.received.clear()
        tokens.append(self.hanko.mint(user, session_id=sessions[5]))
        self.assertNotIn(sessions[0], self.hanko.sessions)
        await self.hanko.webhooks_sent()
        by_event = {event: data for event, data in self.received}
        self.assertEqual(sorted(by_event), ["session.create.flow", "session.delete.passive.limit"])
        self.assertEqual(
            (by_event["session.delete.passive.limit"]["id"], by_event["session.create.flow"]["id"]),
            (sessions[0], sessions[5]),
        )
        self.assertEqual(by_event["session.delete.passive.limit"]["user_id"], user)
        self.assertEqual([(await self.validate(token))[1]["is_valid"] for token in tokens], [False] + [True] * 5)
        self.assertTrue((await self.validate(other))[1]["is_valid"], "another user's sessions are not counted")

    @gen_test
    async def test_the_limit_is_settable_and_counts_live_sessions_only(self) -> None:
        self.hanko.session_limit = 2
        self.hanko.register_webhook(self.hook, ("session.delete",))
        user = str(uuid.uuid4())
        expired = self.hanko.mint(user, lifetime=-10)
        first, second, third = (self.hanko.mint(user) for _ in range(3))
        await self.hanko.webhooks_sent()
        self.assertEqual([event for event, _ in self.received], ["session.delete.passive.limit"])
        self.assertEqual(
            [(await self.validate(token))[1]["is_valid"] for token in (expired, first, second, third)],
            [False, False, True, True],
        )

    @gen_test
    async def test_a_login_sends_session_create_flow_with_the_session(self) -> None:
        self.hanko.register_webhook(self.hook, ("session.create",))
        session = str(uuid.uuid4())
        token = self.hanko.mint("aaaaaaaa-0000-4000-8000-000000000012", session_id=session, lifetime=600)
        await self.hanko.webhooks_sent()
        ((event, data),) = self.received
        self.assertEqual(event, "session.create.flow")
        self.assertEqual(
            sorted(data),
            ["created_at", "expires_at", "id", "ip_address", "last_used", "updated_at", "user_agent", "user_id"],
        )
        self.assertEqual((data["id"], data["user_id"]), (session, "aaaaaaaa-0000-4000-8000-000000000012"))
        exp = jwt.decode(token, options={"verify_signature": False})["exp"]
        self.assertEqual(data["expires_at"], rfc3339(exp), "the session ends with its token")
        self.assertEqual(self.hanko.deliveries, [(self.hook, "session.create.flow", 200)])

    @gen_test
    async def test_one_token_per_event_for_every_hook_subscribed(self) -> None:
        self.hanko.register_webhook(self.hook, ("user",))
        self.hanko.register_webhook(self.hook, ("user.delete",))
        self.hanko.register_webhook(self.hook, ("session",))
        self.hanko.fire_webhook("user.delete", {"id": "aaaaaaaa-0000-4000-8000-000000000012"})
        await self.hanko.webhooks_sent()
        self.assertEqual([event for event, _ in self.received], ["user.delete", "user.delete"])
        self.assertEqual(len(set(self.tokens)), 1, "one token, posted to both hooks")
        self.assertEqual([url for url, _, _ in self.hanko.deliveries], [self.hook, self.hook])

    @gen_test
    async def test_a_token_without_session_id_is_not_valid_and_not_a_400(self) -> None:
        token = self.hanko.mint(claims={"session_id": None})
        for post in (False, True):
            self.assertEqual(await self.validate(token, post=post), (200, {"is_valid": False}))

    @gen_test
    async def test_validate_claims_have_exactly_hankos_members(self) -> None:
        now = int(time.time())
        token = self.hanko.mint(username="ada", claims={"nbf": now, "jti": "j-1", "role": "admin"})
        code, answer = await self.validate(token)
        self.assertEqual(code, 200)
        self.assertEqual(
            sorted(answer["claims"]),
            ["amr", "audience", "email", "expiration", "issued_at", "role", "session_id", "subject", "username"],
            "no nbf, no jti (jwx's registered claims never reach dto.Claims); custom claims at the top level",
        )
        self.assertEqual(answer["claims"]["expiration"], answer["expiration_time"])
        issued = self.hanko.mint(issuer="https://auth.example.com", email=None, claims={"username": 7})
        _, answer = await self.validate(issued)
        self.assertEqual(answer["claims"]["issuer"], "https://auth.example.com")
        self.assertNotIn("email", answer["claims"])
        self.assertNotIn("username", answer["claims"], "a username that is not a string is dropped")
