"""The exceptions of hanko_tornado, and the HTTP answer each one maps to.

Every class carries the status, error code and headers it is answered with, so
that the mixin answers every failure the same way.  No message ever holds a
token or any part of one.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tornado.web import RequestHandler

__all__ = [
    "TOKEN_REFUSALS",
    "AuthenticationError",
    "ConfigurationError",
    "CrossOriginRequestError",
    "HankoError",
    "InsufficientScopeError",
    "InsufficientUserAuthenticationError",
    "InvalidTokenError",
    "KeysUnavailableError",
    "MissingTokenError",
    "RequirementError",
    "SessionCheckUnavailableError",
    "UnavailableError",
    "write_json_error",
]


class HankoError(Exception):
    """Base class of every error raised by hanko_tornado."""

    status_code = 500
    error = "server_error"

    @property
    def message(self) -> str:
        """The sentence a client is shown."""
        return str(self)

    def response_headers(self) -> dict[str, str]:
        """Headers to send with the answer to this error."""
        return {}

    def response_body(self) -> dict[str, object]:
        """The JSON body of the answer to this error: ``{"error": ..., "message": ...}``, and what a subclass adds."""
        return {"error": self.error, "message": self.message}

    def answer(self, handler: RequestHandler) -> None:
        """Finish ``handler``'s request with this error's status, headers and JSON body."""
        handler.set_status(self.status_code)
        for name, value in self.response_headers().items():
            handler.set_header(name, value)
        handler.finish(self.response_body())


class ConfigurationError(HankoError, ValueError):
    """A setting is missing or wrong; raised at start-up, never per request."""

    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(f"{setting}: {problem}")
        self.setting = setting
        self.problem = problem


class AuthenticationError(HankoError):
    """The request is not authenticated (401)."""

    status_code = 401
    error = "unauthorized"

    def response_headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer realm="hanko"'}


class MissingTokenError(AuthenticationError):
    """The request carries no session token."""

    error = "missing_token"

    def __init__(self) -> None:
        super().__init__("No session token: send it as 'Authorization: Bearer <token>' or in the session cookie.")


#: Why a token is refused: each stable code, and the sentence it is told with unless a raise site gives a
#: more precise one.  Programs (metrics, logs, a client reading the JSON body) go by the code, people by the words.
TOKEN_REFUSALS = {
    "malformed": "malformed token",
    "algorithm": "algorithm not allowed",
    "unknown_key": "unknown signing key",
    "bad_signature": "bad signature",
    "expired": "token expired",
    "not_yet_valid": "token not valid yet",
    "audience": "wrong audience",
    "issuer": "wrong issuer",
    "not_session": "not a session token",
    "duplicate_cookie": "more than one session cookie",
    "session_ended": "session ended",
    "session_refused": "refused by Hanko",
    "other": "refused",
    "not_webhook": "not a webhook token",
    "event_mismatch": "event does not match the token",
    "no_data": "no event data",
}


class InvalidTokenError(AuthenticationError):
    """A session token was sent and refused.

    ``code`` says why, as one of the keys of :data:`TOKEN_REFUSALS` (``"expired"``, ``"bad_signature"``...):
    stable, for programs, and in the JSON body as ``reason``.  ``reason`` says it in words for people
    (``"token expired"``) and may change between releases.

    A first argument that is not a code is the 0.2.0 form, ``InvalidTokenError(reason)``: it still refuses the
    token (code ``"other"``, those words), with a :class:`DeprecationWarning`.
    """

    error = "invalid_token"

    def __init__(self, code: str, reason: str | None = None) -> None:
        if code not in TOKEN_REFUSALS:
            warnings.warn(
                "InvalidTokenError(reason) is deprecated: pass a code of hanko_tornado.errors.TOKEN_REFUSALS "
                "first, then the words (InvalidTokenError(code, reason))",
                DeprecationWarning,
                stacklevel=2,
            )
            code, reason = "other", reason or code
        reason = reason or TOKEN_REFUSALS[code]
        super().__init__(f"The session token was refused: {reason}.")
        self.code = code
        self.reason = reason

    def response_headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer realm="hanko", error="invalid_token"'}

    def response_body(self) -> dict[str, object]:
        return {**super().response_body(), "reason": self.code}


class CrossOriginRequestError(HankoError):
    """An unsafe request authenticated by the session cookie came from an origin that may not send it (403)."""

    status_code = 403
    error = "cross_origin_request"

    def __init__(self) -> None:
        super().__init__("Cross-origin request refused: this origin may not change anything here.")


class RequirementError(HankoError):
    """The user is authenticated, but does not meet a requirement of the handler; ``requirement`` says which."""

    def __init__(self, requirement: str, message: str) -> None:
        super().__init__(message)
        self.requirement = requirement

    def response_body(self) -> dict[str, object]:
        return {**super().response_body(), "requirement": self.requirement}


class InsufficientScopeError(RequirementError):
    """Who the user is (a claim, a role, a verified email) does not meet a requirement (403, RFC 6750)."""

    status_code = 403
    error = "insufficient_scope"

    def __init__(self, requirement: str) -> None:
        super().__init__(requirement, f"Requirement not met: {requirement}.")

    def response_headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer realm="hanko", error="insufficient_scope"'}


class InsufficientUserAuthenticationError(RequirementError):
    """How or how recently the user logged in does not meet a requirement: a new login can (401, RFC 9470).

    ``acr_values`` are the login methods (Hanko's ``amr`` values), one of which the new login must use;
    ``max_age`` the most seconds it may lie in the past when the request comes.
    """

    status_code = 401
    error = "insufficient_user_authentication"

    def __init__(self, requirement: str, acr_values: tuple[str, ...] = (), max_age: int | None = None) -> None:
        super().__init__(requirement, f"A new login is needed: {requirement}.")
        self.acr_values = acr_values
        self.max_age = max_age

    def response_headers(self) -> dict[str, str]:
        # RFC 9470's example sentences (and the two together): fixed ASCII, never a requirement's words.
        if self.acr_values and self.max_age is not None:
            description = "A different authentication level and more recent authentication are required"
        elif self.acr_values:
            description = "A different authentication level is required"
        else:
            description = "More recent authentication is required"
        challenge = f'Bearer realm="hanko", error="{self.error}", error_description="{description}"'
        if self.acr_values:
            challenge += f', acr_values="{" ".join(self.acr_values)}"'
        if self.max_age is not None:
            challenge += f', max_age="{self.max_age}"'
        return {"WWW-Authenticate": challenge}

    def response_body(self) -> dict[str, object]:
        body = super().response_body()
        if self.acr_values:
            body["acr_values"] = " ".join(self.acr_values)
        if self.max_age is not None:
            body["max_age"] = self.max_age
        return body


class UnavailableError(HankoError):
    """Hanko could not be asked what is needed (503); the token may be fine."""

    status_code = 503
    error = "unavailable"
    sentence = "Hanko is unavailable; try again shortly."

    def __init__(self, retry_after: int) -> None:
        super().__init__(self.sentence)
        self.retry_after = retry_after

    def response_headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class KeysUnavailableError(UnavailableError):
    """No usable signing key for the token could be had from Hanko."""

    error = "keys_unavailable"
    sentence = "Hanko's signing keys are unavailable; try again shortly."


class SessionCheckUnavailableError(UnavailableError):
    """Hanko's session validation could not answer, and the check fails closed."""

    error = "session_check_unavailable"
    sentence = "Hanko could not confirm the session; try again shortly."


def write_json_error(handler: RequestHandler, error: str | None = None, message: str | None = None) -> None:
    """Finish ``handler``'s error answer as JSON ``{"error": ..., "message": ...}``, for its ``write_error``.

    By default from the status's reason phrase: ``{"error": "not_found", "message": "Not Found"}``.
    """
    reason = handler._reason
    handler.finish({"error": error or reason.lower().replace(" ", "_"), "message": message or reason})
