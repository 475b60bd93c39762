"""Several Hanko projects in one application, each with its own keys and settings.

Give the application ``hanko_projects=HankoProjects(...)`` instead of (or
beside) ``hanko=``; each request is verified by the one project that
``HankoAuthMixin.get_hanko_project()`` names, by default what ``select`` says
of the request::

    projects = HankoProjects(
        {
            "acme": HankoSettings(api_url="https://hanko.example.com/1f2e...", audience=("acme.example.com",)),
            "globex": HankoSettings(api_url="https://hanko.example.com/6b0d...", audience=("globex.example.com",)),
        },
        select=lambda request: request.host_name.split(".")[0],  # acme.example.com -> "acme"
    )
    app = tornado.web.Application(handlers, hanko_projects=projects)

A token is only ever checked with its project's keys and settings: one that
project refuses is refused, whatever another project would say.  The auth
mixins, :class:`~hanko_tornado.webhooks.HankoWebhookHandler` and
:class:`~hanko_tornado.health.ReadinessHandler` all find a request's project
and verifier through :mod:`hanko_tornado.request_verifier`.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable, Mapping

from tornado.httputil import HTTPServerRequest

from hanko_tornado.settings import HankoSettings
from hanko_tornado.tokens import TokenVerifier

__all__ = ["HankoProjects"]

log = logging.getLogger("hanko_tornado")

# How long an evicted verifier stays open: longer than any request that already holds it waits on it.
_CLOSE_DELAY_SECONDS = 60.0


class HankoProjects:
    """The Hanko projects an application accepts tokens from, and a verifier for each, made on first use.

    :param projects: the settings of each project by name, or a function from a name to its settings
        (``None`` for no such project), for projects not known in advance (such as Hanko v3 tenants).
    :param select: the project of a request (``None`` for none); handlers may decide instead by
        overriding ``get_hanko_project()``.
    :param max_verifiers: at most this many projects' verifiers (each a key store, a token cache and
        HTTP clients) live at once; the least recently used one is let go (and closed a minute later,
        once no request still uses it) to make room.  Its project then starts again from an empty
        cache and fetches its keys once more.
    """

    def __init__(
        self,
        projects: Mapping[str, HankoSettings] | Callable[[str], HankoSettings | None],
        *,
        select: Callable[[HTTPServerRequest], str | None] | None = None,
        max_verifiers: int = 16,
    ) -> None:
        if isinstance(max_verifiers, bool) or not isinstance(max_verifiers, int) or max_verifiers < 1:
            raise ValueError(f"max_verifiers must be a whole number of at least 1, got {max_verifiers!r}")
        if isinstance(projects, Mapping):
            for name, settings in projects.items():
                if not isinstance(settings, HankoSettings):
                    raise TypeError(f"project {name!r}: settings must be a HankoSettings")
        self.select = select
        self.max_verifiers = max_verifiers
        self._projects = projects
        self._verifiers: collections.OrderedDict[str, TokenVerifier] = collections.OrderedDict()
        # Verifiers let go, with the timer that closes each; and closes under way.
        self._closing: dict[TokenVerifier, asyncio.TimerHandle] = {}
        self._closes: set[asyncio.Future[None]] = set()
        self._warned = False

    def settings_for(self, name: str) -> HankoSettings | None:
        """The settings of the project called ``name``, or ``None`` when there is none."""
        if isinstance(self._projects, Mapping):
            return self._projects.get(name)
        settings = self._projects(name)
        if settings is not None and not isinstance(settings, HankoSettings):
            raise TypeError(f"project {name!r}: settings must be a HankoSettings")
        return settings

    def verifier(self, name: str) -> TokenVerifier | None:
        """The verifier of the project called ``name``, made on first use; ``None`` when there is no such project."""
        verifier = self._verifiers.get(name)
        if verifier is not None:
            self._verifiers.move_to_end(name)
            return verifier
        settings = self.settings_for(name)
        if settings is None:
            return None
        verifier = self._verifiers[name] = TokenVerifier(settings)
        if len(self._verifiers) > self.max_verifiers:
            self._let_go(*self._verifiers.popitem(last=False))
        return verifier

    def live_projects(self) -> tuple[str, ...]:
        """The projects whose verifiers live now, least recently used first."""
        return tuple(self._verifiers)

    async def close(self) -> None:
        """Close every verifier, those let go included; call on shutdown."""
        for handle in self._closing.values():
            handle.cancel()
        verifiers = [*self._verifiers.values(), *self._closing]
        self._verifiers.clear()
        self._closing.clear()
        for verifier in verifiers:
            await verifier.close()
        if self._closes:
            await asyncio.gather(*self._closes)

    def _let_go(self, name: str, verifier: TokenVerifier) -> None:
        if not self._warned:
            self._warned = True
            log.warning(
                "more than %d Hanko projects in use: letting go of the least recently used (%r); "
                "raise max_verifiers if this recurs",
                self.max_verifiers,
                name,
            )
        else:
            log.debug("letting go of the verifier of Hanko project %r", name)
        # A request that holds it may still be waiting on its key store: close it once that is surely over.
        self._closing[verifier] = asyncio.get_running_loop().call_later(
            _CLOSE_DELAY_SECONDS, self._close_evicted, verifier
        )

    def _close_evicted(self, verifier: TokenVerifier) -> None:
        if self._closing.pop(verifier, None) is not None:
            closing = asyncio.ensure_future(verifier.close())
            self._closes.add(closing)
            closing.add_done_callback(self._closes.discard)
