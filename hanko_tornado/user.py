"""The user a verified Hanko session token speaks for."""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping
from typing import Any, NoReturn

__all__ = ["FrozenDict", "HankoUser", "freeze"]


class FrozenDict(dict[str, Any]):
    """A ``dict`` that refuses to be changed: a JSON object of verified claims.

    Being a ``dict``, it is written by ``json.dumps`` and Tornado's ``write``
    as it is.  It is hashable when its values are, and equal to any mapping
    with the same items; ``copy()`` and ``|`` give a plain ``dict`` to change.
    """

    __slots__ = ()

    def _refuse(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError("verified claims cannot be changed")

    __setitem__ = __delitem__ = __ior__ = clear = pop = popitem = setdefault = update = _refuse

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(frozenset(self.items()))

    def __reduce__(self) -> tuple[type[FrozenDict], tuple[dict[str, Any]]]:
        # Copies and pickles are built whole, not filled item by item (which is refused).
        return FrozenDict, (dict(self),)


_SCALARS = frozenset({str, int, float, bool, type(None)})


def freeze(value: Any) -> Any:
    """``value`` with every mapping in it made a :class:`FrozenDict` and every list or tuple a tuple."""
    kind = type(value)
    # Exact types first: claims come from JSON, and most of them are scalars.
    if kind in _SCALARS:
        return value
    if kind is dict or (kind is not list and isinstance(value, Mapping)):
        return FrozenDict({name: freeze(item) for name, item in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple([freeze(item) for item in value])
    return value


@dataclasses.dataclass(frozen=True, slots=True)
class HankoUser:
    """Who sent the request, read from the verified token's claims.

    ``claims`` holds every claim, custom claims included, deeply frozen: JSON
    objects are :class:`FrozenDict`, arrays are tuples, so that no handler can
    change what later requests with the same token see.  It is written as JSON
    as it is (``self.write({"claims": user.claims})``).  Users are equal when
    their claims are, and hashable.  The other attributes are read from the
    claims when asked for (a user is made for every token verified, and most
    handlers only need ``id``).
    """

    id: str
    claims: Mapping[str, Any] = dataclasses.field(repr=False, hash=False)

    def __post_init__(self) -> None:
        # Once per verified token: a remembered token gets the same user back.
        object.__setattr__(self, "claims", freeze(self.claims))

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any]) -> HankoUser:
        """Build a user from verified claims (``sub`` and ``exp`` already checked); ``claims`` is copied, frozen."""
        return cls(claims["sub"], claims)

    @property
    def session_id(self) -> str | None:
        """The ``session_id`` claim: the Hanko session this token belongs to."""
        return _text(self.claims.get("session_id"))

    @property
    def email(self) -> str | None:
        """The primary email address, when the user has one."""
        return _text(self._email.get("address"))

    @property
    def email_verified(self) -> bool:
        """Whether Hanko has verified the primary email address."""
        return self._email.get("is_verified") is True

    @property
    def username(self) -> str | None:
        """The username, when the user has set one."""
        return _text(self.claims.get("username"))

    @property
    def amr(self) -> tuple[str, ...]:
        """How the user authenticated, such as ``("passkey",)``."""
        amr = self.claims.get("amr")
        return tuple(a for a in amr if isinstance(a, str)) if isinstance(amr, tuple) else ()

    @property
    def expires_at(self) -> datetime.datetime:
        """When the token expires (``exp``), in UTC."""
        return datetime.datetime.fromtimestamp(self.claims["exp"], tz=datetime.timezone.utc)

    @property
    def _email(self) -> Mapping[str, Any]:
        email = self.claims.get("email")
        return email if isinstance(email, dict) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None
