"""The admin API client against FakeHanko's admin API: typed answers, paging, errors, hostile answers, no key leaks."""

from __future__ import annotations

import asyncio
import datetime
import email.utils
import time
import uuid
from typing import Any

import tornado.web
from support import captured_logs
from tornado.testing import gen_test

from hanko_tornado.admin import (
    AdminNotFoundError,
    AdminRateLimitedError,
    AdminRequestError,
    AdminUnauthorizedError,
    AdminUnavailableError,
    HankoAdminClient,
    HankoAdminError,
    HankoAdminSettings,
)
from hanko_tornado.errors import ConfigurationError
from hanko_tornado.testing import HankoTestCase
from hanko_tornado.webhooks import HankoWebhookHandler

KEY = "hanko-admin-key-" + "s3cr3t" * 6


class AdminClientCase(HankoTestCase):
    def get_app(self) -> tornado.web.Application:
        return tornado.web.Application([(r"/webhooks/hanko", HankoWebhookHandler)], hanko=self.hanko.settings())

    def setUp(self) -> None:
        super().setUp()
        self.hanko.admin.api_key = KEY
        self.client = HankoAdminClient(self.hanko.admin.settings(timeout=2.0, max_body_bytes=1024 * 1024))

    def tearDown(self) -> None:
        self.io_loop.run_sync(self.client.close)
        super().tearDown()


class UsersTest(AdminClientCase):
    @gen_test
    async def test_a_user_comes_typed_with_emails_username_and_metadata(self) -> None:
        added = self.hanko.admin.add_user(
            email="ada@example.com", username="ada", public={"plan": "pro"}, private={"roles": ["admin"]}
        )
        user = await self.client.get_user(added.id)
        self.assertEqual(user.id, added.id)
        self.assertEqual(
            [(e.address, e.is_primary, e.is_verified) for e in user.emails], [("ada@example.com",) + (True,) * 2]
        )
        self.assertEqual(user.primary_email and user.primary_email.address, "ada@example.com")
        self.assertEqual(user.username, "ada")
        self.assertEqual((user.metadata.public, user.metadata.private), ({"plan": "pro"}, {"roles": ("admin",)}))
        self.assertNotIn("admin", repr(user), "private metadata stays out of a repr (and so of a log)")
        self.assertIsInstance(user.created_at, datetime.datetime)

    @gen_test
    async def test_an_unknown_user_is_not_found_and_an_id_that_is_no_uuid_never_reaches_hanko(self) -> None:
        with self.assertRaises(AdminNotFoundError) as raised:
            await self.client.get_user(str(uuid.uuid4()))
        self.assertEqual((raised.exception.status, raised.exception.status_code), (404, 404))
        for hostile in ("../webhooks", "x/../../users", "", "aaaaaaaa-0000-4000-8000-00000000001?"):
            with self.assertRaises(ValueError):
                await self.client.get_user(hostile)
        self.assertEqual(len(self.hanko.admin.calls), 1)

    @gen_test
    async def test_users_page_as_hanko_pages_them(self) -> None:
        added = [self.hanko.admin.add_user(email=f"u{n}@example.com") for n in range(5)]
        for n, user in enumerate(added):
            user.created_at = 1_700_000_000 + n
        first = await self.client.list_users(per_page=2)
        self.assertEqual((first.total, first.page, first.per_page, first.next_page), (5, 1, 2, 2))
        self.assertEqual([u.id for u in first.items], [added[4].id, added[3].id], "newest first")
        last = await self.client.list_users(page=3, per_page=2)
        self.assertEqual(([u.id for u in last.items], last.next_page), ([added[0].id], None))
        every = [user.id async for user in self.client.users(per_page=2, sort_direction="asc")]
        self.assertEqual(every, [user.id for user in added])
        self.assertEqual(self.client.calls["GET /users"], 5, "two pages, then three pages of the walk")
        one = await self.client.list_users(email="u3@example.com")
        self.assertEqual([u.id for u in one.items], [added[3].id])
        two = await self.client.list_users(user_ids=[added[1].id, added[2].id])
        self.assertEqual(two.total, 2)
        with self.assertRaises(ValueError):
            await self.client.list_users(per_page=0)

    @gen_test
    async def test_deleting_a_user_sends_user_delete_and_ends_its_sessions_at_hanko(self) -> None:
        user = self.hanko.admin.add_user()
        self.hanko.mint(user.id)
        self.hanko.register_webhook(self.get_url("/webhooks/hanko"), ("user.delete",))
        await self.client.delete_user(user.id)
        await self.hanko.webhooks_sent()
        self.assertEqual([event for _, event, _ in self.hanko.deliveries], ["user.delete"])
        self.assertEqual(self.hanko.sessions, {})
        with self.assertRaises(AdminNotFoundError):
            await self.client.delete_user(user.id)

    @gen_test
    async def test_emails_are_listed_and_an_unknown_user_has_none(self) -> None:
        user = self.hanko.admin.add_user(email="grace@example.com")
        self.assertEqual([e.address for e in await self.client.list_emails(user.id)], ["grace@example.com"])
        self.assertEqual(await self.client.list_emails(str(uuid.uuid4())), ())


