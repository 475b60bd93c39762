"""Redis URLs: every topology's form, ACL users, TLS options, and errors that never show the password."""

from __future__ import annotations

import json
import unittest

from redis_server import Certificates, free_port
from test_server import running_server
from tornado.testing import AsyncTestCase, gen_test

from hanko_tornado import ConfigurationError, HankoSettings
from hanko_tornado.cache import cache_from_url
from hanko_tornado.redis_urls import mask_url
from hanko_tornado.testing import FakeHanko

SECRET = "u" * 32


def options(url: str) -> dict[str, object]:
    return dict(cache_from_url(url).client.connection_pool.connection_kwargs)


class RedisUrlTest(unittest.TestCase):
    def test_an_acl_user_and_its_password_reach_redis(self) -> None:
        found = options("redis://alice:p%40ss%3Aword@cache.internal:6380/3")
        expected = {"username": "alice", "password": "p@ss:word", "host": "cache.internal", "port": 6380, "db": 3}
        self.assertEqual({key: found[key] for key in expected}, expected)
        self.assertIsNone(options("redis://:only-a-password@h")["username"])

    def test_a_unix_socket_with_a_database(self) -> None:
        found = options("unix://bob:pw@/run/redis/redis.sock?db=2")
        self.assertEqual((found["path"], found["db"], found["username"]), ("/run/redis/redis.sock", 2, "bob"))

    def test_tls_checks_the_host_name_by_default_and_takes_a_ca_and_a_client_certificate(self) -> None:
        tls = Certificates()
        url = f"rediss://h:6380/0?ssl_ca_certs={tls.path('ca.crt')}&ssl_certfile={tls.path('client.crt')}"
        found = options(f"{url}&ssl_keyfile={tls.path('client.key')}")
        self.assertEqual(
            (found["ssl_check_hostname"], found["ssl_cert_reqs"], found["ssl_ca_certs"], found["ssl_keyfile"]),
            (True, "required", tls.path("ca.crt"), tls.path("client.key")),
        )
        self.assertFalse(options("rediss://h/0?ssl_check_hostname=false")["ssl_check_hostname"])

    def test_sentinel_and_cluster_forms(self) -> None:
        sentinel = cache_from_url("redis+sentinel://alice:pw@s1,s2:26380,[::1]/mymaster/4?sentinel_password=spw")
        pool = sentinel.client.connection_pool
        self.assertEqual(
            (pool.service_name, pool.connection_kwargs["db"], pool.connection_kwargs["username"]),
            ("mymaster", 4, "alice"),
        )
        manager = pool.sentinel_manager
        hosts = [c.connection_pool.connection_kwargs for c in manager.sentinels]
        self.assertEqual([(h["host"], h["port"]) for h in hosts], [("s1", 26379), ("s2", 26380), ("::1", 26379)])
        self.assertEqual((hosts[0]["password"], hosts[0]["username"]), ("spw", None))
        cluster = cache_from_url("rediss+cluster://alice:pw@n1:7000,n2:7001")
        nodes = cluster.client.nodes_manager.startup_nodes.values()
        self.assertEqual([(n.host, n.port) for n in nodes], [("n1", 7000), ("n2", 7001)])

    def test_malformed_urls_are_one_line_errors_without_the_password(self) -> None:
        bad = [
            "redis://alice:hunter2@h/zero",
            "redis://alice:hunter2@h:99999/0",
            "redis://alice:hunter2@h1,h2/0",
            "redis://alice:hunter2@h/0?ssl_ca_certs=/ca.pem",  # TLS options need rediss://
            "rediss://alice:hunter2@h/0?verify=no",
            "rediss://alice:hunter2@h/0?ssl_check_hostname=maybe",
            "rediss://alice:hunter2@h/0?ssl_ca_certs=/nowhere/ca.pem",
            "rediss://alice:hunter2@h/0?ssl_keyfile=/nowhere/k.pem",
            "redis+sentinel://alice:hunter2@s1,s2",
            "redis+cluster://alice:hunter2@n1/3",
            "memcached://alice:hunter2@h",
        ]
        for url in bad:
            with self.subTest(url=url), self.assertRaises(ConfigurationError) as caught:
                HankoSettings.from_env(
                    {"HANKO_API_URL": "https://x.hanko.io", "HANKO_CACHE_URL": url, "HANKO_CACHE_SECRET": SECRET}
                )
            message = str(caught.exception)
            self.assertTrue(message.startswith("HANKO_CACHE_URL: "), message)
            self.assertNotIn("hunter2", message)
            self.assertNotIn("\n", message)

    def test_an_unknown_option_names_what_this_url_allows(self) -> None:
        for url, says in (
            ("redis://h/0?nope=1", "this URL takes no options"),
            ("rediss://h/0?nope=1", "allowed here: ssl_ca_certs"),
            ("redis+sentinel://s1,s2/mymaster?nope=1", "allowed here: sentinel_password, sentinel_username"),
        ):
            with self.subTest(url=url), self.assertRaises(ConfigurationError) as caught:
                HankoSettings.from_env(
                    {"HANKO_API_URL": "https://x.hanko.io", "HANKO_CACHE_URL": url, "HANKO_CACHE_SECRET": SECRET}
                )
            self.assertIn("unknown or repeated option 'nope'", str(caught.exception))
            self.assertIn(says, str(caught.exception))

    def test_a_tls_file_that_is_not_a_certificate_is_refused_at_start_up(self) -> None:
        tls = Certificates()
        with self.assertRaisesRegex(ConfigurationError, "cannot use its TLS files"):
            cache_from_url(f"rediss://h/0?ssl_certfile={tls.path('ca.key')}&ssl_keyfile={tls.path('client.key')}")

    def test_mask_url(self) -> None:
        self.assertEqual(mask_url("redis://alice:pw@h:1/0"), "redis://alice:***@h:1/0")
        self.assertEqual(mask_url("redis+sentinel://:p@w@s1,s2/m"), "redis+sentinel://:***@s1,s2/m")
        self.assertEqual(mask_url("redis://h/0"), "redis://h/0")


