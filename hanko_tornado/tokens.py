"""Verifying Hanko session tokens: parse once, check the signature, check the claims.

A :class:`TokenVerifier` turns a token into a :class:`~hanko_tornado.user.HankoUser`
or raises :class:`~hanko_tornado.errors.InvalidTokenError`.  It parses the
compact JWS itself, once, and checks the signature with the one algorithm
that the matched key allows, so that ``alg: none``, HMAC and algorithm swaps
can never get through.  Tokens that verified once are remembered (by SHA-256)
until their ``exp`` or until their key leaves the JWKS.
"""

from __future__ import annotations

import collections
import hashlib
import json
import re
import sys
import time
from collections.abc import Mapping
from typing import Any, NamedTuple

import tornado.web
from aiocache import SimpleMemoryCache

from hanko_tornado.base64url import decode_part, to_standard_base64
from hanko_tornado.cache import SealedCache
from hanko_tornado.errors import InvalidTokenError
from hanko_tornado.jwks import VerificationKey
from hanko_tornado.keys import KeyStore, KeyStoreSeed
from hanko_tornado.numeric_date import is_numeric_date
from hanko_tornado.prometheus import recorder_for
from hanko_tornado.revocations import EndedSessions, Revocations
from hanko_tornado.sessions import SessionChecker
from hanko_tornado.settings import HankoSettings
from hanko_tornado.user import HankoUser

__all__ = ["CacheInfo", "TokenVerifier", "verifier_for"]

_REFUSED_ALGORITHMS = frozenset({"none", "HS256", "HS384", "HS512"})
_HEADERS_REMEMBERED = 64
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


class CacheInfo(NamedTuple):
    """Counters of the verified-token cache, as ``functools.lru_cache`` reports them."""

    hits: int
    misses: int
    maxsize: int
    currsize: int


# A remembered token: its user, until when it may be used, and the key that verified it.
_Verified = tuple[HankoUser, float, VerificationKey]


