"""Roles from private metadata: checked through the admin API, remembered, dropped by webhooks, failing closed."""

from __future__ import annotations

import asyncio
import json
import pathlib
import sys
import uuid
from typing import Any

import tornado.web
from tornado.testing import gen_test

from hanko_tornado import CorsSettings, HankoAuthMixin
from hanko_tornado.admin import (
    AdminUnavailableError,
    HankoAdminWebhookHandler,
    MetadataCache,
    admin_client_for,
    metadata_cache_for,
    private_metadata_has,
    private_metadata_passes,
)
from hanko_tornado.cors import CorsHandler
from hanko_tornado.lifecycle import state_of
from hanko_tornado.requirements import passkey
from hanko_tornado.testing import HankoTestCase
from hanko_tornado.user import HankoUser

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
import server


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class SeniorHandler(HankoAuthMixin, CorsHandler):
    hanko_requires = passkey & private_metadata_passes(lambda m: m.get("level", 0) >= 3, "level 3 or more")

    def get(self) -> None:
        self.write({"ok": True})


class RolesCase(HankoTestCase):
    def get_app(self) -> tornado.web.Application:
        self.clock = Clock()
        app = server.make_app(
            self.hanko.settings(),
            CorsSettings(origins=("http://localhost:3000",)),
            [(r"/senior", SeniorHandler)],
            admin=self.hanko.admin.settings(timeout=2.0, metadata_ttl=60, metadata_stale_grace=300),
        )
        state_of(app).provide(MetadataCache, MetadataCache(admin_client_for(app), clock=self.clock))
        return app

    def tearDown(self) -> None:
        self.io_loop.run_sync(admin_client_for(self._app).close)
        super().tearDown()

    def user_with(self, **private: Any) -> tuple[str, str]:
        user = self.hanko.admin.add_user(private=private)
        return user.id, self.hanko.mint(user.id)

    def get_admin(self, token: str) -> tuple[int, dict[str, Any]]:
        response = self.fetch_with_token("/protected/admin", token, raise_error=False)
        return response.code, json.loads(response.body)

    def metadata_calls(self) -> int:
        return sum(1 for call in self.hanko.admin.calls if call.endswith("/metadata"))

    def webhook(self, event: str, data: dict[str, Any], **mint: Any) -> int:
        token = self.hanko.mint_webhook(event, data, **mint)
        return self.io_loop.run_sync(
            lambda: self.hanko.send_webhook(self.get_url("/webhooks/hanko"), event, data, token=token)
        )


class PrivateMetadataRequirementTest(RolesCase):
    def test_an_admin_gets_in_and_anyone_else_gets_403_insufficient_scope(self) -> None:
        _, admin = self.user_with(roles=["editor", "admin"])
        _, editor = self.user_with(roles=["editor"])
        _, scalar = self.user_with(roles="admin")
        _, none = self.user_with()
        self.assertEqual(self.get_admin(admin)[0], 200)
        self.assertEqual(self.get_admin(scalar)[0], 200)
        for token in (editor, none):
            code, body = self.get_admin(token)
            self.assertEqual((code, body["error"]), (403, "insufficient_scope"))
            self.assertEqual(body["requirement"], 'private_metadata["roles"] has "admin"')

    def test_the_answer_is_remembered_for_its_ttl_then_asked_again(self) -> None:
        user_id, token = self.user_with(roles=["admin"])
        for _ in range(3):
            self.assertEqual(self.get_admin(token)[0], 200)
        self.assertEqual(self.metadata_calls(), 1)
        self.hanko.admin.users[user_id].metadata["private_metadata"] = {"roles": []}  # changed in the console
        self.clock.now += 59
        self.assertEqual(self.get_admin(token)[0], 200, "remembered within the TTL")
        self.clock.now += 2
        self.assertEqual(self.get_admin(token)[0], 403)
        self.assertEqual(self.metadata_calls(), 2)

    def test_a_predicate_composes_with_other_requirements(self) -> None:
        _, senior = self.user_with(level=3)
        _, junior = self.user_with(level=1)
        self.assertEqual(self.fetch_with_token("/senior", senior).code, 200)
        self.assertEqual(self.fetch_with_token("/senior", junior, raise_error=False).code, 403)
        no_passkey = self.hanko.mint(self.hanko.admin.add_user(private={"level": 5}).id, amr=["pwd"])
        self.assertEqual(self.fetch_with_token("/senior", no_passkey, raise_error=False).code, 401)

    def test_it_fails_closed_when_the_admin_api_is_down_and_nothing_is_remembered(self) -> None:
        _, token = self.user_with(roles=["admin"])
        for fault in ("error", "rate_limited", "garbage", "huge", "drop"):
            self.hanko.admin.fault = fault  # type: ignore[assignment]
            response = self.fetch_with_token("/protected/admin", token, raise_error=False)
            self.assertEqual(response.code, 503, fault)
            self.assertIn("Retry-After", response.headers)
            self.assertNotIn("Hanko answered", response.body.decode())

    def test_a_remembered_answer_serves_within_the_stale_grace_while_the_admin_api_fails(self) -> None:
        _, token = self.user_with(roles=["admin"])
        self.assertEqual(self.get_admin(token)[0], 200)
        self.hanko.admin.fault = "error"
        self.clock.now += 60 + 299
        self.assertEqual(self.get_admin(token)[0], 200)
        self.clock.now += 2
        self.assertEqual(self.get_admin(token)[0], 503)

    def test_checked_without_being_loaded_it_lets_nobody_in(self) -> None:
        user = HankoUser.from_claims({"sub": str(uuid.uuid4()), "exp": 2_000_000_000})
        with self.assertRaises(AdminUnavailableError):
            private_metadata_has("roles", "admin").enforce(user)

    def test_it_needs_plain_arguments(self) -> None:
        with self.assertRaises(TypeError):
            private_metadata_has("roles", ["admin"])  # type: ignore[arg-type]
        with self.assertRaises(ValueError):
            private_metadata_has("", "admin")

        async def coroutine(metadata: Any) -> bool:
            return True

        with self.assertRaises(TypeError):
            private_metadata_passes(coroutine)  # type: ignore[arg-type]


