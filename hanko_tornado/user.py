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

    ``claims`` is a read-only view of every claim, custom claims included.
    """

    id: str
    session_id: str | None
    email: str | None
    email_verified: bool
    username: str | None
    amr: tuple[str, ...]
    expires_at: datetime.datetime
    claims: Mapping[str, Any] = dataclasses.field(repr=False)

    @classmethod
    def from_claims(cls, claims: dict[str, Any]) -> HankoUser:
        """Build a user from verified claims (``sub`` and ``exp`` already checked).

        The user takes ``claims`` over: the caller must not change it afterwards.
        """
        email = claims.get("email")
        email = email if isinstance(email, dict) else {}
        address = email.get("address")
        amr = claims.get("amr")
        return cls(
            id=claims["sub"],
            session_id=_text(claims.get("session_id")),
            email=_text(address),
            email_verified=email.get("is_verified") is True,
            username=_text(claims.get("username")),
            amr=tuple(a for a in amr if isinstance(a, str)) if isinstance(amr, list) else (),
            expires_at=datetime.datetime.fromtimestamp(claims["exp"], tz=datetime.timezone.utc),
            claims=types.MappingProxyType(claims),
        )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None
