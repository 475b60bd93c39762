"""An example API protected by Hanko: `/` is open; `/protected` (GET, POST) and the `/ws` socket need a session;
`/protected/recent-passkey` (GET, POST) needs a passkey login of the last ``HANKO_STEP_UP_MAX_AGE`` seconds.

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
)
from hanko_tornado.cache import MIN_SECRET_LENGTH
from hanko_tornado.health import LivenessHandler
from hanko_tornado.metrics import INSTALL_HINT, MetricsHandler, metrics_available, registry_for
from hanko_tornado.requirements import Requirement, max_age, passkey
from hanko_tornado.runner.graceful import StoppingReadinessHandler
from hanko_tornado.runner.keys_file import KeysFile
from hanko_tornado.runner.options import ServeOptions
from hanko_tornado.runner.serve import serve
from hanko_tornado.runner.supervisor import Supervisor, WorkerLink
from hanko_tornado.settings import is_loopback_host
from hanko_tornado.webhooks import HankoWebhookHandler
from hanko_tornado.websocket import HankoWebSocketMixin

log = logging.getLogger("server")

DEV_PREFIX = "/_dev/hanko"
#: Worker deaths that ``--processes`` restarts before the server gives up (stops the rest and exits 1).
MAX_RESTARTS = 100
#: The webhook route's body bound: HankoWebhookHandler refuses a body of more than 1 MiB.
WEBHOOK_MAX_BODY_SIZE = 1024 * 1024


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
) -> tornado.web.Application:
    """The example API, with any extra ``routes``; ``step_up_max_age`` seconds for /protected/recent-passkey.

    Tornado's cross-origin protection is on by default where it exists (6.6+; older versions ignore the
    setting); the mixin's own check on cookie-authenticated requests works either way.  With ``hanko.metrics``
    not set (``HANKO_METRICS`` unset), metrics are counted and served when prometheus_client is installed.
    """
    if hanko.metrics is None and metrics_available():
        hanko = dataclasses.replace(hanko, metrics=True)
    return tornado.web.Application(
        [
            (r"/", RootHandler),
            (r"/protected", ProtectedHandler),
            (r"/protected/recent-passkey", RecentPasskeyHandler, {"requirement": passkey & max_age(step_up_max_age)}),
            (r"/ws", EchoSocket),
            (r"/webhooks/hanko", HankoWebhookHandler),  # authenticated by the token each webhook carries
            (r"/healthz", LivenessHandler),
            (r"/readyz", StoppingReadinessHandler),  # 503 from the moment the process is told to stop
            *metrics_routes(hanko),
            *(routes or []),
        ],
        default_handler_class=NotFoundHandler,
        hanko=hanko,
        cors=cors,
        cross_origin_protection=cross_origin_protection,
    )


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
    return hanko, fake.routes(DEV_PREFIX), token


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
    args = parse_args(argv)
    try:
        if not isinstance(logging.getLevelName(level), int):
            raise ConfigurationError("LOG_LEVEL", f"must be DEBUG, INFO, WARNING or ERROR, got {level!r}")
        if args.port is None:
            args.port = port_number("PORT", os.environ.get("PORT", "8000"))
        else:
            args.port = port_number("--port", args.port)
        if args.processes < 0:
            raise ConfigurationError("--processes", f"must be 0 (one per core) or more, got {args.processes}")
        cors, protection, options = cors_from_env(), protection_from_env(), ServeOptions.from_env()
        step_up_max_age = step_up_max_age_from_env()
        if args.dev:
            hanko, routes, token = dev_setup(args)
        else:
            hanko, routes = HankoSettings.from_env(), []
        keys_path = None if args.dev else keys_file_path(hanko)
    except ConfigurationError as error:
        print(f"server.py: {error}", file=sys.stderr)
        return 2
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        sockets = tornado.netutil.bind_sockets(args.port, args.host)  # before forking: one queue for every worker
    except OSError as error:
        print(f"server.py: cannot listen on {args.host}:{args.port}: {error.strerror}", file=sys.stderr)
        return 2

    def run(link: WorkerLink | None, keys_file: KeysFile | None) -> int:
        app = make_app(hanko, cors, routes, cross_origin_protection=protection, step_up_max_age=step_up_max_age)
        limits = {"/webhooks/hanko": max(options.max_body_size, WEBHOOK_MAX_BODY_SIZE)}
        where = f"http://{args.host}:{args.port}"
        asyncio.run(serve(app, sockets, where, options, body_limits=limits, link=link, keys_file=keys_file))
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
