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
import json
import math
import re
from collections.abc import Sequence
from typing import Any

from hanko_tornado.requirement_core import (
    Requirement,
    Unmet,
    all_of,
    any_of,
    requirement_for,
    requires,
    user_passes,
)
from hanko_tornado.user import HankoUser

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

_MISSING = object()
# An amr value must fit in a quoted acr_values list: printable ASCII, no space, quote or backslash (RFC 6749 NQCHAR).
_METHOD_NAME = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")


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
email_verified: Requirement = user_passes(lambda user: user.email_verified, "a verified email address")


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