class MetadataTest(AdminClientCase):
    @gen_test
    async def test_none_is_empty_and_a_patch_merges_per_kind(self) -> None:
        user = self.hanko.admin.add_user()
        empty = await self.client.get_metadata(user.id)
        self.assertEqual((empty.public, empty.private, empty.unsafe), ({}, {}, {}))
        await self.client.patch_metadata(user.id, private={"roles": ["admin"], "team": "a"}, public={"plan": "pro"})
        patched = await self.client.patch_metadata(user.id, private={"team": None, "level": 3})
        self.assertEqual((patched.private, patched.public), ({"roles": ("admin",), "level": 3}, {"plan": "pro"}))
        cleared = await self.client.patch_metadata(user.id, private=None, public=None)
        self.assertEqual((cleared.private, cleared.public), ({}, {}), "204: nothing left")
        self.assertEqual(self.hanko.admin.users[user.id].metadata["private_metadata"], {})

    @gen_test
    async def test_hanko_refuses_metadata_over_its_limit(self) -> None:
        user = self.hanko.admin.add_user()
        with self.assertRaises(AdminRequestError) as raised:
            await self.client.patch_metadata(user.id, private={"blob": "x" * 3000})
        self.assertEqual(raised.exception.status, 400)
        self.assertIn("limit", raised.exception.hanko_message)
        with self.assertRaises(ValueError):
            await self.client.patch_metadata(user.id)
        with self.assertRaises(ValueError):
            await self.client.patch_metadata(user.id, private=["not", "an", "object"])
        with self.assertRaises(AdminNotFoundError):
            await self.client.get_metadata(str(uuid.uuid4()))


class SessionsTest(AdminClientCase):
    @gen_test
    async def test_a_users_active_sessions_are_listed_newest_first_and_one_is_deleted(self) -> None:
        user_id = str(uuid.uuid4())
        older, newer = str(uuid.uuid4()), str(uuid.uuid4())
        self.hanko.mint(user_id, session_id=older)
        self.hanko.sessions[older].created_at -= 60
        self.hanko.mint(user_id, session_id=newer)
        self.hanko.mint(user_id, lifetime=-10)  # expired: not active
        self.hanko.mint()  # someone else's
        sessions = await self.client.list_sessions(user_id)
        self.assertEqual([s.id for s in sessions], [newer, older])
        self.assertEqual((sessions[0].user_id, sessions[0].ip_address), (user_id, "127.0.0.1"))
        self.hanko.register_webhook(self.get_url("/webhooks/hanko"), ("session",))
        await self.client.delete_session(user_id, older)
        await self.hanko.webhooks_sent()
        self.assertEqual([event for _, event, _ in self.hanko.deliveries], ["session.delete.admin.revoke"])
        self.assertNotIn(older, self.hanko.sessions)
        with self.assertRaises(AdminNotFoundError):
            await self.client.delete_session(user_id, older)
        other = self.hanko.admin.add_user()
        with self.assertRaises(AdminNotFoundError, msg="another user's session is not found"):
            await self.client.delete_session(other.id, newer)
        with self.assertRaises(AdminNotFoundError):
            await self.client.list_sessions(str(uuid.uuid4()))


