"""Log out everywhere and revoke one session: at Hanko, and refused here at once, webhook or not; /protected/me."""

from __future__ import annotations

import json
import pathlib
import sys
import uuid

import tornado.web
from tornado.testing import gen_test

from hanko_tornado import CorsSettings, verifier_for
from hanko_tornado.admin import AdminNotFoundError, admin_client_for, revoke_session
from hanko_tornado.errors import InvalidTokenError
from hanko_tornado.testing import HankoTestCase

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
import server


class LogoutCase(HankoTestCase):
    def get_app(self) -> tornado.web.Application:
        return server.make_app(
            self.hanko.settings(), CorsSettings(origins=()), admin=self.hanko.admin.settings(timeout=2.0)
        )

    def tearDown(self) -> None:
        self.io_loop.run_sync(admin_client_for(self._app).close)
        super().tearDown()

    def codes(self, *tokens: str) -> list[int]:
        return [self.fetch_with_token("/protected", token, raise_error=False).code for token in tokens]


class LogOutEverywhereTest(LogoutCase):
    def test_every_session_ends_at_hanko_and_here_at_once_without_any_webhook(self) -> None:
        user = self.hanko.admin.add_user()
        tokens = [self.hanko.mint(user.id) for _ in range(3)]
        bystander = self.hanko.mint()
        self.assertEqual(self.codes(*tokens, bystander), [200] * 4)  # all remembered now
        response = self.fetch_with_token("/protected/sessions", tokens[0], method="DELETE")
        self.assertEqual(json.loads(response.body)["sessions_ended"], 3)
        self.assertEqual(self.hanko.admin.sessions_of(user.id), [], "deleted at Hanko")
        self.assertEqual(self.hanko.deliveries, [], "no webhook is registered: nothing but this call ended them")
        self.assertEqual(self.codes(*tokens), [401] * 3)
        self.assertEqual(self.codes(bystander), [200])
        self.assertEqual(self.codes(self.hanko.mint(user.id)), [200], "the user can log in again at once")

    def test_when_hanko_fails_to_delete_the_sessions_are_refused_here_all_the_same(self) -> None:
        user = self.hanko.admin.add_user()
        tokens = [self.hanko.mint(user.id) for _ in range(2)]
        self.hanko.admin.fault, self.hanko.admin.fault_methods = "error", {"DELETE"}
        response = self.fetch_with_token("/protected/sessions", tokens[0], method="DELETE", raise_error=False)
        self.assertEqual(response.code, 503, "the caller learns it did not fully work")
        self.assertEqual(len(self.hanko.admin.sessions_of(user.id)), 2, "Hanko still has them")
        self.assertEqual(self.codes(*tokens), [401, 401], "yet this service refuses them")

    def test_the_route_answers_503_when_hanko_cannot_list_the_sessions(self) -> None:
        token = self.hanko.mint(self.hanko.admin.add_user().id)
        self.hanko.admin.fault = "rate_limited"
        response = self.fetch_with_token("/protected/sessions", token, method="DELETE", raise_error=False)
        self.assertEqual((response.code, response.headers["Retry-After"]), (503, "7"))
        self.assertEqual(json.loads(response.body)["error"], "admin_api_rate_limited")

    def test_a_cookie_authenticated_logout_from_another_site_is_refused(self) -> None:
        token = self.hanko.mint(self.hanko.admin.add_user().id)
        response = self.fetch_with_token(
            "/protected/sessions",
            token,
            cookie=True,
            method="DELETE",
            headers={"Origin": "https://evil.example"},
            raise_error=False,
        )
        self.assertEqual(response.code, 403)
        self.assertEqual(self.codes(token), [200])


class RevokeSessionTest(LogoutCase):
    @gen_test
    async def test_one_session_ends_here_and_at_hanko_and_the_others_stay(self) -> None:
        user = self.hanko.admin.add_user()
        revoked, kept = str(uuid.uuid4()), str(uuid.uuid4())
        first, second = self.hanko.mint(user.id, session_id=revoked), self.hanko.mint(user.id, session_id=kept)
        verifier, client = verifier_for(self._app), admin_client_for(self._app)
        for token in (first, second):
            await verifier.verify_token(token)
        await revoke_session(client, verifier, user.id, revoked)
        self.assertNotIn(revoked, self.hanko.sessions)
        with self.assertRaisesRegex(InvalidTokenError, "session ended"):
            verifier.remembered_user(first)
        self.assertIsNotNone(verifier.remembered_user(second))
        with self.assertRaises(AdminNotFoundError):
            await revoke_session(client, verifier, self.hanko.admin.add_user().id, kept)  # not that user's
        self.assertIsNotNone(verifier.remembered_user(second), "a session of another user is not ended here")


class MeTest(LogoutCase):
    def test_me_answers_the_profile_from_the_admin_api_without_private_metadata(self) -> None:
        user = self.hanko.admin.add_user(email="ada@example.com", public={"plan": "pro"}, private={"roles": ["admin"]})
        body = json.loads(self.fetch_with_token("/protected/me", self.hanko.mint(user.id)).body)
        self.assertEqual(
            body,
            {
                "user_id": user.id,
                "emails": [{"address": "ada@example.com", "is_primary": True, "is_verified": True}],
                "public_metadata": {"plan": "pro"},
            },
        )

    def test_me_answers_404_for_a_user_hanko_no_longer_has_and_503_when_hanko_fails(self) -> None:
        token = self.hanko.mint()
        self.hanko.sessions.clear()  # the user is gone at Hanko; the token still verifies by signature
        response = self.fetch_with_token("/protected/me", token, raise_error=False)
        self.assertEqual((response.code, json.loads(response.body)["error"]), (404, "not_found"))
        self.hanko.admin.fault = "garbage"
        response = self.fetch_with_token("/protected/me", self.hanko.mint(), raise_error=False)
        self.assertEqual((response.code, json.loads(response.body)["error"]), (503, "admin_api_unavailable"))
