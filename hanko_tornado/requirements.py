"""Requirements beyond "a session": who the user must be, and how and how recently they must have logged in.

Requirements are small immutable values that compose with ``&`` and ``|``.
Declare one on a handler class (``hanko_requires = email_verified``), and
replace it for one HTTP method with ``@requires(passkey & max_age(300))``.
The mixin checks them after authentication, on every request (remembered
tokens too), from the verified claims only.  A requirement on who the user is
(a claim, a verified email, a callable) answers 403 ``insufficient_scope``
(RFC 6750); one on how or how recently they logged in (``amr``, the age of
``iat``) answers 401 ``insufficient_user_authentication`` (RFC 9470), which a
new login can meet.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
import re
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from hanko_tornado.errors import InsufficientScopeError, InsufficientUserAuthenticationError, RequirementError
from hanko_tornado.user import HankoUser

#: The clock ``enforce`` reads the age of a login against (Unix seconds); tests set another.
_now: Callable[[], float] = time.time

__all__ = [
    "Requirement",
    "Unmet",
    "all_of",
    "amr",
    "any_of",
    "claim_contains",
    "claim_equals",
    "claim_in",
    "email_verified",
    "max_age",
    "passkey",
    "requirement_for",
    "requires",
    "user_passes",
]

_Method = TypeVar("_Method", bound=Callable[..., Any])
# What @requires sets on a handler method: the method is not wrapped, so it stays what it was (async too).
_ATTRIBUTE = "hanko_requires"
_UNDECLARED = object()
_MISSING = object()
# An amr value must fit in a quoted acr_values list: printable ASCII, no space, quote or backslash (RFC 6749 NQCHAR).
_METHOD_NAME = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")


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
class _LoginMethod(Requirement):
    description: str
    methods: tuple[str, ...]

    def unmet(self, user: HankoUser, now: float, leeway: float) -> Unmet | None:
        used = user.claims.get("amr")
        if type(used) is tuple:
            for method in used:
                if type(method) is str and method in self.methods:
                    return None
        return Unmet(self.description, True, self.methods)


@dataclasses.dataclass(frozen=True, slots=True)
class _MaxAge(Requirement):
    description: str
    seconds: int

    def unmet(self, user: HankoUser, now: float, leeway: float) -> Unmet | None:
        issued_at: Any = user.claims.get("iat")  # Hanko issues a new token at each login: iat is when it happened
        if type(issued_at) in (int, float) and now - issued_at <= self.seconds + leeway:
            return None
        return Unmet(self.description, True, max_age=self.seconds)


@dataclasses.dataclass(frozen=True, slots=True)
class _Claim(Requirement):
    description: str
    path: tuple[str, ...]
    values: tuple[Any, ...]
    contains: bool = False

    def unmet(self, user: HankoUser, now: float, leeway: float) -> Unmet | None:
        value: Any = user.claims
        for part in self.path:
            value = value.get(part, _MISSING) if isinstance(value, dict) else _MISSING
        if self.contains:
            members = value.split(" ") if type(value) is str else value if type(value) is tuple else ()
            met = any(_same(member, self.values[0]) for member in members)
        else:
            met = any(_same(value, wanted) for wanted in self.values)
        return None if met else Unmet(self.description)


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


def amr(*methods: str) -> Requirement:
    """A login with one of ``methods`` (the token's ``amr`` holds one): ``passkey``, ``pwd``, ``otp``,
    ``totp``, ``security_key``, ``ext:<provider>``.  Unmet: 401, with the methods as ``acr_values``."""
    if not methods or not all(isinstance(m, str) and _METHOD_NAME.fullmatch(m) for m in methods):
        raise ValueError(f"amr() needs login method names without spaces or quotes, got {methods!r}")
    methods = tuple(dict.fromkeys(methods))
    return _LoginMethod(f"a login with {' or '.join(methods)}", methods)


#: A login with a passkey.
passkey = amr("passkey")


def max_age(seconds: int) -> Requirement:
    """A login at most ``seconds`` ago: the token's ``iat``, plus the settings' ``leeway`` for clock skew.

    A token without ``iat`` does not meet it.  Unmet: 401, with ``max_age``.
    """
    if type(seconds) is not int or seconds < 0:
        raise ValueError(f"max_age() needs a whole number of seconds of at least 0, got {seconds!r}")
    return _MaxAge(f"a login within the last {seconds} seconds", seconds)


#: A verified primary email address (``email.is_verified``).
email_verified: Requirement = _UserCheck("a verified email address", lambda user: user.email_verified)


def claim_equals(name: str | Sequence[str], value: Any) -> Requirement:
    """The claim ``name`` (or, for a sequence of names, the nested member) equals ``value``, a JSON scalar."""
    return _claim(name, "equals", (value,))


def claim_in(name: str | Sequence[str], *values: Any) -> Requirement:
    """The claim ``name`` equals one of ``values`` (JSON scalars)."""
    if not values:
        raise ValueError("claim_in() needs at least one value")
    return _claim(name, "is one of", values)


def claim_contains(name: str | Sequence[str], value: Any) -> Requirement:
    """The claim ``name`` is an array that holds ``value``, or a space-separated string (as OAuth's ``scope``)
    with ``value`` as one of its words."""
    return _claim(name, "contains", (value,))


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


def _same(claim: Any, wanted: Any) -> bool:
    """JSON equality: ``true`` is not ``1``, and no number equals a string."""
    return claim == wanted and (type(claim) is bool) == (type(wanted) is bool)


def _claim(name: str | Sequence[str], test: str, values: tuple[Any, ...]) -> Requirement:
    path = (name,) if isinstance(name, str) else tuple(name)
    if not path or not all(isinstance(part, str) and part for part in path):
        raise ValueError(f"a claim is named by a string, or a sequence of them for a nested member; got {name!r}")
    for value in values:
        if value is not None and type(value) not in (str, int, float, bool):
            raise TypeError(f"claims are compared with JSON scalars (str, int, float, bool, None), got {value!r}")
        if type(value) is float and not math.isfinite(value):
            raise ValueError(f"no claim equals {value!r}")
    subscripts = "".join(f"[{json.dumps(part)}]" for part in path)
    description = f"claims{subscripts} {test} {', '.join(json.dumps(value) for value in values)}"
    return _Claim(description, path, values, contains=test == "contains")
