"""Prometheus metrics: what the verifier did, counted as plain integers and read at scrape time.

Off unless asked for: ``HankoSettings(metrics=True)`` (``HANKO_METRICS=true``)
counts into prometheus_client's default registry, ``metrics=CollectorRegistry()``
into that one; both need ``pip install 'hanko-tornado[metrics]'``.  Off, every
component holds :data:`NO_METRICS`, which counts nothing, and prometheus_client
is never imported.

On, one :class:`PrometheusRecorder` per registry keeps dictionaries of integers
with a fixed set of keys (so a scrape from another thread never sees one
change size), and the registry reads them, the verifiers' token-cache counters
and the key stores' state only when it is scraped: a request pays one
dictionary increment.  Every label value comes from the fixed lists below,
never from a request.
"""

from __future__ import annotations

import bisect
import importlib.util
import itertools
import time
import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal, get_args

import tornado.web

from hanko_tornado.errors import (
    TOKEN_REFUSALS,
    ConfigurationError,
    CrossOriginRequestError,
    HankoError,
    InvalidTokenError,
    KeysUnavailableError,
    MissingTokenError,
    SessionCheckUnavailableError,
)

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric as _Metric
    from prometheus_client.registry import CollectorRegistry

    from hanko_tornado.settings import HankoSettings
    from hanko_tornado.tokens import TokenVerifier

__all__ = [
    "INSTALL_HINT",
    "NO_METRICS",
    "REFUSAL_REASONS",
    "WEBHOOK_FAILURE_REASONS",
    "MetricsHandler",
    "PrometheusRecorder",
    "Recorder",
    "metrics_available",
    "reason_label",
    "recorder_for",
    "registry_for",
]

INSTALL_HINT = "pip install 'hanko-tornado[metrics]'"

# Refusals only a webhook meets: a request's token never gets them.
_WEBHOOK_ONLY = frozenset({"not_webhook", "event_mismatch", "no_data"})

#: Every ``reason`` a refused request is counted with: the token refusal codes and three of the request's own.
REFUSAL_REASONS = (
    "missing",
    *sorted(code for code in TOKEN_REFUSALS if code not in _WEBHOOK_ONLY),
    "cross_origin",
    "other",
)
_UNAVAILABLE_REASONS = ("keys_unavailable", "session_check_unavailable", "other")

_ACCEPTED = ("accepted", "valid")
_ANONYMOUS = ("anonymous", "missing")
_OUTCOMES = (
    _ACCEPTED,
    _ANONYMOUS,
    *(("refused", reason) for reason in REFUSAL_REASONS),
    *(("unavailable", reason) for reason in _UNAVAILABLE_REASONS),
)

SessionCheckResult = Literal["live", "ended", "refused", "shared", "failed", "congested", "backing_off"]
_SESSION_CHECK_RESULTS = get_args(SessionCheckResult)
_CACHE_OPERATIONS = ("read", "write", "lock", "delete", "other")
_FETCH_SECONDS_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

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
_WEBHOOK_RESULTS = get_args(WebhookResult)
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


def registry_for(metrics: Any) -> CollectorRegistry:
    """The registry a ``metrics`` setting names: prometheus_client's default for ``True``.

    :raises ConfigurationError: prometheus_client is not installed, or ``metrics`` is not a registry.
    """
    try:
        from prometheus_client import REGISTRY, CollectorRegistry
    except ImportError:
        raise ConfigurationError("metrics", f"needs prometheus_client: {INSTALL_HINT}") from None
    if metrics is True:
        return REGISTRY
    if not isinstance(metrics, CollectorRegistry):
        raise ConfigurationError(
            "metrics", f"must be True, False or a prometheus_client CollectorRegistry, got {metrics!r}"
        )
    return metrics


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

    def watch(self, verifier: TokenVerifier) -> None:
        """Report ``verifier``'s token cache and key set at scrape time, as long as it lives."""


#: The recorder of everything built without metrics.
NO_METRICS = Recorder()

