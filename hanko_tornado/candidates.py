"""The tokens a request carries, each marked with how it came, in the order Hanko's own middleware tries them.

Hanko's session middleware (``backend/middleware/session.go``, through
echo-jwt's extractor loop) looks at the ``Authorization: Bearer`` header
first, then at the session cookie, and takes the first token that verifies
and whose session lives.  :meth:`HankoAuthMixin.get_hanko_tokens
<hanko_tornado.mixin.HankoAuthMixin.get_hanko_tokens>` yields
:class:`HankoToken` values in that order; the mixin tries them the same way.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["HankoToken", "bearer_credentials", "count_cookies"]


class HankoToken(NamedTuple):
    """One token a request carries, and whether the browser sent it by itself."""

    #: The token's text (``""`` for a bearer header with none: refused as malformed).
    value: str
    #: ``True`` for a token the browser adds by itself (the session cookie): a cross-site page can make it
    #: send one, so an unsafe request authenticated by it must pass the cross-origin check.  ``False`` for
    #: one the client sent on purpose (a bearer header, a WebSocket subprotocol), which no other page can
    #: make a browser send.
    sent_by_browser: bool


def bearer_credentials(authorization: str) -> str | None:
    """The credentials of an ``Authorization: Bearer`` header (any letter case); ``""`` when it has none."""
    scheme_and_credentials = authorization.split(None, 1)  # any whitespace after the scheme
    if scheme_and_credentials and scheme_and_credentials[0].lower() == "bearer":
        return scheme_and_credentials[1].strip() if len(scheme_and_credentials) > 1 else ""
    return None


def count_cookies(headers: list[str], name: str) -> int:
    """How many cookies called ``name`` the ``Cookie`` headers carry, each header split as Tornado splits one."""
    return sum(
        1
        for header in headers
        for chunk in header.split(";")
        if "=" in chunk and chunk.split("=", 1)[0].strip() == name
    )
