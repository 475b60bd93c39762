"""The shared cache: where processes (and hosts) keep Hanko's key set and session answers.

``cache_from_url("memory://")`` keeps them in this process; ``redis://`` and
``rediss://`` URLs (``redis://:password@host:6379/0``) share them through
Redis, with ``pip install hanko-tornado[redis]``.  Entries in a shared cache
are sealed with an HMAC under a secret every process knows, so that whoever
can write to Redis still cannot slip a signing key in.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from collections.abc import Awaitable
from typing import Any
from urllib.parse import unquote, urlsplit

from aiocache import SimpleMemoryCache
from aiocache.serializers import StringSerializer

from hanko_tornado.errors import ConfigurationError

log = logging.getLogger("hanko_tornado")

__all__ = [
    "CACHE_OPERATION_TIMEOUT",
    "MIN_SECRET_LENGTH",
    "SealedCache",
    "cache_from_url",
    "close_cache",
    "is_shared",
    "open_entry",
    "seal_entry",
]

#: Seconds one cache operation may take: a slow Redis must not hold requests up.
CACHE_OPERATION_TIMEOUT = 1.0
MIN_SECRET_LENGTH = 32


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


def seal_entry(secret: str | None, text: str) -> str:
    """``text`` with an HMAC-SHA256 tag in front (unchanged without a secret)."""
    if not secret:
        return text
    tag = hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()
    return f"{tag}.{text}"


def open_entry(secret: str | None, entry: str) -> str:
    """The text of a sealed entry.

    :raises ValueError: the tag is missing or wrong.
    """
    if not secret:
        return entry
    tag, _, text = entry.partition(".")
    expected = hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(tag, expected):
        raise ValueError("entry is not sealed with this deployment's cache secret")
    return text


class SealedCache:
    """The cache as hanko_tornado uses it: sealed text entries, and failures that never fail a request.

    A cache that fails (down, slow, refused) is logged once per failure
    streak and answers as if empty, so callers fall back to their own memory
    and to Hanko.  An entry with a wrong seal is refused and logged.
    """

    def __init__(self, cache: Any, secret: str | None) -> None:
        self.cache = cache
        self.secret = secret
        self._failing = False

    async def get(self, key: str) -> str | None:
        """The text stored at ``key``, or ``None`` when missing, unreadable or badly sealed."""
        entry = await self._call("read", self.cache.get(key))
        if not isinstance(entry, str):
            return None
        try:
            return open_entry(self.secret, entry)
        except ValueError as error:
            log.warning("refusing a shared cache entry: %s", error)
            return None

    async def set(self, key: str, text: str, ttl: float) -> None:
        """Store ``text`` at ``key`` for ``ttl`` seconds, if the cache answers."""
        await self._call("write", self.cache.set(key, seal_entry(self.secret, text), ttl=ttl))

    async def add(self, key: str, text: str, ttl: float) -> bool | None:
        """Store ``text`` only if ``key`` is free: ``True`` when stored, ``False`` when taken, ``None`` on failure."""
        try:
            await self.cache.add(key, seal_entry(self.secret, text), ttl=ttl)
        except ValueError:  # aiocache's answer to a key that exists
            self._answered()
            return False
        except Exception as error:  # noqa: BLE001 - a cache failure must not fail a request
            self._failed("lock", error)
            return None
        self._answered()
        return True

    async def delete(self, key: str) -> None:
        """Remove ``key``, if the cache answers."""
        await self._call("delete", self.cache.delete(key))

    async def _call(self, what: str, operation: Awaitable[Any]) -> Any:
        try:
            result = await operation
        except Exception as error:  # noqa: BLE001 - a cache failure must not fail a request
            self._failed(what, error)
            return None
        self._answered()
        return result

    def _failed(self, what: str, error: Exception) -> None:
        if not self._failing:
            self._failing = True
            log.warning("the shared cache failed (%s: %s); using this process's memory", what, error)

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
