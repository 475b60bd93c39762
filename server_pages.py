"""server.py's pages: `/app` greets a logged-in user (a browser with no valid session is sent to `/login`),
`/login` hosts Hanko's ``<hanko-auth>`` element, from ``node_modules`` (``npm ci``) or ``HANKO_ELEMENTS_URL``.
"""

from __future__ import annotations

import logging
import pathlib
from typing import Any

import tornado.web

from hanko_tornado import verifier_for
from hanko_tornado.pages import HankoPageMixin, safe_next_url

log = logging.getLogger("server")

#: Where the pages serve Hanko's web components from, when they are installed.
ELEMENTS_ROUTE = "/static/hanko-elements/"


class AppPage(HankoPageMixin, tornado.web.RequestHandler):
    """Greets the user and says when the session ends; a browser with no valid session is sent to /login."""

    def initialize(self, elements_url: str | None) -> None:
        self.elements_url = elements_url

    def get(self) -> None:
        user, session = self.hanko_user, self.hanko_session
        self.render(
            "app.html",
            user=user,
            ends=(session.expires_at if session else None) or user.expires_at,
            elements_url=self.elements_url,
            hanko_api=verifier_for(self.application).settings.api_url,
            login_url=self.get_login_url(),
        )


class LoginPage(tornado.web.RequestHandler):
    """Hosts Hanko's ``<hanko-auth>``; once Hanko created a session, goes on to ``next`` (a path of this site only).

    In dev mode it also offers the stand-in's token as the ``hanko`` cookie.
    """

    def initialize(self, elements_url: str | None, dev_token: str | None) -> None:
        self.elements_url, self.dev_token = elements_url, dev_token

    def get(self) -> None:
        own_origin = f"{self.request.protocol}://{self.request.host}"
        acr_values, max_age = self.get_argument("acr_values", ""), self.get_argument("max_age", "")
        needs = [f"log in with {acr_values.replace(' ', ' or ')}"] if acr_values else []
        if max_age.isascii() and max_age.isdigit() and len(max_age) < 10:  # no 5000-digit int() for a stranger
            needs.append(f"within the last {int(max_age) // 60 or 1} minute(s)")
        self.set_header("Cache-Control", "no-store")
        self.render(
            "login.html",
            next=safe_next_url(self.get_argument("next", None), own_origin, default="/app"),
            step_up=", ".join(needs)[:200],
            elements_url=self.elements_url,
            hanko_api=verifier_for(self.application).settings.api_url,
            dev_token=self.dev_token,
        )


def page_routes(elements_dir: pathlib.Path, elements_url: str | None, dev_token: str | None) -> list[Any]:
    """``/app``, ``/login`` and, when ``npm ci`` installed them in ``elements_dir``, Hanko's elements.

    The login page loads the elements from ``elements_url``, by default from ``elements_dir``;
    ``dev_token`` is offered there as a cookie.
    """
    routes: list[Any] = []
    if not (elements_dir / "elements.js").is_file():  # the login page says how to install them
        log.info("not serving %s: hanko-elements is not installed (npm ci)", ELEMENTS_ROUTE)
    else:
        routes.append((ELEMENTS_ROUTE + "(.*)", tornado.web.StaticFileHandler, {"path": str(elements_dir)}))
        elements_url = elements_url or ELEMENTS_ROUTE + "elements.js"
    pages = {"elements_url": elements_url}
    return [(r"/app", AppPage, pages), (r"/login", LoginPage, {**pages, "dev_token": dev_token}), *routes]
