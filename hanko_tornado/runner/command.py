"""``python server.py``: read the settings, listen, and serve in this process or in supervised workers.

:func:`main` is all server.py's ``__main__`` calls.  A setting that is wrong,
or a port it cannot listen on, is one line on stderr and exit status 2;
``--processes`` workers that keep dying, exit status 1 (see
:class:`~hanko_tornado.runner.supervisor.Supervisor`).  SIGTERM stops it
without losing a request (README, "Deploying"): ``/readyz`` answers 503 at
once, it serves ``SHUTDOWN_DELAY_SECONDS`` more, then finishes what is in
flight, all within ``SHUTDOWN_GRACE_SECONDS``; SIGINT skips the delay.  With
``--processes``, SIGHUP replaces the workers one at a time.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import shutil
import socket
import sys
import tempfile
from typing import Any, Protocol

import tornado.netutil
import tornado.web

from hanko_tornado.admin import HankoAdminSettings
from hanko_tornado.cors import CorsSettings
from hanko_tornado.errors import ConfigurationError
from hanko_tornado.json_logs import log_as_json, log_requests_as_json
from hanko_tornado.runner.environment import ServerSettings, load_env_file, parse_args
from hanko_tornado.runner.keys_file import KeysFile
from hanko_tornado.runner.serve import serve
from hanko_tornado.runner.supervisor import Supervisor, WorkerLink
from hanko_tornado.settings import HankoSettings

__all__ = ["AppFactory", "main"]

#: Worker deaths that ``--processes`` restarts before the server gives up (stops the rest and exits 1).
MAX_RESTARTS = 100
#: The webhook route's body bound: HankoWebhookHandler refuses a body of more than 1 MiB.
WEBHOOK_MAX_BODY_SIZE = 1024 * 1024


class AppFactory(Protocol):
    """server.py's ``make_app``: the application for these settings, with ``routes`` (the dev stand-in's) mounted."""

    def __call__(
        self,
        hanko: HankoSettings,
        cors: CorsSettings,
        routes: list[Any] | None = None,
        *,
        cross_origin_protection: bool = True,
        step_up_max_age: int = 600,
        elements_url: str | None = None,
        dev_token: str | None = None,
        admin: HankoAdminSettings | None = None,
    ) -> tornado.web.Application: ...


def main(make_app: AppFactory, argv: list[str] | None = None, *, description: str = "") -> int:
    """Serve ``make_app``'s application as server.py's options and environment say; the exit status.

    ``argv``: the options (``sys.argv[1:]`` by default); ``description``: the first line of ``--help``.
    """
    program = os.path.basename(sys.argv[0])
    load_env_file(program)
    args = parse_args(argv, description)
    try:
        settings = ServerSettings.from_env(args)
    except ConfigurationError as error:
        print(f"{program}: {error}", file=sys.stderr)
        return 2
    if settings.log_format == "json":  # one JSON object per line, for log pipelines
        log_as_json(settings.log_level)
    else:
        logging.basicConfig(level=settings.log_level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        sockets = tornado.netutil.bind_sockets(settings.port, settings.host)  # before forking: one queue for all
    except OSError as error:
        print(f"{program}: cannot listen on {settings.host}:{settings.port}: {error.strerror}", file=sys.stderr)
        return 2
    try:
        return _run(make_app, settings, sockets)
    finally:
        for sock in sockets:
            sock.close()


def _run(make_app: AppFactory, settings: ServerSettings, sockets: list[socket.socket]) -> int:
    """Serve in this process, or in ``settings.processes`` workers sharing one sealed copy of the key set."""
    hanko = settings.hanko
    if settings.processes == 1:
        if settings.dev is not None:
            settings.dev.print_banner(settings.host, settings.port)
        keys_file = KeysFile(settings.keys_file, hanko.cache_secret or "", hanko) if settings.keys_file else None
        return _serve_one(make_app, settings, sockets, None, keys_file)
    # A worker started while Hanko's key endpoint fails starts from the key set its siblings hold: a copy
    # sealed under a secret only this process tree knows, in a folder only this user may read, by default.
    private_folder = None if settings.keys_file else tempfile.mkdtemp(prefix=f"hanko-tornado-{os.getpid()}-")
    if settings.keys_file:
        keys_file = KeysFile(settings.keys_file, hanko.cache_secret or "", hanko)
    else:
        keys_file = KeysFile(os.path.join(private_folder or "", "keys"), secrets.token_urlsafe(32), hanko)
    try:
        count = settings.processes or os.cpu_count() or 1
        work = lambda link: _serve_one(make_app, settings, sockets, link, keys_file)  # noqa: E731
        return Supervisor(count, work, max_restarts=MAX_RESTARTS).run()
    finally:
        if private_folder is not None:
            shutil.rmtree(private_folder, ignore_errors=True)


def _serve_one(
    make_app: AppFactory,
    settings: ServerSettings,
    sockets: list[socket.socket],
    link: WorkerLink | None,
    keys_file: KeysFile | None,
) -> int:
    """One process's application, served until it is told to stop."""
    app = make_app(
        settings.hanko,
        settings.cors,
        settings.dev.routes if settings.dev else [],
        cross_origin_protection=settings.cross_origin_protection,
        step_up_max_age=settings.step_up_max_age,
        elements_url=settings.elements_url,
        dev_token=settings.dev.token if settings.dev else None,
        admin=settings.admin,
    )
    if settings.log_format == "json":
        log_requests_as_json(app)
    limits = {"/webhooks/hanko": max(settings.options.max_body_size, WEBHOOK_MAX_BODY_SIZE)}
    where = f"http://{settings.host}:{settings.port}"
    asyncio.run(serve(app, sockets, where, settings.options, body_limits=limits, link=link, keys_file=keys_file))
    return 0
