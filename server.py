"""An example API protected by Hanko: ``GET /`` is open, ``GET /protected`` needs a session token.

Configured from the environment and ``.env`` (the environment wins); see
``.env.example``.  ``python server.py --help`` lists the options.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from typing import Any

import tornado.web
from dotenv import find_dotenv, load_dotenv

from hanko_tornado import (
    ConfigurationError,
    CorsHandler,
    CorsSettings,
    HankoAuthMixin,
    HankoSettings,
    verifier_for,
)

log = logging.getLogger("server")


class ApiHandler(CorsHandler):
    """Answers errors as JSON, like everything else the API says."""

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.finish({"error": self._reason.lower().replace(" ", "_"), "message": self._reason})


class RootHandler(ApiHandler):
    def get(self) -> None:
        self.write({"message": "Tornado x Hanko!"})


class ProtectedHandler(HankoAuthMixin, ApiHandler):
    def get(self) -> None:
        self.write({"message": "Hello from protected route!", "user_id": self.hanko_user.id})


def make_app(hanko: HankoSettings, cors: CorsSettings, **settings: Any) -> tornado.web.Application:
    """The example API."""
    return tornado.web.Application(
        [(r"/", RootHandler), (r"/protected", ProtectedHandler)],
        hanko=hanko,
        cors=cors,
        **settings,
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"), help="address to bind (HOST)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")), help="port (PORT)")
    return parser.parse_args(argv)


def load_settings() -> tuple[HankoSettings, CorsSettings]:
    origins = os.environ.get("CORS_ORIGINS", "http://localhost:3000")
    hanko = HankoSettings.from_env()
    try:
        cors = CorsSettings(origins=tuple(o.strip() for o in origins.split(",") if o.strip()))
    except ConfigurationError as error:
        raise ConfigurationError("CORS_ORIGINS", error.problem) from None
    return hanko, cors


async def serve(args: argparse.Namespace, hanko: HankoSettings, cors: CorsSettings) -> None:
    app = make_app(hanko, cors)
    server = app.listen(args.port, args.host, xheaders=False)
    log.info("serving on http://%s:%d (keys from %s)", args.host, args.port, hanko.jwks_url)
    verifier = verifier_for(app)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await verifier.key_store.refresh()
    await stop.wait()
    log.info("shutting down")
    server.stop()
    await server.close_all_connections()
    await verifier.close()


def main(argv: list[str] | None = None) -> int:
    load_dotenv(find_dotenv(usecwd=True), override=False)
    level = os.environ.get("LOG_LEVEL", "INFO").upper()
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    args = parse_args(argv)
    try:
        hanko, cors = load_settings()
    except ConfigurationError as error:
        print(f"server.py: {error}", file=sys.stderr)
        return 2
    asyncio.run(serve(args, hanko, cors))
    return 0


if __name__ == "__main__":
    sys.exit(main())
