"""An example API protected by Hanko: `/` is open; `/protected` (GET, POST) and the `/ws` socket need a session;
`/protected/recent-passkey` (GET, POST) needs a passkey login of the last ``HANKO_STEP_UP_MAX_AGE`` seconds.

Pages: `/app` greets a logged-in user (a browser with no valid session is sent to `/login`), `/login` hosts
Hanko's ``<hanko-auth>`` element, from ``node_modules`` (``npm ci``) or ``HANKO_ELEMENTS_URL``.

For operators: `/healthz` (liveness), `/readyz` (readiness: 503 until Hanko's keys are loaded) and, when
prometheus_client is installed (unless HANKO_METRICS=false), `/metrics`.

Configured from the environment and ``.env`` (the environment wins; ``.env``
needs python-dotenv, the ``server`` extra); see ``.env.example``.  ``--dev``
runs with an embedded stand-in for Hanko instead.  ``python server.py --help``
lists the options.  SIGTERM or SIGINT stops it gracefully: no new connections,
requests in flight get ``SHUTDOWN_GRACE_SECONDS`` to finish.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import os
import pathlib
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import tornado.httpserver
import tornado.httputil
import tornado.netutil
import tornado.process
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
from hanko_tornado.cache import close_cache
from hanko_tornado.health import LivenessHandler, ReadinessHandler
from hanko_tornado.json_logs import log_as_json, log_requests_as_json
from hanko_tornado.metrics import INSTALL_HINT, MetricsHandler, metrics_available, registry_for
from hanko_tornado.pages import HankoPageMixin, safe_next_url
from hanko_tornado.requirements import Requirement, max_age, passkey
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
            (r"/readyz", AdminReadinessHandler if admin is not None else ReadinessHandler),
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


def grace_from_env() -> float:
    """Seconds requests in flight get to finish once the server is told to stop (default 10)."""
    raw = os.environ.get("SHUTDOWN_GRACE_SECONDS", "10").strip()
    try:
        grace = float(raw)
    except ValueError:
        grace = -1.0
    if not 0 <= grace <= 3600:
        raise ConfigurationError("SHUTDOWN_GRACE_SECONDS", f"must be a number of seconds from 0 to 3600, got {raw!r}")
    return grace


def fork_workers(count: int) -> int | None:
    """Fork ``count`` workers (0: one per core) with Tornado's ``fork_processes``.

    A worker that dies (a signal, a non-zero exit) is restarted and the
    restart logged, up to ``MAX_RESTARTS`` times; one that exits 0 is not.

    Returns, in each worker, a file descriptor that becomes readable when the
    worker is to stop (``None`` when that is already so); in the parent,
    ``None`` once every worker has ended.  The parent holds the pipe's other
    end and closes it on SIGINT or SIGTERM, and the kernel closes it when the
    parent dies, even by SIGKILL: so stopping the parent stops every worker,
    one forked a moment before included (``fork_processes`` keeps its
    children's pids to itself, so a forwarded signal could miss it).

    :raises SystemExit: (status 1) in the parent, once workers died more than
        ``MAX_RESTARTS`` times and the others have stopped.
    """
    lifeline, parent_end = os.pipe()
    stopping = False

    def stop(signum: int, frame: Any) -> None:
        nonlocal stopping
        if not stopping:
            stopping = True
            os.close(parent_end)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, stop)
    try:
        tornado.process.fork_processes(count, max_restarts=MAX_RESTARTS)
    except SystemExit:  # the parent, once every worker has exited normally
        return None
    except RuntimeError as error:  # the parent: too many restarts
        log.error("%s: stopping the other workers", error)
        stop(signal.SIGTERM, None)
        with contextlib.suppress(ChildProcessError):
            while True:
                os.wait()
        raise SystemExit(1) from None
    # A worker: its handlers come with serve()'s event loop.  A signal that came before ran stop() here.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if stopping:
        return None
    os.close(parent_end)  # the worker's copy would keep the pipe open after the parent's end closes
    return lifeline


class GracefulHTTPServer(tornado.httpserver.HTTPServer):
    """An ``HTTPServer`` that, after ``stop()``, can wait for the requests it is answering.

    A connection is answering from the moment a request's headers arrive until
    its answer is sent; a keep-alive connection waiting for its next request
    is not.
    """

    def initialize(self, *args: Any, **kwargs: Any) -> None:
        super().initialize(*args, **kwargs)
        self._answering: set[object] = set()
        self._all_answered = asyncio.Event()
        self._all_answered.set()

    @property
    def requests_in_flight(self) -> int:
        """Requests whose headers arrived and whose answer is not sent yet."""
        return len(self._answering)

    async def wait_for_requests(self, timeout: float) -> int:
        """Wait up to ``timeout`` seconds until no request is in flight; the number still in flight."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._all_answered.wait(), timeout)
        return self.requests_in_flight

    def start_request(
        self, server_conn: object, request_conn: tornado.httputil.HTTPConnection
    ) -> tornado.httputil.HTTPMessageDelegate:
        self._answered(server_conn)  # Tornado starts a connection's next request once the last one is answered
        return _OnHeaders(super().start_request(server_conn, request_conn), lambda: self._answering_on(server_conn))

    def on_close(self, server_conn: object) -> None:
        self._answered(server_conn)
        super().on_close(server_conn)

    def _answering_on(self, server_conn: object) -> None:
        self._answering.add(server_conn)
        self._all_answered.clear()

    def _answered(self, server_conn: object) -> None:
        self._answering.discard(server_conn)
        if not self._answering:
            self._all_answered.set()


class _OnHeaders(tornado.httputil.HTTPMessageDelegate):
    """Passes a request on to ``delegate``, calling ``callback`` when its headers arrive."""

    def __init__(self, delegate: tornado.httputil.HTTPMessageDelegate, callback: Callable[[], None]) -> None:
        self.delegate = delegate
        self.callback = callback

    def headers_received(
        self,
        start_line: tornado.httputil.RequestStartLine | tornado.httputil.ResponseStartLine,
        headers: tornado.httputil.HTTPHeaders,
    ) -> Awaitable[None] | None:
        self.callback()
        return self.delegate.headers_received(start_line, headers)

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        return self.delegate.data_received(chunk)

    def finish(self) -> None:
        self.delegate.finish()

    def on_connection_close(self) -> None:
        self.delegate.on_connection_close()


async def serve(
    app: tornado.web.Application, sockets: list[socket.socket], where: str, grace: float, lifeline: int | None = None
) -> None:
    """Serve ``app`` until SIGINT, SIGTERM or ``lifeline`` becomes readable, then stop gracefully.

    Stopping: no new connections; requests in flight get ``grace`` seconds to
    finish; then every connection is closed, and the verifier and the cache.
    """
    server = GracefulHTTPServer(app)
    server.add_sockets(sockets)
    verifier = verifier_for(app)
    log.info("serving on %s (keys from %s)", where, verifier.settings.jwks_url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    if lifeline is not None:

        def parent_stopped() -> None:  # the pipe's end of file: the parent stopped or died
            loop.remove_reader(lifeline)
            stop.set()

        loop.add_reader(lifeline, parent_stopped)
    await verifier.key_store.refresh()
    await stop.wait()
    server.stop()
    log.info(
        "shutting down: no new connections; %d request(s) in flight get up to %g s to finish",
        server.requests_in_flight,
        grace,
    )
    unfinished = await server.wait_for_requests(grace)
    if unfinished:
        log.warning("%d request(s) still in flight after %g s: closing their connections", unfinished, grace)
    await server.close_all_connections()
    await verifier.close()
    await close_admin(app)
    if verifier.settings.cache is not None:
        await close_cache(verifier.settings.cache)
    log.info("stopped")


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
        cors, protection, grace = cors_from_env(), protection_from_env(), grace_from_env()
        step_up_max_age = step_up_max_age_from_env()
        elements_url = elements_url_from_env()
        if args.dev:
            hanko, routes, token = dev_setup(args)
            admin: HankoAdminSettings | None = HankoAdminSettings(api_url=f"{hanko.api_url}/admin")
        else:
            hanko, routes = HankoSettings.from_env(), []
            admin = HankoAdminSettings.from_env()
    except ConfigurationError as error:
        print(f"server.py: {error}", file=sys.stderr)
        return 2
    if log_format == "json":  # one JSON object per line, for log pipelines
        log_as_json(level)
    else:
        logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        sockets = tornado.netutil.bind_sockets(args.port, args.host)
    except OSError as error:
        print(f"server.py: cannot listen on {args.host}:{args.port}: {error.strerror}", file=sys.stderr)
        return 2
    lifeline = None
    if args.processes != 1:
        lifeline = fork_workers(args.processes)
        if lifeline is None:  # the parent once every worker has ended, or a worker stopped before it began
            for sock in sockets:
                sock.close()
            return 0
    if args.dev:
        print_dev_banner(args, token)
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
    asyncio.run(serve(app, sockets, f"http://{args.host}:{args.port}", grace, lifeline))
    return 0


if __name__ == "__main__":
    sys.exit(main())
