"""Which store serves a cache: the one place that knows every backend.

:mod:`hanko_tornado.store` says what a store is; :mod:`hanko_tornado.redis_store`
is the Redis adapter.  This module imports both and chooses, so neither imports
the other's side: a :class:`~hanko_tornado.store.SharedStore` is used as it is,
aiocache's ``RedisCache`` is adapted to its redis-py client (so that it can
publish too), and any other aiocache cache is a :class:`~hanko_tornado.store.MemoryStore`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from hanko_tornado.redis_store import RedisStore
from hanko_tornado.store import CACHE_OPERATION_TIMEOUT, MemoryStore, SharedStore

__all__ = ["close_cache", "is_shared", "store_for"]


def store_for(cache: Any) -> SharedStore:
    """``cache`` as a :class:`~hanko_tornado.store.SharedStore`: a store as it is, an aiocache cache adapted
    (``None``: memory).

    aiocache's own ``RedisCache`` is adapted to its redis-py client, so that it can publish too.
    """
    if isinstance(cache, SharedStore):
        return cache
    client = getattr(cache, "client", None)
    if client is not None and _is_redis_client(client):
        # aiocache adds its namespace to keys (build_key, or _build_key before 0.12's rename)
        build_key = getattr(cache, "build_key", None) or getattr(cache, "_build_key", None)
        return RedisStore(client, description="aiocache RedisCache", key=build_key)
    return MemoryStore(cache)


def is_shared(cache: Any) -> bool:
    """Whether other processes may read and write ``cache`` (anything but this process's memory)."""
    return cache is not None and store_for(cache).shared


async def close_cache(cache: Any) -> None:
    """Release ``cache``'s connections (a store, or an aiocache cache); once on shutdown, when nothing uses it.

    aiocache 0.12's ``RedisCache.close()`` calls redis-py's ``close()``,
    deprecated since redis-py 5.0.1: its client is closed with ``aclose()``
    instead.  Bounded to :data:`~hanko_tornado.store.CACHE_OPERATION_TIMEOUT`, like every store operation.
    """
    await asyncio.wait_for(store_for(cache).close(), CACHE_OPERATION_TIMEOUT)


def _is_redis_client(client: object) -> bool:
    try:
        from redis.asyncio import Redis
    except ImportError:  # no Redis support installed, so no Redis cache
        return False
    return isinstance(client, Redis)
