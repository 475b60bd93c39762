"""Webhook health: readiness and metrics say whether Hanko still has the webhook on; one command switches it on."""

from __future__ import annotations

import asyncio
import json
import os
import sys

import tornado.web
from prometheus_client import CollectorRegistry, generate_latest
from tornado.testing import gen_test

from hanko_tornado.admin import (
    AdminReadinessHandler,
    HankoAdminSettings,
    WebhookHealth,
    admin_client_for,
    webhook_health_for,
)
from hanko_tornado.lifecycle import state_of
from hanko_tornado.testing import HankoTestCase

CALLBACK = "https://api.example.com/webhooks/hanko"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class WebhookHealthCase(HankoTestCase):
    require_webhook = False

    def get_app(self) -> tornado.web.Application:
        self.registry = CollectorRegistry()
        self.clock = Clock()
        app = tornado.web.Application(
            [(r"/readyz", AdminReadinessHandler, {"require_webhook": self.require_webhook})],
            hanko=self.hanko.settings(metrics=self.registry),
            hanko_admin=self.hanko.admin.settings(webhook_url=CALLBACK, webhook_check_interval=180),
        )
        health = WebhookHealth(admin_client_for(app), clock=self.clock)
        state_of(app).provide(WebhookHealth, health)
        from hanko_tornado.admin.health import _collector_for

        _collector_for(self.registry).health.add(health)
        self.hook = self.hanko.admin.add_webhook(CALLBACK, ("session.delete", "user"))
        self.hanko.admin.add_webhook("https://someone-else.example/hook", ("user.create",))
        return app

    def tearDown(self) -> None:
        self.io_loop.run_sync(admin_client_for(self._app).close)
        super().tearDown()

    def ready(self) -> tuple[int, dict[str, object]]:
        response = self.fetch("/readyz", raise_error=False)
        return response.code, json.loads(response.body)

    def gauge(self) -> str:
        lines = generate_latest(self.registry).decode().splitlines()
        return " ".join(line for line in lines if line.startswith("hanko_webhook_"))


class ReadinessTest(WebhookHealthCase):
    def test_readiness_reports_the_webhook_and_looks_again_only_after_the_interval(self) -> None:
        code, body = self.ready()
        self.assertEqual((code, body["webhook"]["enabled"], body["webhook"]["failures"]), (200, True, 0))
        self.assertIn("hanko_webhook_enabled 1.0", self.gauge())
        self.hanko.admin.switch_off(self.hook)
        self.clock.now += 179
        self.assertEqual(self.ready()[1]["webhook"]["enabled"], True, "not asked again within the interval")
        self.assertEqual(sum(call == "GET /admin/webhooks" for call in self.hanko.admin.calls), 1)
        self.clock.now += 2
        code, body = self.ready()
        self.assertEqual((code, body["webhook"]["enabled"], body["webhook"]["failures"]), (200, False, 6))
        self.assertEqual(body["status"], "ready", "every process sees the same webhook: none leaves the rotation")
        self.assertIn("hanko_webhook_enabled 0.0", self.gauge())
        self.assertIn("hanko_webhook_failed_deliveries 6.0", self.gauge())

    def test_an_admin_api_that_fails_leaves_the_last_answer_and_says_so(self) -> None:
        self.ready()
        self.hanko.admin.fault = "error"
        self.clock.now += 181
        body = self.ready()[1]
        self.assertEqual(body["webhook"]["enabled"], True)
        self.assertIn("admin API failed", body["webhook"]["problem"])

    def test_no_webhook_for_this_service_is_reported_as_unknown(self) -> None:
        self.hanko.admin.webhooks.remove(self.hook)
        self.hanko.webhooks.clear()  # nor in the config file
        body = self.ready()[1]
        self.assertIsNone(body["webhook"]["enabled"])
        self.assertIn(CALLBACK, body["webhook"]["problem"])
        self.assertNotIn("hanko_webhook_enabled ", self.gauge(), "no value while unknown")

    def test_the_health_switches_a_switched_off_webhook_on_again(self) -> None:
        self.hanko.admin.switch_off(self.hook)
        health = webhook_health_for(self._app)
        enabled = self.io_loop.run_sync(health.enable)
        self.assertEqual([hook.callback for hook in enabled], [CALLBACK])
        self.assertEqual((self.hook.enabled, self.hook.failures), (True, 0))
        self.assertEqual(self.ready()[1]["webhook"]["enabled"], True)


class RequiredWebhookTest(WebhookHealthCase):
    require_webhook = True

    def test_with_require_webhook_a_switched_off_webhook_makes_the_process_unready(self) -> None:
        self.hanko.admin.switch_off(self.hook)
        code, body = self.ready()
        self.assertEqual((code, body["status"]), (503, "unready"))
        self.assertIn("switched this service's webhook off", body["problems"][-1])


class CommandTest(HankoTestCase):
    def get_app(self) -> tornado.web.Application:
        return tornado.web.Application([])

    @gen_test(timeout=60)
    async def test_the_one_liner_switches_the_webhook_on_and_never_prints_the_key(self) -> None:
        key = "cloud-key-" + "k" * 40
        self.hanko.admin.api_key = key
        hook = self.hanko.admin.add_webhook(CALLBACK)
        self.hanko.admin.switch_off(hook)
        env = {k: v for k, v in os.environ.items() if not k.startswith("HANKO_")}
        env |= {"HANKO_ADMIN_API_URL": self.hanko.admin.url, "HANKO_ADMIN_API_KEY": key, "HANKO_WEBHOOK_URL": CALLBACK}

        async def run(*args: str) -> tuple[int, str]:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "hanko_tornado.admin",
                *args,
                env=env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            output, _ = await process.communicate()
            return process.returncode or 0, output.decode()

        code, output = await run("status")
        self.assertEqual(code, 1, output)
        self.assertIn("webhook enabled: False, failures: 6", output)
        code, output = await run("enable-webhook")
        self.assertEqual(code, 0, output)
        self.assertIn(f"switched on: {CALLBACK}", output)
        self.assertTrue(hook.enabled)
        self.hanko.admin.api_key = "another"
        code, output = await run("status")
        self.assertEqual(code, 1)
        self.assertIn("HTTP 401", output)
        self.assertNotIn(key, output)


def test_settings_read_the_webhook_url() -> None:
    env = {"HANKO_ADMIN_API_URL": "http://127.0.0.1:8001", "HANKO_WEBHOOK_URL": CALLBACK}
    settings = HankoAdminSettings.from_env(env)
    assert settings is not None and settings.webhook_url == CALLBACK
