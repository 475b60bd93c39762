"""Session check: logged-out sessions are refused within the cache time, at one call per session and period."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, ClassVar

import tornado.web
from aiocache import SimpleMemoryCache
from support import captured_logs
from tornado.testing import gen_test

from hanko_tornado import HankoAuthMixin, TokenVerifier
from hanko_tornado.testing import HankoTestCase, fetch_concurrently


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
        self.hanko.slow_seconds = 2
        with captured_logs() as lines:
            started = time.monotonic()
            self.assertEqual([self.status(self.hanko.mint()) for _ in range(3)], [200] * 3)
            self.assertLess(time.monotonic() - started, 1.5)
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
