"""Session check: logged-out sessions are refused within the cache time, at one call per session and period."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any, ClassVar

import tornado.web
from aiocache import SimpleMemoryCache
from support import captured_logs
from tornado.httpclient import AsyncHTTPClient
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port, gen_test

from hanko_tornado import HankoAuthMixin, TokenVerifier, verifier_for
from hanko_tornado.testing import FakeHanko, HankoTestCase, fetch_concurrently


class UserHandler(HankoAuthMixin, tornado.web.RequestHandler):
    def get(self) -> None:
        self.write({"id": self.hanko_user.id})


class AlwaysCheckedHandler(UserHandler):
    hanko_session_check = True


class NeverCheckedHandler(UserHandler):
    hanko_session_check = False


class SessionCheckTestCase(HankoTestCase):
    settings_overrides: ClassVar[dict[str, Any]] = {"session_check": "validate", "session_check_ttl": 0.5}

    def get_app(self) -> tornado.web.Application:
        return tornado.web.Application(
            [(r"/user", UserHandler), (r"/always", AlwaysCheckedHandler), (r"/never", NeverCheckedHandler)],
            hanko=self.hanko.settings(refetch_interval=0.3, **self.settings_overrides),
        )

    def status(self, token: str, path: str = "/user") -> int:
        return self.fetch_with_token(path, token, raise_error=False).code

    def sleep(self, seconds: float) -> None:
        self.io_loop.run_sync(lambda: asyncio.sleep(seconds))


class SessionCheckOnTest(SessionCheckTestCase):
    def test_live_session_costs_one_call_per_period(self) -> None:
        token = self.hanko.mint(session_id="5e551011-0000-4000-8000-000000000001")
        self.assertEqual([self.status(token) for _ in range(5)], [200] * 5)
        self.assertEqual(self.hanko.validations, 1)
        self.sleep(0.55)
        self.assertEqual([self.status(token) for _ in range(3)], [200] * 3)
        self.assertEqual(self.hanko.validations, 2)

    def test_logged_out_session_is_refused_within_the_cache_time(self) -> None:
        token = self.hanko.mint(session_id="5e551011-0000-4000-8000-000000000002")
        self.assertEqual(self.status(token), 200)
        self.hanko.revoke("5e551011-0000-4000-8000-000000000002")
        self.sleep(0.55)
        response = self.fetch_with_token("/user", token, raise_error=False)
        self.assertEqual(response.code, 401)
        self.assertEqual(json.loads(response.body)["error"], "invalid_token")
        self.assertIn("session ended", json.loads(response.body)["message"])
        self.assertEqual(self.status(token), 401)
        self.assertEqual(self.hanko.validations, 2, "the refusal is remembered too")

    def test_other_tokens_of_a_live_session_share_the_answer(self) -> None:
        self.assertEqual(self.status(self.hanko.mint(session_id="5e551011-0000-4000-8000-000000000003")), 200)
        self.assertEqual(self.status(self.hanko.mint(session_id="5e551011-0000-4000-8000-000000000003")), 200)
        self.assertEqual(self.hanko.validations, 1)

    @gen_test
    async def test_concurrent_requests_for_one_session_share_one_call(self) -> None:
        token = self.hanko.mint(session_id="5e551011-0000-4000-8000-000000000004")
        responses = await fetch_concurrently([(self.get_url("/user"), token)] * 30)
        self.assertEqual([r.code for r in responses], [200] * 30)
        self.assertEqual(self.hanko.validations, 1)

    def test_per_handler_override(self) -> None:
        token = self.hanko.mint(session_id="5e551011-0000-4000-8000-000000000005")
        self.hanko.revoke("5e551011-0000-4000-8000-000000000005")
        self.assertEqual(self.status(token, "/never"), 200)
        self.assertEqual(self.hanko.validations, 0)
        self.assertEqual(self.status(token, "/user"), 401)

    def test_token_is_never_logged(self) -> None:
        token = self.hanko.mint(session_id="5e551011-0000-4000-8000-000000000006")
        self.hanko.revoke("5e551011-0000-4000-8000-000000000006")
        with captured_logs() as lines:
            self.status(token)
            self.hanko.session_fault = "error"
            self.status(self.hanko.mint())
        self.assertTrue(lines)
        self.assertFalse(any(token.split(".")[2][:40] in line for line in lines))


class FailClosedTest(SessionCheckTestCase):
    def test_hanko_down_answers_503_and_recovers(self) -> None:
        self.hanko.session_fault = "error"
        token = self.hanko.mint()
        with captured_logs() as lines:
            responses = [self.fetch_with_token("/user", token, raise_error=False) for _ in range(3)]
        self.assertEqual([r.code for r in responses], [503] * 3)
        self.assertEqual(json.loads(responses[0].body)["error"], "session_check_unavailable")
        self.assertIn("Retry-After", responses[0].headers)
        self.assertEqual(self.hanko.validations, 1, "calls are not piled on a failing Hanko")
        self.assertEqual(sum("session validation failed" in line for line in lines), 1)
        self.hanko.session_fault = None
        self.sleep(0.35)
        self.assertEqual(self.status(token), 200)

    def test_garbage_and_timeouts_count_as_down(self) -> None:
        for fault in ("garbage", "drop"):
            self.hanko.session_fault = fault  # type: ignore[assignment]
            self.sleep(0.35)
            self.assertEqual(self.status(self.hanko.mint()), 503, fault)


class FailOpenTest(SessionCheckTestCase):
    settings_overrides: ClassVar[dict[str, Any]] = {
        "session_check": "validate",
        "session_check_ttl": 0.5,
        "session_check_failure": "open",
        "session_check_timeout": 0.3,
    }

    def test_hanko_down_accepts_locally_verified_tokens_and_warns_once(self) -> None:
        self.hanko.session_fault = "slow"
        self.hanko.slow_seconds = 60
        with captured_logs() as lines:
            started = time.monotonic()
            self.assertEqual([self.status(self.hanko.mint()) for _ in range(3)], [200] * 3)
            self.assertLess(time.monotonic() - started, 20, "the check times out after 0.3 s, not 60 s")
        self.assertEqual(sum("accepting locally verified tokens" in line for line in lines), 1)

    def test_bad_tokens_are_still_refused(self) -> None:
        self.hanko.session_fault = "error"
        self.assertEqual(self.status(self.hanko.mint(lifetime=-3600)), 401)


class SessionCheckOffTest(SessionCheckTestCase):
    settings_overrides: ClassVar[dict[str, Any]] = {}

    def test_off_by_default_trusts_the_signature(self) -> None:
        token = self.hanko.mint(session_id="5e551011-0000-4000-8000-000000000007")
        self.hanko.revoke("5e551011-0000-4000-8000-000000000007")
        self.assertEqual(self.status(token), 200)
        self.assertEqual(self.hanko.validations, 0)
        self.assertEqual(self.status(token, "/always"), 401)


class SharedCacheTest(SessionCheckTestCase):
    @gen_test
    async def test_verifiers_sharing_a_cache_share_answers(self) -> None:
        cache = SimpleMemoryCache()
        settings = self.hanko.settings(session_check="validate", cache=cache)
        first, second = TokenVerifier(settings), TokenVerifier(settings)
        token = self.hanko.mint(session_id="5e551011-0000-4000-8000-000000000008")
        for verifier in (first, second):
            user = await verifier.verify_token(token)
            await verifier.session_checker.check(token, user)
            await verifier.close()
        self.assertEqual(self.hanko.validations, 1)
        self.assertEqual(self.hanko.jwks_fetches, 1)


class SessionHandler(UserHandler):
    def get(self) -> None:
        session = self.hanko_session
        idle = session.idle_expires_at if session else None
        self.write({"id": self.hanko_user.id, "idle_expires_at": idle.timestamp() if idle else None})


class WebhookTokenTest(SessionCheckTestCase):
    """A webhook token (same key, same aud) never opens a session, and Hanko is never asked about it."""

    def test_refused_in_every_mode_before_any_call_to_hanko(self) -> None:
        webhook = self.hanko.mint_webhook("user.create", {"id": "aaaaaaaa-0000-4000-8000-000000000001"})
        modes: list[dict[str, Any]] = [
            {"session_check": "off"},
            {"session_check": "validate"},
            {"session_check": "renew"},
            {"session_check": "validate", "session_check_failure": "open"},
            {"session_check": "renew", "session_check_failure": "closed"},
        ]
        for overrides in modes:
            for fault in (None, "error"):
                with self.subTest(**overrides, fault=fault):
                    self.hanko.session_fault = fault  # type: ignore[assignment]
                    app = tornado.web.Application([(r"/user", UserHandler)], hanko=self.hanko.settings(**overrides))
                    server = HTTPServer(app)
                    sock, port = bind_unused_port()
                    server.add_sockets([sock])
                    try:
                        response = self.io_loop.run_sync(
                            lambda: AsyncHTTPClient().fetch(
                                f"http://127.0.0.1:{port}/user",
                                headers={"Authorization": f"Bearer {webhook}"},
                                raise_error=False,
                            )
                        )
                    finally:
                        server.stop()
                        self.io_loop.run_sync(verifier_for(app).close)
                    self.assertEqual(response.code, 401)
                    self.assertIn("not a session token", json.loads(response.body)["message"])
        self.assertEqual(self.hanko.validations, 0)


class HankoVerdictTest(SessionCheckTestCase):
    """400, 401, 403 and 404 from Hanko refuse that token only; they are not an outage."""

    def test_a_400_refuses_that_session_and_leaves_others_alone(self) -> None:
        # Hanko answers 400 for a token whose claims it cannot read as a session's (here a malformed email).
        odd = self.hanko.mint(claims={"email": "not-an-object"})
        with captured_logs() as lines:
            response = self.fetch_with_token("/user", odd, raise_error=False)
            self.assertEqual(response.code, 401)
            self.assertIn("refused by Hanko (HTTP 400)", json.loads(response.body)["message"])
            self.assertEqual(self.status(odd), 401)
            self.assertEqual(self.hanko.validations, 1, "the verdict is remembered like an ended session")
            self.assertEqual(self.status(self.hanko.mint()), 200, "no back-off: another session is asked at once")
        self.assertEqual(self.hanko.validations, 2)
        self.assertFalse(any("validation failed" in line for line in lines))

    def test_other_verdict_statuses(self) -> None:
        for status in (401, 403, 404):
            with self.subTest(status=status):
                token = self.hanko.mint()
                self.hanko.verdicts[token] = status
                self.assertEqual(self.status(token), 401)
                self.assertEqual(self.status(self.hanko.mint()), 200)

    def test_5xx_is_an_outage(self) -> None:
        token = self.hanko.mint()
        self.hanko.verdicts[token] = 502
        self.assertEqual(self.status(token), 503)


class RenewTest(SessionCheckTestCase):
    settings_overrides: ClassVar[dict[str, Any]] = {"session_check": "renew", "session_check_ttl": 0.3}

    def make_fake_hanko(self) -> FakeHanko:
        return FakeHanko(key_size=self.hanko_key_size, idle_timeout=1.0)

    def get_app(self) -> tornado.web.Application:
        validate = self.hanko.settings(session_check="validate", session_check_ttl=0.3, refetch_interval=0.3)
        renew = self.hanko.settings(session_check="renew", session_check_ttl=0.3, refetch_interval=0.3)
        return tornado.web.Application(
            [(r"/validate", SessionHandler), (r"/renew", RenewSessionHandler)],
            hanko=validate,
            renew_verifier=TokenVerifier(renew),
        )

    def tearDown(self) -> None:
        self.io_loop.run_sync(self._app.settings["renew_verifier"].close)
        super().tearDown()

    def test_renew_keeps_an_active_session_past_the_idle_timeout_and_validate_lets_it_lapse(self) -> None:
        renewed, passive = self.hanko.mint(), self.hanko.mint()
        renewed_codes, passive_codes = [], []
        for _ in range(7):  # 2.1 s of activity against a 1 s idle timeout
            renewed_codes.append(self.status(renewed, "/renew"))
            passive_codes.append(self.status(passive, "/validate"))
            self.sleep(0.3)
        self.assertEqual(renewed_codes, [200] * 7)
        self.assertEqual(passive_codes[:3], [200] * 3)
        self.assertEqual(passive_codes[-2:], [401] * 2, passive_codes)

    def test_idle_expiry_is_exposed_and_bounds_the_remembered_answer(self) -> None:
        token, before = self.hanko.mint(), time.time()
        body = json.loads(self.fetch_with_token("/renew", token).body)
        self.assertTrue(before + 1.0 - 0.01 <= body["idle_expires_at"] <= time.time() + 1.0 + 0.01, body)

    @gen_test
    async def test_one_call_per_session_and_period_under_concurrency(self) -> None:
        tokens = [self.hanko.mint(session_id=str(uuid.uuid4())) for _ in range(3)]
        responses = await fetch_concurrently([(self.get_url("/renew"), t) for t in tokens * 20])
        self.assertEqual([r.code for r in responses], [200] * 60)
        self.assertEqual(self.hanko.validations, 3)
        self.assertEqual(self.hanko.renewals, 3)


class RenewSessionHandler(SessionHandler):
    def get_hanko_verifier(self) -> TokenVerifier:
        verifier = self.settings["renew_verifier"]
        assert isinstance(verifier, TokenVerifier)
        return verifier


class IdleTimeoutTest(SessionCheckTestCase):
    settings_overrides: ClassVar[dict[str, Any]] = {"session_check": "validate", "session_check_ttl": 30}

    def make_fake_hanko(self) -> FakeHanko:
        return FakeHanko(key_size=self.hanko_key_size, idle_timeout=0.5)

    def test_a_remembered_answer_never_outlives_the_idle_expiry(self) -> None:
        token = self.hanko.mint()
        self.assertEqual(self.status(token), 200)
        self.assertEqual(self.status(token), 200)
        self.assertEqual(self.hanko.validations, 1)
        self.sleep(0.7)
        self.assertEqual(self.status(token), 401, "asked again at the idle expiry, not after 30 s")
        self.assertEqual(self.hanko.validations, 2)


class OwnConnectionsTest(SessionCheckTestCase):
    settings_overrides: ClassVar[dict[str, Any]] = {
        "session_check": "validate",
        "session_check_concurrency": 2,
        "session_check_timeout": 1.0,
    }

    @gen_test(timeout=30)
    async def test_local_congestion_is_not_hanko_failing(self) -> None:
        self.hanko.session_fault = "slow"
        self.hanko.slow_seconds = 0.4
        tokens = [self.hanko.mint() for _ in range(8)]
        with captured_logs() as lines:
            codes = [r.code for r in await fetch_concurrently([(self.get_url("/user"), t) for t in tokens])]
        self.assertIn(503, codes)
        self.assertIn(200, codes)
        self.assertTrue(any("raise session_check_concurrency" in line for line in lines))
        self.assertFalse(any("validation failed" in line for line in lines))
        self.hanko.session_fault = None
        # No back-off was started: a new session is asked at once.
        self.assertEqual((await fetch_concurrently([(self.get_url("/user"), self.hanko.mint())]))[0].code, 200)


class KeyFetchIsolationTest(SessionCheckTestCase):
    settings_overrides: ClassVar[dict[str, Any]] = {"session_check": "validate"}

    @gen_test(timeout=30)
    async def test_key_fetches_do_not_queue_behind_session_checks(self) -> None:
        self.assertEqual((await fetch_concurrently([(self.get_url("/never"), self.hanko.mint())]))[0].code, 200)
        self.hanko.session_fault = "slow"
        self.hanko.slow_seconds = 3
        first, rotated = self.hanko.keys[0], self.hanko.rotate_key()

        async def new_key_token_while_checks_wait() -> tuple[int, float]:
            await asyncio.sleep(0.3)
            started = time.monotonic()
            (response,) = await fetch_concurrently([(self.get_url("/never"), self.hanko.mint(key=rotated))])
            return response.code, time.monotonic() - started

        _, (code, waited) = await asyncio.gather(
            fetch_concurrently([(self.get_url("/user"), self.hanko.mint(key=first)) for _ in range(12)]),
            new_key_token_while_checks_wait(),
        )
        self.assertEqual(code, 200)
        self.assertLess(waited, 2.0, "the key fetch did not queue behind 12 slow session checks")


class ExpiryHandler(UserHandler):
    def get(self) -> None:
        expires_at = self.hanko_session.expires_at if self.hanko_session else None
        self.write({"expires_at": expires_at.timestamp() if expires_at else None})


class HankoWithoutDeprecatedFields(FakeHanko):
    """A Hanko that dropped ``expiration_time`` (deprecated in ``dto/session.go``) and keeps ``claims.expiration``."""

    def validate(self, token: str, *, renew: bool = False) -> tuple[int, dict[str, Any]]:
        status, answer = super().validate(token, renew=renew)
        answer.pop("expiration_time", None)
        answer.pop("user_id", None)
        return status, answer


class HankoWithAWrongDeprecatedField(FakeHanko):
    def validate(self, token: str, *, renew: bool = False) -> tuple[int, dict[str, Any]]:
        status, answer = super().validate(token, renew=renew)
        if "expiration_time" in answer:
            answer["expiration_time"] = "2999-01-01T00:00:00Z"
        return status, answer


class ClaimsExpirationTest(SessionCheckTestCase):
    fake_class: ClassVar[type[FakeHanko]] = HankoWithoutDeprecatedFields

    def make_fake_hanko(self) -> FakeHanko:
        return self.fake_class(key_size=self.hanko_key_size)

    def get_app(self) -> tornado.web.Application:
        app = super().get_app()
        app.add_handlers(r".*", [(r"/expiry", ExpiryHandler)])
        return app

    def test_the_session_expiry_is_read_from_claims_expiration(self) -> None:
        token = self.hanko.mint(lifetime=600)
        exp = self.hanko.sessions[next(iter(self.hanko.sessions))].expires_at
        response = self.fetch_with_token("/expiry", token)
        self.assertEqual(json.loads(response.body)["expires_at"], exp)


class ClaimsExpirationFirstTest(ClaimsExpirationTest):
    fake_class = HankoWithAWrongDeprecatedField
