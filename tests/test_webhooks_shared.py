"""Sessions ended by webhook end everywhere: server.py processes sharing a real redis-server, and Redis failing."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import pytest
import tornado.web
from redis_server import RedisServer
from support import captured_logs
from test_server import running_server
from tornado.testing import AsyncTestCase, gen_test

from hanko_tornado import HankoAuthMixin
from hanko_tornado.cache import cache_from_url
from hanko_tornado.testing import FakeHanko, HankoTestCase
from hanko_tornado.webhooks import HankoWebhookHandler

SECRET = "w" * 32
LOGOUT = "session.delete.explicit.logout"


class FleetTest(AsyncTestCase):
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
            "HANKO_AUDIENCE": "localhost",
            "HANKO_CACHE_URL": self.redis.url,
            "HANKO_CACHE_SECRET": SECRET,
        }

    @pytest.mark.timeout(600)  # server.py processes: a few seconds each on a busy machine
    @gen_test(timeout=300)
    async def test_a_logout_sent_to_one_process_is_refused_by_every_process_within_a_second(self) -> None:
        session = str(uuid.uuid4())
        ended, live = self.hanko.mint(session_id=session), self.hanko.mint()
        async with running_server(self.environment()) as first, running_server(self.environment()) as second:
            servers = (first, second)

            async def statuses(token: str) -> list[int]:
                return [
                    (await s.fetch("/protected", headers={"Authorization": f"Bearer {token}"})).code for s in servers
                ]

            self.assertEqual(await statuses(ended) + await statuses(live), [200] * 4)
            await asyncio.sleep(0.5)  # both are listening by now (subscribing drops what they remembered)
            self.assertEqual(await statuses(ended) + await statuses(live), [200] * 4)  # both remember both tokens
            self.hanko.register_webhook(f"http://127.0.0.1:{first.port}/webhooks/hanko", ("session.delete",))
            started = time.monotonic()
            self.hanko.revoke(session)
            await self.hanko.webhooks_sent()
            self.assertEqual(self.hanko.deliveries, [(f"http://127.0.0.1:{first.port}/webhooks/hanko", LOGOUT, 200)])
            while await statuses(ended) != [401, 401]:
                self.assertLess(time.monotonic() - started, 15, "refused everywhere, long before the token expires")
                await asyncio.sleep(0.02)
            self.assertEqual(await statuses(live), [200, 200], "another session stays")
            async with running_server(self.environment()) as third:  # started after the event
                answer = await third.fetch("/protected", headers={"Authorization": f"Bearer {ended}"})
                self.assertEqual(answer.code, 401, "a process that was not listening reads the shared record")
        _, log = await first.output()
        self.assertIn(f"Hanko webhook {LOGOUT} accepted (id={session}", log)
        self.assertNotIn(ended.split(".")[2][-30:], log)
        self.assertEqual(self.hanko.validations, 0)

    @gen_test(timeout=90)
    async def test_the_sixth_login_of_a_user_ends_the_first_session_in_every_process(self) -> None:
        user = str(uuid.uuid4())
        tokens = [self.hanko.mint(user) for _ in range(5)]
        async with running_server(self.environment()) as first, running_server(self.environment()) as second:

            async def statuses(token: str) -> list[int]:
                headers = {"Authorization": f"Bearer {token}"}
                return [(await s.fetch("/protected", headers=headers)).code for s in (first, second)]

            self.assertEqual([await statuses(token) for token in tokens], [[200, 200]] * 5)
            await asyncio.sleep(0.5)  # both are listening by now (subscribing drops what they remembered)
            self.assertEqual(await statuses(tokens[0]), [200, 200])
            self.hanko.register_webhook(f"http://127.0.0.1:{second.port}/webhooks/hanko", ("session.delete",))
            started = time.monotonic()
            tokens.append(self.hanko.mint(user))  # Hanko's session.limit is 5: the oldest session goes
            await self.hanko.webhooks_sent()
            self.assertEqual(
                [delivery[1:] for delivery in self.hanko.deliveries], [("session.delete.passive.limit", 200)]
            )
            while await statuses(tokens[0]) != [401, 401]:
                self.assertLess(time.monotonic() - started, 5.0, "refused everywhere within a second or so")
                await asyncio.sleep(0.02)
            self.assertEqual([await statuses(token) for token in tokens[1:]], [[200, 200]] * 5)


class Webhooks(HankoWebhookHandler):
    pass


class UserHandler(HankoAuthMixin, tornado.web.RequestHandler):
    def get(self) -> None:
        self.write({"id": self.hanko_user.id})


class RedisDownTest(HankoTestCase):
    def setUp(self) -> None:
        self.redis = RedisServer()
        self.redis.start()
        super().setUp()

    def tearDown(self) -> None:
        super().tearDown()
        self.redis.stop()

    def get_app(self) -> tornado.web.Application:
        settings = self.hanko.settings(cache=cache_from_url(self.redis.url), cache_secret=SECRET)
        return tornado.web.Application([(r"/webhooks/hanko", Webhooks), (r"/user", UserHandler)], hanko=settings)

    def test_the_receiving_process_applies_it_and_warns_that_others_may_not_have(self) -> None:
        session = str(uuid.uuid4())
        token = self.hanko.mint(session_id=session)
        self.assertEqual(self.fetch_with_token("/user", token).code, 200)
        self.redis.stop()
        self.hanko.register_webhook(self.get_url("/webhooks/hanko"))
        with captured_logs() as lines:
            self.hanko.revoke(session)
            self.io_loop.run_sync(self.hanko.webhooks_sent)
        self.assertEqual(self.hanko.deliveries[-1][2], 200, "Hanko is told it was accepted")
        response = self.fetch_with_token("/user", token, raise_error=False)
        self.assertEqual(
            (response.code, json.loads(response.body)["message"]),
            (401, "The session token was refused: session ended."),
        )
        warnings = [line for line in lines if "WARNING" in line and "could not share" in line]
        self.assertEqual(len(warnings), 1, lines)
        self.assertIn(session, warnings[0])
        self.assertIn("other processes", warnings[0])
