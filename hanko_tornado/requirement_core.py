"""What a requirement is, and how requirements combine: ``&``, ``|``, :func:`all_of`, :func:`any_of`.

A :class:`Requirement` answers :meth:`~Requirement.unmet` from the verified
claims only; :meth:`~Requirement.enforce` turns an unmet one into its refusal:
403 ``insufficient_scope`` (RFC 6750) for who the user is, 401
``insufficient_user_authentication`` (RFC 9470) for how or how recently they
logged in, which a new login can meet.  :func:`requires` declares one on a
handler method, and :func:`requirement_for` finds what a handler requires.
The requirements themselves (``passkey``, ``max_age``, claims) are built in
:mod:`hanko_tornado.requirements`.
"""

from __future__ import annotations

import dataclasses
import inspect
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from hanko_tornado.errors import InsufficientScopeError, InsufficientUserAuthenticationError, RequirementError
from hanko_tornado.user import HankoUser

#: The clock ``enforce`` reads the age of a login against (Unix seconds); tests set another.
_now: Callable[[], float] = time.time

__all__ = ["Requirement", "Unmet", "all_of", "any_of", "requirement_for", "requires", "user_passes"]

_Method = TypeVar("_Method", bound=Callable[..., Any])
# What @requires sets on a handler method: the method is not wrapped, so it stays what it was (async too).
_ATTRIBUTE = "hanko_requires"
_UNDECLARED = object()


@dataclasses.dataclass(frozen=True, slots=True)
class Unmet:
    """Why a requirement is not met: which one (its description), and whether a new login could meet it.

    ``acr_values`` (login methods, one of which will do) and ``max_age`` (seconds) say what that new login must be.
    """

    requirement: str
    step_up: bool = False
    acr_values: tuple[str, ...] = ()
    max_age: int | None = None

    def error(self) -> RequirementError:
        """The refusal this answers with."""
        if self.step_up:
            return InsufficientUserAuthenticationError(self.requirement, self.acr_values, self.max_age)
        return InsufficientScopeError(self.requirement)

    def _and(self, other: Unmet) -> Unmet:
        """Both unmet step-ups in one login: methods that meet both (else all of them), the shorter age."""
        methods = tuple(m for m in self.acr_values if m in other.acr_values) or _union(
            self.acr_values, other.acr_values
        )
        ages = [age for age in (self.max_age, other.max_age) if age is not None]
        description = f"{_grouped(self.requirement)} and {_grouped(other.requirement)}"
        return Unmet(description, True, methods, min(ages) if ages else None)


class Requirement:
    """Something the authenticated user must meet; combine with ``&`` (both) and ``|`` (either).

    Immutable and hashable; holds nothing from any token.  ``description`` says what is required, in words
    a refused client is shown, built from the declaration only.  Subclasses implement :meth:`unmet`.
    """

    __slots__ = ()
    description: str

    def unmet(self, user: HankoUser, now: float, leeway: float) -> Unmet | None:
        """``None`` when ``user`` meets this requirement at ``now`` (Unix seconds), else why not.

        ``leeway`` is the clock skew allowed on the age of the login, in seconds.
        """
        raise NotImplementedError

    def enforce(self, user: HankoUser, *, leeway: float = 0.0, now: float | None = None) -> None:
        """Return when ``user`` meets this requirement.

        :raises InsufficientScopeError: who the user is does not meet it (403).
        :raises InsufficientUserAuthenticationError: how or when they logged in does not; a new login can (401).
        """
        unmet = self.unmet(user, _now() if now is None else now, leeway)
        if unmet is not None:
            raise unmet.error()

    def __and__(self, other: Requirement | Callable[[HankoUser], bool]) -> Requirement:
        return all_of(self, other)

    def __rand__(self, other: Callable[[HankoUser], bool]) -> Requirement:
        return all_of(other, self)

    def __or__(self, other: Requirement | Callable[[HankoUser], bool]) -> Requirement:
        return any_of(self, other)

    def __ror__(self, other: Callable[[HankoUser], bool]) -> Requirement:
        return any_of(other, self)

    def __str__(self) -> str:
        return self.description


@dataclasses.dataclass(frozen=True, slots=True)
class _UserCheck(Requirement):
    description: str
    predicate: Callable[[HankoUser], bool]

    def unmet(self, user: HankoUser, now: float, leeway: float) -> Unmet | None:
        result = self.predicate(user)
        if type(result) is not bool:  # a coroutine or any other truthy object must never let a user in
            raise TypeError(f"the requirement {self.description!r} returned a {type(result).__name__}, not a bool")
        return None if result else Unmet(self.description)


