"""How server.py stops and bounds requests, from the environment; every value checked at start-up."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping

from hanko_tornado.errors import ConfigurationError

__all__ = ["ServeOptions"]


def _number(environ: Mapping[str, str], name: str, default: str, low: float, high: float, what: str) -> float:
    raw = environ.get(name, "").strip() or default
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not low <= value <= high:
        raise ConfigurationError(name, f"must be {what} from {low:g} to {high:g}, got {raw!r}")
    return value


def _bytes(environ: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = environ.get(name, "").strip() or str(default)
    if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
        raise ConfigurationError(name, f"must be a whole number of bytes from {low} to {high}, got {raw!r}")
    return int(raw)


@dataclasses.dataclass(frozen=True)
class ServeOptions:
    """The stop sequence and the request bounds (seconds and bytes); defaults fit Hanko's traffic.

    On SIGTERM: ``/readyz`` answers 503 at once while the server keeps serving for ``shutdown_delay``
    (every answer says ``Connection: close``); then it stops listening, lets the requests in flight finish,
    closes idle connections, and exits, all within ``shutdown_grace`` of the signal.
    """

    #: Seconds from the signal to the end of the stop, whatever is still in flight.
    shutdown_grace: float = 10.0
    #: Seconds the server keeps accepting after the signal, for load balancers to see ``/readyz`` fail.
    shutdown_delay: float = 5.0
    #: Bytes of a request's start line and headers (Hanko's cookie is about 1 KiB): more is 431.
    max_header_size: int = 16 * 1024
    #: Bytes of a request body on every route but the webhook's: more is 413, refused before it is read.
    max_body_size: int = 64 * 1024
    #: Seconds a connection may wait for its next request (and for a request's headers).
    idle_connection_timeout: float = 75.0
    #: Seconds a request's body may take to arrive.
    body_timeout: float = 30.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ServeOptions:
        """The options from ``environ`` (``os.environ`` by default); unset or empty means the default.

        :raises ConfigurationError: naming the variable that is wrong.
        """
        env = os.environ if environ is None else environ
        seconds = "a number of seconds"
        grace = _number(env, "SHUTDOWN_GRACE_SECONDS", "10", 0, 3600, seconds)
        delay = _number(env, "SHUTDOWN_DELAY_SECONDS", "5", 0, 3600, seconds)
        if delay > grace:
            raise ConfigurationError(
                "SHUTDOWN_DELAY_SECONDS", f"must not be more than SHUTDOWN_GRACE_SECONDS ({grace:g}), got {delay:g}"
            )
        return cls(
            shutdown_grace=grace,
            shutdown_delay=delay,
            max_header_size=_bytes(env, "MAX_HEADER_SIZE", cls.max_header_size, 1024, 1024 * 1024),
            max_body_size=_bytes(env, "MAX_BODY_SIZE", cls.max_body_size, 0, 1024 * 1024 * 1024),
            idle_connection_timeout=_number(env, "IDLE_CONNECTION_TIMEOUT", "75", 1, 86400, seconds),
            body_timeout=_number(env, "BODY_TIMEOUT", "30", 1, 3600, seconds),
        )
