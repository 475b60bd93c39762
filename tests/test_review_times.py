"""Review: a time past datetime's range once moved to UTC ("0001-01-01T00:00:00+01:00") from a hostile admin
API, or in a webhook's ``expires_at``, is a malformed answer, never an OverflowError (a 500)."""

from __future__ import annotations

import uuid

import tornado.httpserver
import tornado.web
from tornado.testing import AsyncTestCase, bind_unused_port, gen_test

from hanko_tornado import HankoAuthMixin
from hanko_tornado.admin import AdminUnavailableError, HankoAdminClient, HankoAdminSettings
from hanko_tornado.session_protocol import parse_rfc3339
from hanko_tornado.testing import HankoTestCase
from hanko_tornado.webhooks import HankoWebhookHandler

OUT_OF_RANGE = ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"]


class HostileUser(tornado.web.RequestHandler):
    def get(self, user_id: str) -> None:
        self.write({"id": user_id, "created_at": self.settings["bad_time"], "updated_at": "2026-01-01T00:00:00Z"})


class Me(HankoAuthMixin, tornado.web.RequestHandler):
    def get(self) -> None:
        self.write({"ok": True})


class ParseTest(AsyncTestCase):
    def test_out_of_range_times_are_value_errors(self) -> None:
        for text in OUT_OF_RANGE:
            with self.subTest(text=text), self.assertRaises(ValueError):
                parse_rfc3339(text)

    @gen_test(timeout=30)
    async def test_a_hostile_admin_api_answering_such_a_time_is_unavailable(self) -> None:
        for bad in OUT_OF_RANGE:
            sock, port = bind_unused_port()
            server = tornado.httpserver.HTTPServer(
                tornado.web.Application([(r"/admin/users/(.+)", HostileUser)], bad_time=bad)
            )
            server.add_sockets([sock])
            client = HankoAdminClient(HankoAdminSettings(api_url=f"http://127.0.0.1:{port}/admin", timeout=5.0))
            try:
                with self.assertRaises(AdminUnavailableError):
                    await client.get_user(str(uuid.uuid4()))
            finally:
                await client.close()
                server.stop()


class WebhookTimeTest(HankoTestCase):
    def get_app(self) -> tornado.web.Application:
        return tornado.web.Application([(r"/webhooks", HankoWebhookHandler), (r"/me", Me)], hanko=self.hanko.settings())

    def test_a_session_delete_with_such_an_expiry_ends_the_session(self) -> None:
        for bad in OUT_OF_RANGE:
            session = str(uuid.uuid4())
            data = {"id": session, "user_id": str(uuid.uuid4()), "expires_at": bad}
            status = self.io_loop.run_sync(
                lambda: self.hanko.send_webhook(self.get_url("/webhooks"), "session.delete", data)
            )
            self.assertEqual(status, 200, bad)
            response = self.fetch_with_token("/me", self.hanko.mint(session_id=session), raise_error=False)
            self.assertEqual(response.code, 401, "the session ended at once")
