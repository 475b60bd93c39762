"""An example API protected by Hanko: `/` is open; `/protected` (GET, POST) and the `/ws` socket need a session;
`/protected/recent-passkey` (GET, POST) needs a passkey login of the last ``HANKO_STEP_UP_MAX_AGE`` seconds.

Pages (`/app`, and `/login` with Hanko's ``<hanko-auth>``): server_pages.py.  Routes on Hanko's admin API
(`/protected/me`, `/protected/sessions`, `/protected/admin`): server_admin.py.

Configured from the environment and ``.env`` (see ``.env.example``); ``--dev`` runs with an embedded stand-in
for Hanko; ``python server.py --help`` lists the options.  Running it, and `/healthz`, `/readyz` and `/metrics`
for operators: :mod:`hanko_tornado.runner`.
"""

from __future__ import annotations

import pathlib
import sys
from typing import Any

import tornado.web
import tornado.websocket

from hanko_tornado import CorsHandler, CorsSettings, HankoAuthMixin, HankoSettings, HankoWebSocketMixin
from hanko_tornado.admin import HankoAdminSettings, HankoAdminWebhookHandler, webhook_health_for
from hanko_tornado.requirements import Requirement, max_age, passkey
from hanko_tornado.runner.command import main
from hanko_tornado.runner.operator_routes import metrics_when_installed, operator_routes
from server_admin import admin_routes
from server_pages import page_routes

HERE = pathlib.Path(__file__).resolve().parent
#: Where `npm ci` puts Hanko's web components (package.json pins the version); the pages serve them.
ELEMENTS_DIR = HERE / "node_modules" / "@teamhanko" / "hanko-elements" / "dist"


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
    app = tornado.web.Application(
        [
            (r"/", RootHandler),
            (r"/protected", ProtectedHandler),
            (r"/protected/recent-passkey", RecentPasskeyHandler, {"requirement": passkey & max_age(step_up_max_age)}),
            (r"/ws", EchoSocket),
            (r"/webhooks/hanko", HankoAdminWebhookHandler),  # authenticated by the token each webhook carries
            *admin_routes(),  # /protected/me, /protected/sessions, /protected/admin
            *page_routes(ELEMENTS_DIR, elements_url, dev_token),  # /app, /login
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