class AuditLogsTest(AdminClientCase):
    @gen_test
    async def test_audit_logs_are_filtered_and_paged(self) -> None:
        ada, bob = self.hanko.admin.add_user(email="ada@example.com"), self.hanko.admin.add_user(email="b@example.com")
        for kind, user in (("login_success", ada), ("login_failure", ada), ("login_success", bob)):
            self.hanko.admin.add_audit_log(kind, user, api="admin")
        logins = await self.client.list_audit_logs(types=["login_success"])
        self.assertEqual((logins.total, [log.actor_user_id for log in logins.items]), (2, [bob.id, ada.id]))
        mine = await self.client.list_audit_logs(actor_user_id=ada.id, per_page=1)
        self.assertEqual((mine.total, len(mine.items), mine.next_page), (2, 1, 2))
        self.assertEqual(mine.items[0].details, {"api": "admin"})
        since = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
        self.assertEqual((await self.client.list_audit_logs(start_time=since)).total, 0)
        with self.assertRaises(ValueError):
            await self.client.list_audit_logs(start_time=datetime.datetime(2026, 1, 1))  # naive: which zone?


class WebhooksTest(AdminClientCase):
    @gen_test
    async def test_webhooks_show_their_state_and_one_switched_off_is_switched_on_again(self) -> None:
        hook = self.hanko.admin.add_webhook("http://127.0.0.1:9/hooks", ("session.delete", "user"))
        self.hanko.register_webhook("http://127.0.0.1:9/config-hook", ("user.create",))
        self.hanko.admin.switch_off(hook)
        listed = await self.client.list_webhooks()
        self.assertEqual([(w.callback, w.enabled, w.failures) for w in listed.database], [(hook.callback, False, 6)])
        self.assertEqual(listed.database[0].events, ("session.delete", "user"))
        self.assertEqual(
            [(w.callback, w.events) for w in listed.config], [("http://127.0.0.1:9/config-hook", ("user.create",))]
        )
        enabled = await self.client.enable_webhook(listed.database[0])
        self.assertEqual((enabled.enabled, enabled.failures), (True, 0))
        self.assertIn((hook.callback, ("session.delete", "user")), self.hanko.webhooks, "it gets events again")


