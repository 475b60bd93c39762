"""FakeHanko's sessions, and ``/sessions/validate`` answered from them as Hanko's backend answers."""

from __future__ import annotations

import dataclasses
import datetime
import re
import time
from collections.abc import Mapping
from typing import Any

__all__ = ["FakeSession", "open_session", "rfc3339", "validation_answer"]

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
_NIL_UUID = "00000000-0000-0000-0000-000000000000"
_GO_ZERO_TIME = "0001-01-01T00:00:00Z"
# The registered claims (jwx's, never among its private claims) and those Hanko names itself (dto.GetClaimsFromToken).
_NOT_CUSTOM = frozenset({"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "email", "username", "session_id"})


def rfc3339(seconds: float) -> str:
    """A time as Go's ``time.Time`` writes it in JSON: RFC 3339, UTC, nanoseconds without trailing zeros."""
    moment = datetime.datetime.fromtimestamp(seconds, tz=datetime.timezone.utc)
    fraction = f"{moment.microsecond:06d}000".rstrip("0")
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + (f".{fraction}" if fraction else "") + "Z"


@dataclasses.dataclass
class FakeSession:
    """A session as Hanko stores it (times in Unix seconds)."""

    id: str
    user_id: str
    created_at: float
    expires_at: float
    last_used: float

    def as_webhook_data(self) -> dict[str, Any]:
        """The session as Hanko's ``session.*`` webhooks carry it."""
        times = {"created_at": self.created_at, "updated_at": self.last_used, "expires_at": self.expires_at}
        return {
            "id": self.id,
            "user_id": self.user_id,
            "user_agent": "Mozilla/5.0 (FakeHanko)",
            "ip_address": "127.0.0.1",
            **{name: rfc3339(value) for name, value in times.items()},
            "last_used": rfc3339(self.last_used),
        }


def open_session(sessions: dict[str, FakeSession], session: FakeSession, limit: int) -> list[FakeSession]:
    """Store ``session`` as Hanko does when it makes one; the user's sessions it deleted to stay within ``limit``.

    Hanko lists the user's live sessions newest first and, when there are ``limit`` or more, deletes
    all from the ``limit``-th on (``hook_issue_session.go``, ``session_admin.go``), before storing the new one.
    """
    now = time.time()
    order = {session_id: position for position, session_id in enumerate(sessions)}
    live = sorted(
        (other for other in sessions.values() if other.user_id == session.user_id and other.expires_at > now),
        key=lambda other: (other.created_at, order[other.id]),
        reverse=True,
    )
    deleted = live[limit - 1 :] if len(live) >= limit else []
    for other in deleted:
        del sessions[other.id]
    sessions[session.id] = session
    return deleted


def validation_answer(
    sessions: Mapping[str, FakeSession], claims: Mapping[str, Any], idle_timeout: float | None, *, renew: bool
) -> tuple[int, dict[str, Any], str | None]:
    """Hanko's status and answer for a verified token's ``claims``, and the id of a session found idle-expired.

    A token whose claims are not a session's (``sub`` or ``session_id`` present and not a UUID, ``email``
    not an object) is a 400; an unknown session, or none named (no ``session_id``), is
    ``{"is_valid": false}``; ``renew`` (``POST``) moves the session's last use.
    """
    subject, session_id = claims.get("sub", ""), claims.get("session_id")
    if not isinstance(subject, str):
        return 200, {"is_valid": False}, None  # jwx cannot read such a token: it does not verify
    for name, value in (("sub", subject or None), ("session_id", session_id)):
        if value is not None and not (isinstance(value, str) and _UUID.fullmatch(value)):
            return 400, {"code": 400, "message": f"failed to parse token claims: {name!r} is not a uuid"}, None
    if "email" in claims and not isinstance(claims["email"], dict):
        return 400, {"code": 400, "message": "failed to parse token claims: 'email' is malformed"}, None
    # No session_id: Hanko looks up the nil UUID, finds no session, and says so.
    session = sessions.get(session_id) if isinstance(session_id, str) else None
    now = time.time()
    if session is None:
        return 200, {"is_valid": False}, None
    if idle_timeout is not None and now - session.last_used > idle_timeout:
        return 200, {"is_valid": False}, session.id  # Hanko deletes it then and there
    if renew:
        session.last_used = now
    answer: dict[str, Any] = {
        "is_valid": True,
        "claims": hanko_claims(claims),
        "expiration_time": _time_claim(claims, "exp"),
        "user_id": subject or _NIL_UUID,
    }
    if idle_timeout is not None:
        idle_expires_at = session.last_used + idle_timeout
        answer["idle_expires_at"] = rfc3339(min(idle_expires_at, claims.get("exp", idle_expires_at)))
    return 200, answer, None


def hanko_claims(claims: Mapping[str, Any]) -> dict[str, Any]:
    """A token's claims as Hanko's ``/sessions/validate`` shows them (``dto.Claims``): never ``nbf`` nor ``jti``."""
    shown: dict[str, Any] = {
        "subject": claims.get("sub") or _NIL_UUID,
        "expiration": _time_claim(claims, "exp"),
        "session_id": claims.get("session_id") or _NIL_UUID,
    }
    if "iat" in claims:
        shown["issued_at"] = _time_claim(claims, "iat")
    audience = claims.get("aud")
    audience = [audience] if isinstance(audience, str) else audience
    if audience:
        shown["audience"] = audience
    if claims.get("iss"):
        shown["issuer"] = claims["iss"]
    if isinstance(claims.get("email"), dict):
        email = claims["email"]
        shown["email"] = {
            "address": email.get("address", ""),
            "is_primary": email.get("is_primary", False),
            "is_verified": email.get("is_verified", False),
        }
    if isinstance(claims.get("username"), str):
        shown["username"] = claims["username"]
    shown.update({name: value for name, value in claims.items() if name not in _NOT_CUSTOM})
    return shown


def _time_claim(claims: Mapping[str, Any], name: str) -> str:
    value = claims.get(name)
    return rfc3339(value) if isinstance(value, (int, float)) else _GO_ZERO_TIME
