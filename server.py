"""An example API protected by Hanko: `/` is open; `/protected` (GET, POST) and the `/ws` socket need a session;
`/protected/recent-passkey` (GET, POST) needs a passkey login of the last ``HANKO_STEP_UP_MAX_AGE`` seconds.

Pages: `/app` greets a logged-in user (a browser with no valid session is sent to `/login`), `/login` hosts
Hanko's ``<hanko-auth>`` element, from ``node_modules`` (``npm ci``) or ``HANKO_ELEMENTS_URL``.

For operators: `/healthz` (liveness), `/readyz` (readiness: 503 until Hanko's keys are loaded) and, when
prometheus_client is installed (unless HANKO_METRICS=false), `/metrics`.

Configured from the environment and ``.env`` (the environment wins; ``.env``
needs python-dotenv, the ``server`` extra); see ``.env.example``.  ``--dev``
runs with an embedded stand-in for Hanko instead.  ``python server.py --help``
lists the options.  SIGTERM stops it without losing a request (README, "Deploying"):
``/readyz`` answers 503 at once, it serves ``SHUTDOWN_DELAY_SECONDS`` more, then
finishes what is in flight, all within ``SHUTDOWN_GRACE_SECONDS``; SIGINT skips
the delay.  With ``--processes``, SIGHUP replaces the workers one at a time.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import pathlib
import secrets
import shutil
import sys
import tempfile
from typing import Any

import tornado.netutil
import tornado.web
import tornado.websocket

from hanko_tornado import (
    ConfigurationError,
    CorsHandler,
    CorsSettings,
    HankoAuthMixin,
    HankoSettings,
    verifier_for,
)
from hanko_tornado.admin import (
    AdminReadinessHandler,
    HankoAdminError,
    HankoAdminSettings,
    HankoAdminWebhookHandler,
    admin_client_for,
    close_admin,
    log_out_everywhere,
    private_metadata_has,
    webhook_health_for,
)
from hanko_tornado.admin.settings import ADMIN_API_KEY_VARIABLE, ADMIN_API_URL_VARIABLE
from hanko_tornado.cache import MIN_SECRET_LENGTH
from hanko_tornado.health import LivenessHandler
from hanko_tornado.json_logs import log_as_json, log_requests_as_json
from hanko_tornado.metrics import INSTALL_HINT, metrics_available
from hanko_tornado.pages import HankoPageMixin, safe_next_url
from hanko_tornado.prometheus import MetricsHandler, registry_for
from hanko_tornado.requirements import Requirement, max_age, passkey
from hanko_tornado.runner.graceful import StoppingReadinessHandler
from hanko_tornado.runner.keys_file import KeysFile
from hanko_tornado.runner.options import ServeOptions
from hanko_tornado.runner.serve import serve
from hanko_tornado.runner.supervisor import Supervisor, WorkerLink
from hanko_tornado.settings import is_loopback_host
from hanko_tornado.websocket import HankoWebSocketMixin

log = logging.getLogger("server")

DEV_PREFIX = "/_dev/hanko"
HERE = pathlib.Path(__file__).resolve().parent
#: Where `npm ci` puts Hanko's web components (package.json pins the version); served at ELEMENTS_ROUTE.
ELEMENTS_DIR = HERE / "node_modules" / "@teamhanko" / "hanko-elements" / "dist"
ELEMENTS_ROUTE = "/static/hanko-elements/"
#: Worker deaths that ``--processes`` restarts before the server gives up (stops the rest and exits 1).
MAX_RESTARTS = 100
#: The webhook route's body bound: HankoWebhookHandler refuses a body of more than 1 MiB.
WEBHOOK_MAX_BODY_SIZE = 1024 * 1024


class StoppingAdminReadinessHandler(StoppingReadinessHandler, AdminReadinessHandler):
    """Readiness with Hanko's webhook state, answering 503 ``stopping`` once the process is told to stop."""


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
            self.finish(
                {
                    "error": "admin_api_not_configured",
                    "message": f"Set {ADMIN_API_URL_VARIABLE} (and {ADMIN_API_KEY_VARIABLE} on Hanko Cloud) "
                    "to use this route.",
                }
            )
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
        user = self.hanko_user
        ends = self.hanko_session.expires_at if self.hanko_session and self.hanko_session.expires_at else None
        self.render(
            "app.html",
            user=user,
            ends=ends or user.expires_at,
            elements_url=self.elements_url,
            hanko_api=verifier_for(self.application).settings.api_url,
            login_url=self.get_login_url(),
        )


