"""Prometheus: the recorder that counts, the registry it exports to, and the handler that serves it.

The only module that imports prometheus_client, and only once metrics are
asked for (``HankoSettings(metrics=...)``, see :mod:`hanko_tornado.metrics`).
One :class:`PrometheusRecorder` per registry keeps dictionaries of integers
with a fixed set of keys (so a scrape from another thread never sees one
change size), and the registry reads them, and what the watched owners report
(:meth:`~hanko_tornado.metrics.Recorder.watch`), only when it is scraped: a
request pays one dictionary increment.
"""

from __future__ import annotations

import bisect
import inspect
import itertools
import time
import weakref
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import tornado.web

from hanko_tornado.errors import ConfigurationError, HankoError
from hanko_tornado.metrics import (
    ACCEPTED,
    ANONYMOUS,
    CACHE_OPERATIONS,
    FETCH_SECONDS_BUCKETS,
    INSTALL_HINT,
    NO_METRICS,
    OUTCOMES,
    SESSION_CHECK_RESULTS,
    WEBHOOK_EVENTS,
    WEBHOOK_FAILURE_REASONS,
    WEBHOOK_RESULTS,
    KeyStatus,
    Recorder,
    SessionCheckResult,
    TokenCacheCounts,
    WebhookResult,
    reason_label,
    webhook_event_label,
)

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric as _Metric
    from prometheus_client.registry import CollectorRegistry

__all__ = ["MetricsHandler", "PrometheusRecorder", "recorder_for", "registry_for"]

T = TypeVar("T")


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


# One recorder per registry, so that several verifiers (applications, tests) registering with one registry
# share its series instead of clashing; the registry owns it and it goes when the registry goes.
_RECORDERS: weakref.WeakKeyDictionary[CollectorRegistry, PrometheusRecorder] = weakref.WeakKeyDictionary()


def recorder_for(metrics: Any) -> Recorder:
    """The recorder a ``metrics`` setting asks for: :data:`~hanko_tornado.metrics.NO_METRICS` when off
    (``None``, ``False``), else its registry's one."""
    if metrics is None or metrics is False:
        return NO_METRICS
    registry = registry_for(metrics)
    recorder = _RECORDERS.get(registry)
    if recorder is None:
        recorder = _RECORDERS[registry] = PrometheusRecorder()
        registry.register(recorder)
    return recorder


def _held(function: Callable[[], T] | None) -> Callable[[], Callable[[], T] | None]:
    """What gives ``function`` back while it lives: a bound method is held weakly, anything else as it is."""
    if inspect.ismethod(function):
        return weakref.WeakMethod(function)
    return lambda: function


class _Watch:
    """One owner's functions, read at scrape time while the owner lives."""

    __slots__ = ("key_status", "owner", "token_cache")

    def __init__(
        self,
        owner: weakref.ref[object],
        key_status: Callable[[], KeyStatus] | None,
        token_cache: Callable[[], TokenCacheCounts] | None,
    ) -> None:
        self.owner = owner
        self.key_status = _held(key_status)
        self.token_cache = _held(token_cache)


class PrometheusRecorder(Recorder):
    """Counts into plain integers and is the prometheus_client collector that exports them."""

    def __init__(self) -> None:
        self.authentications = dict.fromkeys(OUTCOMES, 0)
        self.accepted_requests = 0  # the hot path: an attribute costs half a dictionary entry keyed by a tuple
        self.jwks_fetches = {"success": 0, "failure": 0}
        self.jwks_fetch_buckets = [0] * (len(FETCH_SECONDS_BUCKETS) + 1)  # the last one is +Inf
        self.jwks_fetch_seconds = 0.0
        self.session_checks = dict.fromkeys(SESSION_CHECK_RESULTS, 0)
        self.shared_cache_failures = dict.fromkeys(CACHE_OPERATIONS, 0)
        events = (*WEBHOOK_EVENTS, "other")
        self.webhooks = {(event, result): 0 for event in events for result in WEBHOOK_RESULTS}
        self.webhook_failures = dict.fromkeys(WEBHOOK_FAILURE_REASONS, 0)
        self.last_webhook: float | None = None
        # Replaced whole, never changed in place: a scrape from another thread reads one tuple.
        self._watches: tuple[_Watch, ...] = ()

    def accepted(self) -> None:
        self.accepted_requests += 1

    def let_in_anonymously(self) -> None:
        self.authentications[ANONYMOUS] += 1

    def refused(self, error: HankoError) -> None:
        result = "unavailable" if error.status_code == 503 else "refused"
        reason = reason_label(error)
        outcome = (result, reason) if (result, reason) in self.authentications else (result, "other")
        self.authentications[outcome] += 1

    def jwks_fetched(self, *, succeeded: bool, started: float) -> None:
        seconds = max(0.0, time.monotonic() - started)
        self.jwks_fetches["success" if succeeded else "failure"] += 1
        self.jwks_fetch_buckets[bisect.bisect_left(FETCH_SECONDS_BUCKETS, seconds)] += 1
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

    def watch(
        self,
        owner: object,
        *,
        key_status: Callable[[], KeyStatus] | None = None,
        token_cache: Callable[[], TokenCacheCounts] | None = None,
    ) -> None:
        self._watches = (*self._watches, _Watch(weakref.ref(owner, self._forget), key_status, token_cache))

    def _forget(self, owner: weakref.ref[object]) -> None:
        self._watches = tuple(watch for watch in self._watches if watch.owner is not owner)

    def _read(self) -> tuple[list[KeyStatus], list[TokenCacheCounts]]:
        """What the living owners report now; a key store watched by several owners is read once."""
        key_statuses: dict[Callable[[], KeyStatus], None] = {}
        token_caches: list[Callable[[], TokenCacheCounts]] = []
        for watch in self._watches:
            if watch.owner() is None:
                continue
            key_status, token_cache = watch.key_status(), watch.token_cache()
            if key_status is not None:
                key_statuses[key_status] = None  # bound methods of one object are equal
            if token_cache is not None:
                token_caches.append(token_cache)
        return [status() for status in key_statuses], [counts() for counts in token_caches]

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
            {**self.authentications, ACCEPTED: self.accepted_requests},
        )
        yield counter("hanko_jwks_fetches", "Fetches from Hanko's key endpoint.", "result", self.jwks_fetches)
        bounds = (*map(str, FETCH_SECONDS_BUCKETS), "+Inf")
        buckets = list(zip(bounds, itertools.accumulate(list(self.jwks_fetch_buckets)), strict=True))
        yield HistogramMetricFamily(
            "hanko_jwks_fetch_duration_seconds",
            "Time a fetch from Hanko's key endpoint took, failed ones included.",
            buckets=buckets,
            sum_value=self.jwks_fetch_seconds,
        )
        statuses, infos = self._read()
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
