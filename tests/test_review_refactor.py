"""A review of the "no behaviour change" refactor (issue 26): what it could have loosened, tried on real servers."""

from __future__ import annotations

import asyncio
import base64
import gc
import json
import time
import weakref
from typing import Any

import tornado.web
import tornado.websocket
from support import captured_logs
from tornado.testing import gen_test

from hanko_tornado import CorsHandler, CorsSettings, HankoAuthMixin, HankoProjects, HankoSettings, close, verifier_for
from hanko_tornado.lifecycle import state_of
from hanko_tornado.requirements import passkey
from hanko_tornado.runner.dev import DevStandIn
from hanko_tornado.testing import HankoTestCase
from hanko_tornado.webhooks import HankoWebhookHandler
from hanko_tornado.websocket import CLOSE_SESSION_ENDED, CLOSE_TOKEN_EXPIRED, HankoWebSocketMixin


class UserHandler(HankoAuthMixin, tornado.web.RequestHandler):
    def get(self) -> None:
        self.write({"id": self.hanko_user.id})


class Webhooks(HankoWebhookHandler):
    pass


class ChangeHandler(HankoAuthMixin, CorsHandler):
    runs = 0

    def get(self) -> None:
        self.write({"id": self.hanko_user.id})

    def post(self) -> None:
        type(self).runs += 1
        self.write({"id": self.hanko_user.id})


class PasskeyHandler(ChangeHandler):
    hanko_requires = passkey


class Socket(HankoWebSocketMixin, tornado.websocket.WebSocketHandler):
    hanko_watch_interval = 0.05

    def open(self) -> None:
        self.write_message("hello")


class ClosedBeforeFirstUseTest(HankoTestCase):
    """``close(application)`` says what is closed stays closed: a request after it is answered 503."""

    def get_app(self) -> tornado.web.Application:
        return tornado.web.Application([(r"/user", UserHandler)], hanko=self.hanko.settings())

    def test_a_request_after_close_is_refused_even_when_none_came_before(self) -> None:
        self.io_loop.run_sync(lambda: close(self._app))
        response = self.fetch_with_token("/user", self.hanko.mint(), raise_error=False)
        self.assertEqual(response.code, 503, response.body)
        self.assertEqual(self.hanko.jwks_fetches, 0, "a closed application fetches nothing")

    def test_a_request_after_close_is_refused_when_one_came_before(self) -> None:
        token = self.hanko.mint()
        self.assertEqual(self.fetch_with_token("/user", token).code, 200)
        self.io_loop.run_sync(lambda: close(self._app))
        # Remembered or not, a token after close is not taken: the closed key store holds no key any more.
        for again in (token, self.hanko.mint()):
            response = self.fetch_with_token("/user", again, raise_error=False)
            self.assertEqual(response.code, 503, response.body)


class _Sticky:
    """A part an application was given (``ApplicationState.provide``) whose close fails."""

    async def close(self) -> None:
        raise RuntimeError("this part would not close")


class CloseThatFailsTest(HankoTestCase):
    """One part failing to close must not leave the verifier (its HTTP clients, its listener) open."""

    def get_app(self) -> tornado.web.Application:
        return tornado.web.Application([(r"/user", UserHandler)], hanko=self.hanko.settings())

    def test_every_part_is_closed_though_one_fails(self) -> None:
        self.assertEqual(self.fetch_with_token("/user", self.hanko.mint()).code, 200)
        state_of(self._app).provide(_Sticky, _Sticky())
        with self.assertRaisesRegex(RuntimeError, "would not close"):
            self.io_loop.run_sync(lambda: close(self._app))
        response = self.fetch_with_token("/user", self.hanko.mint(), raise_error=False)
        self.assertEqual(response.code, 503, "the verifier was closed all the same")

    def tearDown(self) -> None:
        state_of(self._app).provide(_Sticky, None)  # the kit's own close() at the end must pass
        super().tearDown()


class ProjectsClosedTest(HankoTestCase):
    """The same with ``hanko_projects``: after ``close``, a project's request makes no verifier nobody closes."""

    def get_app(self) -> tornado.web.Application:
        self.projects = HankoProjects({"one": self.hanko.settings()}, select=lambda request: "one")
        return tornado.web.Application([(r"/user", UserHandler)], hanko_projects=self.projects)

    def test_a_project_request_after_close_is_refused(self) -> None:
        self.assertEqual(self.fetch_with_token("/user", self.hanko.mint()).code, 200)
        self.io_loop.run_sync(lambda: close(self._app))
        response = self.fetch_with_token("/user", self.hanko.mint(), raise_error=False)
        self.assertEqual(response.code, 503, response.body)
        self.assertEqual(self.projects.live_projects(), ())
        self.assertEqual(self.hanko.jwks_fetches, 1, "nothing was fetched after close")


