"""Ended sessions from a snapshot: no Redis round trip per new token, hostile records refused, restarts survived.

Run against redis-server, and against Valkey where it is installed (``make test`` installs it).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid

from redis_server import RedisServer
from support import captured_logs
from test_redis_topologies import SECRET, FleetCase, _not
from tornado.testing import gen_test

from hanko_tornado.cache import CACHE_BACKOFF_SECONDS, SealedCache, cache_from_url, close_cache
from hanko_tornado.sealing import seal_entry


class SnapshotTest(FleetCase):
    server = "redis-server"

    def setUp(self) -> None:
        self.redis = RedisServer(name=self.server)
        self.redis.start()
        self.url = self.redis.url
        super().setUp()

    def tearDown(self) -> None:
        super().tearDown()
        self.redis.stop()

    def table(self) -> str:
        return f"hanko_tornado:ended:{self.hanko.api_url}:records"

    def record(self, kind: str, ident: str, *, field: str | None = None, secret: str = SECRET) -> None:
        """Write an end into the table as anyone with access to Redis could."""
        text = json.dumps({"kind": kind, "id": ident, "until": time.time() + 600})
        entry = seal_entry(secret, f"hanko_tornado:ended:{self.hanko.api_url}:{kind}:{ident}", "ended", text)
        self.redis.call("HSET", self.table(), field or f"{kind}:{ident}", entry)

    def commands(self) -> int:
        return int(self.redis.info("total_commands_processed"))

    @gen_test(timeout=60)
    async def test_a_new_token_costs_no_redis_round_trip_once_subscribed(self) -> None:
        ended = str(uuid.uuid4())
        self.record("session", ended)
        verifier = self.process()
        self.assertTrue(await self.accepted(verifier, self.hanko.mint()))
        await self.listening(verifier)
        before = self.commands()
        results = [await self.accepted(verifier, self.hanko.mint()) for _ in range(50)]
        self.assertEqual(self.commands() - before, 1, "only the INFO that counts them")
        self.assertEqual(results, [True] * 50)
        self.assertFalse(await self.accepted(verifier, self.hanko.mint(session_id=ended)), "known from the snapshot")

    @gen_test(timeout=60)
    async def test_hostile_records_neither_end_nor_stall(self) -> None:
        unsealed, moved, huge = (str(uuid.uuid4()) for _ in range(3))
        self.record("session", unsealed, secret="x" * 32)
        self.record("session", str(uuid.uuid4()), field=f"session:{moved}")  # sealed for another session
        self.redis.call("HSET", self.table(), f"session:{huge}", b"h" * (3 << 20))
        self.redis.call("HSET", self.table(), b"\xff" * 300, b"\x00")
        tokens = [self.hanko.mint(session_id=s) for s in (unsealed, moved, huge)]
        for verifier in (self.process(), self.process()):
            with captured_logs() as lines:
                self.assertEqual([await self.accepted(verifier, t) for t in tokens], [True] * 3, "records per token")
                await self.listening(verifier)
                self.assertEqual([await self.accepted(verifier, t) for t in tokens], [True] * 3, "the snapshot")
            self.assertTrue(any("refused 4 ended-session records" in line for line in lines), lines)

    @gen_test(timeout=90)
    async def test_a_restart_keeps_remembered_tokens_and_rechecks_ends_missed(self) -> None:
        first, second = self.process(), self.process()
        ended_meanwhile = str(uuid.uuid4())
        kept, missed = self.hanko.mint(), self.hanko.mint(session_id=ended_meanwhile)
        for verifier in (first, second):
            self.assertTrue(await self.accepted(verifier, kept) and await self.accepted(verifier, missed))
        await self.listening(first, second)
        misses = first.cache_info().misses
        self.redis.stop()
        self.redis.start()  # empty: a restart without persistence
        await second.revocations.end("session", ended_meanwhile, time.time() + 600)  # maybe before first listens again
        await self.until(lambda: _not(self.accepted(first, missed)), "an end first may have missed is applied")
        self.assertTrue(await self.accepted(first, kept))
        self.assertEqual(first.cache_info().misses, misses, "the kept token was not verified afresh")


class ValkeySnapshotTest(SnapshotTest):
    server = "valkey-server"


class BackOffTest(FleetCase):
    def setUp(self) -> None:
        self.redis = RedisServer()
        self.redis.start()
        super().setUp()

    def tearDown(self) -> None:
        super().tearDown()
        self.redis.stop()

    @gen_test(timeout=60)
    async def test_after_a_restart_the_first_try_after_the_back_off_uses_redis_again(self) -> None:
        now = [1000.0]
        store = cache_from_url(self.redis.url)
        cache = SealedCache(store, SECRET, clock=lambda: now[0])
        try:
            self.assertTrue(await cache.set("k", "jwks", "one", 60))
            self.redis.stop()
            with captured_logs() as lines:
                self.assertIsNone(await cache.get("k", "jwks"))
                self.assertFalse(cache.answering)
                now[0] += CACHE_BACKOFF_SECONDS
                self.assertIsNone(await cache.get("k", "jwks"))  # still down: one more back-off, one more line
                await asyncio.get_running_loop().run_in_executor(None, self.redis.start)
                now[0] += CACHE_BACKOFF_SECONDS
                self.assertTrue(await cache.set("k", "jwks", "two", 60), "the pooled connections were dead")
                self.assertEqual(await cache.get("k", "jwks"), "two")
            logged = [line.split(" ", 2)[1:] for line in lines if line.startswith("hanko_tornado")]
            self.assertEqual([level for level, _ in logged], ["WARNING", "INFO", "INFO"], lines)
            self.assertIn("answers again", logged[-1][1])
        finally:
            await close_cache(store)
