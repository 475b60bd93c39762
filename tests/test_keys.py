"""KeyStore: fetch counts, rotation, outages, stale keys, recovery, and strict JWKS parsing."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, ClassVar

import tornado.web
from support import captured_logs, key_store
from tornado.testing import gen_test

from hanko_tornado import HankoAuthMixin, verifier_for
from hanko_tornado.jwks import parse_jwks
from hanko_tornado.lifecycle import state_of
from hanko_tornado.testing import FakeHanko, HankoTestCase, SigningKey, fetch_concurrently


class UserHandler(HankoAuthMixin, tornado.web.RequestHandler):
    def get(self) -> None:
        self.write({"id": self.hanko_user.id})


class KeyStoreTestCase(HankoTestCase):
    settings_overrides: ClassVar[dict[str, Any]] = {"refetch_interval": 0.3, "jwks_min_ttl": 0}
    max_age = 600

    def make_fake_hanko(self) -> FakeHanko:
        return FakeHanko(key_size=2048, max_age=self.max_age)

    def get_app(self) -> tornado.web.Application:
        return tornado.web.Application([(r"/user", UserHandler)], hanko=self.hanko.settings(**self.settings_overrides))

    def status(self, token: str) -> int:
        return self.fetch_with_token("/user", token, raise_error=False).code

    async def burst(self, tokens: list[str]) -> list[int]:
        return [r.code for r in await fetch_concurrently([(self.get_url("/user"), token) for token in tokens])]

    def wait_for_fetches(self, count: int) -> None:
        deadline = time.monotonic() + 5
        while self.hanko.jwks_fetches < count and time.monotonic() < deadline:
            self.io_loop.run_sync(lambda: asyncio.sleep(0.02))


class FetchCountTest(KeyStoreTestCase):
    @gen_test
    async def test_cold_burst_makes_one_fetch(self) -> None:
        codes = await self.burst([self.hanko.mint() for _ in range(100)])
        self.assertEqual(codes, [200] * 100)
        self.assertEqual(self.hanko.jwks_fetches, 1)

    @gen_test
    async def test_500_concurrent_key_lookups_make_one_fetch(self) -> None:
        store = key_store(self.hanko.settings())
        try:
            kid = self.hanko.keys[0].kid
            keys = await asyncio.gather(*(store.get_key(kid, "RS256") for _ in range(500)))
        finally:
            await store.close()
        self.assertTrue(all(key is not None and key.kid == kid for key in keys))
        self.assertEqual(self.hanko.jwks_fetches, 1)

    def test_steady_load_makes_no_further_fetch(self) -> None:
        for _ in range(30):
            self.assertEqual(self.status(self.hanko.mint()), 200)
        self.assertEqual(self.hanko.jwks_fetches, 1)

    def test_rotated_key_is_accepted_at_once(self) -> None:
        self.assertEqual(self.status(self.hanko.mint()), 200)
        old_token = self.hanko.mint()
        self.hanko.rotate_key()
        self.io_loop.run_sync(lambda: asyncio.sleep(0.35))  # past the refetch interval of the first fetch
        self.assertEqual(self.status(self.hanko.mint()), 200)
        self.assertEqual(self.status(old_token), 200)
        self.assertEqual(self.hanko.jwks_fetches, 2)

    def test_key_rotated_in_right_after_a_fetch_is_accepted(self) -> None:
        self.assertEqual(self.status(self.hanko.mint()), 200)
        self.io_loop.run_sync(lambda: asyncio.sleep(0.35))
        anonymous = self.hanko.mint(key=SigningKey.generate(key_size=2048))
        self.assertEqual(self.status(anonymous), 401, "an unknown kid makes a fetch")
        self.assertEqual(self.hanko.jwks_fetches, 2)
        self.hanko.rotate_key()
        self.assertEqual(self.status(self.hanko.mint()), 200, "not 401 because a fetch happened a moment ago")
        self.assertEqual(self.hanko.jwks_fetches, 3)

    @gen_test(timeout=20)
    async def test_flood_of_unknown_kids_costs_one_fetch_per_interval(self) -> None:
        self.assertEqual(await self.burst([self.hanko.mint()]), [200])
        started = time.monotonic()
        outsider = SigningKey.generate(key_size=2048)
        forged = [self.hanko.mint(key=outsider, headers={"kid": f"kid-{i}"}) for i in range(50)]
        for burst in [forged, forged, forged[:10], forged[:10]]:
            fetches = self.hanko.jwks_fetches
            self.assertEqual(await self.burst(burst), [401] * len(burst))
            self.assertLessEqual(self.hanko.jwks_fetches - fetches, 1, "a burst of unknown kids: one fetch")
        await asyncio.sleep(0.35)
        self.assertEqual(await self.burst(forged[:10]), [401] * 10)
        # One fetch at the start, then at most one per refetch interval (0.3 s) since.
        intervals = int((time.monotonic() - started) / 0.3)
        self.assertLessEqual(self.hanko.jwks_fetches, 1 + intervals + 1)


class OutageTest(KeyStoreTestCase):
    max_age = 1

    def test_cold_and_down_is_503_with_retry_after(self) -> None:
        for fault in ("error", "garbage", "drop"):
            with self.subTest(fault=fault):
                self.hanko.fault = fault  # type: ignore[assignment]
                self.io_loop.run_sync(lambda: asyncio.sleep(0.35))
                response = self.fetch_with_token("/user", self.hanko.mint(), raise_error=False)
                self.assertEqual(response.code, 503)
                self.assertGreaterEqual(int(response.headers["Retry-After"]), 1)
                self.assertEqual(json.loads(response.body)["error"], "keys_unavailable")

    def test_failures_are_throttled_and_the_process_recovers(self) -> None:
        self.hanko.fault = "error"
        token = self.hanko.mint()
        started = time.monotonic()
        self.assertEqual([self.status(token) for _ in range(5)], [503] * 5)
        # One fetch, and at most one more per refetch interval (0.3 s) that the five requests took.
        self.assertLessEqual(self.hanko.jwks_fetches, 1 + int((time.monotonic() - started) / 0.3))
        self.hanko.fault = None
        self.io_loop.run_sync(lambda: asyncio.sleep(0.35))
        self.assertEqual(self.status(token), 200)

    def test_last_good_keys_serve_through_an_outage_and_warn_once(self) -> None:
        token = self.hanko.mint()
        self.assertEqual(self.status(token), 200)
        self.hanko.fault = "error"
        with captured_logs() as lines:
            for _ in range(4):
                self.io_loop.run_sync(lambda: asyncio.sleep(0.4))
                self.assertEqual(self.status(self.hanko.mint()), 200)
        self.wait_for_fetches(3)
        self.assertGreaterEqual(self.hanko.jwks_fetches, 3)
        warnings = [line for line in lines if "hanko_tornado WARNING" in line]
        self.assertEqual(len(warnings), 1, warnings)
        self.assertIn("keeps serving the last good key set", warnings[0])

    def test_keys_past_the_grace_time_are_not_used(self) -> None:
        self._app.settings["hanko"] = self.hanko.settings(**self.settings_overrides, stale_grace=0.5)
        self.assertEqual(self.status(self.hanko.mint()), 200)
        self.hanko.fault = "error"
        self.io_loop.run_sync(lambda: asyncio.sleep(1.6))
        self.assertEqual(self.status(self.hanko.mint()), 503)

    def test_remembered_token_is_not_answered_past_the_grace_time(self) -> None:
        self._app.settings["hanko"] = self.hanko.settings(**self.settings_overrides, stale_grace=0.5)
        token = self.hanko.mint()
        self.assertEqual([self.status(token), self.status(token)], [200, 200])
        self.assertEqual(verifier_for(self._app).cache_info().hits, 1)
        self.hanko.fault = "error"
        self.io_loop.run_sync(lambda: asyncio.sleep(1.6))
        self.assertEqual(self.status(token), 503)

    def test_slow_endpoint_times_out(self) -> None:
        self._app.settings["hanko"] = self.hanko.settings(**self.settings_overrides, jwks_timeout=0.3)
        self.hanko.fault = "slow"
        self.hanko.slow_seconds = 60
        started = time.monotonic()
        self.assertEqual(self.status(self.hanko.mint()), 503)
        self.assertLess(time.monotonic() - started, 20, "the fetch times out after 0.3 s, not 60 s")

    def test_stale_keys_serve_while_one_refresh_runs(self) -> None:
        self.assertEqual(self.status(self.hanko.mint()), 200)
        self.io_loop.run_sync(lambda: asyncio.sleep(1.1))
        self.hanko.fault = "slow"
        self.hanko.slow_seconds = 30
        started = time.monotonic()
        self.assertEqual([self.status(self.hanko.mint()) for _ in range(5)], [200] * 5)
        self.assertLess(time.monotonic() - started, 15, "no request waited for the 30 s refresh")
        self.wait_for_fetches(2)
        self.assertEqual(self.hanko.jwks_fetches, 2)


class VerifiedTokenCacheTest(KeyStoreTestCase):
    max_age = 1

    def test_repeated_token_is_a_cache_hit(self) -> None:
        token = self.hanko.mint()
        for _ in range(5):
            self.assertEqual(self.status(token), 200)
        info = verifier_for(self._app).cache_info()
        self.assertEqual((info.hits, info.misses, info.currsize), (4, 1, 1))

    @gen_test
    async def test_tokens_asked_about_in_turn_are_not_mixed_up(self) -> None:
        verifier = verifier_for(self._app)
        tokens = {
            user: self.hanko.mint(user)
            for user in ("aaaaaaaa-0000-4000-8000-000000000010", "aaaaaaaa-0000-4000-8000-000000000011")
        }
        self.assertIsNone(verifier.remembered_user(tokens["aaaaaaaa-0000-4000-8000-000000000010"]))
        self.assertEqual(
            (await verifier.verify_token(tokens["aaaaaaaa-0000-4000-8000-000000000011"])).id,
            "aaaaaaaa-0000-4000-8000-000000000011",
        )
        self.assertEqual(
            (await verifier.verify_token(tokens["aaaaaaaa-0000-4000-8000-000000000010"])).id,
            "aaaaaaaa-0000-4000-8000-000000000010",
        )
        for user, token in tokens.items():
            remembered = verifier.remembered_user(token)
            self.assertEqual(remembered.id if remembered else None, user)

    def test_cache_is_bounded(self) -> None:
        self._app.settings["hanko"] = self.hanko.settings(**self.settings_overrides, token_cache_size=3)
        tokens = [self.hanko.mint() for _ in range(5)]
        for token in tokens:
            self.assertEqual(self.status(token), 200)
        self.assertEqual(self.status(tokens[0]), 200)
        info = verifier_for(self._app).cache_info()
        self.assertEqual((info.maxsize, info.currsize, info.hits), (3, 3, 0))

    def test_cached_token_expires_at_exp(self) -> None:
        self._app.settings["hanko"] = self.hanko.settings(**self.settings_overrides, leeway=0)
        token = self.hanko.mint(lifetime=2)
        self.assertEqual(self.status(token), 200)
        self.assertEqual(self.status(token), 200)
        self.io_loop.run_sync(lambda: asyncio.sleep(2.1))
        response = self.fetch_with_token("/user", token, raise_error=False)
        self.assertEqual(response.code, 401)
        self.assertIn("expired", json.loads(response.body)["message"])

    def test_cached_token_is_refused_once_its_key_leaves_the_jwks(self) -> None:
        token = self.hanko.mint()
        self.assertEqual(self.status(token), 200)
        new_key = self.hanko.rotate_key()
        self.hanko.keys = [new_key]
        self.io_loop.run_sync(lambda: asyncio.sleep(1.1))
        self.status(token)  # the stale set still serves while the refresh runs
        self.wait_for_fetches(2)
        self.io_loop.run_sync(lambda: asyncio.sleep(0.05))
        self.assertEqual(self.status(token), 401)
        self.assertEqual(self.status(self.hanko.mint()), 200)


class HostileJwksHandler(tornado.web.RequestHandler):
    def initialize(self, answer: dict[str, Any]) -> None:
        self.answer = answer

    def get(self) -> None:
        if "redirect" in self.answer:
            self.redirect(self.answer["redirect"])
            return
        self.set_status(self.answer.get("status", 200))
        self.finish(self.answer["body"])


class HostileEndpointTest(KeyStoreTestCase):
    """The key endpoint answers in ways that must never count as a key set."""

    def get_app(self) -> tornado.web.Application:
        self.answer: dict[str, Any] = {}
        hostile = (r"/hostile/\.well-known/jwks\.json", HostileJwksHandler, {"answer": self.answer})
        url = f"http://127.0.0.1:{self.get_http_port()}/hostile"
        settings = self.hanko.settings(**self.settings_overrides, api_url=url, jwks_max_bytes=64 * 1024)
        return tornado.web.Application([(r"/user", UserHandler), hostile], hanko=settings)

    def reset_verifier(self) -> None:
        verifier, state_of(self._app).verifier = state_of(self._app).verifier, None  # the next request makes one
        if verifier is not None:
            self.io_loop.run_sync(verifier.close)

    def assert_unavailable(self, **answer: Any) -> None:
        self.answer.clear()
        self.answer.update(answer)
        self.reset_verifier()
        self.assertEqual(self.status(self.hanko.mint()), 503)

    def test_hostile_answers(self) -> None:
        good = json.dumps(self.hanko.jwks())
        self.assert_unavailable(redirect=f"http://127.0.0.1:{self.hanko.port}/.well-known/jwks.json")
        self.assert_unavailable(status=404, body=good)
        self.assert_unavailable(body=good + " " * 70_000)
        self.assert_unavailable(body="[]")
        self.assert_unavailable(body='{"keys": {}}')
        self.assert_unavailable(body='{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}')
        self.answer.update(body=good)
        self.reset_verifier()
        self.assertEqual(self.status(self.hanko.mint()), 200)


class ParseJwksTest(HankoTestCase):
    def get_app(self) -> tornado.web.Application:
        return tornado.web.Application()

    def parse(self, keys: list[Any]) -> list[str | None]:
        return [key.kid for key in parse_jwks(json.dumps({"keys": keys}), fetched_at=0, ttl=1).keys]

    def test_only_public_asymmetric_signing_keys_are_kept(self) -> None:
        rsa = self.hanko.keys[0].public_jwk()
        es256 = SigningKey.generate("ES256", kid="ec").public_jwk()
        private = {**rsa, "kid": "private", "d": "AQAB"}
        small = SigningKey.generate(key_size=1024, kid="small").public_jwk()
        keys = [
            rsa,
            es256,
            private,
            small,
            {**rsa, "kid": "enc", "use": "enc"},
            {**rsa, "kid": "hs", "alg": "HS256"},
            {**rsa, "kid": "ops", "key_ops": ["encrypt"]},
            {**es256, "kid": "mismatch", "alg": "ES384"},
            {"kty": "oct", "kid": "oct", "k": "c2VjcmV0"},
            {"kty": "OKP", "kid": "ed", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            "not a key",
            {**rsa, "kid": 7},
        ]
        self.assertEqual(self.parse(keys), [rsa["kid"], "ec", "ed"])

    def test_duplicate_kids_are_dropped(self) -> None:
        first = self.hanko.keys[0].public_jwk()
        second = SigningKey.generate(key_size=2048, kid=first["kid"]).public_jwk()
        other = SigningKey.generate("ES256", kid="other").public_jwk()
        self.assertEqual(self.parse([first, second, other]), ["other"])

    def test_not_a_jwks(self) -> None:
        for body in ["[]", "{}", '{"keys": 1}', "nope", '{"keys": []}']:
            with self.subTest(body=body), self.assertRaises(ValueError):
                parse_jwks(body, fetched_at=0, ttl=1)


class UnknownKidDuringOutageTest(KeyStoreTestCase):
    def test_unknown_kid_while_the_endpoint_fails_is_503_then_accepted(self) -> None:
        self.assertEqual(self.status(self.hanko.mint()), 200)
        self.hanko.fault = "error"
        self.hanko.rotate_key()
        rotated = self.hanko.mint()
        self.io_loop.run_sync(lambda: asyncio.sleep(0.35))
        response = self.fetch_with_token("/user", rotated, raise_error=False)
        self.assertEqual(response.code, 503, "a key rotated in during the outage may be fine: not 401")
        self.assertIn("Retry-After", response.headers)
        self.assertEqual(self.status(self.hanko.mint(key=SigningKey.generate(key_size=2048))), 503)
        outsider = SigningKey.generate(key_size=2048, kid=self.hanko.keys[0].kid)
        self.assertEqual(self.status(self.hanko.mint(key=outsider)), 401, "a known kid with a bad signature")
        self.hanko.fault = None
        self.io_loop.run_sync(lambda: asyncio.sleep(0.35))
        self.assertEqual(self.status(rotated), 200)


class CloseTest(KeyStoreTestCase):
    @gen_test(timeout=20)
    async def test_close_answers_waiting_requests_503_and_the_store_stays_closed(self) -> None:
        self.hanko.fault = "slow"
        self.hanko.slow_seconds = 3
        verifier = verifier_for(self._app)

        async def close_while_fetching() -> None:
            while self.hanko.jwks_fetches == 0:
                await asyncio.sleep(0.02)
            await verifier.close()

        with captured_logs() as lines:
            codes, _ = await asyncio.gather(self.burst([self.hanko.mint() for _ in range(3)]), close_while_fetching())
            self.hanko.fault = None
            response = (await fetch_concurrently([(self.get_url("/user"), self.hanko.mint())]))[0]
        self.assertEqual(codes, [503] * 3)
        self.assertEqual(response.code, 503)
        self.assertEqual(json.loads(response.body)["error"], "keys_unavailable")
        self.assertEqual(self.hanko.jwks_fetches, 1, "a closed store does not fetch again")
        self.assertFalse(any("Uncaught exception" in line for line in lines), lines)


class SeedTest(KeyStoreTestCase):
    @gen_test
    async def test_a_store_made_from_a_seed_serves_without_fetching(self) -> None:
        first = key_store(self.hanko.settings(**self.settings_overrides))
        kid = self.hanko.keys[0].kid
        try:
            self.assertIsNotNone(await first.get_key(kid, "RS256"))
            seed = first.seed()
        finally:
            await first.close()
        second = key_store(self.hanko.settings(**self.settings_overrides), seed=seed)
        try:
            key = await second.get_key(kid, "RS256")
            self.assertIsNotNone(key)
            self.assertEqual(self.hanko.jwks_fetches, 1)
            self.assertTrue(second.status().usable)
            # An unknown kid right away waits out the seed's refetch interval, then makes one fetch.
            self.assertIsNone(await second.get_key("not-a-kid", "RS256"))
            self.assertEqual(self.hanko.jwks_fetches, 2)
        finally:
            await second.close()

    @gen_test
    async def test_an_empty_seed_is_a_cold_start(self) -> None:
        store = key_store(self.hanko.settings(**self.settings_overrides), seed=key_store(self.hanko.settings()).seed())
        try:
            self.assertIsNotNone(await store.get_key(self.hanko.keys[0].kid, "RS256"))
        finally:
            await store.close()
        self.assertEqual(self.hanko.jwks_fetches, 1)