# One recorder per registry, so that several verifiers (applications, tests) registering with one registry
# share its series instead of clashing; the registry owns it and it goes when the registry goes.
_RECORDERS: weakref.WeakKeyDictionary[CollectorRegistry, PrometheusRecorder] = weakref.WeakKeyDictionary()


def recorder_for(settings: HankoSettings) -> Recorder:
    """The recorder ``settings.metrics`` asks for: :data:`NO_METRICS` when off, else its registry's one."""
    if settings.metrics is None or settings.metrics is False:
        return NO_METRICS
    registry = registry_for(settings.metrics)
    recorder = _RECORDERS.get(registry)
    if recorder is None:
        recorder = _RECORDERS[registry] = PrometheusRecorder()
        registry.register(recorder)
    return recorder


class PrometheusRecorder(Recorder):
    """Counts into plain integers and is the prometheus_client collector that exports them."""

    def __init__(self) -> None:
        self.authentications = dict.fromkeys(_OUTCOMES, 0)
        self.accepted_requests = 0  # the hot path: an attribute costs half a dictionary entry keyed by a tuple
        self.jwks_fetches = {"success": 0, "failure": 0}
        self.jwks_fetch_buckets = [0] * (len(_FETCH_SECONDS_BUCKETS) + 1)  # the last one is +Inf
        self.jwks_fetch_seconds = 0.0
        self.session_checks = dict.fromkeys(_SESSION_CHECK_RESULTS, 0)
        self.shared_cache_failures = dict.fromkeys(_CACHE_OPERATIONS, 0)
        events = (*WEBHOOK_EVENTS, "other")
        self.webhooks = {(event, result): 0 for event in events for result in _WEBHOOK_RESULTS}
        self.webhook_failures = dict.fromkeys(WEBHOOK_FAILURE_REASONS, 0)
        self.last_webhook: float | None = None
        self._verifiers: weakref.WeakSet[TokenVerifier] = weakref.WeakSet()

    def accepted(self) -> None:
        self.accepted_requests += 1

    def let_in_anonymously(self) -> None:
        self.authentications[_ANONYMOUS] += 1

    def refused(self, error: HankoError) -> None:
        result = "unavailable" if error.status_code == 503 else "refused"
        reason = reason_label(error)
        outcome = (result, reason) if (result, reason) in self.authentications else (result, "other")
        self.authentications[outcome] += 1

    def jwks_fetched(self, *, succeeded: bool, started: float) -> None:
        seconds = max(0.0, time.monotonic() - started)
        self.jwks_fetches["success" if succeeded else "failure"] += 1
        self.jwks_fetch_buckets[bisect.bisect_left(_FETCH_SECONDS_BUCKETS, seconds)] += 1
        self.jwks_fetch_seconds += seconds

    def session_checked(self, result: SessionCheckResult) -> None:
        self.session_checks[result] += 1

    def shared_cache_failed(self, operation: str) -> None:
        self.shared_cache_failures[operation if operation in self.shared_cache_failures else "other"] += 1

    def webhook_received(self, event: str, result: WebhookResult) -> None:
        self.webhooks[(webhook_event_label(event), result)] += 1

    def webhook_verified(self) -> None:
        self.last_webhook = time.time()

    def webhook_failed(self, reason: str) -> None:
        self.webhook_failures[reason if reason in self.webhook_failures else "other"] += 1

    def watch(self, verifier: TokenVerifier) -> None:
        self._verifiers.add(verifier)

    def describe(self) -> Iterator[_Metric]:
        """The families this collector exports (for the registry's check of duplicate names)."""
        return self.collect()

    def collect(self) -> Iterator[_Metric]:
        """Every family, read now (called by prometheus_client at scrape time, maybe from another thread)."""
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

        def counter(name: str, help_text: str, label: str | tuple[str, ...], counts: dict[Any, int]) -> _Metric:
            labels = (label,) if isinstance(label, str) else label
            family = CounterMetricFamily(name, help_text, labels=labels)
            for key, count in list(counts.items()):
                family.add_metric((key,) if isinstance(key, str) else key, count)
            return family

        def gauge(name: str, help_text: str, value: float | None) -> _Metric:
            family = GaugeMetricFamily(name, help_text)
            if value is not None:
                family.add_metric((), value)
            return family

        yield counter(
            "hanko_authentications",
            "Requests the Hanko mixin authenticated, let in without a token, refused or could not answer.",
            ("result", "reason"),
            {**self.authentications, _ACCEPTED: self.accepted_requests},
        )
        yield counter("hanko_jwks_fetches", "Fetches from Hanko's key endpoint.", "result", self.jwks_fetches)
        bounds = (*map(str, _FETCH_SECONDS_BUCKETS), "+Inf")
        buckets = list(zip(bounds, itertools.accumulate(list(self.jwks_fetch_buckets)), strict=True))
        yield HistogramMetricFamily(
            "hanko_jwks_fetch_duration_seconds",
            "Time a fetch from Hanko's key endpoint took, failed ones included.",
            buckets=buckets,
            sum_value=self.jwks_fetch_seconds,
        )
        verifiers = list(self._verifiers)
        statuses = [store.status() for store in {id(v.key_store): v.key_store for v in verifiers}.values()]
        ages = [status.age for status in statuses if status.age is not None]
        # With several applications in one process, the gauges show the worst key store.
        yield gauge(
            "hanko_jwks_keys",
            "Usable signing keys held (0: none yet, or the last set is past its stale grace).",
            min((status.keys if status.usable else 0 for status in statuses), default=0),
        )
        yield gauge("hanko_jwks_age_seconds", "Seconds since the held key set was fetched.", max(ages, default=None))
        yield gauge(
            "hanko_jwks_stale",
            "1 while the held key set is past its TTL (served in the stale grace until a refresh succeeds).",
            max((int(status.stale) for status in statuses), default=0),
        )
        yield gauge(
            "hanko_jwks_fetch_failing",
            "1 while the last fetch from Hanko's key endpoint failed.",
            max((int(status.failing) for status in statuses), default=0),
        )
        infos = [verifier.cache_info() for verifier in verifiers]
        lookups = {"hit": sum(info.hits for info in infos), "miss": sum(info.misses for info in infos)}
        yield counter("hanko_token_cache_lookups", "Lookups in the verified-token cache.", "result", lookups)
        yield gauge("hanko_token_cache_entries", "Verified tokens remembered.", sum(info.currsize for info in infos))
        yield counter(
            "hanko_session_checks",
            "Session checks not answered from this process's memory, by what answered them.",
            "result",
            self.session_checks,
        )
        yield counter(
            "hanko_shared_cache_fallbacks",
            "Shared cache operations that failed, so this process used its own memory or asked Hanko itself.",
            "operation",
            self.shared_cache_failures,
        )
        yield counter(
            "hanko_webhook_events",
            "Hanko webhooks received, by event family and what became of them.",
            ("event", "result"),
            self.webhooks,
        )
        yield counter(
            "hanko_webhook_failures",
            "Webhooks answered with a failure (400 or more): Hanko switches a hook off after more than 5 in a row.",
            "reason",
            self.webhook_failures,
        )
        # A timestamp, not an age: "time() - max_over_time(...)" survives restarts and spans every process.
        yield gauge(
            "hanko_webhook_last_verified_timestamp_seconds",
            "Unix time of the last webhook this process verified; absent before the first.",
            self.last_webhook,
        )


class MetricsHandler(tornado.web.RequestHandler):
    """Serves a Prometheus registry (``registry``, prometheus_client's default one by default).

    The format follows the ``Accept`` header (Prometheus text, or OpenMetrics).
    """

    def initialize(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry

    def get(self) -> None:
        from prometheus_client import REGISTRY
        from prometheus_client.exposition import choose_encoder

        encoder, content_type = choose_encoder(self.request.headers.get("Accept", ""))
        self.set_header("Content-Type", content_type)
        self.set_header("Cache-Control", "no-store")
        self.finish(encoder(self.registry or REGISTRY))