class LoginPage(tornado.web.RequestHandler):
    """Hosts Hanko's ``<hanko-auth>``; once Hanko created a session, goes on to ``next`` (a path of this site only).

    In dev mode it also offers the stand-in's token as the ``hanko`` cookie.
    """

    def initialize(self, elements_url: str | None, dev_token: str | None) -> None:
        self.elements_url = elements_url
        self.dev_token = dev_token

    def get(self) -> None:
        own_origin = f"{self.request.protocol}://{self.request.host}"
        acr_values = self.get_argument("acr_values", "")
        max_age = self.get_argument("max_age", "")
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

    The login page loads Hanko's elements from ``elements_url``; by default from ``node_modules``, served by
    the application (none when they are not installed: the page says so).  ``dev_token``: offered as a cookie.

    Tornado's cross-origin protection is on by default where it exists (6.6+; older versions ignore the
    setting); the mixin's own check on cookie-authenticated requests works either way.  With ``hanko.metrics``
    not set (``HANKO_METRICS`` unset), metrics are counted and served when prometheus_client is installed.
    With ``admin`` settings, /protected/me, /protected/sessions and /protected/admin use Hanko's admin API
    (501 without), and readiness and metrics report whether Hanko still has the webhook switched on.
    """
    if hanko.metrics is None and metrics_available():
        hanko = dataclasses.replace(hanko, metrics=True)
    installed = (ELEMENTS_DIR / "elements.js").is_file()
    if elements_url is None and installed:
        elements_url = ELEMENTS_ROUTE + "elements.js"
    pages = {"elements_url": elements_url}
    admin_settings: dict[str, Any] = {"hanko_admin": admin} if admin is not None else {}
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
            *elements_routes(installed),
            (r"/webhooks/hanko", HankoAdminWebhookHandler),  # authenticated by the token each webhook carries
            (r"/healthz", LivenessHandler),
            (r"/readyz", StoppingAdminReadinessHandler if admin is not None else StoppingReadinessHandler),
            *metrics_routes(hanko),
            *(routes or []),
        ],
        default_handler_class=NotFoundHandler,
        hanko=hanko,
        cors=cors,
        cross_origin_protection=cross_origin_protection,
        login_url="/login",
        template_path=str(HERE / "templates"),
        **admin_settings,
    )
    if admin is not None:
        webhook_health_for(app)  # hanko_webhook_enabled in the metrics from the first scrape
    return app


def elements_routes(installed: bool) -> list[Any]:
    """Hanko's elements from node_modules when `npm ci` installed them (a pinned version: package-lock.json)."""
    if not installed:
        log.info("not serving %s: hanko-elements is not installed (npm ci)", ELEMENTS_ROUTE)
        return []
    return [(ELEMENTS_ROUTE + "(.*)", tornado.web.StaticFileHandler, {"path": str(ELEMENTS_DIR)})]


def metrics_routes(hanko: HankoSettings) -> list[Any]:
    """``/metrics`` when the settings count metrics; otherwise none, and one line at INFO says why."""
    if hanko.metrics is None or hanko.metrics is False:
        why = "HANKO_METRICS=false" if hanko.metrics is False else f"prometheus_client is not installed: {INSTALL_HINT}"
        log.info("not serving /metrics (%s)", why)
        return []
    return [(r"/metrics", MetricsHandler, {"registry": registry_for(hanko.metrics)})]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"), help="address to bind (HOST)")
    parser.add_argument("--port", help="port (PORT, default 8000)")
    parser.add_argument("--processes", type=int, default=1, help="worker processes on one port (0 = one per core)")
    parser.add_argument(
        "--dev", action="store_true", help="serve an embedded stand-in for Hanko that issues its own tokens"
    )
    return parser.parse_args(argv)


def port_number(setting: str, raw: str) -> int:
    """``raw`` as a port to listen on: 1 to 65535 (0 would listen on a port the logs and dev keys do not name)."""
    raw = raw.strip()
    if not (raw.isascii() and raw.isdigit()) or not 0 < int(raw) < 65536:
        raise ConfigurationError(setting, f"must be a port number from 1 to 65535, got {raw!r}")
    return int(raw)