class StartUpTest(AsyncTestCase):
    """server.py with a wrong or unreachable cache URL: one line and exit 2, or a warning and a ready process."""

    def setUp(self) -> None:
        super().setUp()
        self.hanko = FakeHanko(key_size=2048)
        self.hanko.start()

    def tearDown(self) -> None:
        self.io_loop.run_sync(self.hanko.stop)
        super().tearDown()

    def environment(self, url: str) -> dict[str, str]:
        return {"HANKO_API_URL": self.hanko.api_url, "HANKO_CACHE_URL": url, "HANKO_CACHE_SECRET": SECRET}

    @gen_test(timeout=60)
    async def test_a_malformed_url_is_one_line_without_the_password(self) -> None:
        async with running_server(self.environment("redis://alice:hunter2@h1,h2/0"), wait=False) as server:
            _, stderr = await server.output()
        self.assertEqual(server.process.returncode, 2)
        self.assertEqual(
            stderr.strip().splitlines(),
            [
                "server.py: HANKO_CACHE_URL: names several hosts "
                "(redis+sentinel://, redis+cluster://?): redis://alice:***@h1,h2/0"
            ],
        )

    @gen_test(timeout=60)
    async def test_an_unreachable_redis_is_a_warning_and_the_process_is_ready(self) -> None:
        url = f"redis://alice:hunter2@127.0.0.1:{free_port()}/0"
        async with running_server(self.environment(url)) as server:
            ready = await server.fetch("/readyz")
            token = self.hanko.mint()
            answer = await server.fetch("/protected", headers={"Authorization": f"Bearer {token}"})
        self.assertEqual((ready.code, json.loads(ready.body)["shared_cache"], answer.code), (200, "degraded", 200))
        _, stderr = await server.output()
        self.assertNotIn("hunter2", stderr)
        warnings = [line for line in stderr.splitlines() if "the shared cache failed" in line]
        self.assertEqual(len(warnings), 1, stderr)
        self.assertIn(url.replace("hunter2", "***"), warnings[0])
