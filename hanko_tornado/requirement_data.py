"""Requirements that need data from elsewhere (I/O) before they can be checked.

:meth:`Requirement.unmet <hanko_tornado.requirement_core.Requirement.unmet>` is
synchronous: it reads what it needs from the user.  A
:class:`LoadingRequirement` also says how to fetch what it needs first; the
mixin awaits :func:`data_to_load` for the request's requirement before it
checks it, so such requirements compose with ``&`` and ``|`` like any other.
A load that finds what it needs remembered returns ``None``: nothing is awaited.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterator
from typing import Any

from hanko_tornado.requirement_core import Requirement
from hanko_tornado.user import HankoUser

__all__ = ["LoadingRequirement", "data_to_load"]

_MAX_REMEMBERED = 10_000
# Each requirement's loaders, by identity (hashing a requirement walks its whole tree); the requirement is
# kept alongside, so its id is never reused while remembered.
_LOADERS: dict[int, tuple[Requirement, tuple[LoadingRequirement, ...]]] = {}


class LoadingRequirement(Requirement):
    """A requirement whose :meth:`unmet` needs data that :meth:`load` fetches first, per request."""

    __slots__ = ()

    def load(self, user: HankoUser, handler: Any) -> Awaitable[None] | None:
        """Fetch what :meth:`unmet` needs for ``user`` on ``handler``'s request; ``None`` when already at hand.

        Raise a :class:`~hanko_tornado.errors.HankoError` (a 503, say) when it cannot be had.
        """
        raise NotImplementedError


def data_to_load(requirement: Requirement | None, user: HankoUser, handler: Any) -> Awaitable[None] | None:
    """What to await before ``requirement`` is checked for ``user``; ``None`` when nothing (the usual case)."""
    if requirement is None:
        return None
    remembered = _LOADERS.get(id(requirement))
    if remembered is None:
        if len(_LOADERS) >= _MAX_REMEMBERED:
            _LOADERS.clear()
        remembered = _LOADERS[id(requirement)] = (requirement, tuple(_loading(requirement)))
    loaders = remembered[1]
    if not loaders:
        return None
    if len(loaders) == 1:  # the usual case, without a list
        return loaders[0].load(user, handler)
    pending = [loading for loader in loaders if (loading := loader.load(user, handler)) is not None]
    if not pending:
        return None
    return pending[0] if len(pending) == 1 else _all(pending)


async def _all(pending: list[Awaitable[None]]) -> None:
    # One after the other, in the request's own task: gather would run each in a task of its own, and what a
    # load sets in a context variable (as the private-metadata checks do) would be lost to the request.
    for loading in pending:
        await loading


def _loading(requirement: Requirement) -> Iterator[LoadingRequirement]:
    if isinstance(requirement, LoadingRequirement):
        yield requirement
    for part in getattr(requirement, "requirements", ()):  # all_of / any_of
        yield from _loading(part)
