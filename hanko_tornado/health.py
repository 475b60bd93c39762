"""Health checks for load balancers and orchestrators: liveness (``/healthz``) and readiness (``/readyz``).

Liveness says the process answers: restart it when that fails.  Readiness says
whether it can authenticate requests now: it holds a usable key set (fresh, or
stale within ``stale_grace``).  A shared cache that does not answer is
reported as ``degraded`` and, unless ``require_shared_cache`` is set, leaves
the process ready: each process serves from its own memory meanwhile, and one
Redis blip must not take every process out of the pool at once.  Both answer JSON and never carry token data::

    app = tornado.web.Application(
        [(r"/healthz", LivenessHandler), (r"/readyz", ReadinessHandler), ...],
        hanko=HankoSettings(...),
    )
"""

from __future__ import annotations

import asyncio
from typing import Any

import tornado.web

from hanko_tornado.cache import SealedCache
from hanko_tornado.errors import KeysUnavailableError
from hanko_tornado.keys import KeyStore
from hanko_tornado.request_verifier import request_project, request_verifier
from hanko_tornado.tokens import TokenVerifier

__all__ = ["LivenessHandler", "ReadinessHandler", "readiness"]


async def readiness(
    verifier: TokenVerifier, *, require_shared_cache: bool | None = None, wait: float = 0.5
) -> dict[str, Any]:
    """Whether ``verifier`` can authenticate requests now, and the state behind the answer, as JSON.

    Without a usable key set it starts a fetch, as a request would (at most one per
    ``refetch_interval``), and waits up to ``wait`` seconds for it: a process that found Hanko
    down at start-up, and so gets no traffic, still becomes ready.  A key set past its TTL starts
    a refresh in the background.  A shared cache is pinged, for at most ``wait`` seconds.

    :param require_shared_cache: whether a shared cache that does not answer makes the process unready;
        ``None``: as the settings say (``HANKO_REQUIRE_SHARED_CACHE``, off by default).
    """
    settings = verifier.settings
    if require_shared_cache is None:
        require_shared_cache = settings.require_shared_cache
    _, shared_cache = await asyncio.gather(
        _look_for_keys(verifier.key_store, wait), _shared_cache_state(verifier.cache, wait)
    )
    keys = verifier.key_store.status()
    problems = []
    if not keys.usable:
        problems.append("no usable key set: Hanko's key endpoint fails" if keys.failing else "no usable key set yet")
    if require_shared_cache and shared_cache == "degraded":
        problems.append("the shared cache does not answer")
    return {
        "status": "unready" if problems else "ready",
        "problems": problems,
        "keys": {
            "usable": keys.usable,
            "count": keys.keys,
            "age_seconds": None if keys.age is None else round(keys.age, 1),
            "ttl_seconds": keys.ttl,
            "stale": keys.stale,
            "fetch_failing": keys.failing,
        },
        "shared_cache": shared_cache,
        "session_check": {
            "mode": settings.session_check,
            "on_failure": settings.session_check_failure,
            "failing": verifier.session_checker.failing,
        },
    }


class LivenessHandler(tornado.web.RequestHandler):
    """``200 {"status": "ok"}`` while the process answers; nothing else, so a Hanko outage restarts nothing."""

    def get(self) -> None:
        self.set_header("Cache-Control", "no-store")
        self.finish({"status": "ok"})


class ReadinessHandler(tornado.web.RequestHandler):
    """200 when the application's verifier can authenticate requests, else 503; the body is :func:`readiness`'s.

    With ``hanko_projects``, the verifier of the request's project, found as the auth mixin finds it
    (``/acme/readyz``, say); a request of no project is a JSON 404.

    :param require_shared_cache: a shared cache that does not answer makes the process unready; by default
        (``None``) as the settings' ``require_shared_cache`` says, which is off: requests are served without
        it, from each process's memory, and a Redis outage must not take every process out of rotation at once.
    :param wait: seconds the check may wait for a key fetch and for the shared cache.
    """

    def initialize(self, require_shared_cache: bool | None = None, wait: float = 0.5) -> None:
        self.require_shared_cache = require_shared_cache
        self.wait = wait

    def get_hanko_verifier(self) -> TokenVerifier:
        """The verifier for this request, as the auth mixin's; override to supply another."""
        return request_verifier(self, self.get_hanko_project)

    def get_hanko_project(self) -> str | None:
        """The Hanko project this check is about (with ``hanko_projects``): what ``select`` says by default."""
        return request_project(self)

    async def get(self, *args: str, **kwargs: str) -> None:  # route groups (a tenant in the path) are welcome
        report = await readiness(
            self.get_hanko_verifier(), require_shared_cache=self.require_shared_cache, wait=self.wait
        )
        self.set_status(200 if report["status"] == "ready" else 503)
        self.set_header("Cache-Control", "no-store")
        self.finish(report)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.set_header("Cache-Control", "no-store")
        self.finish({"error": self._reason.lower().replace(" ", "_"), "message": self._reason})


async def _look_for_keys(key_store: KeyStore, wait: float) -> None:
    # The lookup a request makes: it fetches a missing key set and refreshes a stale one, within the same bounds.
    try:
        await asyncio.wait_for(key_store.get_key(None, "RS256"), wait)
    except (KeysUnavailableError, asyncio.TimeoutError):
        pass  # the status read next says what is missing


async def _shared_cache_state(cache: SealedCache, wait: float) -> str:
    """``"answers"``, ``"degraded"`` (it does not: each process serves from its own memory), or ``"not_configured"``."""
    if not cache.store.shared:
        return "not_configured"
    try:
        await asyncio.wait_for(cache.store.ping(), wait)
    except Exception:  # noqa: BLE001 - down, slow, refused: the cache does not answer
        return "degraded"
    return "answers"
