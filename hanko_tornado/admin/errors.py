"""The admin API's errors: one family under :class:`HankoAdminError`, each with the answer it maps to.

Raised by :class:`~hanko_tornado.admin.client.HankoAdminClient`; in a handler
they answer as every :class:`~hanko_tornado.errors.HankoError` does
(``error.answer(handler)``).  Messages name the call (method and path) and
Hanko's status, never a token, the API key or an answer's body.
"""

from __future__ import annotations

from hanko_tornado.errors import HankoError

__all__ = [
    "AdminNotFoundError",
    "AdminRateLimitedError",
    "AdminRequestError",
    "AdminUnauthorizedError",
    "AdminUnavailableError",
    "HankoAdminError",
]


class HankoAdminError(HankoError):
    """A call to Hanko's admin API failed (503 by default); ``status`` is Hanko's HTTP status, 0 for none."""

    status_code = 503
    error = "admin_api_unavailable"
    sentence = "Hanko's admin API is unavailable; try again shortly."

    def __init__(self, what: str, status: int = 0, retry_after: int = 1) -> None:
        super().__init__(what)
        self.what = what
        self.status = status
        self.retry_after = retry_after

    @property
    def message(self) -> str:
        return self.sentence  # the client is told what failed, never the call or Hanko's words

    def response_headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)} if self.status_code == 503 else {}


class AdminUnavailableError(HankoAdminError):
    """Hanko's admin API could not be reached, was too slow, failed (5xx), or answered something unreadable."""


class AdminRateLimitedError(HankoAdminError):
    """Hanko answered 429; ``retry_after`` is its ``Retry-After`` in whole seconds (1 when it gave none)."""

    error = "admin_api_rate_limited"
    sentence = "Hanko's admin API is busy; try again later."


class AdminUnauthorizedError(HankoAdminError):
    """Hanko refused this service's API key (401 or 403): a configuration problem, not the client's."""

    error = "admin_api_unauthorized"
    sentence = "This service cannot use Hanko's admin API right now."


class AdminNotFoundError(HankoAdminError):
    """Hanko has no such user, session, email or webhook (404)."""

    status_code = 404
    error = "not_found"
    sentence = "Not found."


class AdminRequestError(HankoAdminError):
    """Hanko refused the call as malformed or conflicting (400, 409, 413...): ``hanko_message`` says why."""

    status_code = 502
    error = "admin_api_refused"
    sentence = "Hanko's admin API refused the request."

    def __init__(self, what: str, status: int, hanko_message: str) -> None:
        super().__init__(f"{what}: {hanko_message}" if hanko_message else what, status)
        self.hanko_message = hanko_message
