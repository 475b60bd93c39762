"""The tokens a request carries, each marked with how it came, in the order Hanko's own middleware tries them.

Hanko's session middleware (``backend/middleware/session.go``, through
echo-jwt's extractor loop) looks at the ``Authorization: Bearer`` header
first, then at the session cookie, and takes the first token that verifies
and whose session lives.  :meth:`HankoAuthMixin.get_hanko_tokens
<hanko_tornado.mixin.HankoAuthMixin.get_hanko_tokens>` yields
:class:`HankoToken` values (or plain pairs) in that order; the mixin tries them the same way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import NamedTuple

from hanko_tornado.errors import HankoError, InvalidTokenError, UnavailableError
from hanko_tornado.user import HankoUser

__all__ = ["Attempt", "HankoToken", "count_cookies", "first_that_passes"]

#: Tries one token's text (with its user when remembered): its user, or a :class:`HankoError` raised.
Attempt = Callable[[str, "HankoUser | None"], Awaitable[HankoUser]]


class HankoToken(NamedTuple):
    """One token a request carries, and whether the browser sent it by itself.

    The hook may yield the plain pair ``(value, sent_by_browser)`` instead: the library's own does, as
    every request passes there.
    """

    #: The token's text (``""`` for a bearer header with none: refused as malformed).
    value: str
    #: ``True`` for a token the browser adds by itself (the session cookie): a cross-site page can make it
    #: send one, so an unsafe request authenticated by it must pass the cross-origin check.  ``False`` for
    #: one the client sent on purpose (a bearer header, a WebSocket subprotocol), which no other page can
    #: make a browser send.
    sent_by_browser: bool


def count_cookies(headers: list[str], name: str) -> int:
    """How many cookies called ``name`` the ``Cookie`` headers carry, each header split as Tornado splits one."""
    return sum(
        1
        for header in headers
        for chunk in header.split(";")
        if "=" in chunk and chunk.split("=", 1)[0].strip() == name
    )


async def first_that_passes(
    attempt: Attempt,
    token: tuple[str, bool],
    tokens: Iterator[tuple[str, bool]],
    *,
    remembered: HankoUser | None = None,
    refused: HankoError | None = None,
) -> tuple[tuple[str, bool], HankoUser]:
    """The first token that ``attempt`` accepts, ``token`` then the rest of ``tokens``, and its user.

    As Hanko's middleware: a token that fails gives way to the next.  When all fail, the answer is the
    first failure to check one (a 503: Hanko could not say, the request may be fine), else the first
    token's refusal (the one the client chose to send: a bearer token before the cookie).

    :param remembered: the first token's user, when the verifier remembers it.
    :param refused: why the first token was refused already.
    :raises HankoError: as said, when no token passes.
    """
    failures: list[HankoError] = []
    candidate: tuple[str, bool] | None = token
    if refused is not None:
        failures.append(refused)
        candidate = _next_token(tokens, failures)
    while candidate is not None:
        try:
            return candidate, await attempt(candidate[0], remembered)
        except HankoError as error:
            failures.append(error)
        remembered = None
        candidate = _next_token(tokens, failures)
    raise next((failure for failure in failures if isinstance(failure, UnavailableError)), failures[0])


def _next_token(tokens: Iterator[tuple[str, bool]], failures: list[HankoError]) -> tuple[str, bool] | None:
    """The next token to try; ``None`` when there is none, or when finding it failed (that failure recorded)."""
    try:
        return next(tokens, None)
    except InvalidTokenError as error:  # duplicate session cookies: refused, and a generator is done
        failures.append(error)
        return None
