"""Verifying Hanko session tokens: parse once, check the signature, check the claims.

A :class:`TokenVerifier` turns a token into a :class:`~hanko_tornado.user.HankoUser`
or raises :class:`~hanko_tornado.errors.InvalidTokenError`.  It reads the
compact JWS itself, once (:mod:`hanko_tornado.jws`), and checks the signature
with the one algorithm that the matched key allows, so that ``alg: none``,
HMAC and algorithm swaps can never get through.  Tokens that verified once are
remembered (by SHA-256) until their ``exp`` or until their key leaves the JWKS.

The verifier makes each part it owns once (the recorder, the sealed shared
cache, the key store, the session checker, the ended sessions) and hands each
what it needs.  Handlers ask it :meth:`~TokenVerifier.remembered_user` (never
waits), then :meth:`~TokenVerifier.authenticate`.
"""

from __future__ import annotations

import collections
import hashlib
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal, NamedTuple

from aiocache import SimpleMemoryCache

from hanko_tornado.cache import SealedCache
from hanko_tornado.claims import check_session_claims, check_times
from hanko_tornado.errors import InvalidTokenError
from hanko_tornado.jwks import VerificationKey
from hanko_tornado.jws import CompactParser, decode_json
from hanko_tornado.keys import KeyStore, KeyStoreSeed
from hanko_tornado.prometheus import recorder_for
from hanko_tornado.revocations import EndedSessions, Revocations
from hanko_tornado.session_protocol import SessionStatus
from hanko_tornado.sessions import SessionChecker
from hanko_tornado.settings import HankoSettings
from hanko_tornado.user import HankoUser

__all__ = ["Authenticated", "CacheInfo", "TokenVerifier"]


class CacheInfo(NamedTuple):
    """Counters of the verified-token cache, as ``functools.lru_cache`` reports them."""

    hits: int
    misses: int
    maxsize: int
    currsize: int


class Authenticated(NamedTuple):
    """What :meth:`TokenVerifier.authenticate` found: the user, and what Hanko said of the session when asked."""

    user: HankoUser
    #: ``None`` when the session was not checked, or Hanko could not say and the check fails open.
    session: SessionStatus | None


# A remembered token: its user, until when it may be used, and the key that verified it.
_Verified = tuple[HankoUser, float, VerificationKey]


