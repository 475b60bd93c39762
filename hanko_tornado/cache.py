"""The shared cache: where processes (and hosts) keep Hanko's key set and session answers.

``cache_from_url("memory://")`` keeps them in this process; a Redis URL
(``redis://``, ``rediss://``, ``unix://``, ``redis+sentinel://``,
``redis+cluster://``: see :mod:`hanko_tornado.redis_urls`) shares them
through Redis or Valkey, with ``pip install hanko-tornado[redis]``.
:class:`SealedCache` is how the library uses any
:class:`~hanko_tornado.store.SharedStore`: entries sealed
(:mod:`hanko_tornado.sealing`), and failures that never fail a request.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from aiocache import SimpleMemoryCache

from hanko_tornado.failure_streak import FailureStreak
from hanko_tornado.metrics import NO_METRICS, Recorder
from hanko_tornado.sealing import ENTRY_FORMAT, MIN_SECRET_LENGTH, open_entry, seal_entry
from hanko_tornado.store import (
    CACHE_OPERATION_TIMEOUT,
    MAX_ENTRY_BYTES,
    SharedStore,
    Value,
    close_cache,
    is_shared,
    store_for,
)

log = logging.getLogger("hanko_tornado")

__all__ = [
    "CACHE_BACKOFF_SECONDS",
    "CACHE_OPERATION_TIMEOUT",
    "ENTRY_FORMAT",
    "MIN_SECRET_LENGTH",
    "SealedCache",
    "cache_from_url",
    "close_cache",
    "describe_failure",
    "is_shared",
    "open_entry",
    "seal_entry",
]

#: Seconds the shared cache is left alone after it failed, before it is tried again.
CACHE_BACKOFF_SECONDS = 5.0
# redis-py's words for a pool with no free connection: this process's congestion, not Redis failing.
_POOL_EXHAUSTED = ("Too many connections", "No connection available")

T = TypeVar("T")


def cache_from_url(url: str) -> Any:
    """A cache for ``url``: ``memory://`` (aiocache's memory cache), or a Redis store for a Redis URL.

    :raises ConfigurationError: for another scheme, a malformed URL, or Redis support not installed;
        the message never holds the URL's password.
    """
    if urlsplit(url.strip()).scheme == "memory":
        return SimpleMemoryCache()
    from hanko_tornado.redis_urls import store_from_url

    return store_from_url(url)


def describe_failure(error: BaseException) -> str:
    """What failed, for a log line: the message, or the exception's class when it has none (a timeout)."""
    return str(error) or type(error).__name__


def decode_entry(entry: Value) -> str | None:
    """A value read from a store as text, ``None`` when nothing is there.

    :raises ValueError: it is longer than any entry written here, or not text.
    """
    if isinstance(entry, bytes):
        if len(entry) > MAX_ENTRY_BYTES:
            raise ValueError(f"more than {MAX_ENTRY_BYTES} bytes, more than any entry written here")
        entry = entry.decode("utf-8")
    if entry is not None and not isinstance(entry, str):
        raise ValueError("not text")
    return entry or None  # GETRANGE answers b"" for a missing key


