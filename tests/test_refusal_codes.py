"""Refusals carry a stable code: metrics, logs and the JSON body go by it, never by the sentence."""

from __future__ import annotations

import json

import tornado.web

from hanko_tornado import HankoAuthMixin, HankoSettings, InvalidTokenError
from hanko_tornado.errors import TOKEN_REFUSALS
from hanko_tornado.metrics import REFUSAL_REASONS, WEBHOOK_FAILURE_REASONS, reason_label
from hanko_tornado.testing import HankoTestCase


class Profile(HankoAuthMixin, tornado.web.RequestHandler):
    def get(self) -> None:
        self.write({"id": self.hanko_user.id})


class CodeTest(HankoTestCase):
    def get_app(self) -> tornado.web.Application:
        return tornado.web.Application([(r"/me", Profile)], hanko=self.hanko.settings())

    def refusal(self, token: str) -> dict[str, object]:
        response = self.fetch_with_token("/me", token, raise_error=False)
        self.assertEqual(response.code, 401)
        body = json.loads(response.body)
        self.assertEqual(body["error"], "invalid_token")
        return body

    def test_the_body_names_the_code_and_the_message_the_words(self) -> None:
        body = self.refusal(self.hanko.mint(lifetime=-3600))
        self.assertEqual(body["reason"], "expired")
        self.assertEqual(body["message"], "The session token was refused: token expired.")

    def test_a_more_precise_sentence_keeps_its_code(self) -> None:
        body = self.refusal(self.hanko.mint(claims={"iat": 4_000_000_000}))
        self.assertEqual(body["reason"], "not_yet_valid")
        self.assertIn("issued in the future", str(body["message"]))

    def test_a_cut_token_is_malformed(self) -> None:
        token = self.hanko.mint()
        self.assertEqual(self.refusal(token[: len(token) // 2])["reason"], "malformed")


class CodesAreClosedTest(HankoTestCase):
    def get_app(self) -> tornado.web.Application:
        return tornado.web.Application([], hanko=HankoSettings(api_url=self.hanko.api_url, allow_http=True))

    def test_the_old_one_sentence_form_still_refuses_with_a_warning(self) -> None:
        with self.assertWarns(DeprecationWarning):
            error = InvalidTokenError("my own reason")
        self.assertEqual((error.code, error.reason, error.status_code), ("other", "my own reason", 401))
        self.assertEqual(error.response_body()["reason"], "other")
        self.assertIn("my own reason", error.message)

    def test_every_code_is_a_metric_label_whatever_its_words(self) -> None:
        for code in TOKEN_REFUSALS:
            error = InvalidTokenError(code, "reworded for people")
            self.assertEqual(reason_label(error), code)
            label = "malformed_token" if code == "malformed" else code
            self.assertTrue(code in REFUSAL_REASONS or label in WEBHOOK_FAILURE_REASONS, code)
