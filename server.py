"""An example API protected by Hanko: `/` is open; `/protected` (GET, POST) and the `/ws` socket need a session;
`/protected/recent-passkey` (GET, POST) needs a passkey login of the last ``HANKO_STEP_UP_MAX_AGE`` seconds.

Pages: `/app` greets a logged-in user (a browser with no valid session is sent to `/login`), `/login` hosts
Hanko's ``<hanko-auth>`` element, from ``node_modules`` (``npm ci``) or ``HANKO_ELEMENTS_URL``.  With Hanko's
admin API set, `/protected/me`, `/protected/sessions` and `/protected/admin` use it.

Configured from the environment and ``.env`` (see ``.env.example``); ``--dev`` runs with an embedded stand-in
for Hanko; ``python server.py --help`` lists the options.  Running it, and `/healthz`, `/readyz` and `/metrics`
for operators: :mod:`hanko_tornado.runner`.
"""

from __future__ import annotations

import logging
import pathlib
import sys
from typing import Any

import tornado.web
import tornado.websocket

from hanko_tornado import CorsHandler, CorsSettings, HankoAuthMixin, HankoSettings, verifier_for
from hanko_tornado.admin import (
    HankoAdminError,
    HankoAdminSettings,
    HankoAdminWebhookHandler,
    admin_client_for,
    log_out_everywhere,
    private_metadata_has,
    webhook_health_for,
)
from hanko_tornado.admin.settings import ADMIN_API_KEY_VARIABLE, ADMIN_API_URL_VARIABLE
from hanko_tornado.pages import HankoPageMixin, safe_next_url
from hanko_tornado.requirements import Requirement, max_age, passkey
from hanko_tornado.runner.command import main
from hanko_tornado.runner.operator_routes import metrics_when_installed, operator_routes
from hanko_tornado.websocket import HankoWebSocketMixin

log = logging.getLogger("server")

HERE = pathlib.Path(__file__).resolve().parent
#: Where `npm ci` puts Hanko's web components (package.json pins the version); served at ELEMENTS_ROUTE.
ELEMENTS_DIR = HERE / "node_modules" / "@teamhanko" / "hanko-elements" / "dist"
ELEMENTS_ROUTE = "/static/hanko-elements/"


class NotFoundHandler(CorsHandler):
    def prepare(self) -> None:
        raise tornado.web.HTTPError(404)


class RootHandler(CorsHandler):
    def get(self) -> None:
        self.write({"message": "Tornado x Hanko!"})


class ProtectedHandler(HankoAuthMixin, CorsHandler):
    def get(self) -> None:
        self.write({"message": "Hello from protected route!", "user_id": self.hanko_user.id})

    def post(self) -> None:
        # Cookie-authenticated POSTs from origins CORS_ORIGINS does not list never get here.
        self.get()


class RecentPasskeyHandler(ProtectedHandler):
    """Answers like /protected, for a passkey login of the last few minutes (401 with an RFC 9470 challenge if not)."""

    def initialize(self, requirement: Requirement) -> None:
        self.hanko_requires = requirement


class AdminApiHandler(HankoAuthMixin, CorsHandler):
    """A route that needs Hanko's admin API: 501, naming the variable to set, when it is not configured."""

    async def prepare(self) -> None:
        if "hanko_admin" not in self.settings:
            self.set_status(501)
            message = f"Set {ADMIN_API_URL_VARIABLE} (and {ADMIN_API_KEY_VARIABLE} on Hanko Cloud) to use this route."
            self.finish({"error": "admin_api_not_configured", "message": message})
            return
        await super().prepare()

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        error = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(error, HankoAdminError):
            self.clear()
            error.answer(self)  # 404, 503 with Retry-After...: never what Hanko said
        else:
            super().write_error(status_code, **kwargs)

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if not isinstance(value, HankoAdminError):  # the client logged it already, without any secret
            super().log_exception(typ, value, tb)


class MeHandler(AdminApiHandler):
    """The caller's profile from the admin API: emails and public metadata (never the private metadata)."""

    async def get(self) -> None:
        user = await admin_client_for(self.application).get_user(self.hanko_user.id)
        emails = [{"address": e.address, "is_primary": e.is_primary, "is_verified": e.is_verified} for e in user.emails]
        self.write({"user_id": user.id, "emails": emails, "public_metadata": user.metadata.public})


