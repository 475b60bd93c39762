"""Verifying Hanko session tokens: parse once, check the signature, check the claims.

A :class:`TokenVerifier` turns a token into a :class:`~hanko_tornado.user.HankoUser`
or raises :class:`~hanko_tornado.errors.InvalidTokenError`.  It parses the
compact JWS itself, once, and checks the signature with the one algorithm
that the matched key allows, so that ``alg: none``, HMAC and algorithm swaps
can never get through.  Tokens that verified once are remembered (by SHA-256)
until their ``exp`` or until their key leaves the JWKS.
"""

from __future__ import annotations

import binascii
import collections
import hashlib
import json
import sys
import time
from collections.abc import Mapping
from typing import Any, NamedTuple

import tornado.web

from hanko_tornado.errors import InvalidTokenError
from hanko_tornado.keys import KeyStore, VerificationKey
from hanko_tornado.sessions import SessionChecker
from hanko_tornado.settings import HankoSettings
from hanko_tornado.user import HankoUser

__all__ = ["CacheInfo", "TokenVerifier", "verifier_for"]

_BASE64URL_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_REFUSED_ALGORITHMS = frozenset({"none", "HS256", "HS384", "HS512"})
_LAST_NUMERIC_DATE = 253402300799  # 9999-12-31T23:59:59Z


class CacheInfo(NamedTuple):
    """Counters of the verified-token cache, as ``functools.lru_cache`` reports them."""

    hits: int
    misses: int
    maxsize: int
    currsize: int


class _VerifiedToken:
    __slots__ = ("key", "usable_until", "user")

    def __init__(self, user: HankoUser, usable_until: float, key: VerificationKey) -> None:
        self.user = user
        self.usable_until = usable_until
        self.key = key


class TokenVerifier:
    """Verifies Hanko session tokens for one application.

    :param settings: what a valid token must carry and where the keys are.
    :param key_store: where keys come from; one is made from ``settings`` by default.
    """

    def __init__(self, settings: HankoSettings, key_store: KeyStore | None = None) -> None:
        self.settings = settings
        self.key_store = key_store or KeyStore(settings)
        self.session_checker = SessionChecker(settings, self.key_store)
        self._verified: collections.OrderedDict[bytes, _VerifiedToken] = collections.OrderedDict()
        self._hits = self._misses = 0

    async def verify_token(self, token: str) -> HankoUser:
        """The user that ``token`` speaks for.

        :raises InvalidTokenError: the token is malformed, badly signed, expired or not for us.
        :raises KeysUnavailableError: no signing keys could be had to check it.
        """
        if len(token) > self.settings.max_token_bytes:
            raise InvalidTokenError("token too large")
        digest = hashlib.sha256(token.encode()).digest()
        remembered = self._remembered(digest)
        if remembered is not None:
            return remembered
        self._misses += 1
        header, signing_input, signature = _parse_compact(token)
        alg, kid = _check_header(header)
        key = await self.key_store.get_key(kid, alg)
        if key is None:
            raise InvalidTokenError("unknown signing key")
        if key.alg != alg:
            raise InvalidTokenError("algorithm does not match the key")
        if not key.verify(signing_input, signature):
            raise InvalidTokenError("bad signature")
        claims = _decode_json(signing_input.partition(b".")[2], "payload")
        self._check_claims(claims)
        user = HankoUser.from_claims(claims)
        self._remember(digest, _VerifiedToken(user, claims["exp"] + self.settings.leeway, key))
        return user

    def cache_info(self) -> CacheInfo:
        """How the verified-token cache is doing."""
        return CacheInfo(self._hits, self._misses, self.settings.token_cache_size, len(self._verified))

    async def close(self) -> None:
        """Release the key store's resources; call on shutdown."""
        await self.key_store.close()

    def remembered_user(self, token: str) -> HankoUser | None:
        """The user of ``token`` if this verifier verified it before and it is still good, else ``None``.

        Never waits: the hot path for a token seen before.
        """
        if len(token) > self.settings.max_token_bytes:
            return None
        return self._remembered(hashlib.sha256(token.encode()).digest())

    def _remembered(self, digest: bytes) -> HankoUser | None:
        entry = self._verified.get(digest)
        if entry is not None:
            key = entry.key
            if time.time() < entry.usable_until and self.key_store.peek(key.kid, key.alg) is key:
                self._verified.move_to_end(digest)
                self._hits += 1
                return entry.user
            del self._verified[digest]
        return None

    def _remember(self, digest: bytes, entry: _VerifiedToken) -> None:
        self._verified[digest] = entry
        if len(self._verified) > self.settings.token_cache_size:
            self._verified.popitem(last=False)

    def _check_claims(self, claims: dict[str, Any]) -> None:
        now, leeway = time.time(), self.settings.leeway
        exp = _numeric_date(claims, "exp")
        if exp is None:
            raise InvalidTokenError("missing or malformed exp")
        if now >= exp + leeway:
            raise InvalidTokenError("token expired")
        nbf = _numeric_date(claims, "nbf")
        if nbf is not None and now + leeway < nbf:
            raise InvalidTokenError("token not valid yet")
        iat = _numeric_date(claims, "iat")
        if iat is not None and now + leeway < iat:
            raise InvalidTokenError("token issued in the future")
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise InvalidTokenError("no subject")
        if self.settings.audience:
            aud = claims.get("aud")
            audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
            if not any(a in self.settings.audience for a in audiences if isinstance(a, str)):
                raise InvalidTokenError("wrong audience")
        if self.settings.issuer is not None and claims.get("iss") != self.settings.issuer:
            raise InvalidTokenError("wrong issuer")


