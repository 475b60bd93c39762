"""``FakeHanko``: a Hanko tenant's public side, answering as Hanko's backend does."""

from __future__ import annotations

import socket
from collections.abc import Iterable
from typing import Any

import tornado.web
from tornado.httpserver import HTTPServer
from tornado.routing import AnyMatches, Rule, URLSpec
from tornado.testing import bind_unused_port

from hanko_tornado.settings import HankoSettings
from hanko_tornado.testing.admin import FakeAdmin
from hanko_tornado.testing.admin_handlers import admin_routes
from hanko_tornado.testing.cors import cors_rules, cors_transform
from hanko_tornado.testing.handlers import JwksHandler, ValidateHandler
from hanko_tornado.testing.keys import SigningKey
from hanko_tornado.testing.sessions import FakeSession
from hanko_tornado.testing.tenant import HANKO_DEFAULT_CORS_ORIGINS, WEBHOOK_SUBJECT, FakeTenant, Fault

__all__ = ["WEBHOOK_SUBJECT", "FakeHanko", "FakeSession", "Fault", "SigningKey"]


def _listen_on_loopback(port: int) -> socket.socket:
    """A listening socket on ``127.0.0.1:port``, closed again if the port is taken (Tornado's bind_sockets leaks it)."""
    listening = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listening.bind(("127.0.0.1", port))
        listening.listen(128)
        listening.setblocking(False)
    except OSError:
        listening.close()
        raise
    return listening


class FakeHanko(FakeTenant):
    """A Hanko tenant's public side, served by Tornado on loopback.

    The newest key in :attr:`keys` signs new tokens; every key is published.
    Every minted session token opens a session in :attr:`sessions`, as a login
    does: beyond :attr:`session_limit` the user's oldest are deleted, and the
    webhooks fire (``session.delete.passive.limit``, then ``session.create.flow``);
    ``/sessions/validate`` answers about those sessions as Hanko does.  Served by
    :meth:`start`, every answer carries Hanko's CORS headers for :attr:`cors_origins`
    (see :mod:`hanko_tornado.testing.cors`), so a frontend on one of them can call it
    with credentials, as Hanko's frontend SDK does.

    :param key_size: RSA key size; Hanko uses 4096, tests may pick 2048 for speed.
    :param audience: the ``aud`` minted tokens carry by default.
    :param path: a tenant path prefix, such as ``/tenant-1``.
    :param keys: the published keys, newest last; one new key by default.
    :param idle_timeout: seconds a session may go unused (Hanko's ``session.idle_timeout``);
        ``None`` for none, Hanko's default.
    :param cookie_name: the cookie ``GET /sessions/validate`` reads when no bearer header is sent.
    :param session_limit: live sessions a user may have (Hanko's ``session.limit``, default 5).
    :param cors_origins: the frontend origins that may call with credentials (Hanko's
        ``server.public.cors.allow_origins``; its default, ``http://localhost:8888``, by default).
    :param port: the loopback port to serve on (``127.0.0.1`` only); a free one by default.
        :class:`OSError` from :attr:`port` or :meth:`start` if it is taken.
    """

    def __init__(
        self,
        *,
        key_size: int = 4096,
        audience: Iterable[str] = ("localhost",),
        issuer: str | None = None,
        max_age: int = 600,
        path: str = "",
        keys: Iterable[SigningKey] = (),
        idle_timeout: float | None = None,
        cookie_name: str = "hanko",
        session_limit: int = 5,
        cors_origins: Iterable[str] = HANKO_DEFAULT_CORS_ORIGINS,
        port: int = 0,
    ) -> None:
        super().__init__(
            key_size=key_size,
            audience=audience,
            issuer=issuer,
            max_age=max_age,
            keys=keys,
            idle_timeout=idle_timeout,
            cookie_name=cookie_name,
            session_limit=session_limit,
            cors_origins=cors_origins,
        )
        self.path = path.rstrip("/")
        #: The admin API (users, metadata, sessions, webhooks), served under ``{api_url}/admin``.
        self.admin = FakeAdmin(self)
        self._requested_port = port
        self._bound: tuple[socket.socket, int] | None = None
        self._server: HTTPServer | None = None

    @property
    def port(self) -> int:
        """The loopback port :meth:`start` serves on, chosen on first use."""
        return self._bind()[1]

    def _bind(self) -> tuple[socket.socket, int]:
        if self._bound is None and self._requested_port:
            self._bound = _listen_on_loopback(self._requested_port), self._requested_port
        elif self._bound is None:
            self._bound = bind_unused_port()
        return self._bound

    @property
    def api_url(self) -> str:
        """The URL to configure as ``HANKO_API_URL``."""
        return f"http://127.0.0.1:{self.port}{self.path}"

    def settings(self, **overrides: Any) -> HankoSettings:
        """Settings that point a verifier at this fake, checking its audience."""
        values: dict[str, Any] = {"api_url": self.api_url, "audience": self.audience, "issuer": self.issuer}
        return HankoSettings(**{**values, **overrides})

    def routes(self, prefix: str = "") -> list[URLSpec]:
        """The fake's routes under ``prefix``, to mount into another application (with no CORS headers)."""
        return [*self._public_routes(prefix), *admin_routes(self.admin, f"{prefix}/admin")]

    def _public_routes(self, prefix: str) -> list[URLSpec]:
        return [
            tornado.web.url(rf"{prefix}/\.well-known/jwks\.json", JwksHandler, {"hanko": self}),
            tornado.web.url(rf"{prefix}/sessions/validate", ValidateHandler, {"hanko": self}),
        ]

    def start(self, routes: Iterable[URLSpec] = (), *, public_routes: Iterable[URLSpec] = ()) -> None:
        """Start serving on :attr:`port`; needs the loop the test runs on.

        Hanko's public routes answer with its CORS headers for :attr:`cors_origins`; the admin API,
        as Hanko's (a server of its own), with none.

        :param routes: more routes to serve beside the fake's, with no CORS headers
            (``python -m hanko_tornado.testing`` adds its control endpoints).
        :param public_routes: more of Hanko's public routes, with its CORS headers, such as its
            frontend API (:class:`~hanko_tornado.testing.frontend.FakeFrontendApi`).
        """
        bound = self._bind()[0]
        # Hanko answers other origins with its CORS rules alone: no Tornado cross-origin protection here, whatever
        # Tornado's default (6.7 is expected to turn it on).
        public = tornado.web.Application(
            [*cors_rules(self._cors_origins), *self._public_routes(self.path), *public_routes],
            transforms=[cors_transform(self._cors_origins)],
            cross_origin_protection=False,
        )
        admin = admin_routes(self.admin, f"{self.path}/admin")
        everything = tornado.web.Application(
            [*admin, *routes, Rule(AnyMatches(), public)], cross_origin_protection=False
        )
        self._server = HTTPServer(everything)
        self._server.add_sockets([bound])

    def _cors_origins(self) -> tuple[str, ...]:
        return self.cors_origins  # read per request: a test may change the origins of a running fake

    async def stop(self) -> None:
        """Stop serving and drop open connections."""
        if self._server is not None:
            self._server.stop()
            await self._server.close_all_connections()
            self._server = None
