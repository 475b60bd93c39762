"""FakeHanko's CORS, as Hanko's ``TenantAwareCORS`` middleware (echo's CORS with credentials) answers.

Every response carries ``Vary: Origin``.  A request from an allowed origin gets
that origin back with ``Access-Control-Allow-Credentials: true`` and the
headers Hanko exposes (``X-Auth-Token`` among them, as with
``session.enable_auth_token_header``); every ``OPTIONS`` request is a preflight,
answered 204 before any route, with the allowed methods, the requested headers
echoed and ``Access-Control-Max-Age: 7200`` (for an origin not allowed: 204
with no CORS headers).  An origin not allowed never gets ``*``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import tornado.web
from tornado.httputil import HTTPHeaders, HTTPServerRequest
from tornado.routing import Matcher, Rule

__all__ = ["cors_rules", "cors_transform"]

_ALLOW_METHODS = "GET,POST,PUT,PATCH,DELETE,OPTIONS"
_EXPOSE_HEADERS = ",".join(
    [
        "Retry-After",
        "X-RateLimit-Limit",
        "X-RateLimit-Remaining",
        "X-RateLimit-Reset",
        "X-Session-Lifetime",
        "X-Session-Retention",
        "X-Auth-Token",
    ]
)
_MAX_AGE = "7200"

Origins = Callable[[], tuple[str, ...]]


class _AnyOptions(Matcher):
    """Every ``OPTIONS`` request, whatever its path: echo's CORS answers preflights before routing."""

    def match(self, request: HTTPServerRequest) -> dict[str, Any] | None:
        return {} if request.method == "OPTIONS" else None


class PreflightHandler(tornado.web.RequestHandler):
    """``OPTIONS`` on any path: a CORS preflight, answered 204 (the transform adds the origin's headers)."""

    def initialize(self, origins: Origins) -> None:
        self.origins = origins

    def options(self, *_: str) -> None:
        if _allowed_origin(self.request, self.origins()) is not None:
            self.add_header("Vary", "Access-Control-Request-Method")
            self.add_header("Vary", "Access-Control-Request-Headers")
            self.set_header("Access-Control-Allow-Methods", _ALLOW_METHODS)
            requested = self.request.headers.get("Access-Control-Request-Headers", "")
            if requested:
                self.set_header("Access-Control-Allow-Headers", requested)
            self.set_header("Access-Control-Max-Age", _MAX_AGE)
        self.set_status(204)
        self.finish()


def cors_rules(origins: Origins) -> list[Rule]:
    """The rule that answers preflights; put it before every other route."""
    return [Rule(_AnyOptions(), PreflightHandler, {"origins": origins})]


def cors_transform(origins: Origins) -> type[tornado.web.OutputTransform]:
    """An output transform that adds Hanko's CORS headers to every answer (preflights included)."""

    class HankoCors(tornado.web.OutputTransform):
        def __init__(self, request: HTTPServerRequest) -> None:
            super().__init__(request)
            self.request = request

        def transform_first_chunk(
            self, status_code: int, headers: HTTPHeaders, chunk: bytes, finishing: bool
        ) -> tuple[int, HTTPHeaders, bytes]:
            vary = headers.get_list("Vary")
            headers.pop("Vary", None)
            for value in ["Origin", *vary]:
                headers.add("Vary", value)
            origin = _allowed_origin(self.request, origins())
            if origin is not None:
                headers["Access-Control-Allow-Origin"] = origin
                headers["Access-Control-Allow-Credentials"] = "true"
                if self.request.method != "OPTIONS":
                    headers["Access-Control-Expose-Headers"] = _EXPOSE_HEADERS
            return status_code, headers, chunk

    return HankoCors


def _allowed_origin(request: HTTPServerRequest, origins: tuple[str, ...]) -> str | None:
    """The request's ``Origin`` when it is one of ``origins`` (exactly; echo's ``*`` patterns are not modelled)."""
    origin = request.headers.get("Origin", "")
    return origin if origin and origin in origins else None
