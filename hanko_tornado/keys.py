"""Hanko's public signing keys: fetched, checked, cached and refreshed.

A :class:`KeyStore` belongs to one application.  It keeps the parsed key set
in the process so that the hot path is a dictionary lookup, keeps the raw
JWKS in an aiocache cache (shared between processes when that cache is
Redis), and goes to the network at most once at a time:

- a cold start makes one fetch, however many requests wait for it;
- a key set past its TTL keeps serving while one refresh runs;
- an unknown ``kid`` refetches at most once per ``refetch_interval``;
- when the endpoint fails, the last good set serves for ``stale_grace``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import logging
import math
import re
import time
from collections.abc import Mapping
from typing import Any, NamedTuple

from aiocache import SimpleMemoryCache
from jwt.algorithms import Algorithm, get_default_algorithms
from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.simple_httpclient import SimpleAsyncHTTPClient

from hanko_tornado.cache import SealedCache
from hanko_tornado.errors import KeysUnavailableError
from hanko_tornado.metrics import recorder_for
from hanko_tornado.settings import HankoSettings

__all__ = ["KeySet", "KeySetStatus", "KeyStore", "VerificationKey", "parse_jwks"]

log = logging.getLogger("hanko_tornado")

_ALGORITHMS = get_default_algorithms()
_RSA_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
_EC_ALGORITHMS = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_RSA_BITS = (2048, 8192)
_MAX_KEYS = 100
_MAX_KID_LENGTH = 256
_LOCK_POLL_SECONDS = 0.05
_MAX_AGE = re.compile(r"(?:^|[,\s])max-age\s*=\s*(\d+)", re.IGNORECASE)


@dataclasses.dataclass(frozen=True, eq=False)
class VerificationKey:
    """One public key from the JWKS and the one algorithm it verifies."""

    kid: str | None
    alg: str
    public_key: Any
    algorithm: Algorithm = dataclasses.field(repr=False)

    def verify(self, signing_input: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is this key's signature of ``signing_input``."""
        try:
            return self.algorithm.verify(signing_input, self.public_key, signature)
        except (ValueError, TypeError):
            return False


@dataclasses.dataclass(frozen=True, eq=False)
class KeySet:
    """A parsed JWKS with the times that govern its use (wall-clock seconds)."""

    version: str
    keys: tuple[VerificationKey, ...]
    by_kid: Mapping[str, VerificationKey]
    fetched_at: float
    ttl: float

    @property
    def fresh_until(self) -> float:
        return self.fetched_at + self.ttl

    def find(self, kid: str | None, alg: str) -> VerificationKey | None:
        """The key for ``kid``; without a kid, the one key for ``alg`` if exactly one fits."""
        if kid is not None:
            return self.by_kid.get(kid)
        fitting = [key for key in self.keys if key.alg == alg]
        return fitting[0] if len(fitting) == 1 else None


def _key_algorithm(jwk: Mapping[str, Any]) -> str | None:
    kty, alg, crv = jwk.get("kty"), jwk.get("alg"), jwk.get("crv")
    if kty == "RSA":
        alg = "RS256" if alg is None else alg
        return alg if alg in _RSA_ALGORITHMS else None
    if kty == "EC" and crv in _EC_ALGORITHMS:
        inferred = _EC_ALGORITHMS[crv]
        return inferred if alg in (None, inferred) else None
    if kty == "OKP" and crv == "Ed25519" and alg in (None, "EdDSA", "Ed25519"):
        return "EdDSA"
    return None


def _parse_key(jwk: Any) -> VerificationKey | None:
    """A verification key from one JWK, or ``None`` when it is not a public signing key."""
    if not isinstance(jwk, dict) or _PRIVATE_MEMBERS & jwk.keys():
        return None
    kid = jwk.get("kid")
    if kid is not None and (not isinstance(kid, str) or not 0 < len(kid) <= _MAX_KID_LENGTH):
        return None
    if jwk.get("use", "sig") != "sig":
        return None
    key_ops = jwk.get("key_ops")
    if key_ops is not None and (not isinstance(key_ops, list) or "verify" not in key_ops):
        return None
    alg = _key_algorithm(jwk)
    if alg is None:
        return None
    algorithm = _ALGORITHMS[alg]
    try:
        public_key = algorithm.from_jwk(jwk)
    except Exception:  # noqa: BLE001 - untrusted input: any failure to parse drops the key
        return None
    if jwk["kty"] == "RSA" and not _RSA_BITS[0] <= public_key.key_size <= _RSA_BITS[1]:
        return None
    if not hasattr(public_key, "verify") or hasattr(public_key, "sign"):
        return None
    return VerificationKey(kid=kid, alg=alg, public_key=public_key, algorithm=algorithm)