@dataclasses.dataclass(frozen=True, slots=True)
class _AllOf(Requirement):
    description: str
    requirements: tuple[Requirement, ...]

    def unmet(self, user: HankoUser, now: float, leeway: float) -> Unmet | None:
        step_up = None
        for requirement in self.requirements:
            unmet = requirement.unmet(user, now, leeway)
            if unmet is not None:
                if not unmet.step_up:
                    return unmet  # who the user is: no new login would help
                step_up = unmet if step_up is None else step_up._and(unmet)
        return step_up


@dataclasses.dataclass(frozen=True, slots=True)
class _AnyOf(Requirement):
    description: str
    requirements: tuple[Requirement, ...]

    def unmet(self, user: HankoUser, now: float, leeway: float) -> Unmet | None:
        step_up = None
        for requirement in self.requirements:
            unmet = requirement.unmet(user, now, leeway)
            if unmet is None:
                return None
            if not unmet.step_up:
                continue
            if step_up is None:
                step_up = unmet  # the first alternative a new login can meet, in the order declared
            elif unmet.max_age == step_up.max_age and unmet.acr_values and step_up.acr_values:
                methods = _union(step_up.acr_values, unmet.acr_values)  # alternatives that differ in method only
                description = f"{_grouped(step_up.requirement)} or {_grouped(unmet.requirement)}"
                step_up = Unmet(description, True, methods, step_up.max_age)
        return step_up or Unmet(self.description)


def user_passes(predicate: Callable[[HankoUser], bool], description: str | None = None) -> Requirement:
    """``predicate(user)`` returns ``True``: for anything else, read from ``user.claims``, with no I/O.

    It must return a ``bool`` (anything else is a ``TypeError``, a 500).  Unmet: 403.

    :param description: what a refused client is told is required; the function's name by default.
    """
    if not callable(predicate) or inspect.iscoroutinefunction(predicate):
        raise TypeError("user_passes() needs a plain function of the user that returns a bool")
    return _UserCheck(description or str(getattr(predicate, "__name__", predicate)), predicate)


def all_of(*requirements: Requirement | Callable[[HankoUser], bool]) -> Requirement:
    """Every one of ``requirements``; plain functions are read as :func:`user_passes`."""
    return _combined(_AllOf, requirements)


def any_of(*requirements: Requirement | Callable[[HankoUser], bool]) -> Requirement:
    """At least one of ``requirements``; plain functions are read as :func:`user_passes`.

    When none is met and a new login could meet one, the answer asks for the first such one (in the order
    given), with the login methods of alternatives that differ in method only.
    """
    return _combined(_AnyOf, requirements)


def requires(*requirements: Requirement | Callable[[HankoUser], bool]) -> Callable[[_Method], _Method]:
    """Declare what one HTTP method of a handler requires, instead of the class's ``hanko_requires``.

    ``@requires(a, b)`` requires both; ``@requires()`` only a session.  The method is not wrapped: stack it
    with Tornado's decorators in any order.  Like any decorator, it is not inherited by an override.
    """
    requirement = all_of(*requirements) if requirements else None

    def declare(method: _Method) -> _Method:
        setattr(method, _ATTRIBUTE, requirement)
        return method

    return declare


def requirement_for(handler: object, method: str) -> Requirement | None:
    """What ``handler`` requires for ``method``: the method's :func:`requires`, else its ``hanko_requires``.

    :raises TypeError: ``hanko_requires`` is set to something else than a :class:`Requirement`.
    """
    declared = getattr(getattr(type(handler), method.lower(), None), _ATTRIBUTE, _UNDECLARED)
    if declared is _UNDECLARED:
        declared = getattr(handler, "hanko_requires", None)
    if declared is not None and not isinstance(declared, Requirement):
        raise TypeError(f"hanko_requires must be a Requirement (wrap a function in user_passes()), got {declared!r}")
    return declared


def _combined(
    kind: type[_AllOf] | type[_AnyOf], given: Iterable[Requirement | Callable[[HankoUser], bool]]
) -> Requirement:
    flat: list[Requirement] = []
    for requirement in given:
        if not isinstance(requirement, Requirement):
            requirement = user_passes(requirement)
        flat.extend(requirement.requirements if type(requirement) is kind else (requirement,))
    if not flat:
        raise ValueError(f"{kind.__name__[1:].lower()} needs at least one requirement")
    if len(flat) == 1:
        return flat[0]
    joint = " and " if kind is _AllOf else " or "
    return kind(joint.join(_grouped(r.description) for r in flat), tuple(flat))


def _grouped(description: str) -> str:
    return f"({description})" if " and " in description or " or " in description else description


def _union(first: tuple[str, ...], second: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(first + second))
