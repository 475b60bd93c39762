"""Requirements on a user's private metadata (roles), read through the admin API.

Tokens never carry private metadata (Hanko's JWT templates see public and
unsafe metadata only), so these requirements fetch it, once per user per
``metadata_ttl`` (see :mod:`hanko_tornado.admin.metadata_cache`), and compose
with the others::

    class AdminHandler(HankoAuthMixin, CorsHandler):
        hanko_requires = passkey & private_metadata_has("roles", "admin")

Unmet: 403 ``insufficient_scope``.  When the admin API is down and nothing
is remembered: 503 (fails closed).  With ``hanko_projects``, the admin API is
the ``hanko=`` project's: a token another project verified is never looked up
there (a project's owner can create a user under any id), and is unmet.
"""

from __future__ import annotations

import contextvars
import dataclasses
import inspect
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from hanko_tornado.admin.errors import AdminUnavailableError
from hanko_tornado.admin.metadata_cache import metadata_cache_for
from hanko_tornado.requirement_data import LoadingRequirement
from hanko_tornado.requirements import Unmet
from hanko_tornado.settings import HankoSettings
from hanko_tornado.user import FrozenDict, HankoUser

__all__ = ["private_metadata_has", "private_metadata_passes"]

# The private metadata loaded for this request's user (``None``: a user of a project the admin API does not
# serve): set by load() in the request's task, read by unmet().
_LOADED: contextvars.ContextVar[tuple[str, FrozenDict | None] | None] = contextvars.ContextVar(
    "hanko_private_metadata", default=None
)


@dataclasses.dataclass(frozen=True, slots=True)
class _PrivateMetadataCheck(LoadingRequirement):
    description: str
    predicate: Callable[[Mapping[str, Any]], bool]

    def load(self, user: HankoUser, handler: Any) -> Awaitable[None] | None:
        loaded = _LOADED.get()
        if loaded is not None and loaded[0] == user.id:
            return None
        if _from_another_project(handler):
            _LOADED.set((user.id, None))
            return None
        cache = metadata_cache_for(handler.application)
        remembered = cache.fresh(user.id)
        if remembered is not None:
            _LOADED.set((user.id, remembered))
            return None
        return _fetch(cache.private_metadata(user.id), user.id)

    def unmet(self, user: HankoUser, now: float, leeway: float) -> Unmet | None:
        loaded = _LOADED.get()
        if loaded is None or loaded[0] != user.id:  # checked without load(): never let anyone in
            raise AdminUnavailableError("private metadata was not loaded for this request")
        if loaded[1] is None:
            return Unmet(self.description)
        result = self.predicate(loaded[1])
        if type(result) is not bool:
            raise TypeError(f"the requirement {self.description!r} returned a {type(result).__name__}, not a bool")
        return None if result else Unmet(self.description)


def _from_another_project(handler: Any) -> bool:
    """Whether, with ``hanko_projects``, the request's token is not of the ``hanko=`` project (the admin API's)."""
    settings = handler.application.settings
    if "hanko_projects" not in settings:
        return False
    own = settings.get("hanko")
    return not isinstance(own, HankoSettings) or handler.get_hanko_verifier().settings.api_url != own.api_url


async def _fetch(loading: Awaitable[FrozenDict], user_id: str) -> None:
    _LOADED.set((user_id, await loading))


def private_metadata_has(name: str, value: str | int | bool) -> LoadingRequirement:
    """The private metadata's member ``name`` is an array holding ``value``, or equals it (a JSON scalar).

    ``private_metadata_has("roles", "admin")`` for ``{"roles": ["admin", "editor"]}`` or ``{"roles": "admin"}``.
    """
    if not isinstance(name, str) or not name:
        raise ValueError("private_metadata_has() needs a member name")
    if type(value) not in (str, int, bool):
        raise TypeError(f"private_metadata_has() compares with a string, whole number or bool, got {value!r}")

    kind = type(value)  # JSON equality: true is not 1

    def has(private: Mapping[str, Any]) -> bool:
        member = private.get(name)
        if type(member) is tuple:
            for item in member:
                if item == value and type(item) is kind:
                    return True
            return False
        return member == value and type(member) is kind

    return _PrivateMetadataCheck(f"private_metadata[{json.dumps(name)}] has {json.dumps(value)}", has)


def private_metadata_passes(
    predicate: Callable[[Mapping[str, Any]], bool], description: str | None = None
) -> LoadingRequirement:
    """``predicate(private_metadata)`` returns ``True``; it gets the user's private metadata, deeply frozen
    (objects are mappings, arrays tuples), ``{}`` for none, and must return a ``bool`` with no I/O.

    :param description: what a refused client is told is required; the function's name by default.
    """
    if not callable(predicate) or inspect.iscoroutinefunction(predicate):
        raise TypeError("private_metadata_passes() needs a plain function of the metadata that returns a bool")
    return _PrivateMetadataCheck(description or str(getattr(predicate, "__name__", predicate)), predicate)
