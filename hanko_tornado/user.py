"""The user a verified Hanko session token speaks for."""

from __future__ import annotations

import dataclasses
import datetime
import types
from collections.abc import Mapping
from typing import Any

__all__ = ["HankoUser"]


@dataclasses.dataclass(frozen=True, slots=True)
class HankoUser:
    """Who sent the request, read from the verified token's claims.

    ``claims`` is a read-only view of every claim, custom claims included; the
    other attributes are read from it when asked for (a user is made for every
    token verified, and most handlers only need ``id``).
    """

    id: str
    claims: Mapping[str, Any] = dataclasses.field(repr=False)

    @classmethod
    def from_claims(cls, claims: dict[str, Any]) -> HankoUser:
        """Build a user from verified claims (``sub`` and ``exp`` already checked).

        The user takes ``claims`` over: the caller must not change it afterwards.
        """
        return cls(claims["sub"], types.MappingProxyType(claims))

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
        return tuple(a for a in amr if isinstance(a, str)) if isinstance(amr, list) else ()

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