def protection_from_env() -> bool:
    raw = os.environ.get("CROSS_ORIGIN_PROTECTION", "true").strip().lower()
    if raw not in ("true", "false"):
        raise ConfigurationError("CROSS_ORIGIN_PROTECTION", f"must be true or false, got {raw!r}")
    return raw == "true"


def step_up_max_age_from_env() -> int:
    raw = os.environ.get("HANKO_STEP_UP_MAX_AGE", "").strip() or "600"
    if not (raw.isascii() and raw.isdigit()) or int(raw) < 1:
        raise ConfigurationError(
            "HANKO_STEP_UP_MAX_AGE", f"must be a whole number of seconds of at least 1, got {raw!r}"
        )
    return int(raw)


def elements_url_from_env() -> str | None:
    """``HANKO_ELEMENTS_URL``: where the login page imports ``@teamhanko/hanko-elements`` from; unset, node_modules."""
    raw = os.environ.get("HANKO_ELEMENTS_URL", "").strip()
    if not raw:
        return None
    scheme = raw.split("://", 1)[0].lower() if "://" in raw else ""
    plain = raw.isascii() and not any(char <= " " or char in "\"'<>`" for char in raw)
    if not plain or not (scheme in ("http", "https") or (raw.startswith("/") and not raw.startswith("//"))):
        raise ConfigurationError(
            "HANKO_ELEMENTS_URL", f"must be an http(s) URL or a path such as /static/elements.js, got {raw!r}"
        )
    return raw


def cors_from_env() -> CorsSettings:
    origins = os.environ.get("CORS_ORIGINS", "http://localhost:3000")
    try:
        return CorsSettings(origins=tuple(o.strip() for o in origins.split(",") if o.strip()))
    except ConfigurationError as error:
        raise ConfigurationError("CORS_ORIGINS", error.problem) from None


def dev_setup(args: argparse.Namespace) -> tuple[HankoSettings, list[Any], str]:
    """Settings and routes for an embedded FakeHanko, and a token it issued."""
    if not is_loopback_host(args.host):
        raise ConfigurationError("--dev", "issues its own tokens, so it only runs on a loopback --host")
    if args.processes != 1:
        raise ConfigurationError("--dev", "runs one process: each would issue tokens with keys of its own")
    from hanko_tornado.testing import FakeHanko  # only dev mode needs the testing kit

    fake = FakeHanko(key_size=4096)
    url_host = f"[{args.host}]" if ":" in args.host else args.host
    hanko = HankoSettings(api_url=f"http://{url_host}:{args.port}{DEV_PREFIX}", audience=fake.audience)
    token = fake.mint("aaaaaaaa-0000-4000-8000-000000000014", lifetime=12 * 3600)
    fake.admin.add_user("aaaaaaaa-0000-4000-8000-000000000014", email="dev@example.com", private={"roles": ["admin"]})
    fake.admin.add_webhook(f"http://{url_host}:{args.port}/webhooks/hanko")  # its admin revocations reach us
    from hanko_tornado.testing.frontend import FakeFrontendApi  # the login flow <hanko-auth> runs, and logout

    return hanko, [*fake.routes(DEV_PREFIX), *FakeFrontendApi(fake).routes(DEV_PREFIX)], token


def print_dev_banner(args: argparse.Namespace, token: str) -> None:
    url = f"http://{args.host}:{args.port}/protected"
    print(
        "\n".join(
            [
                "=" * 72,
                "DEV MODE: keys and tokens come from an embedded stand-in for Hanko.",
                "Tokens are self-issued: never expose this server or use it in production.",
                "=" * 72,
                "Try the protected route with a bearer token:",
                f"  curl -H 'Authorization: Bearer {token}' {url}",
                "or with the hanko cookie:",
                f"  curl --cookie 'hanko={token}' {url}",
                f"or open http://{args.host}:{args.port}/app in a browser (the login page offers the token).",
                "",
            ]
        ),
        flush=True,
    )


def load_env_file() -> None:
    """Read this folder's ``.env`` into the environment (the environment wins) when python-dotenv is installed."""
    try:
        from dotenv import load_dotenv
    except ImportError:  # a plain `pip install hanko-tornado`: the environment alone
        if os.path.exists(".env"):
            print(
                "server.py: .env not read (python-dotenv is not installed: pip install 'hanko-tornado[server]'); "
                "using the environment alone",
                file=sys.stderr,
            )
        return
    load_dotenv(".env", override=False)  # this folder's only: a .env in a parent folder is someone else's


