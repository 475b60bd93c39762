"""A WebSocket opened by a Hanko session, closed when the session ends.

The handshake carries the session token in the ``hanko`` cookie, as
``Authorization: Bearer``, or (browsers cannot set headers on a WebSocket) as
the protocol offered after ``hanko-bearer``::

    new WebSocket("ws://localhost:8000/ws", ["hanko-bearer", hanko.getSessionToken()]);

The socket greets the user and echoes messages.  It is closed with 4001 when
the token expires and 4002 when Hanko says the session ended (logout, revoked):
the example asks Hanko about the session every ``HANKO_SESSION_CHECK_SECONDS``
(``HANKO_SESSION_CHECK=validate`` by default here).  A page on another origin
may connect when it is ``FRONTEND_ORIGIN``::

    HANKO_API_URL=https://<project id>.hanko.io python examples/websocket/app.py
"""

from __future__ import annotations

import asyncio
import contextlib
import os

import tornado.web
import tornado.websocket

from hanko_tornado import CorsSettings, HankoSettings, HankoWebSocketMixin, close


class EchoSocket(HankoWebSocketMixin, tornado.websocket.WebSocketHandler):
    """Greets the user by id, then echoes each message back."""

    hanko_watch_interval = 1.0  # seconds between two looks at the token and the session

    def open(self) -> None:
        self.write_message({"hello": self.hanko_user.id})

    def on_message(self, message: str | bytes) -> None:
        text = message if isinstance(message, str) else message.decode("utf-8", "replace")
        self.write_message({"echo": text})


def make_app(hanko: HankoSettings | None = None, frontend_origin: str | None = None) -> tornado.web.Application:
    """The application; settings from the environment by default, with Hanko asked about the session."""
    if hanko is None:
        hanko = HankoSettings.from_env(session_check=os.environ.get("HANKO_SESSION_CHECK") or "validate")
    origin = frontend_origin or os.environ.get("FRONTEND_ORIGIN", "http://localhost:3000")
    return tornado.web.Application([(r"/ws", EchoSocket)], hanko=hanko, cors=CorsSettings(origins=[origin]))


async def main() -> None:
    port = int(os.environ.get("PORT", "8000"))
    app = make_app()
    app.listen(port, address=os.environ.get("HOST", "127.0.0.1"))
    print(f"listening on ws://localhost:{port}/ws", flush=True)
    try:
        await asyncio.Event().wait()  # until Ctrl-C
    finally:
        await close(app)  # Hanko's HTTP clients and caches


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: main() closes, then a quiet exit
        asyncio.run(main())
