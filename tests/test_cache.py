"""The shared cache: one JWKS fetch for a fleet sharing a real redis-server, and Redis failing never fails a request."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pathlib
import signal
import tempfile
import time
import unittest
import unittest.mock
import uuid
import warnings
from typing import Any

import pytest
import tornado.web
from redis_server import RedisServer
from support import captured_logs
from test_server import child_pids, running_server, until
from tornado.testing import AsyncTestCase, bind_unused_port, gen_test

from hanko_tornado import (
    ConfigurationError,
    HankoAuthMixin,
    HankoSettings,
    InvalidTokenError,
    ended_records,
    redis_store,
    redis_urls,
    verifier_for,
)
from hanko_tornado import cache as cache_module
from hanko_tornado.cache import (
    CACHE_BACKOFF_SECONDS,
    ENTRY_FORMAT,
    SealedCache,
    cache_from_url,
    close_cache,
    seal_entry,
)
from hanko_tornado.lifecycle import state_of
from hanko_tornado.testing import FakeHanko, HankoTestCase, SigningKey, fetch_concurrently

SECRET = "s" * 32


def jwks_key(hanko: FakeHanko) -> str:
    """Where a process keeps ``hanko``'s key set in the shared cache."""
    return f"hanko_tornado:jwks:{hanko.settings().jwks_url}"


def session_key(hanko: FakeHanko, session_id: str) -> str:
    """Where a process keeps Hanko's answer about one session in the shared cache."""
    return f"hanko_tornado:session:{hanko.settings().api_url}:{session_id}"


class UserHandler(HankoAuthMixin, tornado.web.RequestHandler):
    def get(self) -> None:
        self.write({"id": self.hanko_user.id})


class CacheUrlTest(unittest.TestCase):
    def test_urls(self) -> None:
        memory = cache_from_url("memory://")
        self.assertEqual(type(memory).__name__, "SimpleMemoryCache")
        options = cache_from_url("redis://:p%40ss@10.1.2.3:6380/2").client.connection_pool.connection_kwargs
        self.assertEqual(
            (options["host"], options["port"], options["db"], options["password"]), ("10.1.2.3", 6380, 2, "p@ss")
        )
        tls = cache_from_url("rediss://cache.example.com").client.connection_pool.connection_kwargs
        self.assertEqual((tls["port"], tls["ssl_check_hostname"]), (6379, True))
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
            await cache.write("key", "value", 60)
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

    def restart(self, **overrides: Any) -> None:
        """A new verifier with these settings, as in a process started afresh."""
        verifier, state_of(self._app).verifier = state_of(self._app).verifier, None  # the next request makes one
        if verifier is not None:
            self.io_loop.run_sync(verifier.close)
        self._app.settings["hanko"] = self.settings(**overrides)


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
        with captured_logs() as lines:
            # Redis is left alone for CACHE_BACKOFF_SECONDS after its last failure, then tried again.
            deadline = time.monotonic() + CACHE_BACKOFF_SECONDS + 5
            while b"jwks" not in self.redis.command("KEYS", "*") and time.monotonic() < deadline:
                self.assertEqual(self.status(self.hanko.mint()), 200)
                self.sleep(0.2)
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
        self.io_loop.run_sync(lambda: cache.write(key, text, 600))

    def test_entries_not_sealed_with_the_secret_are_refused(self) -> None:
        attacker = SigningKey.generate(key_size=2048)
        forged_jwks = json.dumps({"keys": [attacker.public_jwk()]})
        entry = json.dumps({"jwks": forged_jwks, "fetched_at": time.time(), "ttl": 600})
        forged = self.hanko.mint(key=attacker)
        key = jwks_key(self.hanko)
        poisons = [
            entry,
            seal_entry("x" * 32, key, "jwks", entry),
            seal_entry(SECRET, key, "jwks", "not json"),
            seal_entry(SECRET, key, "session", entry),
            seal_entry(SECRET, key + "x", "jwks", entry),
            "\x00" * 100,
        ]
        for poison in poisons:
            with self.subTest(poison=poison[:20]):
                self.poison(poison)
                # A process started afresh; the last one closed (on Python 3.10 its listener may lose the
                # cancellation tearDown sends, and only closing stops it).
                self.restart()
                with captured_logs() as lines:
                    self.assertEqual(self.status(forged), 401)
                    self.assertEqual(self.status(self.hanko.mint()), 200)
                self.assertTrue(any("shared" in line for line in lines), lines)

    def test_a_sealed_entry_is_used(self) -> None:
        jwks = json.dumps(self.hanko.jwks())
        entry = json.dumps({"jwks": jwks, "fetched_at": time.time(), "ttl": 600})
        self.poison(seal_entry(SECRET, jwks_key(self.hanko), "jwks", entry))
        self.assertEqual(self.status(self.hanko.mint()), 200)
        self.assertEqual(self.hanko.jwks_fetches, 0)


