"""Review: a foreign page's WebSocket handshake carries the victim's cookie; it is refused before anything is
done with it (no session check at Hanko: with ``session_check="renew"`` that would keep the session alive)."""

from __future__ import annotations

from test_websocket import SocketTestCase
from tornado.httpclient import HTTPClientError
from tornado.testing import gen_test


class ForeignHandshakeTest(SocketTestCase):
    settings_overrides = {"session_check": "renew"}  # noqa: RUF012

    @gen_test
    async def test_a_foreign_origin_is_refused_before_hanko_is_asked(self) -> None:
        token = self.hanko.mint()
        before = self.hanko.validations
        for origin in ("https://evil.example", "http://[", "null"):
            with self.subTest(origin=origin), self.assertRaises(HTTPClientError) as refused:
                await self.connect(origin=origin, cookie=token)
            self.assertEqual(refused.exception.code, 403)
        self.assertEqual(self.hanko.validations, before, "Hanko was asked about the session for a foreign page")
        (await self.connect(cookie=token)).close()  # the allowed origin still gets in, asking Hanko
        self.assertEqual(self.hanko.validations, before + 1)
