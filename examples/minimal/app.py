"""The seed's Hono example in Tornado: ``/`` is open, ``/protected`` needs a Hanko session.

The token comes as ``Authorization: Bearer`` or in the ``hanko`` cookie, both
checked against the project's keys (and audience, when ``HANKO_AUDIENCE`` is
set); a frontend on ``FRONTEND_ORIGIN`` may call with credentials::

    HANKO_API_URL=https://<project id>.hanko.io FRONTEND_ORIGIN=http://localhost:3000 python examples/minimal/app.py
"""

from __future__ import annotations

import asyncio
import contextlib
import os

import tornado.web

from hanko_tornado import CorsHandler, CorsSettings, HankoAuthMixin, HankoSettings, close


class HomeHandler(CorsHandler):
    """Open to everyone."""

    def get(self) -> None:
        self.write({"message": "Tornado x Hanko!"})


class ProtectedHandler(HankoAuthMixin, CorsHandler):
    """Only for a live Hanko session: 401 with a JSON reason otherwise (the token is never logged)."""

    def get(self) -> None:
        self.write({"message": "Hello from protected route!", "user_id": self.hanko_user.id})


def make_app(hanko: HankoSettings | None = None, frontend_origin: str | None = None) -> tornado.web.Application:
    """The application; settings from the environment (``HANKO_API_URL``, ``HANKO_AUDIENCE``...) by default."""
    origin = frontend_origin or os.environ.get("FRONTEND_ORIGIN", "http://localhost:3000")
    return tornado.web.Application(
        [(r"/", HomeHandler), (r"/protected", ProtectedHandler)],
        hanko=hanko or HankoSettings.from_env(),
        cors=CorsSettings(origins=[origin]),
    )


async def main() -> None:
    port = int(os.environ.get("PORT", "8000"))
    app = make_app()
    app.listen(port, address=os.environ.get("HOST", "127.0.0.1"))
    print(f"listening on http://localhost:{port}", flush=True)
    try:
        await asyncio.Event().wait()  # until Ctrl-C
    finally:
        await close(app)  # Hanko's HTTP clients and caches


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: main() closes, then a quiet exit
        asyncio.run(main())