class SessionsHandler(AdminApiHandler):
    """``DELETE``: log the caller out everywhere, at Hanko and in every process at once."""

    async def delete(self) -> None:
        user = self.hanko_user
        client, verifier = admin_client_for(self.application), verifier_for(self.application)
        ended = await log_out_everywhere(client, verifier, user.id, also=user.session_id)
        self.write({"message": "Logged out everywhere.", "sessions_ended": ended})


class AdminOnlyHandler(AdminApiHandler):
    """Only for users whose private metadata's ``roles`` hold ``"admin"`` (403 ``insufficient_scope`` otherwise)."""

    hanko_requires = private_metadata_has("roles", "admin")

    def get(self) -> None:
        self.write({"message": "Hello, admin!", "user_id": self.hanko_user.id})


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


class EchoSocket(HankoWebSocketMixin, tornado.websocket.WebSocketHandler):
    """Greets the user, echoes every message, and is closed by the server when the session ends."""

    def open(self) -> None:
        self.write_message({"message": "Hello from the socket!", "user_id": self.hanko_user.id})

    def on_message(self, message: str | bytes) -> None:
        self.write_message(message, binary=isinstance(message, bytes))


def make_app(
    hanko: HankoSettings,
    cors: CorsSettings,
    routes: list[Any] | None = None,
    *,
    cross_origin_protection: bool = True,
    step_up_max_age: int = 600,
    elements_url: str | None = None,
    dev_token: str | None = None,
    admin: HankoAdminSettings | None = None,
) -> tornado.web.Application:
    """The example API and pages, with any extra ``routes``; ``step_up_max_age`` seconds for /protected/recent-passkey.

    The login page loads Hanko's elements from ``elements_url``, by default from ``node_modules``.
    ``dev_token``: offered as a cookie.  With ``admin`` settings, the admin routes use Hanko's admin API
    (501 without), and readiness and metrics report whether Hanko still has the webhook switched on.
    Tornado's cross-origin protection (6.6+) is on by default; the mixin's own check works either way.
    """
    hanko = metrics_when_installed(hanko)
    installed = (ELEMENTS_DIR / "elements.js").is_file()
    if not installed:  # the login page says how to install them
        log.info("not serving %s: hanko-elements is not installed (npm ci)", ELEMENTS_ROUTE)
    elif elements_url is None:
        elements_url = ELEMENTS_ROUTE + "elements.js"
    elements = [(ELEMENTS_ROUTE + "(.*)", tornado.web.StaticFileHandler, {"path": str(ELEMENTS_DIR)})]
    pages = {"elements_url": elements_url}
    app = tornado.web.Application(
        [
            (r"/", RootHandler),
            (r"/protected", ProtectedHandler),
            (r"/protected/recent-passkey", RecentPasskeyHandler, {"requirement": passkey & max_age(step_up_max_age)}),
            (r"/protected/me", MeHandler),
            (r"/protected/sessions", SessionsHandler),
            (r"/protected/admin", AdminOnlyHandler),
            (r"/ws", EchoSocket),
            (r"/app", AppPage, pages),
            (r"/login", LoginPage, {**pages, "dev_token": dev_token}),
            *(elements if installed else []),
            (r"/webhooks/hanko", HankoAdminWebhookHandler),  # authenticated by the token each webhook carries
            *operator_routes(hanko, admin),  # /healthz, /readyz, /metrics
            *(routes or []),
        ],
        default_handler_class=NotFoundHandler,
        hanko=hanko,
        cors=cors,
        cross_origin_protection=cross_origin_protection,
        login_url="/login",
        template_path=str(HERE / "templates"),
        **({"hanko_admin": admin} if admin is not None else {}),
    )
    if admin is not None:
        webhook_health_for(app)  # hanko_webhook_enabled in the metrics from the first scrape
    return app


if __name__ == "__main__":
    sys.exit(main(make_app, description=(__doc__ or "").splitlines()[0]))
