"""JSON logs: one object per line, a request id in and out, the refusal reason, never a token."""

from __future__ import annotations

import io
import json
import logging

import tornado.web

from hanko_tornado import HankoAuthMixin
from hanko_tornado.json_logs import JsonFormatter, RequestIdTransform, log_request_as_json
from hanko_tornado.testing import HankoTestCase


class Profile(HankoAuthMixin, tornado.web.RequestHandler):
    def get(self) -> None:
        logging.getLogger("hanko_tornado").info("greeting %s", self.request.headers.get("Authorization"))
        self.write({"user_id": self.hanko_user.id})


class JsonLogsTest(HankoTestCase):
    def setUp(self) -> None:
        self.stream = io.StringIO()
        self.handler = logging.StreamHandler(self.stream)
        self.handler.setFormatter(JsonFormatter())
        for name in ("tornado.access", "hanko_tornado"):
            logger = logging.getLogger(name)
            logger.addHandler(self.handler)
            self.addCleanup(logger.removeHandler, self.handler)
            self.addCleanup(logger.setLevel, logger.level)
            logger.setLevel(logging.INFO)
        super().setUp()

    def get_app(self) -> tornado.web.Application:
        app = tornado.web.Application(
            [(r"/profile", Profile)], hanko=self.hanko.settings(), log_function=log_request_as_json
        )
        app.add_transform(RequestIdTransform)
        return app

    def lines(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines()]

    def access(self) -> list[dict[str, object]]:
        return [line for line in self.lines() if "request_id" in line]  # not the fake's own access lines

    def test_an_accepted_request(self) -> None:
        token = self.hanko.mint()
        response = self.fetch_with_token("/profile?token=" + token, token, headers={"X-Request-Id": "req-42"})
        self.assertEqual((response.code, response.headers["X-Request-Id"]), (200, "req-42"))
        (line,) = self.access()
        self.assertEqual(
            {k: line[k] for k in ("level", "request_id", "method", "path", "status")},
            {"level": "INFO", "request_id": "req-42", "method": "GET", "path": "/profile", "status": 200},
        )
        self.assertNotIn("reason", line)
        self.assertIsInstance(line["duration_ms"], float)
        self.assertNotIn(token.split(".")[1][:20], self.stream.getvalue(), "no token, not even a handler's")
        self.assertIn('"message": "greeting Bearer [token]"', self.stream.getvalue())

    def test_a_refused_token_logs_its_reason(self) -> None:
        token = self.hanko.mint(lifetime=-3600)
        response = self.fetch_with_token("/profile", token, raise_error=False)
        self.assertEqual(response.code, 401)
        (line,) = self.access()
        self.assertEqual((line["level"], line["status"], line["reason"]), ("WARNING", 401, "expired"))
        self.assertEqual(line["request_id"], response.headers["X-Request-Id"])
        self.assertEqual(len(str(line["request_id"])), 32, "a new id: none came")
        missing = self.fetch("/profile")
        self.assertEqual((missing.code, self.access()[-1]["reason"]), (401, "missing_token"))

    def test_a_hostile_request_id_is_replaced(self) -> None:
        token = self.hanko.mint()
        for hostile in ("a b", "x" * 129, "<script>", token, "é"):
            response = self.fetch("/profile", headers={"X-Request-Id": hostile}, raise_error=False)
            self.assertNotEqual(response.headers["X-Request-Id"], hostile)
            self.assertEqual(len(response.headers["X-Request-Id"]), 32)
        self.assertNotIn(token.split(".")[1][:20], self.stream.getvalue())
        self.assertTrue(all(len(line) > 0 for line in self.lines()), "every line is one JSON object")

    def test_an_exception_is_one_line_too(self) -> None:
        try:
            raise ValueError("boom eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln")
        except ValueError:
            logging.getLogger("hanko_tornado").exception("failed")
        (line,) = [line for line in self.lines() if line["message"] == "failed"]
        self.assertIn("ValueError: boom [token]", str(line["exception"]))