class SealedCache:
    """The cache as hanko_tornado uses it: sealed text entries, and failures that never fail a request.

    A store that fails (down, slow, refused) answers as if empty, and is left
    alone for :data:`CACHE_BACKOFF_SECONDS` before it is tried again, so that a
    Redis that never answers costs one timeout per back-off, not one per
    request.  The first failure of a streak is a warning, each further
    back-off one line, the recovery one line.  An entry that does not open is refused and logged.

    :param cache: a :class:`~hanko_tornado.store.SharedStore`, or an aiocache cache (adapted).
    :param recorder: where failures are counted.
    :param clock: monotonic seconds, for the back-off (tests pass their own).
    """

    def __init__(
        self,
        cache: Any,
        secret: str | None,
        *,
        recorder: Recorder = NO_METRICS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cache = cache
        self.store: SharedStore = store_for(cache)
        self.secret = secret
        #: Where failures are counted (the owner's recorder).
        self.recorder = recorder
        self._streak = FailureStreak(
            f"the shared cache at {self.store.description} answers again", backoff=CACHE_BACKOFF_SECONDS, clock=clock
        )

    @property
    def answering(self) -> bool:
        """Whether the cache is used now: ``False`` for a while after it failed."""
        return not self._streak.backing_off

    @property
    def failing(self) -> bool:
        """Whether the last operation on the store failed (it may answer again by now)."""
        return self._streak.failing

    @property
    def can_publish(self) -> bool:
        """Whether other processes can be told things at once (Redis: records, publish and subscribe)."""
        return self.store.shared and self.store.can_publish

    async def get(self, key: str, kind: str) -> str | None:
        """The text sealed at ``key`` for ``kind``, or ``None`` when missing, unreadable or badly sealed.

        Never raises: whatever the cache holds, a request does not fail on it.
        """
        entry = await self.call("read", lambda: self.store.read(key))
        return self.open(key, kind, entry)

    def open(self, key: str, kind: str, entry: Value) -> str | None:
        """The text of ``entry``, as a store read it, sealed for ``key`` and ``kind``; ``None`` (logged) if not."""
        try:
            text = decode_entry(entry)
            return None if text is None else open_entry(self.secret, key, kind, text)
        except ValueError as error:  # anyone may write to a shared cache: nothing read may fail a request
            log.warning("refusing a shared cache entry (%s): %s", kind, describe_failure(error))
            return None

    async def set(self, key: str, kind: str, text: str, ttl: float) -> bool:
        """Seal ``text`` for ``key`` and ``kind`` and store it for ``ttl`` seconds; whether the cache took it."""
        if ttl < 0.01:  # Redis refuses a TTL that rounds to 0 ms; the entry would be useless anyway
            return False
        entry = seal_entry(self.secret, key, kind, text)
        return await self.attempt("write", lambda: self.store.write(key, entry, ttl))

    async def publish(self, channel: str, kind: str, text: str, *, urgent: bool = False) -> bool:
        """Seal ``text`` for ``channel`` and ``kind`` and publish it; whether Redis took it (``urgent``: see call)."""
        if not self.can_publish:
            return False
        message = seal_entry(self.secret, channel, kind, text)
        return await self.attempt("publish", lambda: self.store.publish(channel, message), urgent=urgent)

    async def subscribe(
        self, channel: str, kind: str, stopped: Callable[[], bool] = lambda: False
    ) -> AsyncGenerator[str | None, None]:
        """The texts published on ``channel`` sealed for ``kind``, in order; ``None`` once subscribed.

        Messages that do not open are refused and logged.  Raises when the store fails (a subscription redis-py
        made again by itself counts: messages may have been lost): the caller resubscribes.
        """
        subscription = await asyncio.wait_for(self.store.subscribe(channel), CACHE_OPERATION_TIMEOUT)
        try:
            yield None
            while not stopped():  # checked too: redis-py can swallow a cancellation while it reads
                data = await subscription.next_message(timeout=1.0)
                if data is None:
                    continue
                try:
                    text = decode_entry(data)
                    if text is not None:
                        yield open_entry(self.secret, channel, kind, text)
                except ValueError as error:
                    log.warning("refusing a message on the shared cache (%s): %s", kind, describe_failure(error))
        finally:
            with contextlib.suppress(Exception):
                await subscription.close()

    async def delete(self, key: str) -> None:
        """Remove ``key``, if the cache answers."""
        await self.call("delete", lambda: self.store.delete(key))

    async def take_lock(self, key: str, seconds: float) -> bool | None:
        """Take the lock at ``key`` for ``seconds``.

        ``True`` when taken, ``False`` when another holds it, ``None`` when the
        cache fails.  The lock is written only if free, with a TTL (Redis
        ``SET NX PX``), and its deadline is sealed in it.  A lock that does not
        open or whose deadline has passed (left without a TTL, or written back)
        is stale and taken over: no stale lock holds anyone up.
        """
        lock = json.dumps({"until": time.time() + seconds})
        entry = seal_entry(self.secret, key, "lock", lock)
        taken = await self.call("lock", lambda: self.store.add(key, entry, float(seconds)))
        if taken is None:
            return None
        if not taken:
            if await self.lock_is_live(key):
                return False
            await self.set(key, "lock", lock, seconds)
        return True

    async def lock_is_live(self, key: str) -> bool:
        """Whether a lock sealed here is held at ``key`` and its sealed deadline has not passed."""
        text = await self.get(key, "lock")
        if text is None:
            return False
        try:
            until = json.loads(text)["until"]
            return isinstance(until, float) and time.time() < until
        except (ValueError, TypeError, KeyError):
            return False

    async def attempt(self, what: str, operation: Callable[[], Awaitable[object]], *, urgent: bool = False) -> bool:
        """Run ``operation`` as :meth:`call` does; whether the store took it."""

        async def done() -> bool:
            await operation()
            return True

        return await self.call(what, done, urgent=urgent) is True

    async def call(self, what: str, operation: Callable[[], Awaitable[T]], *, urgent: bool = False) -> T | None:
        """``operation``'s answer, bounded; ``None`` when the store failed.

        Skipped (``None``) while backing off, unless ``urgent`` (an end to share: rare, and lost if skipped);
        a failure is counted and starts a back-off.
        """
        if not self.answering and not urgent:
            self.recorder.shared_cache_failed(what)  # skipped while backing off: this process's memory serves
            return None
        try:
            result = await asyncio.wait_for(operation(), CACHE_OPERATION_TIMEOUT)
        except Exception as error:  # noqa: BLE001 - a cache failure must not fail a request
            if any(words in str(error) for words in _POOL_EXHAUSTED):
                self.recorder.shared_cache_failed(what)
                log.debug("no free connection to the shared cache for this %s: answered from memory", what)
                return None
            self.failed(what, error)
            return None
        self.answered()
        return result

    def failed(self, what: str, error: BaseException) -> None:
        """Count a failure of ``what`` and back off; logged once per back-off."""
        self.recorder.shared_cache_failed(what)
        failure = f"{what}: {describe_failure(error)}"
        self._streak.failed(
            f"the shared cache failed ({failure}) at {self.store.description}; "
            f"using this process's memory, trying again in {CACHE_BACKOFF_SECONDS:g} s",
            f"the shared cache still fails ({failure}); trying again in {CACHE_BACKOFF_SECONDS:g} s",
        )

    def answered(self) -> None:
        """The store answered: a failure streak, if any, is over (logged once)."""
        self._streak.succeeded()
