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

from hanko_tornado.keys import KeyStoreSeed
from hanko_tornado.revocations import EndedSessions
from hanko_tornado.settings import HankoSettings
from hanko_tornado.tokens import TokenVerifier

__all__ = ["HankoProjects"]

log = logging.getLogger("hanko_tornado")

# How long an evicted verifier stays open: longer than any request that already holds it waits on it.
_CLOSE_DELAY_SECONDS = 60.0
# Hanko tenants (API URLs) whose ended sessions and last key set are kept while no verifier is live;
# beyond it, those with no ended session are forgotten (their next verifier fetches keys once more).
_MAX_KEPT_TENANTS = 10_000


class _Tenant:
    """What one Hanko tenant (API URL) keeps while its verifiers come and go."""

    __slots__ = ("ended", "seed")

    def __init__(self) -> None:
        #: Its ended sessions, shared by every verifier of the tenant: evicting one must not bring them back.
        self.ended = EndedSessions()
        #: The key set and last fetch of its last closed verifier, for the next one to start from.
        self.seed: KeyStoreSeed | None = None


class HankoProjects:
    """The Hanko projects an application accepts tokens from, and a verifier for each, made on first use.

    :param projects: the settings of each project by name, or a function from a name to its settings
        (``None`` for no such project), for projects not known in advance (such as Hanko v3 tenants).
    :param select: the project of a request (``None`` for none); handlers may decide instead by
        overriding ``get_hanko_project()``.
    :param max_verifiers: at most this many projects' verifiers (each a key store, a token cache and
        HTTP clients) live at once; the least recently used one is let go to make room, and closed a
        minute later (at most ``max_verifiers`` wait so; beyond, the oldest is closed at once).  A
        project asked for again within that minute gets its verifier back; after it, a new one that
        starts from the old one's key set and last fetch time, so that a project's keys are fetched
        at most once per ``refetch_interval`` however projects take turns.  The sessions webhooks
        ended are kept per API URL, outside the verifiers: letting a verifier go never brings one back.
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
        # Verifiers let go (oldest first), each with the timer that closes it; and closes under way.
        self._closing: collections.OrderedDict[str, tuple[TokenVerifier, asyncio.TimerHandle]] = (
            collections.OrderedDict()
        )
        self._closes: set[asyncio.Future[None]] = set()
        self._tenants: collections.OrderedDict[str, _Tenant] = collections.OrderedDict()
        self._warned = False
        self._closed = False

    def settings_for(self, name: str) -> HankoSettings | None:
        """The settings of the project called ``name``, or ``None`` when there is none."""
        if isinstance(self._projects, Mapping):
            return self._projects.get(name)
        settings = self._projects(name)
        if settings is not None and not isinstance(settings, HankoSettings):
            raise TypeError(f"project {name!r}: settings must be a HankoSettings")
        return settings

    def verifier(self, name: str) -> TokenVerifier | None:
        """The verifier of the project called ``name``, made on first use; ``None`` when there is no such project,
        or once :meth:`close` was called (nothing is made again: see :attr:`closed`)."""
        if self._closed:
            return None
        verifier = self._verifiers.get(name)
        if verifier is not None:
            self._verifiers.move_to_end(name)
            return verifier
        settings = self.settings_for(name)
        if settings is None:
            return None
        verifier = self._verifiers[name] = self._revived(name, settings) or self._made(settings)
        if len(self._verifiers) > self.max_verifiers:
            self._let_go(*self._verifiers.popitem(last=False))
        return verifier

    def live_projects(self) -> tuple[str, ...]:
        """The projects whose verifiers live now, least recently used first."""
        return tuple(self._verifiers)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called: the projects' verifiers are closed, and no new one is made."""
        return self._closed

    async def close(self) -> None:
        """Close every verifier, those let go included; call on shutdown.  No verifier is made after it."""
        self._closed = True
        verifiers = [*self._verifiers.values()]
        for verifier, handle in self._closing.values():
            handle.cancel()
            verifiers.append(verifier)
        self._verifiers.clear()
        self._closing.clear()
        for verifier in verifiers:
            await verifier.close()
        if self._closes:
            await asyncio.gather(*self._closes)

    def _revived(self, name: str, settings: HankoSettings) -> TokenVerifier | None:
        """The project's verifier let go less than a minute ago, back in use (its keys and tokens with it)."""
        closing = self._closing.pop(name, None)
        if closing is None:
            return None
        verifier, handle = closing
        if verifier.settings != settings:  # a function's answer for the name changed: the old one must go
            self._closing[name] = closing
            return None
        handle.cancel()
        return verifier

    def _made(self, settings: HankoSettings) -> TokenVerifier:
        tenant = self._tenant(settings.api_url)
        return TokenVerifier(settings, seed=tenant.seed, ended=tenant.ended)

    def _tenant(self, api_url: str) -> _Tenant:
        tenant = self._tenants.get(api_url)
        if tenant is None:
            tenant = self._tenants[api_url] = _Tenant()
            if len(self._tenants) > _MAX_KEPT_TENANTS:
                self._forget_idle_tenants()
        self._tenants.move_to_end(api_url)
        return tenant

    def _forget_idle_tenants(self) -> None:
        """Forget the least recently used tenants with no verifier and no ended session, down to the bound."""
        in_use = {verifier.settings.api_url for verifier in self._verifiers.values()}
        in_use.update(verifier.settings.api_url for verifier, _ in self._closing.values())
        for api_url in list(self._tenants):
            if len(self._tenants) <= _MAX_KEPT_TENANTS:
                return
            if api_url not in in_use and not self._tenants[api_url].ended:
                del self._tenants[api_url]

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
        previous = self._closing.pop(name, None)
        if previous is not None:  # the name's settings changed while the one let go before waited
            self._close_now(*previous)
        # A request that holds it may still be waiting on its key store: close it once that is surely over.
        handle = asyncio.get_running_loop().call_later(_CLOSE_DELAY_SECONDS, self._close_later, name)
        self._closing[name] = (verifier, handle)
        while len(self._closing) > self.max_verifiers:  # projects taking turns must not pile verifiers up
            self._close_now(*self._closing.popitem(last=False)[1])

    def _close_later(self, name: str) -> None:
        closing = self._closing.pop(name, None)
        if closing is not None:
            self._close_now(*closing)

    def _close_now(self, verifier: TokenVerifier, handle: asyncio.TimerHandle) -> None:
        """Close a verifier let go, keeping its key set and last fetch time for the project's next verifier."""
        handle.cancel()
        tenant = self._tenant(verifier.settings.api_url)
        seed = verifier.key_store.seed()
        if tenant.seed is None or seed.last_attempt >= tenant.seed.last_attempt:
            tenant.seed = seed
        close = asyncio.ensure_future(verifier.close())
        self._closes.add(close)
        close.add_done_callback(self._closes.discard)