def verifier_for(application: tornado.web.Application) -> TokenVerifier:
    """The application's verifier: ``settings["hanko_verifier"]``, made from ``settings["hanko"]`` on first use."""
    verifier = application.settings.get("hanko_verifier")
    if verifier is None:
        settings = application.settings.get("hanko")
        if not isinstance(settings, HankoSettings):
            raise TypeError("the application needs hanko=HankoSettings(...) in its settings")
        verifier = application.settings["hanko_verifier"] = TokenVerifier(settings)
    assert isinstance(verifier, TokenVerifier)
    return verifier


def _parse_compact(token: str) -> tuple[dict[str, Any], bytes, bytes]:
    """The header, signing input and signature of a compact JWS: three non-empty base64url parts."""
    raw = token.encode("ascii", errors="replace")  # a non-ASCII character becomes "?", which is refused below
    # Deleting the alphabet must leave exactly the two dots (a cheaper check than a regular expression).
    if raw.translate(None, _BASE64URL_ALPHABET) != b".." or raw.startswith(b".") or raw.endswith(b".") or b".." in raw:
        raise InvalidTokenError("malformed token")
    signing_input, _, signature = raw.rpartition(b".")
    header = _decode_json(signing_input.partition(b".")[0], "header", header=True)
    return header, signing_input, _b64decode(signature, "signature")


def _check_header(header: Mapping[str, Any]) -> tuple[str, str | None]:
    alg, kid = header.get("alg"), header.get("kid")
    if not isinstance(alg, str) or alg in _REFUSED_ALGORITHMS:
        raise InvalidTokenError("algorithm not allowed")
    if kid is not None and not isinstance(kid, str):
        raise InvalidTokenError("malformed key id")
    if "crit" in header:
        # No JWS extension is understood here, so every critical one is refused (RFC 7515 4.1.11).
        raise InvalidTokenError("unsupported critical header")
    if header.get("b64", True) is not True:
        raise InvalidTokenError("unsupported payload encoding")
    return alg, kid


def _b64decode(part: bytes, what: str) -> bytes:
    # _parse_compact let only the URL-safe alphabet through: a2b_base64 skips no character here.
    try:
        return binascii.a2b_base64(part.translate(_TO_STANDARD_BASE64) + b"=" * (-len(part) % 4))
    except binascii.Error:
        raise InvalidTokenError(f"malformed {what}") from None


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate member")
    return result


_TO_STANDARD_BASE64 = bytes.maketrans(b"-_", b"+/")
_HEADER_DECODER = json.JSONDecoder(object_pairs_hook=_reject_duplicates)


def _interned_names(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Verified claims stay in the token cache: sharing their few (signed) names saves a third of its memory.
    result = {sys.intern(name): value for name, value in pairs}
    if len(result) != len(pairs):
        raise ValueError("duplicate member")
    return result


_PAYLOAD_DECODER = json.JSONDecoder(object_pairs_hook=_interned_names)


def _decode_json(part: bytes, what: str, *, header: bool = False) -> dict[str, Any]:
    decoder = _HEADER_DECODER if header else _PAYLOAD_DECODER
    try:
        value = decoder.decode(_b64decode(part, what).decode("utf-8"))
    except (ValueError, RecursionError):
        raise InvalidTokenError(f"malformed {what}") from None
    if not isinstance(value, dict):
        raise InvalidTokenError(f"malformed {what}")
    return value


def _numeric_date(claims: Mapping[str, Any], name: str) -> float | None:
    """The claim as a number, or ``None`` when absent; present and not a NumericDate (``null`` too) is refused."""
    if name not in claims:
        return None
    value = claims[name]
    # Chained comparison: also false for NaN; the bounds keep datetime conversions safe.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= _LAST_NUMERIC_DATE:
        raise InvalidTokenError(f"missing or malformed {name}")
    return value
