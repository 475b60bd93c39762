"""``HankoTestCase`` and a burst helper: test handlers against a FakeHanko on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from tornado.httpclient import AsyncHTTPClient, HTTPRequest, HTTPResponse
from tornado.testing import AsyncHTTPTestCase
from tornado.websocket import WebSocketClientConnection, websocket_connect

from hanko_tornado.lifecycle import close
from hanko_tornado.settings import HankoSettings
from hanko_tornado.testing.fake import FakeHanko
from hanko_tornado.websocket import SUBPROTOCOL

__all__ = ["HankoTestCase", "SocketEnd", "fetch_concurrently"]

#: How :meth:`HankoTestCase.websocket_connect` sends the token: the ``hanko-bearer`` subprotocol (as a
#: browser must), the session cookie, or an ``Authorization: Bearer`` header (as a server-side client can).
TokenCarrier = Literal["subprotocol", "cookie", "bearer"]


async def fetch_concurrently(requests: Sequence[tuple[str, str]], timeout: float = 60) -> list[HTTPResponse]:
    """GET every ``(url, token)`` at once, the token as a bearer header; answers in order, errors not raised.

    For bursts: one client with as many connections as requests, so that all are in flight together.
    """
    client = AsyncHTTPClient(force_instance=True, max_clients=max(1, len(requests)))
    try:
        return await asyncio.gather(
            *(
                client.fetch(
                    url, headers={"Authorization": f"Bearer {token}"}, raise_error=False, request_timeout=timeout
                )
                for url, token in requests
            )
        )
    finally:
        client.close()


@dataclass(frozen=True)
class SocketEnd:
    """How a WebSocket ended, from :meth:`HankoTestCase.websocket_closed`.

    ``code`` and ``reason`` are the server's close frame (``None`` when the
    connection dropped without one); ``messages`` were received before it.
    """

    messages: list[str | bytes]
    code: int | None
    reason: str | None


class HankoTestCase(AsyncHTTPTestCase):
    """An ``AsyncHTTPTestCase`` with a :class:`FakeHanko` running as ``self.hanko``.

    Build the application under test with ``self.hanko.settings()`` in
    ``get_app``; send tokens with :meth:`fetch_with_token`.
    """

    hanko_key_size = 2048

    def setUp(self) -> None:
        self.hanko = self.make_fake_hanko()
        super().setUp()
        self.hanko.start()

    def tearDown(self) -> None:
        # Webhooks still under way reach the application while it is whole (each gives up after 10 s).
        self.io_loop.run_sync(self.hanko.webhooks_sent, timeout=60)
        self.io_loop.run_sync(lambda: close(self._app))
        self.io_loop.run_sync(self.hanko.stop)
        super().tearDown()

    def make_fake_hanko(self) -> FakeHanko:
        """The fake tenant for this test; override to configure it."""
        return FakeHanko(key_size=self.hanko_key_size)

    def hanko_cookie_name(self) -> str:
        """The session cookie the application reads: its ``hanko`` settings' ``cookie_name``, else ``hanko``."""
        settings = self._app.settings.get("hanko")
        return settings.cookie_name if isinstance(settings, HankoSettings) else HankoSettings.cookie_name

    def fetch_with_token(self, path: str, token: str, *, cookie: bool = False, **kwargs: Any) -> HTTPResponse:
        """``self.fetch`` with ``token`` as a bearer header, or as the session cookie.

        The cookie is the one the application's settings name (:meth:`hanko_cookie_name`).
        Other keyword arguments go to ``fetch``; ``headers`` given there are kept.
        """
        headers = dict(kwargs.pop("headers", None) or {})
        if cookie:
            headers["Cookie"] = f"{self.hanko_cookie_name()}={token}"
        else:
            headers["Authorization"] = f"Bearer {token}"
        return self.fetch(path, headers=headers, **kwargs)

    async def websocket_connect(
        self,
        path: str,
        token: str | None = None,
        *,
        via: TokenCarrier = "subprotocol",
        origin: str | None = None,
        headers: Mapping[str, str] | None = None,
        subprotocols: Iterable[str] = (),
        timeout: float = 60,
    ) -> WebSocketClientConnection:
        """Open a WebSocket to ``path`` on the application, ``token`` sent ``via`` the subprotocol, cookie or header.

        Use it in a ``@tornado.testing.gen_test`` test and ``await`` it. With
        ``via="subprotocol"`` the protocols offered are ``subprotocols``, then
        ``hanko-bearer`` and the token, as a browser's
        ``new WebSocket(url, ["hanko-bearer", token])``; the server's choice is
        the connection's ``selected_subprotocol``. ``origin`` sets the
        handshake's ``Origin`` (browsers always send one; none by default).

        :raises tornado.httpclient.HTTPClientError: the handshake was refused
            (``error.code`` is the status, 401 for a missing or bad token, 403 for a foreign origin).
        """
        sent = dict(headers or {})
        offered = list(subprotocols)
        if origin is not None:
            sent["Origin"] = origin
        if token is not None and via == "subprotocol":
            offered += [SUBPROTOCOL, token]
        elif token is not None and via == "cookie":
            sent["Cookie"] = f"{self.hanko_cookie_name()}={token}"
        elif token is not None:
            sent["Authorization"] = f"Bearer {token}"
        url = self.get_url(path).replace("http://", "ws://", 1)
        request = HTTPRequest(url, headers=sent, connect_timeout=timeout, request_timeout=timeout)
        return await websocket_connect(request, subprotocols=offered or None)

    async def websocket_read(self, connection: WebSocketClientConnection, timeout: float = 60) -> str | bytes | None:
        """The next message, or ``None`` once the socket is closed (then see ``close_code``).

        :raises asyncio.TimeoutError: nothing came within ``timeout`` seconds (an upper bound, not a wait).
        """
        return await asyncio.wait_for(connection.read_message(), timeout)

    async def websocket_closed(self, connection: WebSocketClientConnection, timeout: float = 60) -> SocketEnd:
        """Read until the server closes the socket: its close code and reason, and the messages before them.

        Close the connections a test leaves open itself (``connection.close()``).

        :raises asyncio.TimeoutError: the socket was still open after ``timeout`` seconds.
        """
        messages: list[str | bytes] = []

        async def drain() -> None:
            while (message := await connection.read_message()) is not None:
                messages.append(message)

        await asyncio.wait_for(drain(), timeout)
        connection.close()  # the server closed it; this releases the client's side
        return SocketEnd(messages, connection.close_code, connection.close_reason)