class TokenVerifier:
    """Verifies Hanko session tokens for one application (or one of its :class:`~hanko_tornado.projects.HankoProjects`).

    :param settings: what a valid token must carry and where the keys are.
    :param seed: the key set to start from (see :meth:`~hanko_tornado.keys.KeyStore.seed`), instead of from nothing.
    :param ended: the ended sessions to refuse, when they must outlive this verifier (shared by the
        verifiers of one Hanko tenant, as :class:`~hanko_tornado.projects.HankoProjects` does); its own by default.
    """

    def __init__(
        self, settings: HankoSettings, *, seed: KeyStoreSeed | None = None, ended: EndedSessions | None = None
    ) -> None:
        self.settings = settings
        #: Where the mixin counts authentications, and every part below counts what it does.
        self.metrics = recorder_for(settings.metrics)
        #: The settings' shared cache (or this process's memory), sealed: key sets, session answers, ended sessions.
        self.cache = SealedCache(settings.cache or SimpleMemoryCache(), settings.cache_secret, recorder=self.metrics)
        self.key_store = KeyStore(settings, cache=self.cache, recorder=self.metrics, seed=seed)
        self.session_checker = SessionChecker(settings, cache=self.cache, recorder=self.metrics)
        #: Sessions and users that Hanko's webhooks said ended: their tokens are refused.
        self.revocations = Revocations(settings, cache=self.cache, forget=self._forget_all, ended=ended)
        self._ended = self.revocations.ended  # read on the hot path: one attribute, falsy while empty
        self._verified: collections.OrderedDict[bytes, _Verified] = collections.OrderedDict()
        self._hits = self._misses = 0
        self._parser = CompactParser()
        # What metrics reads at scrape time, as long as this verifier lives (it holds bound methods weakly).
        self.metrics.watch(self, key_status=self.key_store.status, token_cache=self.cache_info)

    async def authenticate(
        self, token: str, *, session_check: bool, renew: bool = True, user: HankoUser | None = None
    ) -> Authenticated:
        """The user ``token`` speaks for, and (with ``session_check``) what Hanko says of the session.

        :param session_check: ask Hanko whether the session lives (remembered for ``session_check_ttl``).
        :param renew: whether this is user activity, which ``session_check="renew"`` reports to Hanko;
            ``False`` asks passively (an open socket's re-check).
        :param user: what :meth:`remembered_user` already said of ``token`` (it is not verified again).
        :raises InvalidTokenError: the token is refused, or Hanko says its session ended.
        :raises UnavailableError: no keys to check it, or Hanko could not say and the check fails closed.
        """
        # verify_token hashes the token once more: a microsecond, next to the signature check it leads to.
        user = user or await self.verify_token(token)
        if not session_check:
            return Authenticated(user, None)
        return Authenticated(user, await self.session_checker.check(token, user, renew=renew))

    def remembered_user(self, token: str) -> HankoUser | None:
        """The user of ``token`` if this verifier verified it before and it is still good, else ``None``.

        Never waits: the hot path for a token seen before.

        :raises InvalidTokenError: the token's session was ended (a webhook said so).
        """
        if len(token) > self.settings.max_token_bytes:
            return None
        return self._remembered(_digest(token))

    async def verify_token(self, token: str) -> HankoUser:
        """The user that ``token`` speaks for (no session check).

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
        check_session_claims(claims)
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
        alg, kid, signing_input, payload, signature = self._parser.parse(token)
        key = self.key_store.peek(kid, alg) or await self.key_store.get_key(kid, alg)
        if key is None:
            raise InvalidTokenError("unknown_key")
        if key.alg != alg:
            raise InvalidTokenError("algorithm", "algorithm does not match the key")
        if not key.verify(signing_input, signature):
            raise InvalidTokenError("bad_signature")
        return decode_json(payload, "payload"), key

    def session_watch(self, user: HankoUser) -> Callable[[], Awaitable[bool]]:
        """For an open socket: a function saying whether ``user``'s session ended (a webhook said so, anywhere).

        It answers from this process's memory; after this process listened to the other processes again
        following a gap (it may have missed an end meanwhile), it reads the shared record once, as soon as
        that can be read.
        """
        revocations = self.revocations
        subscriptions = revocations.subscriptions

        async def ended() -> bool:
            nonlocal subscriptions
            if revocations.has_ended(user):
                return True
            if revocations.subscriptions == subscriptions:
                return False
            seen = revocations.subscriptions
            read = await revocations.has_ended_in_record(user)  # Redis just came back: it may fail at first
            if read is None:
                return False
            subscriptions = seen
            return read

        return ended

    async def end(self, kind: Literal["session", "user"], ident: str, until: float) -> None:
        """Refuse the tokens of a session (or of every session of a user) from now until ``until``, everywhere.

        Here at once, and in every process sharing the Redis cache (see :mod:`hanko_tornado.revocations`).
        """
        await self.revocations.end(kind, ident, until)

    def check_times(self, claims: Mapping[str, Any], *, issuer: bool = True) -> float:
        """Check ``exp`` (required), ``nbf``, ``iat``, and ``aud`` and ``iss`` where configured.

        :param issuer: check ``iss`` too (Hanko's webhook tokens carry none).
        :returns: until when the token may be used (its ``exp`` plus leeway).
        :raises InvalidTokenError: naming the claim that failed.
        """
        return check_times(claims, self.settings, issuer=issuer)

    def cache_info(self) -> CacheInfo:
        """How the verified-token cache is doing."""
        return CacheInfo(self._hits, self._misses, self.settings.token_cache_size, len(self._verified))

    async def close(self) -> None:
        """Release what the parts hold (HTTP clients, the listener for ended sessions); call on shutdown.

        The settings' shared cache is not closed here: other verifiers may share it
        (:func:`hanko_tornado.lifecycle.close` closes it with the application).
        """
        await self.revocations.close()
        await self.session_checker.close()
        await self.key_store.close()

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


def _digest(token: str) -> bytes:
    """What the verified-token cache knows a token by: the process keeps no token itself."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