class TokenVerifier:
    """Verifies Hanko session tokens for one application.

    :param settings: what a valid token must carry and where the keys are.
    :param seed: what its key store starts from (another store's :meth:`~hanko_tornado.keys.KeyStore.seed`).
    :param ended: the ended sessions to refuse, when they must outlive this verifier (shared by the
        verifiers of one Hanko tenant, as :class:`~hanko_tornado.projects.HankoProjects` does); its own by default.
    """

    def __init__(
        self, settings: HankoSettings, *, seed: KeyStoreSeed | None = None, ended: EndedSessions | None = None
    ) -> None:
        self.settings = settings
        #: Where the mixin counts authentications; it reads this verifier's cache counters at scrape time.
        self.metrics = recorder_for(settings.metrics)
        #: The cache shared with other processes (the settings' one, or this process's memory).
        self.cache = SealedCache(settings.cache or SimpleMemoryCache(), settings.cache_secret, recorder=self.metrics)
        self.key_store = KeyStore(settings, cache=self.cache, recorder=self.metrics, seed=seed)
        self.session_checker = SessionChecker(settings, cache=self.cache, recorder=self.metrics)
        #: Sessions and users that Hanko's webhooks said ended: their tokens are refused.
        self.revocations = Revocations(settings, cache=self.cache, forget=self._forget_all, ended=ended)
        self._ended = self.revocations.ended  # read on the hot path: one attribute, falsy while empty
        self._verified: collections.OrderedDict[bytes, _Verified] = collections.OrderedDict()
        self._hits = self._misses = 0
        # Headers seen before, already checked: every token a key signs shares one (bounded, cleared when full).
        self._headers: dict[bytes, tuple[str, str | None]] = {}
        self.metrics.watch(self, key_status=self.key_store.status, token_cache=self.cache_info)

    async def verify_token(self, token: str) -> HankoUser:
        """The user that ``token`` speaks for.

        :raises InvalidTokenError: the token is malformed, badly signed, expired or not for us.
        :raises KeysUnavailableError: no signing keys could be had to check it.
        """
        if len(token) > self.settings.max_token_bytes:
            raise InvalidTokenError("malformed", "token too large")
        digest = _digest(token)
        remembered = self._remembered(digest)
        if remembered is not None:
            return remembered
        self._misses += 1
        claims, key = await self.verify_signature(token)
        usable_until = self.check_times(claims)
        self._check_session_claims(claims)
        user = HankoUser.from_claims(claims)
        if await self.revocations.has_ended_anywhere(user):
            raise InvalidTokenError("session_ended")
        self._verified[digest] = (user, usable_until, key)
        if len(self._verified) > self.settings.token_cache_size:
            self._verified.popitem(last=False)
        return user

    async def verify_signature(self, token: str) -> tuple[dict[str, Any], VerificationKey]:
        """The claims of a JWT Hanko signed, and the key that verified it: signature only, no claim checked.

        For JWTs Hanko signs besides session tokens (webhooks); :meth:`verify_token` is for sessions.

        :raises InvalidTokenError: the token is malformed or not signed by one of Hanko's keys.
        :raises KeysUnavailableError: no signing keys could be had to check it.
        """
        if len(token) > self.settings.max_token_bytes:
            raise InvalidTokenError("malformed", "token too large")
        alg, kid, signing_input, payload, signature = self._parse(token)
        key = self.key_store.peek(kid, alg) or await self.key_store.get_key(kid, alg)
        if key is None:
            raise InvalidTokenError("unknown_key")
        if key.alg != alg:
            raise InvalidTokenError("algorithm", "algorithm does not match the key")
        if not key.verify(signing_input, signature):
            raise InvalidTokenError("bad_signature")
        return _decode_json(payload, "payload"), key

    def cache_info(self) -> CacheInfo:
        """How the verified-token cache is doing."""
        return CacheInfo(self._hits, self._misses, self.settings.token_cache_size, len(self._verified))

    async def close(self) -> None:
        """Release the key store's and the session checker's resources; call on shutdown."""
        await self.revocations.close()
        await self.session_checker.close()
        await self.key_store.close()

    def remembered_user(self, token: str) -> HankoUser | None:
        """The user of ``token`` if this verifier verified it before and it is still good, else ``None``.

        Never waits: the hot path for a token seen before.

        :raises InvalidTokenError: the token's session was ended (a webhook said so).
        """
        if len(token) > self.settings.max_token_bytes:
            return None
        return self._remembered(_digest(token))

    def _forget_all(self) -> None:
        self._verified.clear()

    def _remembered(self, digest: bytes) -> HankoUser | None:
        entry = self._verified.get(digest)
        if entry is not None:
            user, usable_until, key = entry
            if time.time() < usable_until and self.key_store.holds(key):
                if self._ended and self._ended.has_ended(user):
                    del self._verified[digest]
                    raise InvalidTokenError("session_ended")
                self._verified.move_to_end(digest)
                self._hits += 1
                return user
            del self._verified[digest]
        return None

    def _parse(self, token: str) -> tuple[str, str | None, bytes, bytes, bytes]:
        """The algorithm, key id, signing input, payload (standard base64) and signature of a compact JWS."""
        raw = token.encode("ascii", errors="replace")  # a non-ASCII character becomes "?", which is refused below
        standard = to_standard_base64(raw)
        header, _, rest = standard.partition(b".")
        payload, _, signature = rest.partition(b".")
        if not (header and payload and signature) or b"!" in standard or b"." in signature:
            raise InvalidTokenError("malformed")
        checked = self._headers.get(header)
        if checked is None:
            checked = _check_header(_decode_json(header, "header", header=True))
            if len(self._headers) >= _HEADERS_REMEMBERED:
                self._headers.clear()
            self._headers[header] = checked
        alg, kid = checked
        return alg, kid, raw[: len(header) + 1 + len(payload)], payload, decode_part(signature, "signature")

    def check_times(self, claims: Mapping[str, Any], *, issuer: bool = True) -> float:
        """Check ``exp`` (required), ``nbf``, ``iat``, and ``aud`` and ``iss`` where configured.

        :param issuer: check ``iss`` too (Hanko's webhook tokens carry none).
        :returns: until when the token may be used (its ``exp`` plus leeway).
        :raises InvalidTokenError: naming the claim that failed.
        """
        now, leeway = time.time(), self.settings.leeway
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
        if self.settings.audience and not _has_audience(claims.get("aud"), self.settings.audience):
            raise InvalidTokenError("audience")
        if issuer and self.settings.issuer is not None and claims.get("iss") != self.settings.issuer:
            raise InvalidTokenError("issuer")
        return exp + leeway

    @staticmethod
    def _check_session_claims(claims: Mapping[str, Any]) -> None:
        if not (_is_uuid(claims.get("sub")) and _is_uuid(claims.get("session_id"))):
            # Hanko signs webhook tokens with the same key: only a UUID user and session make a login.
            raise InvalidTokenError("not_session")


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


def _is_uuid(value: Any) -> bool:
    """Whether ``value`` is a UUID string in its canonical 8-4-4-4-12 form, as Hanko writes them."""
    return isinstance(value, str) and _UUID.fullmatch(value) is not None


def _digest(token: str) -> bytes:
    """What the verified-token cache knows a token by: the process keeps no token itself."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def _check_header(header: Mapping[str, Any]) -> tuple[str, str | None]:
    alg, kid = header.get("alg"), header.get("kid")
    if not isinstance(alg, str) or alg in _REFUSED_ALGORITHMS:
        raise InvalidTokenError("algorithm")
    if kid is not None and not isinstance(kid, str):
        raise InvalidTokenError("malformed", "malformed key id")
    if "crit" in header:
        # No JWS extension is understood here, so every critical one is refused (RFC 7515 4.1.11).
        raise InvalidTokenError("malformed", "unsupported critical header")
    if header.get("b64", True) is not True:
        raise InvalidTokenError("malformed", "unsupported payload encoding")
    return alg, kid


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate member")
    return result


# The header is read before the signature is checked: its names are not interned, only signed ones are (below).
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
        value = decoder.decode(decode_part(part, what).decode("utf-8"))
    except (ValueError, RecursionError):
        raise InvalidTokenError("malformed", f"malformed {what}") from None
    if not isinstance(value, dict):
        raise InvalidTokenError("malformed", f"malformed {what}")
    return value


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
