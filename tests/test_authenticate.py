"""TokenVerifier.authenticate: the one question handlers ask (verified or remembered, then the session where asked)."""

from __future__ import annotations

import tornado.web
from tornado.testing import gen_test

from hanko_tornado import InvalidTokenError, TokenVerifier, verifier_for
from hanko_tornado.testing import HankoTestCase


class AuthenticateTest(HankoTestCase):
    def get_app(self) -> tornado.web.Application:
        return tornado.web.Application(hanko=self.hanko.settings(session_check="validate"))

    @property
    def verifier(self) -> TokenVerifier:
        return verifier_for(self._app)

    @gen_test
    async def test_without_the_session_check_hanko_is_not_asked(self) -> None:
        token = self.hanko.mint()
        user, session = await self.verifier.authenticate(token, session_check=False)
        self.assertEqual((session, self.hanko.validations), (None, 0))
        self.assertEqual(user, self.verifier.remembered_user(token))

    @gen_test
    async def test_with_the_session_check_hanko_answers_once_per_session(self) -> None:
        token = self.hanko.mint()
        first = await self.verifier.authenticate(token, session_check=True)
        again = await self.verifier.authenticate(token, session_check=True)
        self.assertIsNotNone(first.session)
        self.assertEqual((first.user.id, again.session), (again.user.id, first.session))
        self.assertEqual(self.hanko.validations, 1)
        self.assertEqual(self.verifier.cache_info()[:2], (1, 1), "verified once, remembered once")

    @gen_test
    async def test_a_user_already_known_is_not_verified_again(self) -> None:
        token = self.hanko.mint()
        user = await self.verifier.verify_token(token)
        counts = self.verifier.cache_info()
        self.assertIs((await self.verifier.authenticate(token, session_check=True, user=user)).user, user)
        self.assertEqual(self.verifier.cache_info(), counts)

    @gen_test
    async def test_an_ended_session_is_refused(self) -> None:
        token = self.hanko.mint()
        user = await self.verifier.verify_token(token)
        self.hanko.revoke(user.session_id or "")
        with self.assertRaises(InvalidTokenError) as refused:
            await self.verifier.authenticate(token, session_check=True, user=user)
        self.assertEqual(refused.exception.code, "session_ended")

    @gen_test
    async def test_an_end_a_webhook_reported_is_seen_by_the_session_watch(self) -> None:
        user = await self.verifier.verify_token(self.hanko.mint())
        ended = self.verifier.session_watch(user)
        self.assertFalse(await ended())
        await self.verifier.end("session", user.session_id or "", 4102444800.0)
        self.assertTrue(await ended())

    @gen_test
    async def test_a_bad_token_is_refused_with_its_code(self) -> None:
        with self.assertRaises(InvalidTokenError) as refused:
            await self.verifier.authenticate(self.hanko.mint(lifetime=-120), session_check=True)
        self.assertEqual((refused.exception.code, self.hanko.validations), ("expired", 0))
