"""The shared cache: where processes (and hosts) keep Hanko's key set and session answers.

``cache_from_url("memory://")`` keeps them in this process; ``redis://`` and
``rediss://`` URLs (``redis://:password@host:6379/0``) share them through
Redis, with ``pip install hanko-tornado[redis]``.  Entries in a shared cache
are sealed with an HMAC under a secret every process knows, over the entry's
key and kind as well as its text, so that whoever can write to Redis can
neither slip a signing key in nor move a sealed entry to another key.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import math
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any
from urllib.parse import unquote, urlsplit

from aiocache import SimpleMemoryCache
from aiocache.serializers import StringSerializer

from hanko_tornado.errors import ConfigurationError
from hanko_tornado.metrics import NO_METRICS, Recorder

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

#: Seconds one cache operation may take: a slow Redis must not hold requests up.
CACHE_OPERATION_TIMEOUT = 1.0
#: Seconds the shared cache is left alone after it failed, before it is tried again.
CACHE_BACKOFF_SECONDS = 5.0
MIN_SECRET_LENGTH = 32
#: Connections to Redis per process.
CACHE_CONNECTIONS = 200
#: The largest entry read back: a key set (at most 512 KiB of JWKS) with its seal; anything larger is refused unread.
MAX_ENTRY_BYTES = 1024 * 1024
# redis-py's words for a pool with no free connection: this process's congestion, not Redis failing.
_POOL_EXHAUSTED = ("Too many connections", "No connection available")
#: The layout of a sealed entry, sealed with it: an entry of another layout never opens.
ENTRY_FORMAT = "hanko2"


def cache_from_url(url: str) -> Any:
    """An aiocache cache for ``url``: ``memory://``, ``redis://`` or ``rediss://``.

    :raises ConfigurationError: for another scheme, or Redis support not installed.
    """
    parts = urlsplit(url.strip())
    if parts.scheme == "memory":
        return SimpleMemoryCache()
    if parts.scheme not in ("redis", "rediss"):
        raise ConfigurationError("cache_url", f"must start with memory://, redis:// or rediss://, got {url!r}")
    try:
        from aiocache import RedisCache
    except ImportError:
        raise ConfigurationError("cache_url", "needs Redis support: pip install 'hanko-tornado[redis]'") from None
    database = parts.path.strip("/") or "0"
    if not database.isdigit():
        raise ConfigurationError("cache_url", f"the database must be a number, got {database!r}")
    return RedisCache(
        serializer=StringSerializer(),
        # A burst that needs more connections is answered from memory, and not taken for Redis failing (see
        # SealedCache._call). Not redis-py's BlockingConnectionPool: in 5.0 it swallows the cancellation that
        # bounds each call, so a Redis that never answers would hold requests up.
        pool_max_size=CACHE_CONNECTIONS,
        endpoint=parts.hostname or "127.0.0.1",
        port=parts.port or 6379,
        db=int(database),
        password=unquote(parts.password) if parts.password else None,
        ssl=parts.scheme == "rediss",
        timeout=CACHE_OPERATION_TIMEOUT,
        create_connection_timeout=CACHE_OPERATION_TIMEOUT,
    )


def is_shared(cache: Any) -> bool:
    """Whether other processes may read and write ``cache`` (anything but this process's memory)."""
    return cache is not None and not isinstance(cache, SimpleMemoryCache)


def describe_failure(error: BaseException) -> str:
    """What failed, for a log line: the message, or the exception's class when it has none (a timeout)."""
    return str(error) or type(error).__name__


def _tag(secret: str, key: str, kind: str, text: str) -> bytes:
    # The layout, kind and key are sealed with the text, so a sealed entry opens only where it was written.
    # JSON escapes newlines, so the first newline ends the header: no two entries seal the same bytes.
    header = json.dumps([ENTRY_FORMAT, kind, key])
    return hmac.new(secret.encode(), f"{header}\n{text}".encode(), hashlib.sha256).hexdigest().encode()


def seal_entry(secret: str | None, key: str, kind: str, text: str) -> str:
    """``text`` sealed for cache ``key`` and entry ``kind`` (``"jwks"``, ``"session"``, ``"lock"``).

    Unchanged without a secret: this process's memory needs no seal.
    """
    if not secret:
        return text
    return f"{ENTRY_FORMAT}.{kind}.{_tag(secret, key, kind, text).decode()}.{text}"


def open_entry(secret: str | None, key: str, kind: str, entry: str) -> str:
    """The text of an entry sealed for ``key`` and ``kind``.

    :raises ValueError: the entry is of another layout or kind, or its tag is
        missing or wrong (another secret, or sealed for another key).
    """
    if not secret:
        return entry
    layout, _, rest = entry.partition(".")
    entry_kind, _, rest = rest.partition(".")
    tag, _, text = rest.partition(".")
    if layout != ENTRY_FORMAT or entry_kind != kind:
        raise ValueError(f"not a sealed {kind} entry of this version")
    # Compared as bytes: compare_digest refuses non-ASCII text, and the tag is whatever Redis holds.
    if not hmac.compare_digest(tag.encode("utf-8", "surrogatepass"), _tag(secret, key, kind, text)):
        raise ValueError("not sealed with this deployment's cache secret for this key")
    return text


class SealedCache:
    """The cache as hanko_tornado uses it: sealed text entries, and failures that never fail a request.

    A cache that fails (down, slow, refused) is logged once per failure
    streak, answers as if empty, and is left alone for
    :data:`CACHE_BACKOFF_SECONDS` before it is tried again, so that a Redis
    that never answers costs one timeout per back-off, not one per request.
    An entry that does not open is refused and logged.
    """

    #: Where failures are counted; the key store that makes the cache sets it.
    metrics: Recorder = NO_METRICS

    def __init__(self, cache: Any, secret: str | None) -> None:
        self.cache = cache
        self.secret = secret
        self._failing = False
        self._skip_until = -math.inf

    @property
    def answering(self) -> bool:
        """Whether the cache is used now: ``False`` for a while after it failed."""
        return time.monotonic() >= self._skip_until

    async def get(self, key: str, kind: str) -> str | None:
        """The text sealed at ``key`` for ``kind``, or ``None`` when missing, unreadable or badly sealed.

        Never raises: whatever the cache holds, a request does not fail on it.
        """
        try:
            entry = await self._call("read", lambda: self._read(key))
            if entry is None:
                return None
            if isinstance(entry, bytes):
                if len(entry) > MAX_ENTRY_BYTES:
                    raise ValueError(f"more than {MAX_ENTRY_BYTES} bytes, more than any entry written here")
                entry = entry.decode("utf-8") or None  # GETRANGE answers b"" for a missing key
                if entry is None:
                    return None
            if not isinstance(entry, str):
                raise ValueError("not text")
            return open_entry(self.secret, key, kind, entry)
        except Exception as error:  # noqa: BLE001 - anyone may write to a shared cache: nothing read may fail a request
            log.warning("refusing a shared cache entry (%s): %s", kind, describe_failure(error))
            return None

    async def _read(self, key: str) -> str | bytes | None:
        """The entry at ``key``: from Redis, at most one byte more than any entry written here, in one round trip
        (``GETRANGE``), so a huge entry is never read whole; elsewhere, the cache's own ``get``."""
        getrange = getattr(getattr(self.cache, "client", None), "getrange", None)
        if getrange is None:
            return await self.cache.get(key)  # type: ignore[no-any-return]
        # aiocache adds its namespace to keys (build_key, or _build_key before 0.12's rename)
        build_key = getattr(self.cache, "build_key", None) or getattr(self.cache, "_build_key", None)
        reading = getrange(build_key(key) if build_key is not None else key, 0, MAX_ENTRY_BYTES)
        return await asyncio.wait_for(reading, CACHE_OPERATION_TIMEOUT)

    async def set(self, key: str, kind: str, text: str, ttl: float) -> bool:
        """Seal ``text`` for ``key`` and ``kind`` and store it for ``ttl`` seconds; whether the cache took it."""
        if ttl < 0.01:  # Redis refuses a TTL that rounds to 0 ms; the entry would be useless anyway
            return False
        entry = seal_entry(self.secret, key, kind, text)
        return bool(await self._call("write", lambda: self.cache.set(key, entry, ttl=ttl)))

    @property
    def can_publish(self) -> bool:
        """Whether other processes can be told things at once: a Redis client (publish and subscribe) is there."""
        return is_shared(self.cache) and hasattr(getattr(self.cache, "client", None), "pubsub")

    async def publish(self, channel: str, kind: str, text: str) -> bool:
        """Seal ``text`` for ``channel`` and ``kind`` and publish it; whether Redis took it."""
        if not self.can_publish:
            return False
        message = seal_entry(self.secret, channel, kind, text)

        def publishing() -> Awaitable[Any]:  # bounded here: aiocache bounds its own calls only
            return asyncio.wait_for(self.cache.client.publish(channel, message), CACHE_OPERATION_TIMEOUT)

        return await self._call("publish", publishing) is not None

    async def subscribe(
        self, channel: str, kind: str, stopped: Callable[[], bool] = lambda: False
    ) -> AsyncGenerator[str | None, None]:
        """The texts published on ``channel`` sealed for ``kind``, in order; ``None`` once subscribed.

        Messages that do not open are refused and logged.  Raises when Redis fails: the caller resubscribes.
        """
        pubsub = self.cache.client.pubsub()
        try:
            await asyncio.wait_for(pubsub.subscribe(channel), CACHE_OPERATION_TIMEOUT)
            yield None
            while not stopped():  # checked too: redis-py can swallow a cancellation while it reads
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if message is None or message.get("type") != "message":
                    continue
                try:
                    data = message["data"]
                    text = data.decode("utf-8") if isinstance(data, bytes) else data
                    yield open_entry(self.secret, channel, kind, text)
                except (ValueError, TypeError) as error:
                    log.warning("refusing a message on the shared cache (%s): %s", kind, describe_failure(error))
        finally:
            close = getattr(pubsub, "aclose", None) or pubsub.close  # aclose since redis-py 5, close before
            with contextlib.suppress(Exception):
                await asyncio.wait_for(close(), CACHE_OPERATION_TIMEOUT)

    async def delete(self, key: str) -> None:
        """Remove ``key``, if the cache answers."""
        await self._call("delete", lambda: self.cache.delete(key))

    async def take_lock(self, key: str, seconds: float) -> bool | None:
        """Take the lock at ``key`` for ``seconds``.

        ``True`` when taken, ``False`` when another holds it, ``None`` when the
        cache fails.  The lock is written only if free, with a TTL (Redis
        ``SET NX PX``), and its deadline is sealed in it.  A lock that does not
        open or whose deadline has passed (left without a TTL, or written back)
        is stale and taken over: no stale lock holds anyone up.
        """
        if not self.answering:
            self.metrics.shared_cache_failed("lock")
            return None
        lock = json.dumps({"until": time.time() + seconds})
        try:
            await self.cache.add(key, seal_entry(self.secret, key, "lock", lock), ttl=float(seconds))
        except ValueError:  # aiocache's answer to a key that exists
            self._answered()
            if await self.lock_is_live(key):
                return False
            await self.set(key, "lock", lock, seconds)
        except Exception as error:  # noqa: BLE001 - a cache failure must not fail a request
            self._failed("lock", error)
            return None
        else:
            self._answered()
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

    async def _call(self, what: str, operation: Callable[[], Awaitable[Any]]) -> Any:
        if not self.answering:
            self.metrics.shared_cache_failed(what)  # skipped while backing off: this process's memory serves
            return None
        try:
            result = await operation()
        except UnicodeDecodeError:
            self._answered()  # the cache answered with bytes that are not text: a bad entry, not a failing cache
            raise
        except Exception as error:  # noqa: BLE001 - a cache failure must not fail a request
            if any(words in str(error) for words in _POOL_EXHAUSTED):
                self.metrics.shared_cache_failed(what)
                log.debug("no free connection to the shared cache for this %s: answered from memory", what)
                return None
            self._failed(what, error)
            return None
        self._answered()
        return result

    def _failed(self, what: str, error: Exception) -> None:
        self._skip_until = time.monotonic() + CACHE_BACKOFF_SECONDS
        self.metrics.shared_cache_failed(what)
        if not self._failing:
            self._failing = True
            log.warning(
                "the shared cache failed (%s: %s); using this process's memory, trying again in %g s",
                what,
                describe_failure(error),
                CACHE_BACKOFF_SECONDS,
            )

    def _answered(self) -> None:
        if self._failing:
            self._failing = False
            log.info("the shared cache answers again")


async def close_cache(cache: Any) -> None:
    """Release ``cache``'s connections; call once on shutdown, when nothing uses it any more.

    A Redis cache from aiocache 0.12 owns its redis-py client, and its own
    ``close()`` calls the client's ``close()``, which redis-py 5.0.1
    deprecated for ``aclose()``: that client is closed here with ``aclose()``
    instead.  Any other cache closes itself.  Bounded to ``CACHE_OPERATION_TIMEOUT``, like every
    cache operation.
    """
    client: Any = getattr(cache, "client", None)
    closing = client.aclose() if _is_redis_client(client) else cache.close()
    await asyncio.wait_for(closing, CACHE_OPERATION_TIMEOUT)


def _is_redis_client(client: object) -> bool:
    try:
        from redis.asyncio import Redis
    except ImportError:  # no Redis support installed, so no Redis cache
        return False
    return isinstance(client, Redis)
