"""Hanko's ``/sessions/validate``: one question about a session token, and Hanko's answer read strictly.

- ``GET`` with the token as a bearer header only reads the session (``validate``);
  ``POST`` with ``{"session_token": ...}`` also updates its last use, moving its
  idle timeout (``renew``).
- 200 says ``is_valid`` (a 200 alone does not mean valid), and for a live session
  ``claims.expiration`` (``expiration_time``, which Hanko marks deprecated, is read
  only when it is missing) and, with an idle timeout, ``idle_expires_at`` (RFC 3339).
- 400, 401, 403 and 404 are Hanko's verdict on that token: it is refused.
- Anything else (5xx, timeouts, refused connections, unreadable answers) means
  Hanko could not answer.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import re
import time
from typing import Any

from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from hanko_tornado.numeric_date import is_numeric_date
from hanko_tornado.settings import HankoSettings

__all__ = ["SESSION_ENDED", "SessionStatus", "ask_hanko", "parse_rfc3339"]

#: The reason of Hanko's ``is_valid: false``: the user logged out, or the session was deleted.
SESSION_ENDED = "session ended"

_VERDICTS = frozenset({400, 401, 403, 404})
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))"
)


def parse_rfc3339(text: Any) -> datetime.datetime:
    """A UTC ``datetime`` from an RFC 3339 time as Go writes it (nanoseconds are cut to microseconds).

    :raises ValueError: ``text`` is not such a time.
    """
    match = _RFC3339.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError("not an RFC 3339 time")
    year, month, day, hour, minute, second = (int(part) for part in match.group(1, 2, 3, 4, 5, 6))
    microsecond = int((match.group(7) or "0").ljust(6, "0")[:6])
    offset = datetime.timedelta()
    if match.group(9):
        sign = 1 if match.group(9) == "+" else -1
        offset = sign * datetime.timedelta(hours=int(match.group(10)), minutes=int(match.group(11)))
    zone = datetime.timezone(offset)
    moment = datetime.datetime(year, month, day, hour, minute, second, microsecond, tzinfo=zone)
    try:
        return moment.astimezone(datetime.timezone.utc)
    except OverflowError:  # "0001-01-01T00:00:00+01:00": before year 1 in UTC
        raise ValueError("not an RFC 3339 time datetime can hold") from None


@dataclasses.dataclass(frozen=True, slots=True)
class SessionStatus:
    """What Hanko last said about a session, and until when that answer may be used.

    ``expires_at`` and ``idle_expires_at`` are Hanko's (UTC); ``idle_expires_at``
    is ``None`` when the tenant has no idle timeout.  An app can read them from
    ``handler.hanko_session`` to warn a user before an idle logout.
    """

    session_id: str
    valid: bool
    reason: str
    good_until: float
    expires_at: datetime.datetime | None = None
    idle_expires_at: datetime.datetime | None = None

    def to_json(self) -> str:
        """The status as a shared-cache entry."""
        times = {name: _timestamp(getattr(self, name)) for name in ("expires_at", "idle_expires_at")}
        return json.dumps({"valid": self.valid, "reason": self.reason, "until": self.good_until, **times})

    @classmethod
    def from_json(cls, session_id: str, text: str) -> SessionStatus:
        """A status read back from a shared-cache entry.

        :raises ValueError: the entry is not one this module wrote.
        """
        entry = json.loads(text)
        valid, reason, until = entry["valid"], entry["reason"], entry["until"]
        if not isinstance(valid, bool) or not isinstance(reason, str) or len(reason) > 100:
            raise ValueError("bad entry")
        return cls(
            session_id,
            valid,
            reason,
            _finite(until),
            *(_from_timestamp(entry.get(name)) for name in ("expires_at", "idle_expires_at")),
        )


async def ask_hanko(
    client: AsyncHTTPClient,
    settings: HankoSettings,
    session_id: str,
    token: str,
    token_expires_at: datetime.datetime,
    *,
    renew: bool | None = None,
) -> SessionStatus:
    """Ask Hanko about one verified session token (``GET`` or, to renew it, ``POST``).

    The answer is good for ``session_check_ttl`` seconds, and never past the token's
    ``exp``, the session's expiry or its idle expiry.

    :param renew: ``POST``, moving the session's idle timeout; by default, what ``session_check`` says.

    :raises ValueError: Hanko could not answer (5xx, unreadable); transport errors raise as they come.
    """
    url = f"{settings.api_url}/sessions/validate"
    headers = {"Accept": "application/json"}
    if renew is None:
        renew = settings.session_check == "renew"
    if renew:
        method, body = "POST", json.dumps({"session_token": token})
        headers["Content-Type"] = "application/json"
    else:
        method, body = "GET", None
        headers["Authorization"] = f"Bearer {token}"
    request = HTTPRequest(
        url,
        method=method,
        body=body,
        headers=headers,
        connect_timeout=settings.session_check_timeout,
        request_timeout=settings.session_check_timeout,
        follow_redirects=False,
        decompress_response=False,
    )
    response = await client.fetch(request, raise_error=False)
    good_until = min(time.time() + settings.session_check_ttl, token_expires_at.timestamp())
    if response.code in _VERDICTS:
        return SessionStatus(session_id, False, f"refused by Hanko (HTTP {response.code})", good_until)
    if response.code != 200:
        # Tornado's own errors (599: timeout, refused connection) carry no token: only its type and text.
        raise ValueError(f"answered {response.error or f'HTTP {response.code}'}")
    answer = json.loads(response.body)
    valid = answer.get("is_valid") if isinstance(answer, dict) else None
    if not isinstance(valid, bool):
        raise ValueError("answer has no boolean is_valid")
    if not valid:
        return SessionStatus(session_id, False, SESSION_ENDED, good_until)
    claims = answer.get("claims")
    expires_at = _optional_time(claims, "expiration") if isinstance(claims, dict) else None
    expires_at = expires_at or _optional_time(answer, "expiration_time")
    idle_expires_at = _optional_time(answer, "idle_expires_at")
    for moment in (expires_at, idle_expires_at):
        if moment is not None:
            good_until = min(good_until, moment.timestamp())
    return SessionStatus(session_id, True, "session live", good_until, expires_at, idle_expires_at)


def _optional_time(answer: dict[str, Any], name: str) -> datetime.datetime | None:
    return parse_rfc3339(answer[name]) if answer.get(name) is not None else None


def _finite(value: Any) -> float:
    if not is_numeric_date(value):
        raise ValueError("not a time")
    return float(value)


def _timestamp(moment: datetime.datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()


def _from_timestamp(value: Any) -> datetime.datetime | None:
    if value is None:
        return None
    return datetime.datetime.fromtimestamp(_finite(value), tz=datetime.timezone.utc)
