"""Across server.py processes sharing a real redis-server: log out everywhere, and roles dropped everywhere."""

from __future__ import annotations

import asyncio
import time

from redis_server import RedisServer
from test_server import running_server
from tornado.testing import AsyncTestCase, gen_test

from hanko_tornado.testing import FakeHanko

SECRET = "a" * 32
KEY = "cloud-admin-key-" + "z" * 32


class FleetTest(AsyncTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.redis = RedisServer()
        self.redis.start()
        self.hanko = FakeHanko(key_size=2048)
        self.hanko.admin.api_key = KEY
        self.hanko.start()

    def tearDown(self) -> None:
        self.io_loop.run_sync(self.hanko.stop)
        self.redis.stop()
        super().tearDown()

    def environment(self) -> dict[str, str]:
        return {
            "HANKO_API_URL": self.hanko.api_url,
            "HANKO_AUDIENCE": "localhost",
            "HANKO_CACHE_URL": self.redis.url,
            "HANKO_CACHE_SECRET": SECRET,
            "HANKO_ADMIN_API_URL": self.hanko.admin.url,
            "HANKO_ADMIN_API_KEY": KEY,
            "LOG_LEVEL": "DEBUG",
        }

    @gen_test(timeout=120)
    async def test_log_out_everywhere_at_one_process_is_refused_by_every_process_within_a_second(self) -> None:
        user = self.hanko.admin.add_user()
        tokens = [self.hanko.mint(user.id) for _ in range(2)]
        bystander = self.hanko.mint()
        async with running_server(self.environment()) as first, running_server(self.environment()) as second:

            async def codes(token: str) -> list[int]:
                return [
                    (await s.fetch("/protected", headers={"Authorization": f"Bearer {token}"})).code
                    for s in (first, second)
                ]

            for token in (*tokens, bystander):
                self.assertEqual(await codes(token), [200, 200])
            await asyncio.sleep(0.5)  # both listen by now
            for token in (*tokens, bystander):
                self.assertEqual(await codes(token), [200, 200], "both remember every token")
            started = time.monotonic()
            answer = await first.fetch(
                "/protected/sessions", method="DELETE", headers={"Authorization": f"Bearer {tokens[0]}"}
            )
            self.assertEqual(answer.code, 200)
            while [await codes(token) for token in tokens] != [[401, 401]] * 2:
                self.assertLess(time.monotonic() - started, 1.0 + answer.request_time, "everywhere within a second")
                await asyncio.sleep(0.02)
            self.assertEqual(await codes(bystander), [200, 200])
            self.assertEqual(self.hanko.deliveries, [], "no webhook did it")
        for server in (first, second):
            _, log = await server.output()
            self.assertNotIn(KEY, log)
            self.assertNotIn(tokens[0].split(".")[2][-30:], log)

    @gen_test(timeout=120)
    async def test_a_role_is_fetched_once_for_all_processes_and_a_user_update_drops_it_everywhere(self) -> None:
        user = self.hanko.admin.add_user(private={"roles": ["admin"]})
        token = self.hanko.mint(user.id)
        async with running_server(self.environment()) as first, running_server(self.environment()) as second:
            servers = (first, second)

            async def codes() -> list[int]:
                headers = {"Authorization": f"Bearer {token}"}
                return [(await s.fetch("/protected/admin", headers=headers)).code for s in servers]

            await first.fetch("/protected", headers={"Authorization": f"Bearer {token}"})
            await second.fetch("/protected", headers={"Authorization": f"Bearer {token}"})
            await asyncio.sleep(0.5)  # both listen by now
            self.assertEqual(await codes(), [200, 200])
            self.assertEqual(await codes(), [200, 200])
            metadata_calls = [call for call in self.hanko.admin.calls if call.endswith("/metadata")]
            self.assertEqual(len(metadata_calls), 1, "the second process read the first one's answer from Redis")
            self.hanko.admin.users[user.id].metadata["private_metadata"] = {"roles": []}
            self.hanko.register_webhook(f"http://127.0.0.1:{first.port}/webhooks/hanko", ("user",))
            started = time.monotonic()
            await self.hanko.send_webhook(
                f"http://127.0.0.1:{first.port}/webhooks/hanko", "user.update", {"id": user.id}
            )
            while await codes() != [403, 403]:
                self.assertLess(time.monotonic() - started, 2.0, "dropped everywhere at once")
                await asyncio.sleep(0.02)