class HostileAnswersTest(AdminClientCase):
    async def failure(self, fault: Any, **settings: Any) -> HankoAdminError:
        self.hanko.admin.add_user(user := str(uuid.uuid4()))
        self.hanko.admin.fault = fault
        client = HankoAdminClient(
            self.hanko.admin.settings(**{"timeout": 2.0, "max_body_bytes": 1024 * 1024, **settings})
        )
        try:
            with self.assertRaises(HankoAdminError) as raised:
                await client.get_user(user)
        finally:
            await client.close()
        return raised.exception

    @gen_test(timeout=60)
    async def test_every_failure_is_one_error_family_and_never_a_crash(self) -> None:
        expected = {
            "error": (AdminUnavailableError, 500, 503),
            "garbage": (AdminUnavailableError, 200, 503),
            "wrong_shape": (AdminUnavailableError, 0, 503),
            "huge": (AdminUnavailableError, 0, 503),
            "drop": (AdminUnavailableError, 0, 503),
            "rate_limited": (AdminRateLimitedError, 429, 503),
        }
        for fault, (kind, status, answer) in expected.items():
            with self.subTest(fault):
                error = await self.failure(fault)
                self.assertIs(type(error), kind)
                self.assertEqual((error.status, error.status_code), (status, answer))
                self.assertIn("Retry-After", error.response_headers())

    @gen_test(timeout=60)
    async def test_a_slow_answer_is_cut_at_the_timeout(self) -> None:
        self.hanko.admin.slow_seconds = 30
        error = await self.failure("slow", timeout=0.5)
        self.assertIsInstance(error, AdminUnavailableError)
        self.assertIn("Timeout", str(error))

    @gen_test
    async def test_429_carries_hankos_retry_after_in_seconds_or_as_a_date_within_bounds(self) -> None:
        for header, low, high in (("7", 7, 7), ("", 1, 1), ("soon", 1, 1), ("99999999", 3600, 3600)):
            self.hanko.admin.retry_after = header
            error = await self.failure("rate_limited")
            self.assertTrue(low <= error.retry_after <= high, (header, error.retry_after))
        self.hanko.admin.retry_after = email.utils.formatdate(time.time() + 120, usegmt=True)
        self.assertTrue(60 <= (await self.failure("rate_limited")).retry_after <= 121)

    @gen_test
    async def test_a_wrong_key_is_unauthorized_and_the_key_is_never_in_a_message_log_or_repr(self) -> None:
        wrong = "wrong-" + KEY
        with captured_logs() as lines:
            for fault in (None, "error", "garbage", "huge", "rate_limited"):
                error = await self.failure(fault, api_key=wrong)
                if fault is None:
                    self.assertIsInstance(error, AdminUnauthorizedError)
                for text in (str(error), error.message, repr(error), str(error.response_body())):
                    self.assertNotIn(KEY, text)
            settings = self.hanko.admin.settings()
            texts = [repr(settings), str(settings), repr(HankoAdminClient(settings)), *lines]
        self.assertTrue(lines)
        for text in texts:
            self.assertNotIn(KEY[-20:], text)

    @gen_test(timeout=120)
    async def test_calls_in_flight_are_bounded_by_concurrency_and_the_rest_wait_their_turn(self) -> None:
        users = [self.hanko.admin.add_user().id for _ in range(6)]
        self.hanko.admin.fault, self.hanko.admin.slow_seconds = "slow", 0.2
        client = HankoAdminClient(self.hanko.admin.settings(concurrency=2, timeout=60))
        try:
            found = await asyncio.gather(*(client.get_user(user) for user in users))
        finally:
            await client.close()
        self.assertEqual([user.id for user in found], users)
        self.assertEqual(self.hanko.admin.most_in_flight, 2)

    @gen_test
    async def test_the_key_is_sent_as_hanko_cloud_expects(self) -> None:
        self.hanko.admin.add_user(user := str(uuid.uuid4()))
        self.assertEqual((await self.client.get_user(user)).id, user)  # the fake requires Bearer <key>


class SettingsTest(AdminClientCase):
    def test_settings_refuse_what_would_leak_or_cannot_work(self) -> None:
        with self.assertRaises(ConfigurationError):
            HankoAdminSettings("http://hanko.internal:8001")  # plain http beyond loopback needs allow_http
        self.assertEqual(HankoAdminSettings("http://hanko:8001/", allow_http=True).api_url, "http://hanko:8001")
        with self.assertRaisesRegex(ConfigurationError, "never sent over plain http"):
            HankoAdminSettings("http://hanko:8001", api_key=KEY, allow_http=True)
        with self.assertRaises(ConfigurationError):
            HankoAdminSettings("https://x.hanko.io/admin", api_key="bad\nkey")
        env = {"HANKO_ADMIN_API_URL": "https://x.hanko.io/admin", "HANKO_ADMIN_API_KEY": KEY}
        settings = HankoAdminSettings.from_env(env)
        assert settings is not None
        self.assertEqual((settings.api_url, settings.api_key), ("https://x.hanko.io/admin", KEY))
        self.assertIsNone(HankoAdminSettings.from_env({}))
        with self.assertRaisesRegex(ConfigurationError, "HANKO_ADMIN_API_URL"):
            HankoAdminSettings.from_env({"HANKO_ADMIN_API_KEY": KEY})
        with self.assertRaisesRegex(ConfigurationError, "HANKO_ADMIN_API_URL"):
            HankoAdminSettings.from_env({"HANKO_ADMIN_API_URL": "ftp://x"})
