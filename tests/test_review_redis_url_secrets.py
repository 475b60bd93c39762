"""Review: a password in a Redis URL's query (Sentinel's ``sentinel_password``, or a stray ``password``) is
masked like the one in its user info: in start-up errors, in the store's description, and in log lines."""

from __future__ import annotations

import json
import unittest

from redis_server import free_port
from test_server import running_server
from tornado.testing import AsyncTestCase, gen_test

from hanko_tornado import ConfigurationError
from hanko_tornado.cache import cache_from_url
from hanko_tornado.redis_urls import mask_url
from hanko_tornado.testing import FakeHanko

SECRET = "u" * 32
PASSWORD = "hunter2hunter2"


class QueryPasswordTest(unittest.TestCase):
    def test_mask_url_masks_passwords_in_the_query(self) -> None:
        for url, masked in [
            (
                f"redis+sentinel://s1,s2/m?sentinel_password={PASSWORD}",
                "redis+sentinel://s1,s2/m?sentinel_password=***",
            ),
            (
                f"redis+sentinel://a:{PASSWORD}@s1/m?sentinel_username=x&sentinel_password={PASSWORD}&y=1",
                "redis+sentinel://a:***@s1/m?sentinel_username=x&sentinel_password=***&y=1",
            ),
            (f"redis://h?password={PASSWORD}", "redis://h?password=***"),
            (f"redis://h?sentinel%5Fpassword={PASSWORD}#x", "redis://h?sentinel%5Fpassword=***#x"),
        ]:
            with self.subTest(url=url):
                self.assertEqual(mask_url(url), masked)

    def test_errors_and_the_description_never_hold_the_sentinel_password(self) -> None:
        for url in [
            f"redis+sentinel://s1/m?sentinel_password={PASSWORD}&bogus=1",
            f"rediss+sentinel://s1/m?sentinel_password={PASSWORD}&ssl_check_hostname=maybe",
            f"redis://h1,h2/0?password={PASSWORD}",
            f"redis://h?password={PASSWORD}",
        ]:
            with self.subTest(url=url), self.assertRaises(ConfigurationError) as refused:
                cache_from_url(url)
            self.assertNotIn(PASSWORD, str(refused.exception))
        store = cache_from_url(f"redis+sentinel://s1/m?sentinel_password={PASSWORD}")
        self.assertNotIn(PASSWORD, store.description)


class SentinelStartUpTest(AsyncTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.hanko = FakeHanko(key_size=2048)
        self.hanko.start()

    def tearDown(self) -> None:
        self.io_loop.run_sync(self.hanko.stop)
        super().tearDown()

    @gen_test(timeout=60)
    async def test_an_unreachable_sentinel_is_logged_without_its_password(self) -> None:
        url = f"redis+sentinel://127.0.0.1:{free_port()}/mymaster?sentinel_password={PASSWORD}"
        environment = {"HANKO_API_URL": self.hanko.api_url, "HANKO_CACHE_URL": url, "HANKO_CACHE_SECRET": SECRET}
        async with running_server(environment) as server:
            ready = await server.fetch("/readyz")
            answer = await server.fetch("/protected", headers={"Authorization": f"Bearer {self.hanko.mint()}"})
        self.assertEqual(answer.code, 200)
        self.assertNotIn(PASSWORD, ready.body.decode())
        self.assertEqual(json.loads(ready.body)["shared_cache"], "degraded")
        _, stderr = await server.output()
        self.assertIn("the shared cache failed", stderr)
        self.assertNotIn(PASSWORD, stderr)
