"""A single-page frontend with Hanko's ``<hanko-auth>`` element, and the Tornado API it calls.

Two servers, as a frontend and its API usually are: the page on
``http://localhost:3000`` (``static/``, with Hanko's elements and frontend SDK
served from the repository's ``node_modules``: run ``npm ci`` first) and the API
on ``http://localhost:8000``.  After a login the page calls ``GET /api/me``
twice: with the ``hanko`` cookie the SDK stored (``credentials: "include"``)
and with ``hanko.getSessionToken()`` as ``Authorization: Bearer``.  In Hanko's
console, allow ``http://localhost:3000`` as the frontend's origin (CORS)::

    HANKO_API_URL=https://<project id>.hanko.io python examples/spa/app.py
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pathlib

import tornado.web

from hanko_tornado import CorsHandler, CorsSettings, HankoAuthMixin, HankoSettings, close

STATIC = pathlib.Path(__file__).parent / "static"
TEAMHANKO = pathlib.Path(__file__).resolve().parents[2] / "node_modules" / "@teamhanko"


class MeHandler(HankoAuthMixin, CorsHandler):
    """``GET /api/me``: the user of the session token (cookie or bearer), for the frontend's origin."""

    def get(self) -> None:
        self.write({"user_id": self.hanko_user.id, "email": self.hanko_user.email})


def make_api_app(
    hanko: HankoSettings | None = None, frontend_origin: str = "http://localhost:3000"
) -> tornado.web.Application:
    """The API; settings from the environment by default, with Hanko asked whether the session still lives."""
    if hanko is None:
        hanko = HankoSettings.from_env(session_check=os.environ.get("HANKO_SESSION_CHECK") or "validate")
    return tornado.web.Application([(r"/api/me", MeHandler)], hanko=hanko, cors=CorsSettings(origins=[frontend_origin]))


class ConfigHandler(tornado.web.RequestHandler):
    """``GET /config.json``: where the page finds Hanko and the API."""

    def initialize(self, config: dict[str, str]) -> None:
        self.config = config

    def get(self) -> None:
        self.write(self.config)


def make_frontend_app(hanko_api_url: str, api_url: str = "http://localhost:8000") -> tornado.web.Application:
    """The page, its module and Hanko's packages (``npm ci`` put them in ``node_modules``)."""
    static = tornado.web.StaticFileHandler
    return tornado.web.Application(
        [
            (r"/config.json", ConfigHandler, {"config": {"hankoApiUrl": hanko_api_url, "apiUrl": api_url}}),
            (r"/modules/hanko-elements/(.*)", static, {"path": str(TEAMHANKO / "hanko-elements" / "dist")}),
            (r"/modules/hanko-frontend-sdk/(.*)", static, {"path": str(TEAMHANKO / "hanko-frontend-sdk" / "dist")}),
            (r"/(.*)", static, {"path": str(STATIC), "default_filename": "index.html"}),
        ]
    )


async def main() -> None:
    api_port, frontend_port = int(os.environ.get("API_PORT", "8000")), int(os.environ.get("FRONTEND_PORT", "3000"))
    host = os.environ.get("HOST", "127.0.0.1")
    hanko = HankoSettings.from_env(session_check=os.environ.get("HANKO_SESSION_CHECK") or "validate")
    api = make_api_app(hanko, f"http://localhost:{frontend_port}")
    api.listen(api_port, address=host)
    make_frontend_app(hanko.api_url, f"http://localhost:{api_port}").listen(frontend_port, address=host)
    print(f"open http://localhost:{frontend_port} (the API: http://localhost:{api_port}/api/me)", flush=True)
    try:
        await asyncio.Event().wait()  # until Ctrl-C
    finally:
        await close(api)  # Hanko's HTTP clients and caches


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: main() closes, then a quiet exit
        asyncio.run(main())
