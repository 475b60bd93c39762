"""What the verifier reports, and the fixed words it is counted under: metrics off by default.

Off unless asked for: ``HankoSettings(metrics=True)`` (``HANKO_METRICS=true``)
counts into prometheus_client's default registry, ``metrics=CollectorRegistry()``
into that one; both need ``pip install 'hanko-tornado[metrics]'``.  Off, every
component holds :data:`NO_METRICS`, which counts nothing, and prometheus_client
is never imported.  On, :mod:`hanko_tornado.prometheus` counts and exports.

Every label value comes from the fixed lists below, never from a request.
This module looks at nothing above it: what it reports at scrape time (the key
set's state, the token cache's counters) is handed to :meth:`Recorder.watch`
as plain functions.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Literal, Protocol, get_args

from hanko_tornado.errors import (
    TOKEN_REFUSALS,
    CrossOriginRequestError,
    HankoError,
    InvalidTokenError,
    KeysUnavailableError,
    MissingTokenError,
    SessionCheckUnavailableError,
)

__all__ = [
    "INSTALL_HINT",
    "NO_METRICS",
    "REFUSAL_REASONS",
    "WEBHOOK_EVENTS",
    "WEBHOOK_FAILURE_REASONS",
    "KeyStatus",
    "Recorder",
    "SessionCheckResult",
    "TokenCacheCounts",
    "WebhookResult",
    "metrics_available",
    "reason_label",
    "webhook_event_label",
]

INSTALL_HINT = "pip install 'hanko-tornado[metrics]'"

# Refusals only a webhook meets: a request's token never gets them.
_WEBHOOK_ONLY = frozenset({"not_webhook", "event_mismatch", "no_data"})

#: Every ``reason`` a refused request is counted with: the token refusal codes and three of the request's own.
REFUSAL_REASONS = (
    "missing",
    *sorted(code for code in TOKEN_REFUSALS if code not in _WEBHOOK_ONLY and code != "other"),
    "cross_origin",
    "other",
)
UNAVAILABLE_REASONS = ("keys_unavailable", "session_check_unavailable", "other")

ACCEPTED = ("accepted", "valid")
ANONYMOUS = ("anonymous", "missing")
#: Every ``(result, reason)`` an authentication is counted under.
OUTCOMES = (
    ACCEPTED,
    ANONYMOUS,
    *(("refused", reason) for reason in REFUSAL_REASONS),
    *(("unavailable", reason) for reason in UNAVAILABLE_REASONS),
)

SessionCheckResult = Literal["live", "ended", "refused", "shared", "failed", "congested", "backing_off"]
SESSION_CHECK_RESULTS = get_args(SessionCheckResult)
CACHE_OPERATIONS = ("read", "write", "lock", "delete", "other")
FETCH_SECONDS_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# Webhook events by Hanko's event family (the event's longest prefix here; "other" for anything else, since a
# refused webhook's event is whatever a client wrote) and by what became of them.
WEBHOOK_EVENTS = (
    "user.create",
    "user.update",
    "user.delete",
    "user.login",
    "email.send",
    "session.create",
    "session.delete",
)
WebhookResult = Literal["accepted", "replayed", "refused", "malformed", "unavailable"]
WEBHOOK_RESULTS = get_args(WebhookResult)
#: Why a webhook was answered with a failure (400 or more), which Hanko counts towards switching the hook off.
WEBHOOK_FAILURE_REASONS = (
    "malformed_body",
    "malformed_token",
    "expired",
    "not_yet_valid",
    "bad_signature",
    "unknown_key",
    "algorithm",
    "audience",
    "not_webhook",
    "event_mismatch",
    "no_data",
    "keys_unavailable",
    "timeout",
    "server_error",
    "other",
)


def webhook_event_label(event: str) -> str:
    """The fixed ``event`` label: Hanko's event family the event falls under, else ``"other"``."""
    return next((family for family in WEBHOOK_EVENTS if event == family or event.startswith(family + ".")), "other")


def reason_label(error: HankoError) -> str:
    """The fixed ``reason`` label for a refusal: never text from the request, ``"other"`` when unknown."""
    if isinstance(error, MissingTokenError):
        return "missing"
    if isinstance(error, CrossOriginRequestError):
        return "cross_origin"
    if isinstance(error, KeysUnavailableError):
        return "keys_unavailable"
    if isinstance(error, SessionCheckUnavailableError):
        return "session_check_unavailable"
    if isinstance(error, InvalidTokenError):
        return error.code
    return "other"


def metrics_available() -> bool:
    """Whether prometheus_client is installed (without importing it)."""
    return importlib.util.find_spec("prometheus_client") is not None


class KeyStatus(Protocol):
    """What a key store says of its key set, as metrics read it (:class:`~hanko_tornado.keys.KeySetStatus`)."""

    @property
    def usable(self) -> bool: ...

    @property
    def keys(self) -> int: ...

    @property
    def age(self) -> float | None: ...

    @property
    def stale(self) -> bool: ...

    @property
    def failing(self) -> bool: ...


class TokenCacheCounts(Protocol):
    """A verified-token cache's counters, as metrics read them (:class:`~hanko_tornado.tokens.CacheInfo`)."""

    @property
    def hits(self) -> int: ...

    @property
    def misses(self) -> int: ...

    @property
    def currsize(self) -> int: ...


class Recorder:
    """Where the verifier reports what it does; this base counts nothing (metrics off)."""

    def accepted(self) -> None:
        """A request authenticated by a Hanko session token."""

    def let_in_anonymously(self) -> None:
        """A request without a token let into a ``hanko_optional`` handler."""

    def refused(self, error: HankoError) -> None:
        """A request refused (401, 403) or not answerable (503) because of ``error``."""

    def jwks_fetched(self, *, succeeded: bool, started: float) -> None:
        """A fetch from Hanko's key endpoint that began at ``started`` (``time.monotonic()``) ended."""

    def session_checked(self, result: SessionCheckResult) -> None:
        """One session check that was not answered from this process's memory."""

    def shared_cache_failed(self, operation: str) -> None:
        """A shared cache ``operation`` failed; this process fell back to its own memory."""

    def webhook_received(self, event: str, result: WebhookResult) -> None:
        """A webhook naming ``event`` was accepted, replayed or refused."""

    def webhook_verified(self) -> None:
        """A webhook token verified (accepted or replayed): Hanko's deliveries reach this process."""

    def webhook_failed(self, reason: str) -> None:
        """A webhook was answered with a failure, for ``reason`` (one of :data:`WEBHOOK_FAILURE_REASONS`)."""

    def watch(
        self,
        owner: object,
        *,
        key_status: Callable[[], KeyStatus] | None = None,
        token_cache: Callable[[], TokenCacheCounts] | None = None,
    ) -> None:
        """Read ``key_status()`` and ``token_cache()`` at each scrape, as long as ``owner`` lives.

        ``owner`` is held weakly, and so is a bound method passed (``verifier.cache_info``); any other
        function must not hold ``owner``, or ``owner`` is reported for as long as the recorder lives.
        """


#: The recorder of everything built without metrics.
NO_METRICS = Recorder()
