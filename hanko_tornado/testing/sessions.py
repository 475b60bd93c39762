"""FakeHanko's sessions, and ``/sessions/validate`` answered from them as Hanko's backend answers."""

from __future__ import annotations

import dataclasses
import datetime
import re
import time
from collections.abc import Mapping
from typing import Any

__all__ = ["FakeSession", "rfc3339", "validation_answer"]

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
_CLAIM_NAMES = {"sub": "subject", "iat": "issued_at", "exp": "expiration", "aud": "audience", "iss": "issuer"}


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


def validation_answer(
    sessions: Mapping[str, FakeSession], claims: Mapping[str, Any], idle_timeout: float | None, *, renew: bool
) -> tuple[int, dict[str, Any], str | None]:
    """Hanko's status and answer for a verified token's ``claims``, and the id of a session found idle-expired.

    A token whose claims are not a session's (``sub`` or ``session_id`` not a UUID, ``email`` not an object)
    is a 400; an unknown session is ``{"is_valid": false}``; ``renew`` (``POST``) moves the session's last use.
    """
    for name in ("sub", "session_id"):
        if not (isinstance(claims.get(name), str) and _UUID.fullmatch(claims[name])):
            return 400, {"code": 400, "message": f"failed to parse token claims: {name!r} is not a uuid"}, None
    if "email" in claims and not isinstance(claims["email"], dict):
        return 400, {"code": 400, "message": "failed to parse token claims: 'email' is malformed"}, None
    session = sessions.get(claims["session_id"])
    now = time.time()
    if session is None:
        return 200, {"is_valid": False}, None
    if idle_timeout is not None and now - session.last_used > idle_timeout:
        return 200, {"is_valid": False}, session.id  # Hanko deletes it then and there
    if renew:
        session.last_used = now
    names = {_CLAIM_NAMES.get(name, name): value for name, value in claims.items()}
    for name in ("issued_at", "expiration"):
        if name in names:
            names[name] = rfc3339(names[name])
    answer: dict[str, Any] = {
        "is_valid": True,
        "claims": names,
        "expiration_time": rfc3339(claims["exp"]),
        "user_id": claims["sub"],
    }
    if idle_timeout is not None:
        answer["idle_expires_at"] = rfc3339(min(session.last_used + idle_timeout, claims["exp"]))
    return 200, answer, None
