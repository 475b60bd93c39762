"""Hanko's public signing keys: fetched, cached and refreshed.

A :class:`KeyStore` belongs to one application.  It keeps the parsed key set
in the process so that the hot path is a dictionary lookup, keeps the raw
JWKS in the sealed cache it is given (shared between processes when that
cache is Redis), and goes to the network at most once at a time:

- a cold start makes one fetch, however many requests wait for it;
- a key set past its TTL keeps serving while one refresh runs;
- an unknown ``kid`` is looked for in a set fetched after its request came
  in, and refetches at most once per ``refetch_interval``;
- when the endpoint fails, the last good set serves for ``stale_grace``.

The parsing itself is in :mod:`hanko_tornado.jwks`, the fetch and the
shared-cache entry in :mod:`hanko_tornado.jwks_fetch`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import time
from typing import NamedTuple

from tornado.httpclient import AsyncHTTPClient
from tornado.simple_httpclient import SimpleAsyncHTTPClient

from hanko_tornado.cache import SealedCache, describe_failure
from hanko_tornado.errors import KeysUnavailableError
from hanko_tornado.failure_streak import FailureStreak
from hanko_tornado.jwks import KeySet, VerificationKey, parse_jwks
from hanko_tornado.jwks_fetch import SharedKeySet, fetch_jwks
from hanko_tornado.metrics import Recorder
from hanko_tornado.settings import HankoSettings

__all__ = ["KeySetStatus", "KeyStore", "KeyStoreSeed"]


class KeyStoreSeed(NamedTuple):
    """What a new key store may start from: the key set another store held, and when it last fetched.

    A store made from a seed serves the seed's key set within its TTL and stale grace as if it had fetched
    it itself, and waits out the seed's ``refetch_interval`` before its own first fetch.
    """

    #: The key set held (``None`` when none was).
    key_set: KeySet | None
    #: ``time.monotonic()`` of the last fetch attempt from Hanko (``-math.inf`` for never).
    last_attempt: float


class KeyStore:
    """Holds one Hanko tenant's key set for one application.

    Create it anywhere; it starts its HTTP client on first use, on the
    running loop.  Call :meth:`close` on shutdown: a closed store answers
    every request with :class:`~hanko_tornado.errors.KeysUnavailableError`.
    It closes neither the cache nor the recorder: their owner does.

    :param cache: where the raw key set is shared (and read back), with its fetch lock.
    :param recorder: where fetches are counted.
    :param seed: start from what another store held (see :meth:`seed`), instead of from nothing.
    """

    def __init__(
        self,
        settings: HankoSettings,
        *,
        cache: SealedCache,
        recorder: Recorder,
        seed: KeyStoreSeed | None = None,
    ) -> None:
        self.settings = settings
        self._shared = SharedKeySet(cache, settings)
        self._recorder = recorder
        self._http_client: AsyncHTTPClient | None = None
        self._key_set: KeySet | None = seed.key_set if seed is not None else None
        self._refresh: asyncio.Task[None] | None = None
        self._last_attempt = seed.last_attempt if seed is not None else -math.inf
        self._streak = FailureStreak(f"Hanko key endpoint {settings.jwks_url} answers again")
        self._closed = False

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

        ``None`` for an unknown ``kid`` only once a key set fetched after the
        call began lacks it.  When this process fetched less than
        ``refetch_interval`` ago, the call waits for the next fetch it may make
        (one for all waiting calls), so a key just rotated in is found and a
        flood of unknown ``kid``s still costs one fetch per interval.

        :raises KeysUnavailableError: when no key set can be had, the store is
            closed, or the ``kid`` is unknown while Hanko's key endpoint fails or
            does not answer within ``refetch_interval + jwks_timeout`` (it may be
            a key rotated in: the token may be fine).
        """
        asked_at = time.time()
        key_set = self._usable_key_set() or await self._wait_for_key_set()
        key = key_set.find(kid, alg)
        if key is None and kid is not None:
            key = await self._find_in_newer_set(kid, alg, asked_at)
        return key

    def seed(self) -> KeyStoreSeed:
        """What a store made later for the same settings may start from: never fetches, never waits."""
        return KeyStoreSeed(self._key_set, self._last_attempt)

    async def refresh(self) -> None:
        """Load the key set now (for warming up at start-up); failures are logged.

        :raises KeysUnavailableError: the store is closed.
        """
        await self._refreshed()

    async def close(self) -> None:
        """Stop any refresh and close the HTTP client, for good.

        Requests waiting for keys get a 503; later ones too, and start nothing.
        """
        self._closed = True
        if self._refresh is not None:
            self._refresh.cancel()
        if self._http_client is not None:
            self._http_client.close()
            self._http_client = None

    def get_http_client(self) -> AsyncHTTPClient:
        """The client for JWKS fetches, and only those: no redirects followed, body size capped.

        :raises KeysUnavailableError: the store is closed.
        """
        if self._closed:
            raise KeysUnavailableError(retry_after=1)
        if self._http_client is None:
            self._http_client = SimpleAsyncHTTPClient(force_instance=True, max_body_size=self.settings.jwks_max_bytes)
        return self._http_client

    def _usable_key_set(self) -> KeySet | None:
        key_set = self._key_set
        if key_set is None or self._closed:
            return None
        now = time.time()
        if now < key_set.fresh_until:
            return key_set
        if now < key_set.fresh_until + self.settings.stale_grace:
            if self._refresh is None and self._may_fetch():
                self._start_refresh()
            return key_set
        return None

    async def _wait_for_key_set(self) -> KeySet:
        if self._refresh is not None or self._may_fetch():
            await self._refreshed()
        key_set = self._usable_key_set()
        if key_set is None:
            raise KeysUnavailableError(retry_after=self._retry_after())
        return key_set

    async def _find_in_newer_set(self, kid: str, alg: str, asked_at: float) -> VerificationKey | None:
        """The key for ``kid`` once a key set fetched at or after ``asked_at`` is held; ``None`` when it lacks it."""
        give_up = time.monotonic() + self.settings.refetch_interval + self.settings.jwks_timeout
        while True:
            key_set = self._key_set
            assert key_set is not None  # get_key had one; a held set is replaced, never dropped
            key = key_set.find(kid, alg)
            if key is not None or key_set.fetched_at >= asked_at:
                return key
            wait = self._last_attempt + self.settings.refetch_interval - time.monotonic()
            if self._refresh is not None or wait <= 0:
                await self._refreshed(timeout=give_up - time.monotonic())
            elif self._streak.failing or self._closed or time.monotonic() + wait >= give_up:
                raise KeysUnavailableError(retry_after=self._retry_after())
            else:  # fetched a moment ago: the kid may be a key rotated in since, so wait for the next fetch
                await asyncio.sleep(wait)

    def _retry_after(self) -> int:
        """Whole seconds until this process may try Hanko's key endpoint again (at least 1)."""
        wait = self._last_attempt + self.settings.refetch_interval - time.monotonic()
        return max(1, math.ceil(wait)) if math.isfinite(wait) else 1

    def _may_fetch(self) -> bool:
        return time.monotonic() - self._last_attempt >= self.settings.refetch_interval

    async def _refreshed(self, timeout: float | None = None) -> None:
        """Wait for the refresh under way, or start one; a 503 when the store closes or ``timeout`` passes."""
        if self._closed or (timeout is not None and timeout <= 0):
            raise KeysUnavailableError(retry_after=self._retry_after())
        if self._refresh is None:
            self._start_refresh()
        refresh = self._refresh
        assert refresh is not None
        try:
            # Shielded: one waiting request going away must not cancel the fetch for the others.
            await asyncio.wait_for(asyncio.shield(refresh), timeout)
        except asyncio.TimeoutError:  # the builtin TimeoutError from Python 3.11 on
            raise KeysUnavailableError(retry_after=self._retry_after()) from None
        except asyncio.CancelledError:
            if not refresh.cancelled():
                raise  # this request was cancelled, not the refresh
            raise KeysUnavailableError(retry_after=self._retry_after()) from None  # close() stopped it

    def _start_refresh(self) -> None:
        self._refresh = asyncio.ensure_future(self._load())
        self._refresh.add_done_callback(self._refresh_done)

    def _refresh_done(self, task: asyncio.Task[None]) -> None:
        self._refresh = None

    async def _load(self) -> None:
        """Adopt the shared cache's key set if it is newer than the one held, else fetch from Hanko.

        Across processes sharing a cache, the one that takes the fetch lock
        fetches; the others wait for its key set and adopt it.
        """
        cached = await self._shared.read(self._key_set)
        if cached is not None and cached.newer_than(self._key_set):  # an older set is never taken back
            self._adopt(cached)
            return
        locked = await self._shared.lock()
        try:
            if locked:  # another process may have written its set between our read and our lock
                cached = await self._shared.read(self._key_set)
            elif locked is False:
                cached = await self._shared.wait_for_other_fetch(self._key_set)
            if cached is not None and cached.newer_than(self._key_set):
                self._adopt(cached)
            else:
                await self._fetch_and_share()
        finally:
            if locked:
                await self._shared.unlock()

    async def _fetch_and_share(self) -> None:
        if self._closed:  # close() may land while the cache is read, and not always cancel this: fetch nothing
            return
        self._last_attempt, started = time.monotonic(), time.time()
        try:
            body, ttl = await fetch_jwks(self.get_http_client(), self.settings)
            key_set = parse_jwks(body, fetched_at=started, ttl=ttl)
        except Exception as error:  # noqa: BLE001 - every failure keeps the last good set
            self._recorder.jwks_fetched(succeeded=False, started=self._last_attempt)
            serving = "keeps serving the last good key set" if self._key_set else "has no key set yet"
            failure = describe_failure(error)
            self._streak.failed(
                f"Hanko key endpoint {self.settings.jwks_url} failed ({failure}); this process {serving}",
                f"Hanko key endpoint still failing: {failure}",
                again_level=logging.DEBUG,
            )
            return
        self._recorder.jwks_fetched(succeeded=True, started=self._last_attempt)
        self._streak.succeeded()
        self._adopt(key_set)
        await self._shared.write(body, key_set)

    def _adopt(self, key_set: KeySet) -> None:
        current = self._key_set
        if current is not None and current.version == key_set.version:
            # Keep the very key objects: the verified-token cache recognises them by identity.
            key_set = dataclasses.replace(current, fetched_at=key_set.fetched_at, ttl=key_set.ttl)
        self._key_set = key_set

    def status(self) -> KeySetStatus:
        """The key set held in memory, for health checks and metrics: never fetches, never waits, any thread."""
        key_set, now = self._key_set, time.time()
        if key_set is None:
            return KeySetStatus(usable=False, keys=0, age=None, ttl=None, stale=False, failing=self._streak.failing)
        usable = now < key_set.fresh_until + self.settings.stale_grace
        stale = now >= key_set.fresh_until
        age = max(0.0, now - key_set.fetched_at)
        return KeySetStatus(usable, len(key_set.keys), age, key_set.ttl, stale, self._streak.failing)


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
