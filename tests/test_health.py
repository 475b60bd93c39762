"""Liveness and readiness: what /healthz and /readyz answer before the keys, after them, and during outages."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from typing import Any, ClassVar

import tornado.web
from redis_server import RedisServer
from tornado.httpclient import HTTPResponse
from tornado.testing import bind_unused_port

from hanko_tornado import HankoAuthMixin, LivenessHandler, ReadinessHandler
from hanko_tornado.cache import cache_from_url
from hanko_tornado.testing import FakeHanko, HankoTestCase

SECRET = "s" * 32


class UserHandler(HankoAuthMixin, tornado.web.RequestHandler):
    def get(self) -> None:
        self.write({"id": self.hanko_user.id})


class HealthTestCase(HankoTestCase):
    settings_overrides: ClassVar[dict[str, Any]] = {}
    readiness_options: ClassVar[dict[str, Any]] = {}

    def make_fake_hanko(self) -> FakeHanko:
        return FakeHanko(key_size=2048, max_age=1)

    def get_app(self) -> tornado.web.Application:
        values = {"refetch_interval": 0.2, "jwks_min_ttl": 0, "stale_grace": 1.5, **self.settings_overrides}
        return tornado.web.Application(
            [
                (r"/user", UserHandler),
                (r"/healthz", LivenessHandler),
                (r"/readyz", ReadinessHandler, self.readiness_options),
            ],
            hanko=self.hanko.settings(**values),
        )

    def readiness(self) -> tuple[int, dict[str, Any]]:
        response = self.fetch("/readyz")
        self.assert_not_cached(response)
        return response.code, json.loads(response.body)

    def assert_not_cached(self, response: HTTPResponse) -> None:
        self.assertEqual(response.headers["Cache-Control"], "no-store")
        self.assertEqual(response.headers["Content-Type"], "application/json; charset=UTF-8")

    def sleep(self, seconds: float) -> None:
        self.io_loop.run_sync(lambda: asyncio.sleep(seconds))


class LivenessTest(HealthTestCase):
    def test_ok_even_while_hanko_fails(self) -> None:
        self.hanko.fault = "error"
        response = self.fetch("/healthz")
        self.assertEqual((response.code, json.loads(response.body)), (200, {"status": "ok"}))
        self.assert_not_cached(response)
        self.assertEqual(self.hanko.jwks_fetches, 0, "liveness asks nothing of Hanko")


class ReadinessTest(HealthTestCase):
    settings_overrides: ClassVar[dict[str, Any]] = {"refetch_interval": 1.0}

    def test_unready_until_the_keys_are_loaded_then_ready_without_any_other_request(self) -> None:
        self.hanko.fault = "error"
        code, report = self.readiness()
        self.assertEqual(code, 503)
        self.assertEqual(
            report,
            {
                "status": "unready",
                "problems": ["no usable key set: Hanko's key endpoint fails"],
                "keys": {
                    "usable": False,
                    "count": 0,
                    "age_seconds": None,
                    "ttl_seconds": None,
                    "stale": False,
                    "fetch_failing": True,
                },
                "shared_cache": "not_configured",
                "session_check": {"mode": "off", "on_failure": "closed", "failing": False},
            },
        )
        self.assertEqual(self.readiness()[0], 503)
        self.assertEqual(self.hanko.jwks_fetches, 1, "at most one fetch per refetch interval")
        self.hanko.fault = None
        self.sleep(1.05)
        code, report = self.readiness()  # the readiness check itself fetches: no traffic reaches an unready process
        self.assertEqual((code, report["status"], report["problems"]), (200, "ready", []))
        self.assertEqual(report["keys"]["count"], 1)
        self.assertEqual(report["keys"]["ttl_seconds"], 1)
        self.assertFalse(report["keys"]["stale"] or report["keys"]["fetch_failing"])
        self.assertLess(report["keys"]["age_seconds"], 1)
        self.assertEqual(self.hanko.jwks_fetches, 2)

    def test_a_slow_key_endpoint_does_not_hold_the_answer(self) -> None:
        self.hanko.fault, self.hanko.slow_seconds = "slow", 60
        started = time.monotonic()
        code, report = self.readiness()
        self.assertLess(time.monotonic() - started, 20, "the check waits 0.5 s, not the endpoint's 60 s")
        self.assertEqual((code, report["problems"]), (503, ["no usable key set yet"]))

    def test_stale_keys_serve_during_an_outage_past_the_ttl_then_the_grace_runs_out(self) -> None:
        token = self.hanko.mint()
        self.assertEqual(self.fetch_with_token("/user", token).code, 200)
        self.hanko.fault = "error"
        self.sleep(1.1)  # past the TTL (max-age 1)
        self.readiness()  # starts the refresh, which fails
        self.sleep(0.1)
        code, report = self.readiness()
        self.assertEqual((code, report["status"]), (200, "ready"))
        self.assertEqual(
            {name: report["keys"][name] for name in ("usable", "count", "stale", "fetch_failing")},
            {"usable": True, "count": 1, "stale": True, "fetch_failing": True},
        )
        self.assertGreater(report["keys"]["age_seconds"], 1)
        self.assertNotIn(token.split(".")[1], json.dumps(report))
        self.sleep(1.5)  # past the stale grace too
        code, report = self.readiness()
        self.assertEqual((code, report["keys"]["usable"], report["keys"]["count"]), (503, False, 1))
        self.assertEqual(report["problems"], ["no usable key set: Hanko's key endpoint fails"])


class SessionCheckStateTest(HealthTestCase):
    settings_overrides: ClassVar[dict[str, Any]] = {"session_check": "renew", "session_check_failure": "open"}

    def test_a_failing_session_check_is_reported_and_does_not_make_the_process_unready(self) -> None:
        self.hanko.session_fault = "error"
        self.assertEqual(self.fetch_with_token("/user", self.hanko.mint()).code, 200)  # failing open
        code, report = self.readiness()
        self.assertEqual(code, 200)
        self.assertEqual(report["session_check"], {"mode": "renew", "on_failure": "open", "failing": True})


class UnansweredSharedCacheTest(HealthTestCase):
    def get_app(self) -> tornado.web.Application:
        sock, port = bind_unused_port()
        sock.close()  # nothing listens there
        self.settings_overrides = {"cache": cache_from_url(f"redis://127.0.0.1:{port}/0"), "cache_secret": SECRET}
        return super().get_app()

    def test_ready_and_degraded_while_the_shared_cache_does_not_answer(self) -> None:
        code, report = self.readiness()
        self.assertEqual((code, report["shared_cache"], report["problems"]), (200, "degraded", []))
        self.assertTrue(report["keys"]["usable"], "the keys were fetched all the same")


class SharedCacheRequiredTest(UnansweredSharedCacheTest):
    readiness_options: ClassVar[dict[str, Any]] = {"require_shared_cache": True}

    def test_ready_and_degraded_while_the_shared_cache_does_not_answer(self) -> None:
        code, report = self.readiness()
        self.assertEqual(
            (code, report["shared_cache"], report["problems"]), (503, "degraded", ["the shared cache does not answer"])
        )


class SharedCacheRequiredBySettingsTest(UnansweredSharedCacheTest):
    def get_app(self) -> tornado.web.Application:
        app = super().get_app()
        app.settings["hanko"] = dataclasses.replace(app.settings["hanko"], require_shared_cache=True)
        return app

    def test_ready_and_degraded_while_the_shared_cache_does_not_answer(self) -> None:
        code, report = self.readiness()
        self.assertEqual((code, report["problems"]), (503, ["the shared cache does not answer"]))


class AnsweringSharedCacheTest(HealthTestCase):
    def setUp(self) -> None:
        self.redis = RedisServer()
        self.redis.start()
        super().setUp()

    def tearDown(self) -> None:
        super().tearDown()
        self.redis.stop()

    def get_app(self) -> tornado.web.Application:
        self.settings_overrides = {"cache": cache_from_url(self.redis.url), "cache_secret": SECRET}
        return super().get_app()

    def test_ready_with_redis_answering_and_still_ready_once_it_stops(self) -> None:
        code, report = self.readiness()
        self.assertEqual((code, report["shared_cache"]), (200, "answers"))
        self.redis.stop()
        code, report = self.readiness()
        self.assertEqual((code, report["shared_cache"]), (200, "degraded"))
        self.assertEqual(self.fetch_with_token("/user", self.hanko.mint()).code, 200, "requests are served")
