"""``python -m hanko_tornado.testing --port N``: a FakeHanko on its own, for any language's tests.

It serves Hanko's public routes (``/.well-known/jwks.json``,
``/sessions/validate``, the admin API under ``/admin``) and the control
endpoints of :mod:`hanko_tornado.testing.control` on ``127.0.0.1`` only, then
prints ``HANKO_API_URL=http://127.0.0.1:N`` as its first line on stdout (with
``--mint``, ``HANKO_TOKEN=...`` next: a token of a fake, minted for the test
that asked), and runs until SIGINT or SIGTERM (exit 0). A frontend's
end-to-end test starts it, reads that line, points the API under test at it
and mints tokens with ``POST /_fake/tokens``::

    python -m hanko_tornado.testing --port 8001 --audience localhost --webhook http://127.0.0.1:8000/webhooks/hanko
    curl -s -X POST -H 'Content-Type: application/json' -d '{"email": "ada@example.com"}' \\
        http://127.0.0.1:8001/_fake/tokens
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import urllib.parse
from collections.abc import Sequence

from hanko_tornado.settings import is_loopback_host
from hanko_tornado.testing.control import control_routes
from hanko_tornado.testing.fake import FakeHanko
from hanko_tornado.testing.tenant import HANKO_DEFAULT_CORS_ORIGINS

__all__ = ["main", "parser"]

_LOOPBACK_NAMES = ("127.0.0.1", "localhost")


def parser() -> argparse.ArgumentParser:
    """The command line of ``python -m hanko_tornado.testing``."""
    arguments = argparse.ArgumentParser(
        prog="python -m hanko_tornado.testing",
        description="A stand-in Hanko tenant on loopback for tests: keys, sessions, minted tokens, webhooks.",
    )
    arguments.add_argument("--port", type=int, default=0, help="the port on 127.0.0.1 (default: a free one)")
    arguments.add_argument("--host", default="127.0.0.1", help="loopback only: 127.0.0.1 or localhost")
    arguments.add_argument("--path", default="", help="a tenant path prefix, such as /tenant-1")
    arguments.add_argument(
        "--audience", action="append", help="the aud of minted tokens (repeat for several; default: localhost)"
    )
    arguments.add_argument("--issuer", help="the iss of minted tokens (default: none, as Hanko Cloud)")
    arguments.add_argument("--key-size", type=int, choices=(2048, 3072, 4096), default=4096, help="RSA key size")
    arguments.add_argument("--idle-timeout", type=float, help="seconds a session may go unused (default: none)")
    arguments.add_argument("--session-limit", type=int, default=5, help="live sessions per user (default: 5)")
    arguments.add_argument("--cookie-name", default="hanko", help="the cookie /sessions/validate reads")
    arguments.add_argument(
        "--webhook", action="append", default=[], metavar="URL", help="post Hanko's session and user events here"
    )
    arguments.add_argument(
        "--cors-origin",
        action="append",
        metavar="ORIGIN",
        help="a frontend origin that may call with credentials, as Hanko's CORS allows (repeat for several; "
        "default: http://localhost:8888, Hanko's own)",
    )
    arguments.add_argument("--mint", action="store_true", help="print HANKO_TOKEN=<a session token> after the URL")
    return arguments


def _problem(options: argparse.Namespace) -> str | None:
    """What is wrong with the options, in one line, or ``None``."""
    if options.host not in _LOOPBACK_NAMES:
        return f"--host {options.host!r}: the fake serves loopback only (127.0.0.1 or localhost)"
    if not 0 <= options.port <= 65535:
        return f"--port {options.port}: not a port (0 to 65535; 0 for a free one)"
    if options.session_limit < 1:
        return "--session-limit: at least 1"
    if options.idle_timeout is not None and not options.idle_timeout > 0:
        return "--idle-timeout: a number of seconds above 0"
    for url in options.webhook:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not is_loopback_host(parts.hostname or ""):
            return f"--webhook {url!r}: an http(s) URL on loopback (127.0.0.1, ::1 or localhost)"
    if options.path and not options.path.startswith("/"):
        return f"--path {options.path!r}: starts with /"
    for origin in options.cors_origin or ():
        parts = urllib.parse.urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.netloc or f"{parts.scheme}://{parts.netloc}" != origin:
            return f"--cors-origin {origin!r}: an origin, scheme://host[:port] with no path (http://localhost:3000)"
    return None


async def serve(options: argparse.Namespace) -> None:
    """Run a FakeHanko as ``options`` say until SIGINT or SIGTERM."""
    hanko = FakeHanko(
        key_size=options.key_size,
        audience=options.audience or ("localhost",),
        issuer=options.issuer,
        path=options.path,
        idle_timeout=options.idle_timeout,
        cookie_name=options.cookie_name,
        session_limit=options.session_limit,
        port=options.port,
        cors_origins=tuple(options.cors_origin or HANKO_DEFAULT_CORS_ORIGINS),
    )
    for url in options.webhook:
        hanko.register_webhook(url)
    hanko.start(control_routes(hanko))
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopped.set)
    print(f"HANKO_API_URL={hanko.api_url}")
    if options.mint:
        print(f"HANKO_TOKEN={hanko.mint()}")
    sys.stdout.flush()
    print(f"FakeHanko on {hanko.api_url}: POST /_fake/tokens mints a token; Ctrl-C stops it", file=sys.stderr)
    await stopped.wait()
    await hanko.stop()  # webhooks still under way are dropped: a test's receiver may be gone already


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and serve; 2 with a one-line error for bad options or a port in use."""
    options = parser().parse_args(argv)
    problem = _problem(options)
    if problem is not None:
        print(f"python -m hanko_tornado.testing: {problem}", file=sys.stderr)
        return 2
    try:
        asyncio.run(serve(options))
    except OSError as error:  # the port is taken, say
        print(
            f"python -m hanko_tornado.testing: cannot serve on port {options.port}: {error.strerror}", file=sys.stderr
        )
        return 2
    return 0
