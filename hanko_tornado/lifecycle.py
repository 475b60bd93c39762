"""An application's Hanko objects: one owner per application, each object made on first use, all closed at once.

The application's settings are its inputs (``hanko=``, and a ``hanko_verifier=``
or ``hanko_projects=`` a user made); what is made from them is kept by one
:class:`ApplicationState` per application (held weakly: it goes with the
application), never written back into the settings.  The verifier is
:func:`verifier_for`'s; other modules keep their objects there as *parts* (the
webhooks' record of deliveries, the admin API's client and caches).
:func:`close`, awaited once on shutdown, closes all of them.
"""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

import tornado.web

from hanko_tornado.backends import close_cache
from hanko_tornado.settings import HankoSettings
from hanko_tornado.tokens import TokenVerifier

__all__ = ["ApplicationState", "close", "state_of", "verifier_for"]

_Part = TypeVar("_Part")


class ApplicationState:
    """The Hanko objects of one application, from :func:`state_of`: its verifier and the parts other modules keep."""

    __slots__ = ("_parts", "verifier")

    def __init__(self) -> None:
        #: The application's verifier once :func:`verifier_for` made (or found) it; ``None`` before, and again
        #: when set so: the next use makes a new one (tests that start a process afresh do).
        self.verifier: TokenVerifier | None = None
        self._parts: dict[type, Any] = {}

    def part(self, kind: type[_Part], make: Callable[[], _Part]) -> _Part:
        """The application's ``kind`` of object, made by ``make()`` on first use."""
        part: _Part | None = self._parts.get(kind)
        if part is None:
            part = self._parts[kind] = make()
        return part

    def existing(self, kind: type[_Part]) -> _Part | None:
        """The application's ``kind`` of object if one was made, without making one."""
        part: _Part | None = self._parts.get(kind)
        return part

    def provide(self, kind: type[_Part], part: _Part) -> None:
        """Use ``part`` as the application's ``kind`` of object (one built otherwise: a test's, with its clock)."""
        self._parts[kind] = part

    async def close(self) -> None:
        """Close each part that has a ``close()``, the last made first, then the verifier: all, even if one fails."""
        closers = [getattr(part, "close", None) for part in reversed(list(self._parts.values()))]
        if self.verifier is not None:
            closers.append(self.verifier.close)
        await _close_all(closer for closer in closers if closer is not None)


async def _close_all(closers: Iterable[Callable[[], Awaitable[object]]]) -> None:
    """Await every closer in turn, even after one raised: then the first failure is raised, once all ran."""
    failures: list[Exception] = []
    for closer in closers:
        try:
            await closer()
        except Exception as error:  # noqa: BLE001 - the rest must close all the same; raised below
            failures.append(error)
    if failures:
        raise failures[0]


# Keyed by a weak reference to each application, dropped with it (a WeakKeyDictionary without its Python-level
# get: this is read on every request).
_STATES: dict[weakref.ref[tornado.web.Application], ApplicationState] = {}


def _forget(application: weakref.ref[tornado.web.Application]) -> None:
    _STATES.pop(application, None)


def state_of(application: tornado.web.Application) -> ApplicationState:
    """The Hanko objects of ``application``, made (empty) on first use; they go when the application goes."""
    state = _STATES.get(weakref.ref(application))
    if state is None:
        state = _STATES[weakref.ref(application, _forget)] = ApplicationState()
    return state


def verifier_for(application: tornado.web.Application) -> TokenVerifier:
    """The application's verifier: its ``hanko_verifier`` setting, else made from ``settings["hanko"]`` on first use.

    :raises TypeError: the application has neither (``hanko=HankoSettings(...)`` is needed).
    """
    state = _STATES.get(weakref.ref(application))  # every request's path: one lookup when the verifier is there
    if state is not None and state.verifier is not None:
        return state.verifier
    state = state_of(application)
    verifier = application.settings.get("hanko_verifier")
    if verifier is None:
        settings = application.settings.get("hanko")
        if not isinstance(settings, HankoSettings):
            raise TypeError("the application needs hanko=HankoSettings(...) in its settings")
        verifier = TokenVerifier(settings)
    if not isinstance(verifier, TokenVerifier):
        raise TypeError("the 'hanko_verifier' setting must be a TokenVerifier")
    state.verifier = verifier
    return verifier


async def close(application: tornado.web.Application) -> None:
    """Close everything ``application``'s Hanko objects hold; await it once, on shutdown.

    The admin API's metadata cache and client, the verifier or the projects' verifiers (their HTTP clients, their
    listener for ended sessions), and the shared cache's connections.  What was never made is skipped (but the
    verifier, made to be closed), so it is safe on any application, with or without a ``hanko`` setting.  What is
    closed stays closed: a request after it is answered 503.  Everything is closed even when one part fails to
    close; that failure is raised afterwards.
    """
    state, given = state_of(application), application.settings.get("hanko_verifier")
    from_settings = given is None and isinstance(application.settings.get("hanko"), HankoSettings)
    if state.verifier is None and (isinstance(given, TokenVerifier) or from_settings):
        # Never used: had now and closed with the rest, so that a request after this meets it closed (503)
        # instead of making a verifier of its own that nobody closes.
        verifier_for(application)
    closers: list[Callable[[], Awaitable[object]]] = [state.close]
    projects = application.settings.get("hanko_projects")
    if projects is not None:
        closers.append(projects.close)
    hanko = application.settings.get("hanko")
    if isinstance(hanko, HankoSettings) and hanko.cache is not None:
        closers.append(lambda: close_cache(hanko.cache))  # a Redis cache's connections too
    await _close_all(closers)
