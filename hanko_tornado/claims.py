"""The claims a Hanko token must carry once its signature holds: its times, audience, issuer, and a session.

A NumericDate present but malformed (``null`` too) is refused, never read as absent.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any

from hanko_tornado.errors import InvalidTokenError
from hanko_tornado.numeric_date import is_numeric_date
from hanko_tornado.settings import HankoSettings

__all__ = ["check_session_claims", "check_times"]

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def check_times(claims: Mapping[str, Any], settings: HankoSettings, *, issuer: bool = True) -> float:
    """Check ``exp`` (required), ``nbf``, ``iat``, and ``aud`` and ``iss`` where configured.

    :param issuer: check ``iss`` too (Hanko's webhook tokens carry none).
    :returns: until when the token may be used (its ``exp`` plus leeway).
    :raises InvalidTokenError: naming the claim that failed.
    """
    now, leeway = time.time(), settings.leeway
    exp = _numeric_date(claims, "exp")
    if exp is None:
        raise InvalidTokenError("malformed", "missing or malformed exp")
    if now >= exp + leeway:
        raise InvalidTokenError("expired")
    nbf = _numeric_date(claims, "nbf")
    if nbf is not None and now + leeway < nbf:
        raise InvalidTokenError("not_yet_valid")
    iat = _numeric_date(claims, "iat")
    if iat is not None and now + leeway < iat:
        raise InvalidTokenError("not_yet_valid", "token issued in the future")
    if settings.audience and not _has_audience(claims.get("aud"), settings.audience):
        raise InvalidTokenError("audience")
    if issuer and settings.issuer is not None and claims.get("iss") != settings.issuer:
        raise InvalidTokenError("issuer")
    return exp + leeway


def check_session_claims(claims: Mapping[str, Any]) -> None:
    """Refuse claims that are not a login: a UUID user and session, as Hanko writes them."""
    if not (_is_uuid(claims.get("sub")) and _is_uuid(claims.get("session_id"))):
        # Hanko signs webhook tokens with the same key: only a UUID user and session make a login.
        raise InvalidTokenError("not_session")


def _is_uuid(value: Any) -> bool:
    """Whether ``value`` is a UUID string in its canonical 8-4-4-4-12 form, as Hanko writes them."""
    return isinstance(value, str) and _UUID.fullmatch(value) is not None


def _has_audience(aud: Any, accepted: tuple[str, ...]) -> bool:
    """Whether ``aud`` (one string or a list of them) names an accepted audience."""
    if isinstance(aud, str):
        return aud in accepted
    if isinstance(aud, list):
        for audience in aud:
            if isinstance(audience, str) and audience in accepted:
                return True
    return False


def _numeric_date(claims: Mapping[str, Any], name: str) -> float | None:
    """The claim as a number, or ``None`` when absent; present and not a NumericDate (``null`` too) is refused."""
    if name not in claims:
        return None
    value = claims[name]
    if not is_numeric_date(value):
        raise InvalidTokenError("malformed", f"missing or malformed {name}")
    return value