def jwks_version(body: str | bytes) -> str:
    """What tells two JWKS documents apart: a digest of the raw body."""
    return hashlib.sha256(body if isinstance(body, bytes) else body.encode()).hexdigest()[:32]


def parse_jwks(body: str | bytes, *, fetched_at: float, ttl: float) -> KeySet:
    """Parse a JWKS document strictly, keeping only public asymmetric signing keys.

    Duplicate ``kid`` values are ambiguous, so every key that shares one is dropped.

    :raises ValueError: when the document is not a JWKS or holds no usable key.
    """
    document = json.loads(body)
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JSON object with a 'keys' list")
    parsed = [key for key in map(_parse_key, document["keys"][:_MAX_KEYS]) if key is not None]
    kids = [key.kid for key in parsed]
    keys = tuple(key for key in parsed if key.kid is None or kids.count(key.kid) == 1)
    if not keys:
        raise ValueError("no usable public signing key")
    return KeySet(
        version=jwks_version(body),
        keys=keys,
        by_kid={key.kid: key for key in keys if key.kid is not None},
        fetched_at=fetched_at,
        ttl=ttl,
    )


class KeyStore:
    """Holds one Hanko tenant's key set for one application.

    Create it anywhere; it starts its HTTP client and cache on first use, on
    the running loop.  Call :meth:`close` on shutdown.
    """

    def __init__(self, settings: HankoSettings) -> None:
        self.settings = settings
        self._cache: SealedCache | None = None
        self._cache_key = f"hanko_tornado:jwks:{settings.jwks_url}"
        self._lock_key = f"{self._cache_key}:fetching"
        self._http_client: AsyncHTTPClient | None = None
        self._key_set: KeySet | None = None
        self._refresh: asyncio.Task[None] | None = None
        self._last_attempt = -math.inf
        self._failing = False
        self.metrics = recorder_for(settings)

    def holds(self, key: VerificationKey) -> bool:
        """Whether ``key``, this very object, is still in the key set held in memory, without waiting.

        Starts a background refresh when the set is past its TTL.
        """
        key_set = self._usable_key_set()
        return key_set is not None and key in key_set.keys

    def peek(self, kid: str | None, alg: str) -> VerificationKey | None:
        """The key for ``kid`` and ``alg`` in the key set held in memory, without waiting.

        Starts a background refresh when the set is past its TTL.
        """
        key_set = self._usable_key_set()
        return None if key_set is None else key_set.find(kid, alg)

    async def get_key(self, kid: str | None, alg: str) -> VerificationKey | None:
        """The key that verifies a token with this ``kid`` and ``alg``, or ``None``.

        An unknown ``kid`` refetches the set, at most once per ``refetch_interval``.

        :raises KeysUnavailableError: when no key set can be had at all, or the
            ``kid`` is unknown while Hanko's key endpoint fails (it may be a key
            rotated in during the outage: the token may be fine).
        """
        key_set = self._usable_key_set() or await self._wait_for_key_set()
        key = key_set.find(kid, alg)
        if key is None and kid is not None:
            if self._refresh is not None or self._may_fetch():  # a fetch under way may bring the key
                await self._refreshed(force=True)
                key = (self._key_set or key_set).find(kid, alg)
            if key is None and self._failing:
                raise KeysUnavailableError(retry_after=self._retry_after())
        return key

    async def refresh(self) -> None:
        """Load the key set now (for warming up at start-up); failures are logged."""
        await self._refreshed(force=False)

    async def close(self) -> None:
        """Stop any refresh and close the HTTP client."""
        if self._refresh is not None:
            self._refresh.cancel()
        if self._http_client is not None:
            self._http_client.close()
            self._http_client = None

    def get_http_client(self) -> AsyncHTTPClient:
        """The client for JWKS fetches: no redirects followed, body size capped."""
        if self._http_client is None:
            self._http_client = SimpleAsyncHTTPClient(force_instance=True, max_body_size=self.settings.jwks_max_bytes)
        return self._http_client

    def _usable_key_set(self) -> KeySet | None:
        key_set = self._key_set
        if key_set is None:
            return None
        now = time.time()
        if now < key_set.fresh_until:
            return key_set
        if now < key_set.fresh_until + self.settings.stale_grace:
            if self._refresh is None and self._may_fetch():
                self._start_refresh(force=False)
            return key_set
        return None

    async def _wait_for_key_set(self) -> KeySet:
        if self._refresh is not None or self._may_fetch():
            await self._refreshed(force=False)
        key_set = self._usable_key_set()
        if key_set is None:
            raise KeysUnavailableError(retry_after=self._retry_after())
        return key_set

    def _retry_after(self) -> int:
        """Whole seconds until this process may try Hanko's key endpoint again (at least 1)."""
        wait = self._last_attempt + self.settings.refetch_interval - time.monotonic()
        return max(1, math.ceil(wait)) if math.isfinite(wait) else 1

    def _may_fetch(self) -> bool:
        return time.monotonic() - self._last_attempt >= self.settings.refetch_interval

    async def _refreshed(self, *, force: bool) -> None:
        if self._refresh is None:
            self._start_refresh(force=force)
        assert self._refresh is not None
        # Shielded: one waiting request going away must not cancel the fetch for the others.
        await asyncio.shield(self._refresh)

    def _start_refresh(self, *, force: bool) -> None:
        self._refresh = asyncio.ensure_future(self._load(force=force))
        self._refresh.add_done_callback(self._refresh_done)

    def _refresh_done(self, task: asyncio.Task[None]) -> None:
        self._refresh = None

    async def _load(self, *, force: bool) -> None:
        """Adopt the shared cache's key set if it will do, else fetch from Hanko.

        Across processes sharing a cache, the one that takes the fetch lock
        fetches; the others wait for its key set and adopt it.
        """
        cached = await self._read_cache()
        if cached is not None and self._will_do(cached, force):
            self._adopt(cached)
            return
        locked = await self.get_cache().add(self._lock_key, "fetching", ttl=self.settings.jwks_timeout + 1)
        try:
            if locked:  # another process may have written its set between our read and our lock
                cached = await self._read_cache()
            elif locked is False:
                cached = await self._wait_for_other_fetch(force)
            if cached is not None and self._will_do(cached, force):
                self._adopt(cached)
            else:
                await self._fetch_and_share()
        finally:
            if locked:
                await self.get_cache().delete(self._lock_key)

    def _will_do(self, cached: KeySet, force: bool) -> bool:
        """Whether a key set from the cache will do; when ``force``d, only one newer than ours will."""
        current = self._key_set
        if not force or current is None:
            return True
        return cached.version != current.version or cached.fetched_at > current.fetched_at

    async def _wait_for_other_fetch(self, force: bool) -> KeySet | None:
        """The key set the process holding the fetch lock shares, or ``None`` when it does not come in time."""
        deadline = time.monotonic() + self.settings.jwks_timeout + 1
        while time.monotonic() < deadline:
            await asyncio.sleep(_LOCK_POLL_SECONDS)
            cached = await self._read_cache()
            if cached is not None and self._will_do(cached, force):
                return cached
        return None

    async def _fetch_and_share(self) -> None:
        self._last_attempt = time.monotonic()
        try:
            body, ttl = await self._fetch()
            key_set = parse_jwks(body, fetched_at=time.time(), ttl=ttl)
        except Exception as error:  # noqa: BLE001 - every failure keeps the last good set
            self.metrics.jwks_fetched(succeeded=False, started=self._last_attempt)
            self._fetch_failed(error)
            return
        self.metrics.jwks_fetched(succeeded=True, started=self._last_attempt)
        if self._failing:
            log.info("Hanko key endpoint %s answers again", self.settings.jwks_url)
            self._failing = False
        self._adopt(key_set)
        await self._write_cache(body, key_set)

    def _adopt(self, key_set: KeySet) -> None:
        current = self._key_set
        if current is not None and current.version == key_set.version:
            # Keep the very key objects: the verified-token cache recognises them by identity.
            key_set = dataclasses.replace(current, fetched_at=key_set.fetched_at, ttl=key_set.ttl)
        self._key_set = key_set

    async def _fetch(self) -> tuple[str, float]:
        request = HTTPRequest(
            self.settings.jwks_url,
            headers={"Accept": "application/json"},
            connect_timeout=self.settings.jwks_timeout,
            request_timeout=self.settings.jwks_timeout,
            follow_redirects=False,
            decompress_response=False,
        )
        response = await self.get_http_client().fetch(request, raise_error=False)
        if response.code != 200:
            reason = response.error or f"HTTP {response.code}"
            raise ValueError(f"answered {reason}")
        return response.body.decode("utf-8"), self._ttl(response.headers.get("Cache-Control", ""))

    def _ttl(self, cache_control: str) -> float:
        match = _MAX_AGE.search(cache_control)
        max_age = float(match.group(1)) if match else 600.0
        return min(max(max_age, self.settings.jwks_min_ttl), self.settings.jwks_max_ttl)

    def _fetch_failed(self, error: Exception) -> None:
        if not self._failing:
            self._failing = True
            serving = "keeps serving the last good key set" if self._key_set else "has no key set yet"
            log.warning(
                "Hanko key endpoint %s failed (%s); this process %s",
                self.settings.jwks_url,
                error,
                serving,
            )
        else:
            log.debug("Hanko key endpoint still failing: %s", error)

    def get_cache(self) -> SealedCache:
        """The cache for the raw key set (and session answers): the settings' one, or this process's memory."""
        if self._cache is None:
            self._cache = SealedCache(self.settings.cache or SimpleMemoryCache(), self.settings.cache_secret)
            self._cache.metrics = self.metrics
        return self._cache

    async def _read_cache(self) -> KeySet | None:
        text = await self.get_cache().get(self._cache_key)
        if text is None:
            return None
        try:  # checked as strictly as a fresh answer from Hanko: the cache may be shared and written by others
            entry = json.loads(text)
            fetched_at, ttl = float(entry["fetched_at"]), float(entry["ttl"])
            if not (math.isfinite(fetched_at) and self.settings.jwks_min_ttl <= ttl <= self.settings.jwks_max_ttl):
                raise ValueError("bad times")
            body = entry["jwks"]
            if not isinstance(body, str) or len(body) > self.settings.jwks_max_bytes:
                raise ValueError("bad body")
            if time.time() >= fetched_at + ttl:
                return None
            current = self._key_set
            if current is not None and current.version == jwks_version(body):
                return dataclasses.replace(current, fetched_at=fetched_at, ttl=ttl)  # same keys: no parsing again
            return parse_jwks(body, fetched_at=fetched_at, ttl=ttl)
        except Exception as error:  # noqa: BLE001 - any malformed entry is ignored alike
            log.warning("ignoring a malformed shared key cache entry: %s", error)
            return None

    async def _write_cache(self, body: str, key_set: KeySet) -> None:
        entry = json.dumps({"jwks": body, "fetched_at": key_set.fetched_at, "ttl": key_set.ttl})
        await self.get_cache().set(self._cache_key, entry, ttl=math.ceil(key_set.ttl))

    def status(self) -> KeySetStatus:
        """The key set held in memory, for health checks and metrics: never fetches, never waits, any thread."""
        key_set, now = self._key_set, time.time()
        if key_set is None:
            return KeySetStatus(usable=False, keys=0, age=None, ttl=None, stale=False, failing=self._failing)
        usable = now < key_set.fresh_until + self.settings.stale_grace
        stale = now >= key_set.fresh_until
        age = max(0.0, now - key_set.fetched_at)
        return KeySetStatus(usable, len(key_set.keys), age, key_set.ttl, stale, self._failing)


class KeySetStatus(NamedTuple):
    """What :meth:`KeyStore.status` reports (seconds)."""

    #: A key set serves requests: within its TTL, or past it within ``stale_grace``.
    usable: bool
    #: Keys in the held set (0 when none is held).
    keys: int
    #: Seconds since the held set was fetched, ``None`` when none is held.
    age: float | None
    #: The held set's TTL (its ``max-age``, bounded), ``None`` when none is held.
    ttl: float | None
    #: The held set is past its TTL: served in the stale grace until a refresh succeeds (the next request
    #: starts one).
    stale: bool
    #: The last fetch from Hanko's key endpoint failed.
    failing: bool