def keys_file_path(hanko: HankoSettings) -> str | None:
    """``HANKO_KEYS_FILE``: where a sealed copy of the key set outlives the processes; it needs the cache secret."""
    path = os.environ.get("HANKO_KEYS_FILE", "").strip()
    if not path:
        return None
    if len(hanko.cache_secret or "") < MIN_SECRET_LENGTH:
        raise ConfigurationError(
            "HANKO_KEYS_FILE", f"needs HANKO_CACHE_SECRET ({MIN_SECRET_LENGTH} characters or more) to seal the copy"
        )
    return path


def main(argv: list[str] | None = None) -> int:
    load_env_file()
    level = os.environ.get("LOG_LEVEL", "INFO").upper()
    log_format = os.environ.get("LOG_FORMAT", "text").strip().lower()
    args = parse_args(argv)
    try:
        if not isinstance(logging.getLevelName(level), int):
            raise ConfigurationError("LOG_LEVEL", f"must be DEBUG, INFO, WARNING or ERROR, got {level!r}")
        if log_format not in ("text", "json"):
            raise ConfigurationError("LOG_FORMAT", f"must be text or json, got {log_format!r}")
        if args.port is None:
            args.port = port_number("PORT", os.environ.get("PORT", "8000"))
        else:
            args.port = port_number("--port", args.port)
        if args.processes < 0:
            raise ConfigurationError("--processes", f"must be 0 (one per core) or more, got {args.processes}")
        cors, protection, options = cors_from_env(), protection_from_env(), ServeOptions.from_env()
        step_up_max_age = step_up_max_age_from_env()
        elements_url = elements_url_from_env()
        if args.dev:
            hanko, routes, token = dev_setup(args)
            admin: HankoAdminSettings | None = HankoAdminSettings(api_url=f"{hanko.api_url}/admin")
        else:
            hanko, routes = HankoSettings.from_env(), []
            admin = HankoAdminSettings.from_env()
        keys_path = None if args.dev else keys_file_path(hanko)
    except ConfigurationError as error:
        print(f"server.py: {error}", file=sys.stderr)
        return 2
    if log_format == "json":  # one JSON object per line, for log pipelines
        log_as_json(level)
    else:
        logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        sockets = tornado.netutil.bind_sockets(args.port, args.host)  # before forking: one queue for every worker
    except OSError as error:
        print(f"server.py: cannot listen on {args.host}:{args.port}: {error.strerror}", file=sys.stderr)
        return 2

    def run(link: WorkerLink | None, keys_file: KeysFile | None) -> int:
        app = make_app(
            hanko,
            cors,
            routes,
            cross_origin_protection=protection,
            step_up_max_age=step_up_max_age,
            elements_url=elements_url,
            dev_token=token if args.dev else None,
            admin=admin,
        )
        if log_format == "json":
            log_requests_as_json(app)
        limits = {"/webhooks/hanko": max(options.max_body_size, WEBHOOK_MAX_BODY_SIZE)}
        where = f"http://{args.host}:{args.port}"
        asyncio.run(
            serve(
                app,
                sockets,
                where,
                options,
                body_limits=limits,
                link=link,
                keys_file=keys_file,
                close=lambda: close_admin(app),
            )
        )
        return 0

    if args.processes == 1:
        if args.dev:
            print_dev_banner(args, token)
        return run(None, KeysFile(keys_path, hanko.cache_secret or "", hanko) if keys_path else None)
    # A worker started while Hanko's key endpoint fails starts from the key set its siblings hold: a copy
    # sealed under a secret only this process tree knows, in a folder only this user may read, by default.
    private_folder = None if keys_path else tempfile.mkdtemp(prefix=f"hanko-tornado-{os.getpid()}-")
    if keys_path:
        keys_file = KeysFile(keys_path, hanko.cache_secret or "", hanko)
    else:
        keys_file = KeysFile(os.path.join(private_folder or "", "keys"), secrets.token_urlsafe(32), hanko)
    try:
        count = args.processes or os.cpu_count() or 1
        return Supervisor(count, lambda link: run(link, keys_file), max_restarts=MAX_RESTARTS).run()
    finally:
        for sock in sockets:
            sock.close()
        if private_folder is not None:
            shutil.rmtree(private_folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
