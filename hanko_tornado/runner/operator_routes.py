"""The routes an operator's tools call beside the application's: ``/healthz``, ``/readyz`` and ``/metrics``.

Readiness answers 503 ``stopping`` once the process is told to stop
(:mod:`~hanko_tornado.runner.graceful`) and, with Hanko's admin API set,
reports whether Hanko still has the webhook switched on.  Metrics are
counted and served when prometheus_client is installed, unless
``HANKO_METRICS=false``.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from hanko_tornado.admin import AdminReadinessHandler, HankoAdminSettings
from hanko_tornado.health import LivenessHandler
from hanko_tornado.metrics import INSTALL_HINT, metrics_available
from hanko_tornado.prometheus import MetricsHandler, registry_for
from hanko_tornado.runner.graceful import StoppingReadinessHandler
from hanko_tornado.settings import HankoSettings

__all__ = ["StoppingAdminReadinessHandler", "metrics_when_installed", "operator_routes"]

log = logging.getLogger("server")


class StoppingAdminReadinessHandler(StoppingReadinessHandler, AdminReadinessHandler):
    """Readiness with Hanko's webhook state, answering 503 ``stopping`` once the process is told to stop."""


def metrics_when_installed(hanko: HankoSettings) -> HankoSettings:
    """``hanko`` counting metrics when it leaves them unset (``HANKO_METRICS`` unset) and prometheus_client is there."""
    if hanko.metrics is None and metrics_available():
        return dataclasses.replace(hanko, metrics=True)
    return hanko


def operator_routes(hanko: HankoSettings, admin: HankoAdminSettings | None) -> list[Any]:
    """Liveness, readiness (with the webhook's state when ``admin`` is set), and metrics when ``hanko`` counts them."""
    readiness = StoppingAdminReadinessHandler if admin is not None else StoppingReadinessHandler
    return [(r"/healthz", LivenessHandler), (r"/readyz", readiness), *_metrics_routes(hanko)]


def _metrics_routes(hanko: HankoSettings) -> list[Any]:
    """``/metrics`` when the settings count metrics; otherwise none, and one line at INFO says why."""
    if hanko.metrics is None or hanko.metrics is False:
        why = "HANKO_METRICS=false" if hanko.metrics is False else f"prometheus_client is not installed: {INSTALL_HINT}"
        log.info("not serving /metrics (%s)", why)
        return []
    return [(r"/metrics", MetricsHandler, {"registry": registry_for(hanko.metrics)})]
