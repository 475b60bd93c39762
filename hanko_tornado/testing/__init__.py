"""Test Hanko-protected handlers with no Hanko tenant and no network.

:class:`FakeHanko` stands in for a Hanko tenant's public side on a loopback
port: it serves ``/.well-known/jwks.json`` and ``/sessions/validate`` as
Hanko does, keeps sessions (with an optional idle timeout), mints
Hanko-shaped session and webhook tokens, rotates keys, ends sessions and
fails on demand; ``FakeHanko(port=N)`` serves on a chosen port, and
``python -m hanko_tornado.testing --port N`` runs one on its own for tests in
any language (:mod:`hanko_tornado.testing.serve`).  :class:`HankoTestCase`
wires one into an ``AsyncHTTPTestCase``, with helpers for tokens
(:meth:`~HankoTestCase.fetch_with_token`) and WebSockets
(:meth:`~HankoTestCase.websocket_connect`, :class:`SocketEnd`)::

    class ProfileTest(HankoTestCase):
        def get_app(self) -> tornado.web.Application:
            return make_app(hanko=self.hanko.settings())

        def test_profile(self) -> None:
            response = self.fetch_with_token("/profile", self.hanko.mint())
            self.assertEqual(response.code, 200)
"""

from hanko_tornado.testing.case import HankoTestCase, SocketEnd, fetch_concurrently
from hanko_tornado.testing.fake import FakeHanko, FakeSession, SigningKey

__all__ = ["FakeHanko", "FakeSession", "HankoTestCase", "SigningKey", "SocketEnd", "fetch_concurrently"]