class WebhookInvalidationTest(RolesCase):
    def test_a_user_update_webhook_drops_that_users_remembered_answer_at_once(self) -> None:
        user_id, token = self.user_with(roles=["admin"])
        self.assertEqual(self.get_admin(token)[0], 200)
        self.hanko.admin.users[user_id].metadata["private_metadata"] = {}
        for event in ("user.update", "user.update.email.primary", "user.delete"):
            self.hanko.admin.users[user_id].metadata["private_metadata"] = {"roles": ["admin"]}
            self.clock.now += 61  # what the last round remembered has expired
            self.assertEqual(self.get_admin(token)[0], 200)
            self.hanko.admin.users[user_id].metadata["private_metadata"] = {}
            self.assertEqual(self.webhook(event, {"id": user_id}), 200)
            self.assertIsNone(metadata_cache_for(self._app).fresh(user_id), event)
            self.assertEqual(self.get_admin(token)[0], 401 if event == "user.delete" else 403, event)

    def test_a_forged_or_replayed_webhook_drops_no_other_users_answer(self) -> None:
        victim_id, victim = self.user_with(roles=["admin"])
        other_id, other = self.user_with(roles=["admin"])
        cache = metadata_cache_for(self._app)
        self.assertEqual([self.get_admin(victim)[0], self.get_admin(other)[0]], [200, 200])
        url = self.get_url("/webhooks/hanko")
        genuine = self.hanko.mint_webhook("user.update", {"id": victim_id}).rsplit(".", 1)
        forged = f"{genuine[0]}.{genuine[1][:-6]}AAAAAA"  # the victim's id, and no valid signature

        def send(token: str) -> int:
            return self.io_loop.run_sync(lambda: self.hanko.send_webhook(url, "user.update", {}, token=token))

        self.assertEqual(send(forged), 401)
        self.assertEqual(self.webhook("user.update", {"id": victim_id}, audience=["elsewhere"]), 401)
        others = self.hanko.mint_webhook("user.update", {"id": other_id})
        self.assertEqual(send(others), 200)
        self.assertEqual((cache.fresh(other_id), cache.fresh(victim_id)), (None, {"roles": ("admin",)}))
        self.assertEqual(self.get_admin(other)[0], 200)  # remembered again
        self.assertEqual(send(others), 200, "replayed: answered, not handed on")
        self.assertEqual(cache.fresh(other_id), {"roles": ("admin",)}, "a replay drops nothing")
        self.assertEqual(cache.fresh(victim_id), {"roles": ("admin",)}, "the victim's answer was never dropped")


class InFlightDropTest(RolesCase):
    @gen_test(timeout=60)
    async def test_an_answer_fetched_across_a_drop_is_not_remembered(self) -> None:
        user_id, _ = self.user_with(roles=["admin"])
        cache = metadata_cache_for(self._app)
        self.hanko.admin.fault, self.hanko.admin.slow_seconds = "slow", 0.3
        loading = asyncio.ensure_future(cache.private_metadata(user_id))
        while not self.hanko.admin.calls:
            await asyncio.sleep(0.01)
        await cache.forget(user_id)  # the change happened while Hanko was answering
        self.assertEqual(await loading, {"roles": ("admin",)}, "the request gets what Hanko said")
        self.assertIsNone(cache.fresh(user_id), "but it may predate the change: not remembered")


class NotConfiguredTest(HankoTestCase):
    def get_app(self) -> tornado.web.Application:
        return server.make_app(self.hanko.settings(), CorsSettings(origins=()))

    def test_admin_routes_answer_501_naming_the_variable(self) -> None:
        token = self.hanko.mint()
        for method, path in (("GET", "/protected/me"), ("DELETE", "/protected/sessions"), ("GET", "/protected/admin")):
            response = self.fetch_with_token(path, token, method=method, raise_error=False)
            body = json.loads(response.body)
            self.assertEqual((response.code, body["error"]), (501, "admin_api_not_configured"), path)
            self.assertIn("HANKO_ADMIN_API_URL", body["message"])

    def test_webhooks_still_work_without_admin_settings(self) -> None:
        token = self.hanko.mint_webhook("user.update", {"id": str(uuid.uuid4())})
        url = self.get_url("/webhooks/hanko")
        code = self.io_loop.run_sync(lambda: self.hanko.send_webhook(url, "user.update", {}, token=token))
        self.assertEqual(code, 200)


class HandlerUse(HankoAuthMixin, tornado.web.RequestHandler):
    pass


assert HankoAdminWebhookHandler  # the handler server.py mounts
