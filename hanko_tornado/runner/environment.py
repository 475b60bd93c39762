"""server.py's settings, from its command line, the environment and ``.env``; every value checked at start-up.

The environment wins over ``.env``, which needs python-dotenv (the ``server``
extra).  :meth:`ServerSettings.from_env` raises :class:`ConfigurationError`
naming the first setting that is wrong, which server.py prints as one line.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys

from hanko_tornado.admin import HankoAdminSettings
from hanko_tornado.cache import MIN_SECRET_LENGTH
from hanko_tornado.cors import CorsSettings
from hanko_tornado.errors import ConfigurationError
from hanko_tornado.runner.dev import DevStandIn
from hanko_tornado.runner.options import ServeOptions
from hanko_tornado.settings import HankoSettings

__all__ = ["ServerSettings", "load_env_file", "parse_args"]


@dataclasses.dataclass(frozen=True)
class ServerSettings:
    """Everything server.py reads before it serves: where, how many processes, the application's settings."""

    host: str
    port: int
    #: Worker processes on one port: 1 serves in this process, 0 one per core.
    processes: int
    log_level: str
    log_format: str
    options: ServeOptions
    hanko: HankoSettings
    cors: CorsSettings
    admin: HankoAdminSettings | None
    cross_origin_protection: bool
    step_up_max_age: int
    elements_url: str | None
    #: ``HANKO_KEYS_FILE``: where a sealed copy of the key set outlives the processes (never in dev mode).
    keys_file: str | None
    #: ``--dev``: the embedded stand-in for Hanko that the application mounts and trusts.
    dev: DevStandIn | None

    @classmethod
    def from_env(cls, args: argparse.Namespace) -> ServerSettings:
        """The settings from ``args`` (:func:`parse_args`) and ``os.environ``.

        :raises ConfigurationError: naming the first setting that is wrong.
        """
        level = os.environ.get("LOG_LEVEL", "INFO").upper()
        if not isinstance(logging.getLevelName(level), int):
            raise ConfigurationError("LOG_LEVEL", f"must be DEBUG, INFO, WARNING or ERROR, got {level!r}")
        log_format = os.environ.get("LOG_FORMAT", "text").strip().lower()
        if log_format not in ("text", "json"):
            raise ConfigurationError("LOG_FORMAT", f"must be text or json, got {log_format!r}")
        port = port_number(*(("PORT", os.environ.get("PORT", "8000")) if args.port is None else ("--port", args.port)))
        if args.processes < 0:
            raise ConfigurationError("--processes", f"must be 0 (one per core) or more, got {args.processes}")
        cors, protection, options = _cors(), _cross_origin_protection(), ServeOptions.from_env()
        step_up_max_age, elements_url = _step_up_max_age(), _elements_url()
        dev = DevStandIn.start(args.host, port, args.processes) if args.dev else None
        hanko = dev.hanko if dev else HankoSettings.from_env()
        return cls(
            host=args.host,
            port=port,
            processes=args.processes,
            log_level=level,
            log_format=log_format,
            options=options,
            hanko=hanko,
            cors=cors,
            admin=dev.admin if dev else HankoAdminSettings.from_env(),
            cross_origin_protection=protection,
            step_up_max_age=step_up_max_age,
            elements_url=elements_url,
            keys_file=None if dev else _keys_file(hanko),
            dev=dev,
        )


def parse_args(argv: list[str] | None, description: str) -> argparse.Namespace:
    """server.py's options (``argv``: ``sys.argv[1:]`` by default); argparse exits 2 on a wrong one."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"), help="address to bind (HOST)")
    parser.add_argument("--port", help="port (PORT, default 8000)")
    parser.add_argument("--processes", type=int, default=1, help="worker processes on one port (0 = one per core)")
    parser.add_argument(
        "--dev", action="store_true", help="serve an embedded stand-in for Hanko that issues its own tokens"
    )
    return parser.parse_args(argv)


def load_env_file(program: str) -> None:
    """Read this folder's ``.env`` into the environment (the environment wins) when python-dotenv is installed."""
    try:
        from dotenv import load_dotenv
    except ImportError:  # a plain `pip install hanko-tornado`: the environment alone
        if os.path.exists(".env"):
            print(
                f"{program}: .env not read (python-dotenv is not installed: pip install 'hanko-tornado[server]'); "
                "using the environment alone",
                file=sys.stderr,
            )
        return
    load_dotenv(".env", override=False)  # this folder's only: a .env in a parent folder is someone else's


def port_number(setting: str, raw: str) -> int:
    """``raw`` as a port to listen on: 1 to 65535 (0 would listen on a port the logs and dev keys do not name)."""
    raw = raw.strip()
    if not (raw.isascii() and raw.isdigit()) or not 0 < int(raw) < 65536:
        raise ConfigurationError(setting, f"must be a port number from 1 to 65535, got {raw!r}")
    return int(raw)


def _cross_origin_protection() -> bool:
    raw = os.environ.get("CROSS_ORIGIN_PROTECTION", "true").strip().lower()
    if raw not in ("true", "false"):
        raise ConfigurationError("CROSS_ORIGIN_PROTECTION", f"must be true or false, got {raw!r}")
    return raw == "true"


def _step_up_max_age() -> int:
    raw = os.environ.get("HANKO_STEP_UP_MAX_AGE", "").strip() or "600"
    if not (raw.isascii() and raw.isdigit()) or int(raw) < 1:
        raise ConfigurationError(
            "HANKO_STEP_UP_MAX_AGE", f"must be a whole number of seconds of at least 1, got {raw!r}"
        )
    return int(raw)


def _elements_url() -> str | None:
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


def _cors() -> CorsSettings:
    origins = os.environ.get("CORS_ORIGINS", "http://localhost:3000")
    try:
        return CorsSettings(origins=tuple(o.strip() for o in origins.split(",") if o.strip()))
    except ConfigurationError as error:
        raise ConfigurationError("CORS_ORIGINS", error.problem) from None


def _keys_file(hanko: HankoSettings) -> str | None:
    """``HANKO_KEYS_FILE``: where a sealed copy of the key set outlives the processes; it needs the cache secret."""
    path = os.environ.get("HANKO_KEYS_FILE", "").strip()
    if not path:
        return None
    if len(hanko.cache_secret or "") < MIN_SECRET_LENGTH:
        raise ConfigurationError(
            "HANKO_KEYS_FILE", f"needs HANKO_CACHE_SECRET ({MIN_SECRET_LENGTH} characters or more) to seal the copy"
        )
    return path