class MovedEntryTest(RedisTestCase):
    """Whoever writes to Redis copies a sealed entry from one key to another."""

    def test_a_live_session_answer_moved_to_a_logged_out_session_is_refused(self) -> None:
        self.restart(session_check="validate")
        live, ended = str(uuid.uuid4()), str(uuid.uuid4())
        self.assertEqual(self.status(self.hanko.mint(session_id=live)), 200)
        logged_out = self.hanko.mint(session_id=ended)
        self.hanko.revoke(ended)
        self.redis.set(session_key(self.hanko, ended), self.redis.get(session_key(self.hanko, live)))
        with captured_logs() as lines:
            self.assertEqual(self.status(logged_out), 401)
        self.assertEqual(self.hanko.validations, 2, "Hanko is asked about the logged-out session")
        self.assertTrue(any("refusing a shared cache entry" in line for line in lines), lines)

    def test_a_key_set_moved_to_another_tenant_is_refused(self) -> None:
        other = FakeHanko(key_size=2048)
        other.start()
        try:
            self.assertEqual(self.status(self.hanko.mint()), 200)
            self.redis.set(jwks_key(other), self.redis.get(jwks_key(self.hanko)))
            self.restart(api_url=other.api_url)
            self.assertEqual(self.status(self.hanko.mint()), 401, "a token of the first tenant, at the second")
            self.assertEqual(self.status(other.mint()), 200)
            self.assertEqual(other.jwks_fetches, 1)
        finally:
            self.io_loop.run_sync(other.stop)


class ReplayTest(RedisTestCase):
    def test_an_older_key_set_written_back_is_not_adopted(self) -> None:
        removed = self.hanko.keys[0]
        self.assertEqual(self.status(self.hanko.mint()), 200)
        older = self.redis.get(jwks_key(self.hanko))
        self.hanko.rotate_key()
        self.hanko.keys.remove(removed)
        self.sleep(0.35)
        self.assertEqual(self.status(self.hanko.mint()), 200)
        self.redis.set(jwks_key(self.hanko), older)
        self.sleep(0.35)
        self.assertEqual(self.status(self.hanko.mint(key=removed)), 401)
        self.assertEqual(self.hanko.jwks_fetches, 3)

    def test_a_key_set_fetched_in_the_future_is_refused(self) -> None:
        unpublished = SigningKey.generate(key_size=2048)
        jwks = json.dumps({"keys": [unpublished.public_jwk()]})
        entry = json.dumps({"jwks": jwks, "fetched_at": time.time() + 3600, "ttl": 600})
        self.redis.set(jwks_key(self.hanko), seal_entry(SECRET, jwks_key(self.hanko), "jwks", entry))
        with captured_logs() as lines:
            self.assertEqual(self.status(self.hanko.mint(key=unpublished)), 401)
        self.assertEqual(self.status(self.hanko.mint()), 200)
        self.assertTrue(any("future" in line for line in lines), lines)


class UnreadableEntryTest(RedisTestCase):
    """Entries that cannot even be compared: a cache read never fails a request."""

    def test_a_non_ascii_seal_on_a_key_set_is_refused_on_a_cold_process(self) -> None:
        entry = json.dumps({"jwks": json.dumps(self.hanko.jwks()), "fetched_at": time.time(), "ttl": 600})
        tag = "\u00e9" * 64
        poisons = [f"{tag}.{entry}", f"{ENTRY_FORMAT}.jwks.{tag}.{entry}", b"\xff\xfe" * 40]
        for poison in poisons:
            with self.subTest(poison=poison[:10]):
                self.redis.set(jwks_key(self.hanko), poison.encode() if isinstance(poison, str) else poison)
                self.restart()
                self.assertEqual(self.status(self.hanko.mint()), 200)

    def test_a_non_ascii_seal_on_a_session_answer_is_refused(self) -> None:
        self.restart(session_check="validate")
        session = str(uuid.uuid4())
        answer = json.dumps({"is_valid": True, "until": time.time() + 10})
        tag = "\u00e9" * 64
        self.redis.set(session_key(self.hanko, session), f"{ENTRY_FORMAT}.session.{tag}.{answer}".encode())
        self.assertEqual(self.status(self.hanko.mint(session_id=session)), 200)
        self.assertEqual(self.hanko.validations, 1, "Hanko is asked instead")


