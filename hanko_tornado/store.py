"""The shared store: what hanko_tornado needs of the place its processes share, and this process's memory.

:class:`SharedStore` is the whole contract.  The sealed cache
(:class:`~hanko_tornado.cache.SealedCache`: key sets, session answers, the
key-set fetch lock) needs ``read``, ``write``, ``add`` and ``delete``; the
ended-session records (:mod:`hanko_tornado.revocations`) need a *table* of
records (``put_record``, ``read_records``, ``scan_records``, ``drop_records``)
and ``publish``/``subscribe``; readiness needs ``ping``.  Values are text
(sealed entries); every method may raise, and the sealed cache bounds, counts
and backs off, so no backend needs to.  A read returns at most
:data:`MAX_ENTRY_BYTES` and a byte (a longer value is cut there, and refused
by the reader), so that whoever can write to the store cannot make a process
read hundreds of megabytes.

Adapters: :class:`MemoryStore` (any aiocache cache: this process's memory, or
a cache of the application's own) and :class:`~hanko_tornado.redis_store.RedisStore`
(one Redis or Valkey node, Sentinel, Cluster; built by
:func:`~hanko_tornado.redis_urls.store_from_url`); :mod:`hanko_tornado.backends`
picks the adapter for a cache.  This module imports neither backend's module.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from aiocache import SimpleMemoryCache

__all__ = [
    "CACHE_OPERATION_TIMEOUT",
    "MAX_ENTRY_BYTES",
    "MAX_RECORD_BYTES",
    "MemoryStore",
    "SharedStore",
    "Subscription",
]

#: Seconds one store operation may take: a slow Redis must not hold requests up.
CACHE_OPERATION_TIMEOUT = 1.0
#: The largest entry read back: a key set (at most 512 KiB of JWKS) with its seal; anything larger is refused unread.
MAX_ENTRY_BYTES = 1024 * 1024
#: The largest record read back (an ended session's is a few hundred bytes): a snapshot step of 1,000
#: records brings at most a couple of megabytes into the process, however large a Redis writer made them.
MAX_RECORD_BYTES = 1024

#: What a read answers: text, the raw bytes, or ``None`` (and ``b""`` from Redis) when nothing is there.
Value = str | bytes | None


class Subscription(Protocol):
    """One subscription to one channel, subscribed already."""

    async def next_message(self, timeout: float) -> Value:
        """The next message published, or ``None`` when none came within ``timeout`` seconds.

        :raises Exception: the connection failed; the caller subscribes again.
        """

    async def close(self) -> None:
        """Unsubscribe and hand the connection back."""


@runtime_checkable
class SharedStore(Protocol):
    """What hanko_tornado needs of a backend.

    ``shared`` says whether other processes see what is written;
    ``can_publish`` whether the records and publish/subscribe are there
    (a store that cannot publish is never asked for them).  A *table* is one
    key holding records by field; it lives at least as long as the longest
    ``ttl`` written into it, and the reader drops records past their time.
    """

    shared: bool
    can_publish: bool
    #: Where the store is, for a log line (a URL with its password masked).
    description: str

    async def read(self, key: str) -> Value:
        """The value at ``key``, at most :data:`MAX_ENTRY_BYTES` and a byte of it."""

    async def write(self, key: str, value: str, ttl: float) -> None:
        """Store ``value`` at ``key`` for ``ttl`` seconds."""

    async def add(self, key: str, value: str, ttl: float) -> bool:
        """Store ``value`` at ``key`` for ``ttl`` seconds only if nothing is there; whether it was stored."""

    async def delete(self, key: str) -> None:
        """Remove ``key``."""

    async def ping(self) -> None:
        """Return once the store answers."""

    async def publish(self, channel: str, message: str) -> None:
        """Send ``message`` to every process subscribed to ``channel``."""

    async def subscribe(self, channel: str) -> Subscription:
        """A subscription to ``channel``; messages published from its return on reach it."""

    async def put_record(self, table: str, field: str, value: str, ttl: float) -> None:
        """Store ``value`` as ``field`` of ``table``, and keep the table at least ``ttl`` seconds."""

    async def read_records(self, table: str, fields: Sequence[str]) -> list[Value]:
        """The values of ``fields`` in ``table``, in order, in one round trip (each cut to :data:`MAX_RECORD_BYTES`
        and a byte)."""

    async def scan_records(self, table: str, cursor: int, count: int) -> tuple[int, list[tuple[Value, Value]]]:
        """About ``count`` records of ``table`` from ``cursor`` on, and the cursor to go on from (0: done); each
        field and value cut to :data:`MAX_RECORD_BYTES` and a byte."""

    async def drop_records(self, table: str, fields: Sequence[str]) -> None:
        """Remove ``fields`` from ``table``."""

    async def close(self) -> None:
        """Release the connections; once, when nothing uses the store any more."""


class MemoryStore:
    """An aiocache cache as a store: entries only, no records nor publish (never asked of it).

    Shared unless it is aiocache's ``SimpleMemoryCache`` (this process's memory).
    """

    can_publish = False

    def __init__(self, cache: Any = None) -> None:
        self.cache = SimpleMemoryCache() if cache is None else cache
        self.shared = not isinstance(self.cache, SimpleMemoryCache)
        self.description = type(self.cache).__name__

    async def read(self, key: str) -> Value:
        return await self.cache.get(key)  # type: ignore[no-any-return]

    async def write(self, key: str, value: str, ttl: float) -> None:
        await self.cache.set(key, value, ttl=ttl)

    async def add(self, key: str, value: str, ttl: float) -> bool:
        try:
            await self.cache.add(key, value, ttl=ttl)
        except ValueError:  # aiocache's answer to a key that exists
            return False
        return True

    async def delete(self, key: str) -> None:
        await self.cache.delete(key)

    async def ping(self) -> None:
        await self.cache.exists("hanko_tornado:ready")

    async def publish(self, channel: str, message: str) -> None:
        raise NotImplementedError("an aiocache cache cannot publish")

    async def subscribe(self, channel: str) -> Subscription:
        raise NotImplementedError("an aiocache cache cannot publish")

    async def put_record(self, table: str, field: str, value: str, ttl: float) -> None:
        raise NotImplementedError("an aiocache cache keeps no records")

    async def read_records(self, table: str, fields: Sequence[str]) -> list[Value]:
        raise NotImplementedError("an aiocache cache keeps no records")

    async def scan_records(self, table: str, cursor: int, count: int) -> tuple[int, list[tuple[Value, Value]]]:
        raise NotImplementedError("an aiocache cache keeps no records")

    async def drop_records(self, table: str, fields: Sequence[str]) -> None:
        raise NotImplementedError("an aiocache cache keeps no records")

    async def close(self) -> None:
        await self.cache.close()
