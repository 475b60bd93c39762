"""Review: a Redis writer without the secret swells ended-session records: what one step brings into the process.

A snapshot step reads about 1,000 records; cut at 1 MiB each (field and value), one step could bring two
gigabytes into the process.  An ended-session record is a few hundred bytes: records are cut far shorter.
"""

from __future__ import annotations

import json
import time
import unittest.mock
import uuid

from redis_server import RedisServer
from test_redis_topologies import SECRET
from tornado.testing import AsyncTestCase, gen_test

from hanko_tornado import redis_urls
from hanko_tornado.cache import SealedCache, cache_from_url, close_cache
from hanko_tornado.ended_records import EndedRecords
from hanko_tornado.store import MAX_RECORD_BYTES

API_URL = "https://tenant.hanko.example"
HUGE = 1 << 20


class RecordSizeTest(AsyncTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.redis = RedisServer()
        self.redis.start()
        self.records = EndedRecords(API_URL)

    def tearDown(self) -> None:
        super().tearDown()
        self.redis.stop()

    @gen_test(timeout=60)
    async def test_a_snapshot_step_reads_no_swollen_record_whole(self) -> None:
        for i in range(16):  # 16 MiB in Redis stands for the 1,000 per step an attacker could write
            self.redis.call("HSET", self.records.table, f"session:{uuid.uuid4()}".encode() + b"x" * HUGE, b"v" * HUGE)
            self.redis.call("HSET", self.records.table, f"session:{uuid.uuid4()}", b"h" * HUGE)
        # What is checked is what a step brings back, not how fast a busy machine scans 32 MiB within 1 s.
        with unittest.mock.patch.object(redis_urls, "CACHE_OPERATION_TIMEOUT", 30.0):
            store = cache_from_url(self.redis.url)
        try:
            cursor, records = await store.scan_records(self.records.table, 0, 1000)
            read = await store.read_records(self.records.table, [str(field) for field, _ in records[:4]])
        finally:
            await close_cache(store)
        self.assertEqual(cursor, 0)
        self.assertEqual(len(records), 32)
        for field, value in records:
            self.assertLessEqual(len(field or b""), MAX_RECORD_BYTES + 1)
            self.assertLessEqual(len(value or b""), MAX_RECORD_BYTES + 1)
        for value in read:
            self.assertLessEqual(len(value or b""), MAX_RECORD_BYTES + 1)

    @gen_test(timeout=60)
    async def test_a_genuine_end_still_fits_and_is_read(self) -> None:
        session = "s" * 128  # the longest id a record may name
        cache = SealedCache(cache_from_url(self.redis.url), secret=SECRET)
        try:
            self.assertTrue(await self.records.share(cache, "session", session, time.time() + 10**9))
            (entry,) = await cache.store.read_records(self.records.table, [f"session:{session}"])
            self.assertLessEqual(len(entry or b""), MAX_RECORD_BYTES)
            ends: list[tuple[str, str, float]] = []
            self.assertTrue(await self.records.snapshot(cache, lambda *end: ends.append(end)))
            self.assertEqual([end[:2] for end in ends], [("session", session)])
            self.assertEqual(await self.records.read(cache, [("session", session)]), ends)
        finally:
            await close_cache(cache.store)
        self.assertLess(len(json.dumps(ends)), MAX_RECORD_BYTES)
