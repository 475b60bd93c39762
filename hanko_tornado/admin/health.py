"""Whether Hanko still has this service's webhook switched on: for readiness, metrics and a one-line fix.

Hanko switches a webhook registered in its database off after more than 5
failed deliveries in a row (a deploy, an outage), and then sends nothing:
webhook-based logout ends silently.  :class:`WebhookHealth` looks at
``GET /webhooks`` at most every ``webhook_check_interval`` seconds;
:class:`AdminReadinessHandler` reports it under ``"webhook"`` and the
``hanko_webhook_enabled`` gauge carries it (1 on, 0 off, absent while
unknown).  Every process sees the same webhook, so by default a switched-off
webhook does not make a process unready: alert on the gauge instead, and
switch it back on with ``python -m hanko_tornado.admin enable-webhook``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
import weakref
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import tornado.web

from hanko_tornado.admin.client import HankoAdminClient, admin_client_for
from hanko_tornado.admin.errors import HankoAdminError
from hanko_tornado.admin.models import Webhook, Webhooks
from hanko_tornado.health import ReadinessHandler, readiness
from hanko_tornado.lifecycle import state_of
from hanko_tornado.prometheus import registry_for

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

__all__ = ["AdminReadinessHandler", "WebhookHealth", "WebhookState", "webhook_health_for"]

log = logging.getLogger("hanko_tornado")


@dataclasses.dataclass(frozen=True, slots=True)
class WebhookState:
    """What Hanko last said of this service's webhook(s); ``enabled`` is ``None`` while unknown."""

    enabled: bool | None = None
    failures: int | None = None
    webhooks: int = 0
    checked_at: float | None = None
    problem: str | None = None

    def as_json(self, now: float) -> dict[str, Any]:
        age = None if self.checked_at is None else round(max(0.0, now - self.checked_at), 1)
        return {
            "enabled": self.enabled,
            "failures": self.failures,
            "webhooks": self.webhooks,
            "checked_seconds_ago": age,
            "problem": self.problem,
        }


class WebhookHealth:
    """Looks at Hanko's webhooks at most every ``webhook_check_interval`` seconds and remembers the answer.

    :param clock: monotonic seconds; tests move it.
    """

    def __init__(self, client: HankoAdminClient, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.clock = clock
        self.state = WebhookState()
        self._checking: asyncio.Task[None] | None = None
        self._last_attempt = -float("inf")

    async def check(self, wait: float = 0.5) -> WebhookState:
        """The state, after a look at Hanko if one is due, waiting up to ``wait`` seconds for it."""
        self.check_soon()
        if self._checking is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._checking), wait)
        return self.state

    def check_soon(self) -> None:
        """Start a look at Hanko in the background if one is due (needs a running loop)."""
        if self._checking is None and self.clock() - self._last_attempt >= self.client.settings.webhook_check_interval:
            self._last_attempt = self.clock()
            self._checking = asyncio.ensure_future(self._check())
            self._checking.add_done_callback(self._checked)

    def _checked(self, task: asyncio.Task[None]) -> None:
        self._checking = None

    async def _check(self) -> None:
        try:
            hooks = await self.client.list_webhooks()
        except HankoAdminError as error:
            self.state = dataclasses.replace(self.state, problem=f"the admin API failed: {error.error}")
            return
        self.state = self._state_of(hooks)
        if self.state.enabled is False:
            log.warning(
                "Hanko has switched this service's webhook off (%s failures): "
                "run `python -m hanko_tornado.admin enable-webhook`",
                self.state.failures,
            )

    def mine(self, hooks: Webhooks) -> tuple[Webhook, ...]:
        """The database webhooks that are this service's: ``webhook_url``'s, or all of them when it is unset."""
        url = self.client.settings.webhook_url
        return tuple(hook for hook in hooks.database if url is None or hook.callback == url)

    def _state_of(self, hooks: Webhooks) -> WebhookState:
        now, mine = self.clock(), self.mine(hooks)
        url = self.client.settings.webhook_url
        if not mine:
            if url is not None and any(hook.callback == url for hook in hooks.config):
                return WebhookState(True, 0, 1, now)  # a config-file hook is never switched off
            where = f"for {url} " if url is not None else ""
            return WebhookState(None, None, 0, now, f"no webhook {where}is registered in Hanko's database")
        return WebhookState(all(hook.enabled for hook in mine), max(hook.failures for hook in mine), len(mine), now)

    async def enable(self) -> tuple[Webhook, ...]:
        """Switch this service's switched-off webhooks back on (failures reset); the ones switched on."""
        enabled = tuple(
            [await self.client.enable_webhook(h) for h in self.mine(await self.client.list_webhooks()) if not h.enabled]
        )
        self._last_attempt = -float("inf")  # look again at the next check
        return enabled


