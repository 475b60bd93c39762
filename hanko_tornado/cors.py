"""CORS for an API that a browser calls with credentials from another origin."""

from __future__ import annotations

import dataclasses
import functools
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import tornado.web

from hanko_tornado.errors import ConfigurationError, CrossOriginRequestError, write_json_error

__all__ = [
    "CorsHandler",
    "CorsSettings",
    "TolerantOriginCheck",
    "cors_settings_of",
    "origin_matches_host",
]

_CROSS_ORIGIN_MESSAGE = CrossOriginRequestError().message


def _normalize_origin(origin: str) -> str:
    if origin == "*":
        return origin
    parts = urlsplit(origin.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/") or parts.query:
        raise ConfigurationError("cors origins", f"{origin!r} is not an origin like https://app.example.com")
    return f"{parts.scheme}://{parts.netloc}".lower()


@dataclasses.dataclass(frozen=True)
class CorsSettings:
    """Which origins may call the API from a browser, and with what.

    Pass it to the application as ``cors=CorsSettings(origins=[...])``.

    :param origins: the allowed origins, exactly as browsers send them
        (``https://app.example.com``); ``"*"`` only without credentials.  ``"*"`` lets any page read
        answers, and trusts no origin: only origins listed by name may send cookie-authenticated unsafe
        requests, pass Tornado's ``cross_origin_protection`` or open a WebSocket.
    :param allow_credentials: let the browser send cookies and read the answer.
    :raises ConfigurationError: for an origin that is not one, or ``"*"`` with credentials.
    """

    origins: tuple[str, ...] = ()
    allow_credentials: bool = True
    allow_headers: tuple[str, ...] = ("Authorization", "Content-Type")
    expose_headers: tuple[str, ...] = ("WWW-Authenticate", "Retry-After")
    max_age: int = 600

    def __post_init__(self) -> None:
        origins = frozenset(_normalize_origin(o) for o in self.origins)
        if "*" in origins and self.allow_credentials:
            raise ConfigurationError("cors origins", "'*' cannot be combined with credentials: list the exact origins")
        object.__setattr__(self, "origins", tuple(sorted(origins)))

    @functools.cached_property
    def _allowed(self) -> frozenset[str]:
        return frozenset(self.origins)

    def is_allowed_origin(self, origin: str) -> bool:
        """Whether a request from ``origin`` may read the answer (``"*"`` allows every origin)."""
        return "*" in self._allowed or origin.lower() in self._allowed

    def is_trusted_origin(self, origin: str) -> bool:
        """Whether ``origin`` is listed by name: it may act with the browser's cookie, which ``"*"`` never grants.

        The browser sends the cookie whatever ``allow_credentials`` says: a wildcard that trusted every
        origin would let any page post with the user's session.
        """
        return origin.lower() in self._allowed and origin != "*"

    @functools.cached_property
    def simple_headers(self) -> dict[str, str]:
        """Headers for every answer to an allowed origin, besides the origin itself."""
        headers = {"Access-Control-Expose-Headers": ", ".join(self.expose_headers)}
        if self.allow_credentials:
            headers["Access-Control-Allow-Credentials"] = "true"
        return headers

    @functools.cached_property
    def preflight_headers(self) -> dict[str, str]:
        """Headers for a preflight answer to an allowed origin, besides the methods."""
        return {
            "Access-Control-Allow-Headers": ", ".join(self.allow_headers),
            "Access-Control-Max-Age": str(self.max_age),
        }


_NO_CORS = CorsSettings()


_METHODS: dict[type[tornado.web.RequestHandler], str] = {}


def _implemented_methods(handler_class: type[tornado.web.RequestHandler]) -> str:
    if handler_class in _METHODS:
        return _METHODS[handler_class]
    methods = [
        method
        for method in handler_class.SUPPORTED_METHODS
        if getattr(handler_class, method.lower(), None) is not getattr(tornado.web.RequestHandler, method.lower())
    ]
    _METHODS[handler_class] = ", ".join(sorted(set(methods) | {"OPTIONS"}))
    return _METHODS[handler_class]


def origin_matches_host(origin: str, host: str) -> bool:
    """Whether ``origin``'s host and port are the request's ``Host``, as Tornado compares them.

    ``False`` for an Origin that is not a URL at all.
    """
    try:
        return urlsplit(origin).netloc.lower() == host.lower() != ""
    except ValueError:  # an unparseable Origin, such as "http://[" (urlsplit raises on it)
        return False


def cors_settings_of(handler: tornado.web.RequestHandler) -> CorsSettings:
    """The handler's CORS settings: its ``get_cors_settings()``, else the application's ``cors`` setting."""
    get_cors_settings = getattr(handler, "get_cors_settings", None)
    cors = get_cors_settings() if get_cors_settings is not None else handler.settings.get("cors", _NO_CORS)
    if not isinstance(cors, CorsSettings):
        raise TypeError("the 'cors' setting must be a CorsSettings")
    return cors


if TYPE_CHECKING:
    _Handler = tornado.web.RequestHandler
else:
    _Handler = object


class TolerantOriginCheck(_Handler):
    """Tornado's same-origin test for ``cross_origin_protection`` and WebSocket handshakes, minus its 500.

    Tornado 6.6's own raises ``ValueError`` (a 500) on an ``Origin`` such as ``"http://["``: a client's
    garbage is a 403.  A base of :class:`CorsHandler` and of the auth mixins.
    """

    def _origin_matches_host(self, origin: str) -> bool:
        return origin_matches_host(origin, self.request.headers.get("Host", ""))


class CorsHandler(TolerantOriginCheck, tornado.web.RequestHandler):
    """A base handler that sets CORS headers on every answer and answers preflights.

    The headers are set in ``set_default_headers``, so error answers (401,
    503, 500) carry them too and the browser lets the page read them.  The
    request's ``Origin`` is echoed only when it is allowed, always with
    ``Vary: Origin``.  ``OPTIONS`` is answered with 204 and the methods the
    handler implements.  Origins come from ``cors=CorsSettings(...)`` in the
    application settings; without it no origin is allowed.

    With Tornado's ``cross_origin_protection`` on (6.6+), the allowed origins
    are also the trusted ones (besides the ``trusted_origins`` setting), and a
    refused request is answered 403 with JSON ``{"error": "cross_origin_request", ...}``.
    Every error is answered as JSON ``{"error": ..., "message": ...}``.
    """

    _refused_origin: str | None = None

    def get_cors_settings(self) -> CorsSettings:
        """The CORS settings; override to choose them per handler."""
        cors = self.settings.get("cors", _NO_CORS)
        assert isinstance(cors, CorsSettings), "the 'cors' setting must be a CorsSettings"
        return cors

    def check_trusted_origin(self, origin: str) -> bool:
        """Tornado's cross-origin protection: an origin the CORS settings list by name (never through ``"*"``),
        or one in ``trusted_origins``."""
        # Tornado's own default, read here too: it has no check_trusted_origin before 6.6.
        trusted = origin in self.settings.get("trusted_origins", ())
        if trusted or self.get_cors_settings().is_trusted_origin(origin):
            return True
        self._refused_origin = origin
        return False

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        if status_code == 403 and self._is_cross_origin_refusal(kwargs.get("exc_info")):
            write_json_error(self, "cross_origin_request", _CROSS_ORIGIN_MESSAGE)
        else:
            write_json_error(self)

    def _is_cross_origin_refusal(self, exc_info: Any) -> bool:
        exception = exc_info[1] if exc_info else None
        # Tornado refuses a cross-site request without an Origin before asking check_trusted_origin.
        refused_unasked = isinstance(exception, tornado.web.HTTPError) and str(exception.log_message).startswith(
            "Sec-Fetch-Site"
        )
        return self._refused_origin is not None or refused_unasked

    def allowed_origin(self) -> str | None:
        """The request's ``Origin`` when it is allowed, else ``None``."""
        origin = self.request.headers.get("Origin")
        return origin if origin and self.get_cors_settings().is_allowed_origin(origin) else None

    def set_default_headers(self) -> None:
        self.set_header("Vary", "Origin")
        origin = self.allowed_origin()
        if origin is not None:
            cors = self.get_cors_settings()
            self.set_header("Access-Control-Allow-Origin", "*" if "*" in cors.origins else origin)
            for name, value in cors.simple_headers.items():
                self.set_header(name, value)

    def options(self, *args: Any, **kwargs: Any) -> None:
        methods = _implemented_methods(type(self))
        self.set_header("Allow", methods)
        if self.allowed_origin() is not None and "Access-Control-Request-Method" in self.request.headers:
            self.set_header("Access-Control-Allow-Methods", methods)
            for name, value in self.get_cors_settings().preflight_headers.items():
                self.set_header(name, value)
        self.set_status(204)
        self.finish()
