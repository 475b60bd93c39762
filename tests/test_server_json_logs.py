"""server.py with LOG_FORMAT=json: one JSON object per line, the request id, status, path and reason, no token."""

from __future__ import annotations

import json

from test_server import FakeHankoTestCase, running_server
from tornado.testing import gen_test


class JsonLogsServerTest(FakeHankoTestCase):
    @gen_test(timeout=120)
    async def test_every_line_is_json_and_no_token_is_in_them(self) -> None:
        env = {"HANKO_API_URL": self.hanko.api_url, "LOG_FORMAT": "json"}
        valid, expired = self.hanko.mint(), self.hanko.mint(lifetime=-3600)
        async with running_server(env) as server:
            answers = [
                await server.fetch("/protected", headers={"Authorization": f"Bearer {valid}", "X-Request-Id": "r-1"}),
                await server.fetch(f"/protected?token={expired}", headers={"Authorization": f"Bearer {expired}"}),
                await server.fetch("/protected", headers={"X-Request-Id": valid}),
            ]
            last = answers[-1].headers["X-Request-Id"]
            await server.log_line(f'"request_id": "{last}"')  # the last access line is written
        _, stderr = await server.output()
        lines = [json.loads(line) for line in stderr.splitlines() if line.strip()]
        self.assertTrue(all({"time", "level", "logger", "message"} <= line.keys() for line in lines), lines)
        access = {line["request_id"]: line for line in lines if "request_id" in line and line["path"] == "/protected"}
        self.assertEqual([answer.code for answer in answers], [200, 401, 401])
        self.assertEqual(answers[0].headers["X-Request-Id"], "r-1")
        self.assertEqual(
            {k: access["r-1"][k] for k in ("status", "path", "method", "level")},
            {"status": 200, "path": "/protected", "method": "GET", "level": "INFO"},
        )
        refused = access[answers[1].headers["X-Request-Id"]]
        self.assertEqual((refused["status"], refused["reason"]), (401, "expired"))
        missing = access[answers[2].headers["X-Request-Id"]]
        self.assertEqual((missing["reason"], missing["level"]), ("missing_token", "WARNING"))
        for token in (valid, expired):
            for part in token.split("."):
                self.assertNotIn(part[:24], stderr, "no part of a token in the logs")

    @gen_test(timeout=120)
    async def test_an_unknown_format_stops_with_one_line(self) -> None:
        async with running_server({"HANKO_API_URL": self.hanko.api_url, "LOG_FORMAT": "xml"}, wait=False) as server:
            await server.process.wait()
        _, stderr = await server.output()
        self.assertEqual(server.process.returncode, 2)
        self.assertEqual(stderr.strip(), "server.py: LOG_FORMAT: must be text or json, got 'xml'")