def webhook_health_for(application: tornado.web.Application) -> WebhookHealth:
    """The application's webhook health, made on first use from its admin client (and watched by its metrics)."""

    def made() -> WebhookHealth:
        health = WebhookHealth(admin_client_for(application))
        metrics = getattr(application.settings.get("hanko"), "metrics", None)
        if metrics is not None and metrics is not False:
            _collector_for(metrics).health.add(health)
        return health

    return state_of(application).part(WebhookHealth, made)


class AdminReadinessHandler(ReadinessHandler):
    """:class:`~hanko_tornado.health.ReadinessHandler` that also reports Hanko's webhook state (``"webhook"``).

    :param require_webhook: a webhook Hanko switched off makes the process unready (off by default: every
        process sees the same webhook, so all would leave the rotation at once).
    """

    def initialize(
        self, require_shared_cache: bool | None = None, wait: float = 0.5, require_webhook: bool = False
    ) -> None:
        super().initialize(require_shared_cache, wait)
        self.require_webhook = require_webhook

    async def get(self, *args: str, **kwargs: str) -> None:
        health = webhook_health_for(self.application)
        report, state = await asyncio.gather(
            readiness(self.get_hanko_verifier(), require_shared_cache=self.require_shared_cache, wait=self.wait),
            health.check(self.wait),
        )
        report["webhook"] = state.as_json(health.clock())
        if self.require_webhook and state.enabled is False:
            report["problems"].append("Hanko has switched this service's webhook off")
            report["status"] = "unready"
        self.set_status(200 if report["status"] == "ready" else 503)
        self.set_header("Cache-Control", "no-store")
        self.finish(report)


class _WebhookCollector:
    """Exports ``hanko_webhook_enabled`` and ``hanko_webhook_failed_deliveries`` of every watched health."""

    def __init__(self) -> None:
        self.health: weakref.WeakSet[WebhookHealth] = weakref.WeakSet()

    def describe(self) -> Iterator[Metric]:
        return self._families([])

    def collect(self) -> Iterator[Metric]:
        watched = list(self.health)
        for health in watched:
            with contextlib.suppress(RuntimeError):  # a scrape from a thread without a loop: the last state serves
                health.check_soon()
        return self._families([health.state for health in watched])

    def _families(self, states: list[WebhookState]) -> Iterator[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        known = [state for state in states if state.enabled is not None]
        enabled = GaugeMetricFamily(
            "hanko_webhook_enabled", "1 while Hanko has this service's webhook switched on, 0 once it switched it off."
        )
        failures = GaugeMetricFamily(
            "hanko_webhook_failed_deliveries", "Failed deliveries in a row Hanko counts for this service's webhook."
        )
        if known:
            enabled.add_metric((), min(int(bool(state.enabled)) for state in known))
            failures.add_metric((), max(state.failures or 0 for state in known))
        yield enabled
        yield failures


_COLLECTORS: weakref.WeakKeyDictionary[Any, _WebhookCollector] = weakref.WeakKeyDictionary()


def _collector_for(metrics: Any) -> _WebhookCollector:
    registry = registry_for(metrics)
    collector = _COLLECTORS.get(registry)
    if collector is None:
        collector = _COLLECTORS[registry] = _WebhookCollector()
        registry.register(collector)
    return collector