class RecycledApplicationTest(HankoTestCase):
    def get_app(self) -> tornado.web.Application:
        return tornado.web.Application()

    def test_a_new_application_at_a_dead_ones_address_starts_afresh(self) -> None:
        settings = HankoSettings(api_url=self.hanko.api_url)
        first = tornado.web.Application(hanko=settings)
        old_verifier = weakref.ref(verifier_for(first))
        address = id(first)
        del first
        gc.collect()  # the application; its state goes with it, and the verifier's cycles at the next pass
        gc.collect()
        self.assertIsNone(old_verifier())
        kept = []
        for _ in range(5000):  # CPython soon hands the freed memory out again: look for an application there
            candidate = tornado.web.Application(hanko=settings)
            kept.append(candidate)
            if id(candidate) == address:
                break
        # At the dead one's address or not (that is up to the allocator), a new application starts with nothing.
        self.assertIsNone(state_of(candidate).verifier)
        self.assertIsNot(verifier_for(candidate), old_verifier())


class RememberedTokensTest(HankoTestCase):
    """A token verified before is answered from memory (``remembered_user``, then ``authenticate``): every check
    a first request meets still holds on it."""

    def get_app(self) -> tornado.web.Application:
        return tornado.web.Application(
            [(r"/change", ChangeHandler), (r"/passkey", PasskeyHandler), (r"/webhooks/hanko", Webhooks)],
            hanko=self.hanko.settings(session_check="validate", session_check_ttl=0.0),
            cors=CorsSettings(origins=["http://localhost:3000"]),
            cross_origin_protection=False,  # the mixin's own check is the one under test
        )

    def setUp(self) -> None:
        super().setUp()
        ChangeHandler.runs = 0

    def test_a_remembered_cookie_still_meets_the_origin_check(self) -> None:
        token = self.hanko.mint(amr=["pwd"])
        self.assertEqual(self.fetch_with_token("/change", token, cookie=True).code, 200)
        foreign = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
        response = self.fetch_with_token(
            "/change", token, cookie=True, method="POST", body="", headers=foreign, raise_error=False
        )
        self.assertEqual((response.code, _body(response)["error"]), (403, "cross_origin_request"))
        self.assertEqual(ChangeHandler.runs, 0)

    def test_a_remembered_token_still_meets_the_requirement(self) -> None:
        token = self.hanko.mint(amr=["pwd"])
        self.assertEqual(self.fetch_with_token("/change", token).code, 200)
        response = self.fetch_with_token("/passkey", token, raise_error=False)
        self.assertEqual((response.code, _body(response)["error"]), (401, "insufficient_user_authentication"))

    def test_a_remembered_bearer_whose_session_ended_at_hanko_gives_way_to_the_cookie(self) -> None:
        bearer, cookie = self.hanko.mint(), self.hanko.mint()
        bearer_session = json.loads(_claims(bearer))["session_id"]
        self.assertEqual(self.fetch_with_token("/change", bearer).code, 200)
        self.hanko.sessions.pop(bearer_session)  # no webhook: only the session check can tell
        response = self.fetch_with_token("/change", bearer, raise_error=False)
        self.assertEqual((response.code, _body(response)["reason"]), (401, "session_ended"))
        both = {"Authorization": f"Bearer {bearer}", "Cookie": f"hanko={cookie}"}
        response = self.fetch("/change", headers=both)
        self.assertEqual(_body(response)["id"], json.loads(_claims(cookie))["sub"])
        foreign = {**both, "Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
        response = self.fetch("/change", method="POST", body="", headers=foreign, raise_error=False)
        self.assertEqual(response.code, 403, "the cookie it fell through to is checked for its origin")

    def test_a_remembered_token_whose_session_a_webhook_ended_is_refused(self) -> None:
        token = self.hanko.mint()
        self.assertEqual(self.fetch_with_token("/change", token).code, 200)
        self.hanko.register_webhook(self.get_url("/webhooks/hanko"))
        self.hanko.revoke(json.loads(_claims(token))["session_id"])
        self.io_loop.run_sync(self.hanko.webhooks_sent)
        response = self.fetch_with_token("/change", token, raise_error=False)
        self.assertEqual((response.code, _body(response)["reason"]), (401, "session_ended"))


class SessionCheckBackOffTest(HankoTestCase):
    def get_app(self) -> tornado.web.Application:
        return tornado.web.Application(
            [(r"/user", UserHandler)],
            hanko=self.hanko.settings(session_check="validate", session_check_ttl=0.0, refetch_interval=0.3),
        )

    def test_a_failing_session_check_backs_off_then_recovers(self) -> None:
        token = self.hanko.mint()
        self.hanko.session_fault = "error"
        with captured_logs() as lines:
            first = self.fetch_with_token("/user", token, raise_error=False)
            asked = self.hanko.validations
            second = self.fetch_with_token("/user", token, raise_error=False)
        self.assertEqual((first.code, second.code), (503, 503))
        self.assertEqual(self.hanko.validations, asked, "backing off: Hanko was left alone")
        self.assertNotIn(token, "\n".join(lines))
        self.hanko.session_fault = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.fetch_with_token("/user", token, raise_error=False).code == 200:
                break
            self.io_loop.run_sync(lambda: asyncio.sleep(0.05))
        else:
            self.fail("the session check never recovered")


class KeyEndpointBackOffTest(HankoTestCase):
    def get_app(self) -> tornado.web.Application:
        return tornado.web.Application([(r"/user", UserHandler)], hanko=self.hanko.settings(refetch_interval=0.5))

    def test_a_failing_key_endpoint_is_asked_once_per_interval_then_recovers(self) -> None:
        self.hanko.fault = "error"
        started = time.monotonic()
        with captured_logs() as lines:
            codes = {self.fetch_with_token("/user", self.hanko.mint(), raise_error=False).code for _ in range(10)}
        elapsed = time.monotonic() - started
        self.assertEqual(codes, {503})
        # One fetch per started interval at most (a slow machine spreads the ten requests over more of them).
        self.assertLessEqual(self.hanko.jwks_fetches, 1 + int(elapsed / 0.5) + 1)
        self.assertEqual(sum("Hanko key endpoint" in line and "WARNING" in line for line in lines), 1)
        self.hanko.fault = None
        deadline = time.monotonic() + 30
        with captured_logs() as lines:
            while self.fetch_with_token("/user", self.hanko.mint(), raise_error=False).code != 200:
                self.assertLess(time.monotonic(), deadline, "the key store never recovered")
                self.io_loop.run_sync(lambda: asyncio.sleep(0.05))
        self.assertTrue(any("answers again" in line for line in lines))


class WebSocketEndsTest(HankoTestCase):
    def get_app(self) -> tornado.web.Application:
        return tornado.web.Application(
            [(r"/ws", Socket), (r"/webhooks/hanko", Webhooks)],
            hanko=self.hanko.settings(session_check="validate", session_check_ttl=0.1),
        )

    @gen_test(timeout=60)
    async def test_an_open_socket_asks_hanko_nothing_once_the_application_is_closed(self) -> None:
        connection = await self.websocket_connect("/ws", self.hanko.mint())
        self.assertEqual(await self.websocket_read(connection), "hello")
        await close(self._app)
        before = self.hanko.validations
        await asyncio.sleep(1.0)  # twenty watch intervals, ten session check TTLs
        # One check may have been under way at close; none starts after it (a new HTTP client nobody closes).
        self.assertLessEqual(self.hanko.validations - before, 1)
        connection.close()

    @gen_test(timeout=60)
    async def test_a_socket_is_closed_when_its_token_expires(self) -> None:
        connection = await self.websocket_connect("/ws", self.hanko.mint(lifetime=2))
        self.assertEqual(await self.websocket_read(connection), "hello")
        end = await self.websocket_closed(connection, timeout=30)
        self.assertEqual(end.code, CLOSE_TOKEN_EXPIRED)

    @gen_test(timeout=60)
    async def test_a_session_hanko_ended_closes_the_socket_without_a_webhook(self) -> None:
        token = self.hanko.mint()
        session = next(iter(self.hanko.sessions))
        connection = await self.websocket_connect("/ws", token)
        self.assertEqual(await self.websocket_read(connection), "hello")
        self.hanko.sessions.pop(session)  # no webhook: only the session check can tell
        end = await self.websocket_closed(connection, timeout=30)
        self.assertEqual(end.code, CLOSE_SESSION_ENDED)


class DevStandInTest(HankoTestCase):
    def get_app(self) -> tornado.web.Application:
        return tornado.web.Application()

    def test_the_dev_token_is_not_in_the_stand_ins_repr(self) -> None:
        dev = DevStandIn.start("127.0.0.1", 8000, 1)
        self.assertTrue(dev.token)
        self.assertFalse(dev.token in repr(dev), "the dev token is in the stand-in's repr")  # not printed here


def _body(response: Any) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(response.body)
    return body


def _claims(token: str) -> str:
    payload = token.split(".")[1]
    return base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode()
