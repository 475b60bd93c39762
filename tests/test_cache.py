"""The shared cache: one JWKS fetch for a fleet sharing a real redis-server, and Redis failing never fails a request."""

from __future__ import annotations

import asyncio
import json
import time
import unittest
import warnings
from typing import Any

import tornado.web
from redis_server import RedisServer
from support import captured_logs
from test_server import running_server
from tornado.testing import AsyncTestCase, gen_test

from hanko_tornado import ConfigurationError, HankoAuthMixin, HankoSettings, verifier_for
from hanko_tornado.cache import cache_from_url, close_cache, seal_entry
from hanko_tornado.testing import FakeHanko, HankoTestCase, SigningKey, fetch_concurrently

SECRET = "s" * 32


class UserHandler(HankoAuthMixin, tornado.web.RequestHandler):
    def get(self) -> None:
        self.write({"id": self.hanko_user.id})


class CacheUrlTest(unittest.TestCase):
    def test_urls(self) -> None:
        memory = cache_from_url("memory://")
        self.assertEqual(type(memory).__name__, "SimpleMemoryCache")
        redis = cache_from_url("redis://:p%40ss@10.1.2.3:6380/2")
        self.assertEqual((redis.endpoint, redis.port, redis.db, redis.password), ("10.1.2.3", 6380, 2, "p@ss"))
        self.assertEqual(cache_from_url("rediss://cache.example.com").port, 6379)
        for url in ["memcached://x", "redis://x/zero", "http://x"]:
            with self.subTest(url=url), self.assertRaises(ConfigurationError):
                cache_from_url(url)

    def test_shared_cache_needs_a_secret(self) -> None:
        environ = {"HANKO_API_URL": "https://x.hanko.io", "HANKO_CACHE_URL": "redis://127.0.0.1:6379/0"}
        with self.assertRaisesRegex(ConfigurationError, "^HANKO_CACHE_SECRET: a shared cache needs a secret"):
            HankoSettings.from_env(environ)
        with self.assertRaisesRegex(ConfigurationError, "^HANKO_CACHE_SECRET"):
            HankoSettings.from_env({**environ, "HANKO_CACHE_SECRET": "short"})
        settings = HankoSettings.from_env({**environ, "HANKO_CACHE_SECRET": SECRET})
        self.assertNotIn(SECRET, repr(settings))
        self.assertIsNone(HankoSettings.from_env({**environ, "HANKO_CACHE_URL": "memory://"}).cache_secret)
        with self.assertRaisesRegex(ConfigurationError, "^HANKO_CACHE_URL: must start with"):
            HankoSettings.from_env({**environ, "HANKO_CACHE_URL": "memcached://x"})


class CloseCacheTest(unittest.TestCase):
    def test_a_redis_cache_closes_without_a_warning_and_hangs_up(self) -> None:
        redis = RedisServer()
        redis.start()
        self.addCleanup(redis.stop)
        cache = cache_from_url(redis.url)

        async def use_then_close() -> None:
            await cache.set("key", "value")
            self.assertEqual(redis.command("CLIENT", "LIST").count(b"id="), 2, "the cache's and this inline one")
            await close_cache(cache)

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            asyncio.run(use_then_close())
        self.assertEqual([str(warning.message) for warning in caught], [])
        self.assertEqual(redis.command("CLIENT", "LIST").count(b"id="), 1, "only this inline one")

    def test_a_memory_cache_closes(self) -> None:
        asyncio.run(close_cache(cache_from_url("memory://")))


class RedisTestCase(HankoTestCase):
    """An application whose key store shares a real redis-server."""

    def setUp(self) -> None:
        self.redis = RedisServer()
        self.redis.start()
        self.caches: list[Any] = []
        super().setUp()

    def tearDown(self) -> None:
        for cache in self.caches:
            self.io_loop.run_sync(lambda cache=cache: close_cache(cache))
        super().tearDown()
        self.redis.stop()

    def cache(self) -> Any:
        """A new Redis cache, closed when the test ends."""
        self.caches.append(cache_from_url(self.redis.url))
        return self.caches[-1]

    def settings(self, **overrides: Any) -> HankoSettings:
        values = {"cache": self.cache(), "cache_secret": SECRET, "refetch_interval": 0.3}
        return self.hanko.settings(**{**values, "jwks_min_ttl": 0, **overrides})

    def get_app(self) -> tornado.web.Application:
        return tornado.web.Application([(r"/user", UserHandler)], hanko=self.settings())

    def status(self, token: str) -> int:
        return self.fetch_with_token("/user", token, raise_error=False).code

    def sleep(self, seconds: float) -> None:
        self.io_loop.run_sync(lambda: asyncio.sleep(seconds))


