"""``HankoWebSocketMixin``: WebSockets opened by a Hanko session, and closed when it ends.

Browsers cannot set ``Authorization`` on a WebSocket, so besides the bearer
header and the session cookie the token may come as a subprotocol: the page
offers the marker protocol followed by the token, and the server echoes the
marker only, never the token::

    const socket = new WebSocket("wss://api.example.com/ws", ["hanko-bearer", token]);

The handshake's ``Origin`` must be the API's own or one the ``cors`` settings
allow (browsers send no ``Sec-Fetch-Site`` on handshakes, so ``Origin`` is all
there is).  An open socket is closed with :data:`CLOSE_TOKEN_EXPIRED` (4001)
when its token expires, and with :data:`CLOSE_SESSION_ENDED` (4002) when its
session ends: a Hanko webhook said so (within ``hanko_watch_interval``; after
this process listened to the shared cache again following a gap, the shared
record is read again), or the session check, while it is on, said so (it is
asked again every ``session_check_ttl``, passively: an open socket never moves
Hanko's idle timeout, even with ``session_check="renew"``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from hanko_tornado.cors import cors_settings_of, origin_matches_host
from hanko_tornado.errors import InvalidTokenError, UnavailableError
from hanko_tornado.mixin import HankoAuthMixin

__all__ = ["CLOSE_SESSION_ENDED", "CLOSE_TOKEN_EXPIRED", "SUBPROTOCOL", "HankoWebSocketMixin"]

log = logging.getLogger("hanko_tornado")

#: The marker protocol: the protocol offered right after it is the token.
SUBPROTOCOL = "hanko-bearer"
#: Close code for a socket whose token expired.
CLOSE_TOKEN_EXPIRED = 4001
#: Close code for a socket whose session ended (logout, revocation).
CLOSE_SESSION_ENDED = 4002
_EXPIRY_MARGIN = 1.0
_HANDSHAKE_SECONDS = 60.0
_HANDSHAKE_POLL_SECONDS = 0.01

if TYPE_CHECKING:
    from tornado.websocket import WebSocketHandler as _Handler
else:
    _Handler = object


class HankoWebSocketMixin(HankoAuthMixin, _Handler):
    """Authenticates a WebSocket handshake with Hanko and watches the session while the socket is open.

    Put it first in the bases: ``class Feed(HankoWebSocketMixin, WebSocketHandler)``.
    """

    #: Seconds between two looks at an open socket's token and session.
    hanko_watch_interval: float = 1.0
    _hanko_token: str | None = None
    _hanko_watch: asyncio.Task[None] | None = None

    def get_hanko_bearer_token(self) -> str | None:
        """``Authorization: Bearer``, else the protocol offered right after :data:`SUBPROTOCOL`."""
        bearer = super().get_hanko_bearer_token()
        if bearer is not None:
            return bearer
        offered = [p.strip() for p in self.request.headers.get("Sec-WebSocket-Protocol", "").split(",")]
        if SUBPROTOCOL not in offered:
            return None
        following = offered.index(SUBPROTOCOL) + 1
        return offered[following] if following < len(offered) else ""

    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        # Echo the marker, never the token the browser offered after it.
        return SUBPROTOCOL if SUBPROTOCOL in subprotocols else None

    def check_origin(self, origin: str) -> bool:
        """The API's own origin, or one the ``cors`` settings list by name (never ``"*"``), or ``trusted_origins``."""
        if origin_matches_host(origin, self.request.headers.get("Host", "")):
            return True
        return cors_settings_of(self).is_trusted_origin(origin) or origin in self.settings.get("trusted_origins", ())

    async def prepare(self) -> None:
        headers = self.request.headers
        origin = headers.get("Origin") if "Origin" in headers else headers.get("Sec-Websocket-Origin")
        if origin is not None and not self.check_origin(origin):
            # A foreign page's handshake carries the cookie: WebSocketHandler.get refuses it (403) without it
            # being checked at Hanko first (a session check that renews would keep the session alive).
            return
        await super().prepare()
        used = self._hanko_token_used  # the very token that authenticated the handshake is the one watched
        if used is not None and not self._finished:  # a Hanko session (not an optional handler's own user)
            self._hanko_token = used[0]
            self._hanko_watch = asyncio.ensure_future(self._watch())

    def on_ws_connection_close(self, close_code: int | None = None, close_reason: str | None = None) -> None:
        if self._hanko_watch is not None:
            self._hanko_watch.cancel()
        self._hanko_token = None
        super().on_ws_connection_close(close_code, close_reason)

    def on_finish(self) -> None:
        # A handshake refused after prepare (a foreign origin, say) never opens a socket to watch.
        if self._hanko_watch is not None and self.ws_connection is None:
            self._hanko_watch.cancel()
        super().on_finish()

    async def _watch(self) -> None:
        user, verifier = self.hanko_user, self.get_hanko_verifier()
        expires_at = user.expires_at.timestamp()
        session_ended = verifier.session_watch(user)  # a webhook said so, here or in another process
        if not await self._handshake_done():
            return
        while True:
            if self.ws_connection is None or self.ws_connection.is_closing():
                return
            if time.time() >= expires_at:
                self.close(CLOSE_TOKEN_EXPIRED, "token expired")
                return
            if await session_ended():
                self.close(CLOSE_SESSION_ENDED, "session ended")
                return
            if self._hanko_token and self._checks_sessions(verifier):
                try:
                    # Passive (Hanko's GET): an open socket is no user activity, so it never renews the session.
                    await verifier.authenticate(self._hanko_token, session_check=True, renew=False, user=user)
                except InvalidTokenError:
                    if time.time() >= expires_at - _EXPIRY_MARGIN:  # Hanko's clock saw the token expire first
                        self.close(CLOSE_TOKEN_EXPIRED, "token expired")
                    else:
                        self.close(CLOSE_SESSION_ENDED, "session ended")
                    return
                except UnavailableError:
                    pass  # Hanko cannot say now: the socket stays open, and is asked about again
            await asyncio.sleep(min(self.hanko_watch_interval, max(0.0, expires_at - time.time())))

    async def _handshake_done(self) -> bool:
        """Wait until the socket is open (a handler may await more after authenticating); ``False`` if refused."""
        deadline = time.monotonic() + _HANDSHAKE_SECONDS
        while self.ws_connection is None or self.ws_connection.stream is None:
            if (self._finished and self.ws_connection is None) or time.monotonic() > deadline:
                return False
            await asyncio.sleep(_HANDSHAKE_POLL_SECONDS)
        return True