class FetchLockTest(RedisTestCase):
    def test_a_stale_lock_holds_no_key_load_up(self) -> None:
        lock = f"{jwks_key(self.hanko)}:fetching"
        expired = json.dumps({"until": time.time() - 1})
        stale = {"left without a TTL": "fetching", "written back": seal_entry(SECRET, lock, "lock", expired)}
        for name, value in stale.items():
            with self.subTest(name):
                self.redis.call("FLUSHALL")
                self.redis.set(lock, value, seconds=None)
                self.restart()
                fetches, started = self.hanko.jwks_fetches, time.monotonic()
                self.assertEqual(self.status(self.hanko.mint()), 200)
                self.assertLess(time.monotonic() - started, 3, "no waiting out a lock that never expires")
                self.assertEqual(self.hanko.jwks_fetches, fetches + 1)
                self.assertEqual(self.redis.call("PTTL", lock), -2, "the stale lock was taken over, then released")


class UnansweringRedisTest(HankoTestCase):
    """A Redis that accepts connections and never answers: a loopback server that reads and stays silent."""

    def setUp(self) -> None:
        self.silent_socket, self.silent_port = bind_unused_port()
        self.connections: list[asyncio.StreamWriter] = []
        super().setUp()
        self.silent = self.io_loop.run_sync(lambda: asyncio.start_server(self.listen, sock=self.silent_socket))

    def tearDown(self) -> None:
        for writer in self.connections:
            writer.close()
        self.silent.close()
        super().tearDown()

    async def listen(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections.append(writer)
        while await reader.read(1 << 16):
            pass

    def get_app(self) -> tornado.web.Application:
        cache = cache_from_url(f"redis://127.0.0.1:{self.silent_port}/0")
        settings = self.hanko.settings(cache=cache, cache_secret=SECRET, session_check="validate")
        return tornado.web.Application([(r"/user", UserHandler)], hanko=settings)

    def test_after_one_timeout_redis_is_skipped_for_a_while(self) -> None:
        with captured_logs() as lines:
            codes = [self.fetch_with_token("/user", self.hanko.mint(), raise_error=False).code for _ in range(4)]
        self.assertEqual(codes, [200] * 4)
        # Each attempt is a new connection; without a back-off every session read and write would be one.
        self.assertLessEqual(len(self.connections), 2)
        warnings = [line for line in lines if "the shared cache failed" in line]
        self.assertEqual(len(warnings), 1, lines)
        # asyncio's TimeoutError, or redis-py's own read timeout where it wins the race (Python 3.10: async_timeout).
        self.assertRegex(warnings[0], r"\(read: (TimeoutError|Timeout reading from 127\.0\.0\.1:\d+)\)")

    @gen_test(timeout=30)
    async def test_a_timeout_is_not_tried_again(self) -> None:
        """A retry would double the wait on a Redis that does not answer (and on Python 3.10 outlive the bound)."""
        from redis.exceptions import TimeoutError as RedisTimeoutError

        store = cache_from_url(f"redis://127.0.0.1:{self.silent_port}/0")
        try:
            # No bound of the library's around it: redis-py's own socket timeout ends the read.
            with self.assertRaisesRegex(RedisTimeoutError, "Timeout reading from"):
                await store.read("hanko_tornado:test")
        finally:
            await close_cache(store)
        self.assertEqual(len(self.connections), 1)


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

    @pytest.mark.timeout(600)  # server.py processes: a few seconds each on a busy machine
    @gen_test(timeout=300)
    async def test_two_servers_make_one_fetch_between_them(self) -> None:
        async with running_server(self.environment()) as first, running_server(self.environment()) as second:
            self.assertEqual(await self.burst([first.port, second.port], 200), [200] * 200)
        self.assertEqual(self.hanko.jwks_fetches, 1)

    @pytest.mark.timeout(600)  # server.py processes: a few seconds each on a busy machine
    @gen_test(timeout=300)
    async def test_forked_processes_share_one_port_and_one_fetch(self) -> None:
        async with running_server(self.environment(), "--processes", "3") as server:
            self.assertEqual(await self.burst([server.port], 300), [200] * 300)
        self.assertEqual(server.process.returncode, 0, "stopping the parent stops the workers")
        self.assertEqual(self.hanko.jwks_fetches, 1)
        _, stderr = await server.output()
        self.assertEqual(stderr.count("serving on"), 3)

    @pytest.mark.timeout(600)  # server.py processes: a few seconds each on a busy machine
    @gen_test(timeout=300)
    async def test_a_replaced_worker_starts_from_the_fleets_keys_without_a_fetch(self) -> None:
        async with running_server(self.environment(), "--processes", "2") as server:
            for _ in range(2):
                await server.log_line("serving on")
            self.assertEqual(await self.burst([server.port], 20), [200] * 20)
            folder = pathlib.Path(tempfile.gettempdir())
            await until(lambda: any(folder.glob(f"hanko-tornado-{server.process.pid}-*/keys")), 60)
            os.kill(min(child_pids(server.process.pid)), signal.SIGTERM)
            await server.log_line("starting from the key set copy")
            await server.log_line("serving on")
            self.assertEqual(await self.burst([server.port], 20), [200] * 20)
        self.assertEqual(self.hanko.jwks_fetches, 1, "a fresh copy is as good as a fetch")


class HostileSizeAndLoadTest(RedisTestCase):
    def test_an_oversized_entry_is_refused_unread(self) -> None:
        self.redis.set(jwks_key(self.hanko), b"x" * (3 * 1024 * 1024))
        with captured_logs() as lines:
            self.assertEqual(self.status(self.hanko.mint()), 200, "the keys come from Hanko instead")
        self.assertEqual(self.hanko.jwks_fetches, 1)
        self.assertTrue(any("more than any entry written here" in line for line in lines), lines)
        self.assertFalse(any("shared cache failed" in line for line in lines), "Redis itself is fine")

    @gen_test(timeout=60)
    async def test_a_burst_of_new_sessions_does_not_switch_redis_off(self) -> None:
        tokens = [self.hanko.mint() for _ in range(300)]
        # What is checked is the burst beyond the pool, not the speed of a machine too busy to answer in 1 s.
        with contextlib.ExitStack() as patches:
            for module in (cache_module, ended_records, redis_store, redis_urls):
                patches.enter_context(unittest.mock.patch.object(module, "CACHE_OPERATION_TIMEOUT", 30.0))
            self.restart(session_check="validate")  # its Redis client's own timeouts too
            with captured_logs() as lines:
                responses = await fetch_concurrently([(self.get_url("/user"), token) for token in tokens])
        self.assertEqual([r.code for r in responses], [200] * 300)
        self.assertFalse(
            any("shared cache failed" in line for line in lines), [line for line in lines if "WARN" in line][:3]
        )

    @gen_test
    async def test_an_answer_with_no_time_left_is_not_written(self) -> None:
        cache = SealedCache(cache_from_url(self.redis.url), SECRET)
        with captured_logs() as lines:
            self.assertFalse(await cache.set("hanko_tornado:test", "session", "{}", ttl=0.0004))
            self.assertTrue(await cache.set("hanko_tornado:test", "session", "{}", ttl=5))
        self.assertTrue(cache.answering)
        self.assertFalse(any("failed" in line for line in lines))
        await close_cache(cache.cache)


class AiocacheRedisCacheTest(RedisTestCase):
    """An application's own aiocache ``RedisCache`` (with a namespace) is adapted to its redis-py client."""

    @gen_test(timeout=30)
    async def test_it_shares_keys_and_ends(self) -> None:
        from aiocache import RedisCache
        from aiocache.serializers import StringSerializer

        caches = [
            RedisCache(serializer=StringSerializer(), endpoint="127.0.0.1", port=self.redis.port, namespace="app:")
            for _ in range(2)
        ]
        self.caches.extend(caches)
        first, second = (verifier_for(tornado.web.Application(hanko=self.settings(cache=c))) for c in caches)
        session = str(uuid.uuid4())
        token = self.hanko.mint(session_id=session)
        for verifier in (first, second):
            await verifier.verify_token(token)
        self.assertEqual(self.hanko.jwks_fetches, 1)
        self.assertIn(b"app::hanko_tornado:jwks", self.redis.command("KEYS", "*"))
        await first.revocations.end("session", session, time.time() + 600)
        deadline = time.monotonic() + 30
        while True:
            try:
                await second.verify_token(token)
            except InvalidTokenError:
                break
            self.assertLess(time.monotonic(), deadline, "the end reached the other verifier")
            await asyncio.sleep(0.05)
        for verifier in (first, second):
            await verifier.close()