class SharedKeysTest(RedisTestCase):
    @gen_test(timeout=30)
    async def test_processes_sharing_redis_make_one_fetch(self) -> None:
        """Ten verifiers stand for ten processes: separate memories, one Redis."""
        verifiers = [verifier_for(tornado.web.Application(hanko=self.settings())) for _ in range(10)]
        tokens = [self.hanko.mint() for _ in range(10)]
        users = await asyncio.gather(*(v.verify_token(t) for v in verifiers for t in tokens))
        self.assertEqual(len(users), 100)
        self.assertEqual(self.hanko.jwks_fetches, 1)
        for verifier in verifiers:
            await verifier.close()

    def test_redis_down_never_fails_a_request_and_is_used_again(self) -> None:
        self._app.settings["hanko"] = self.settings(stale_grace=60)
        self.hanko.max_age = 1
        token = self.hanko.mint()
        self.assertEqual(self.status(token), 200)
        self.assertIn(b"jwks", self.redis.command("KEYS", "*"))
        self.redis.stop()
        with captured_logs() as lines:
            self.assertEqual(self.status(token), 200)
            self.assertEqual(self.status(self.hanko.mint()), 200)
            self.sleep(1.1)  # past the TTL: the refresh finds Redis down and fetches by itself
            for _ in range(5):
                self.assertEqual(self.status(self.hanko.mint()), 200)
                self.sleep(0.1)
        self.assertEqual(self.hanko.jwks_fetches, 2)
        self.assertEqual(sum("the shared cache failed" in line for line in lines), 1, lines)
        self.redis.start()
        self.sleep(1.1)
        with captured_logs() as lines:
            self.assertEqual(self.status(self.hanko.mint()), 200)
            deadline = time.monotonic() + 5
            while b"jwks" not in self.redis.command("KEYS", "*") and time.monotonic() < deadline:
                self.sleep(0.1)
        self.assertIn(b"jwks", self.redis.command("KEYS", "*"), "Redis is written again")
        self.assertTrue(any("answers again" in line for line in lines), lines)

    def test_flushed_redis_is_refilled(self) -> None:
        self.assertEqual(self.status(self.hanko.mint()), 200)
        self.assertIn(b"+OK", self.redis.command("FLUSHALL"))
        self.assertEqual(self.status(self.hanko.mint()), 200)


class PoisonTest(RedisTestCase):
    def poison(self, text: str) -> None:
        cache = self.cache()
        key = f"hanko_tornado:jwks:{self.hanko.settings().jwks_url}"
        self.io_loop.run_sync(lambda: cache.set(key, text, ttl=600))

    def test_entries_not_sealed_with_the_secret_are_refused(self) -> None:
        attacker = SigningKey.generate(key_size=2048)
        forged_jwks = json.dumps({"keys": [attacker.public_jwk()]})
        entry = json.dumps({"jwks": forged_jwks, "fetched_at": time.time(), "ttl": 600})
        forged = self.hanko.mint(key=attacker)
        for poison in [entry, seal_entry("x" * 32, entry), seal_entry(SECRET, "not json"), "\x00" * 100]:
            with self.subTest(poison=poison[:20]):
                self.poison(poison)
                self._app.settings.pop("hanko_verifier", None)
                with captured_logs() as lines:
                    self.assertEqual(self.status(forged), 401)
                    self.assertEqual(self.status(self.hanko.mint()), 200)
                self.assertTrue(any("shared" in line for line in lines), lines)

    def test_a_sealed_entry_is_used(self) -> None:
        jwks = json.dumps(self.hanko.jwks())
        self.poison(seal_entry(SECRET, json.dumps({"jwks": jwks, "fetched_at": time.time(), "ttl": 600})))
        self.assertEqual(self.status(self.hanko.mint()), 200)
        self.assertEqual(self.hanko.jwks_fetches, 0)


class FleetTest(AsyncTestCase):
    """Real server.py processes, on two ports and with --processes, sharing one redis-server."""

    def setUp(self) -> None:
        super().setUp()
        self.redis = RedisServer()
        self.redis.start()
        self.hanko = FakeHanko(key_size=2048)
        self.hanko.start()

    def tearDown(self) -> None:
        self.io_loop.run_sync(self.hanko.stop)
        self.redis.stop()
        super().tearDown()

    def environment(self) -> dict[str, str]:
        return {
            "HANKO_API_URL": self.hanko.api_url,
            "HANKO_CACHE_URL": self.redis.url,
            "HANKO_CACHE_SECRET": SECRET,
        }

    async def burst(self, ports: list[int], count: int) -> list[int]:
        token = self.hanko.mint()
        requests = [(f"http://127.0.0.1:{ports[i % len(ports)]}/protected", token) for i in range(count)]
        return [r.code for r in await fetch_concurrently(requests)]

    @gen_test(timeout=90)
    async def test_two_servers_make_one_fetch_between_them(self) -> None:
        async with running_server(self.environment()) as first, running_server(self.environment()) as second:
            self.assertEqual(await self.burst([first.port, second.port], 200), [200] * 200)
        self.assertEqual(self.hanko.jwks_fetches, 1)

    @gen_test(timeout=90)
    async def test_forked_processes_share_one_port_and_one_fetch(self) -> None:
        async with running_server(self.environment(), "--processes", "3") as server:
            self.assertEqual(await self.burst([server.port], 300), [200] * 300)
        self.assertEqual(server.process.returncode, 0, "stopping the parent stops the workers")
        self.assertEqual(self.hanko.jwks_fetches, 1)
        _, stderr = await server.output()
        self.assertEqual(stderr.count("serving on"), 3)
