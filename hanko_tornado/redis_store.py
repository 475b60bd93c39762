"""The shared store on redis-py's asyncio client: one Redis or Valkey node, Sentinel, or Cluster.

One adapter serves the three: they answer the same commands, and differ in
how the client finds its server (:mod:`hanko_tornado.redis_urls` builds
each) and in where a subscription connects.  Every command touches one key,
so a Cluster never answers ``CROSSSLOT``; a table of records is one hash,
so its records live in one slot.  Records are read through a short Lua script
that cuts each field and value to :data:`~hanko_tornado.store.MAX_RECORD_BYTES`
and a byte on the server, so a huge one is never sent to the process.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from hanko_tornado.store import CACHE_OPERATION_TIMEOUT, MAX_ENTRY_BYTES, MAX_RECORD_BYTES, Subscription, Value

__all__ = ["ClusterChannels", "RedisStore"]

_LIMIT = str(MAX_RECORD_BYTES + 1)
# The values of ARGV's fields in KEYS[1], each cut to ARGV[1] bytes.
_READ_RECORDS = """
local out = {}
for i = 2, #ARGV do
  local v = redis.call('HGET', KEYS[1], ARGV[i])
  if v then out[i - 1] = string.sub(v, 1, tonumber(ARGV[1])) else out[i - 1] = false end
end
return out
"""
# One HSCAN step over KEYS[1] from cursor ARGV[2], fields and values cut to ARGV[1] bytes.
_SCAN_RECORDS = """
local step = redis.call('HSCAN', KEYS[1], ARGV[2], 'COUNT', ARGV[3])
local out = {}
for i = 1, #step[2] do out[i] = string.sub(step[2][i], 1, tonumber(ARGV[1])) end
return {step[1], out}
"""
# A record written, and its table kept at least ARGV[3] ms (never shortened: other records may need longer).
_PUT_RECORD = """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[3]) then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return 1
"""


class RedisStore:
    """A :class:`~hanko_tornado.store.SharedStore` on a redis-py asyncio client (``Redis`` or ``RedisCluster``).

    :param client: the client; closed by :meth:`close`.
    :param description: where it is, for log lines, without a password.
    :param key: maps a key to the one Redis holds (aiocache's namespace), or ``None``.
    :param channels: where publish and subscribe go, when not through ``client`` (a Cluster).
    :param also_close: other clients closed with it (Sentinel's clients of the sentinels).
    :param locate: asks where the primary is now, before an end is shared (Sentinel: a primary demoted by a
        failover takes writes and publishes until the sentinels reconfigure it, seconds later, and loses them).
    """

    shared = True
    can_publish = True

    def __init__(
        self,
        client: Any,
        *,
        description: str,
        key: Callable[[str], str] | None = None,
        channels: ClusterChannels | None = None,
        also_close: Sequence[Any] = (),
        locate: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        self.client = client
        self.description = description
        self._key = key or (lambda name: name)
        self._channels = channels
        self._also_close = tuple(also_close)
        self._locate = locate

    async def read(self, key: str) -> Value:
        return await self.client.getrange(self._key(key), 0, MAX_ENTRY_BYTES)  # type: ignore[no-any-return]

    async def write(self, key: str, value: str, ttl: float) -> None:
        await self.client.set(self._key(key), value, px=max(1, round(ttl * 1000)))

    async def add(self, key: str, value: str, ttl: float) -> bool:
        return bool(await self.client.set(self._key(key), value, px=max(1, round(ttl * 1000)), nx=True))

    async def delete(self, key: str) -> None:
        await self.client.delete(self._key(key))

    async def ping(self) -> None:
        await self.client.ping()

    async def publish(self, channel: str, message: str) -> None:
        if self._locate is not None:
            await self._locate()
        if self._channels is None:
            await self.client.publish(channel, message)
        else:
            await self._channels.publish(channel, message)

    async def subscribe(self, channel: str) -> Subscription:
        pubsub = self.client.pubsub() if self._channels is None else await self._channels.pubsub()
        subscription = _RedisSubscription(pubsub)
        try:
            await pubsub.subscribe(channel)
            await subscription.confirmed()
        except BaseException:
            await subscription.close()
            raise
        return subscription

    async def put_record(self, table: str, field: str, value: str, ttl: float) -> None:
        if self._locate is not None:
            await self._locate()
        await self.client.eval(_PUT_RECORD, 1, self._key(table), field, value, str(max(1, round(ttl * 1000))))

    async def read_records(self, table: str, fields: Sequence[str]) -> list[Value]:
        values = await self.client.eval(_READ_RECORDS, 1, self._key(table), _LIMIT, *fields)
        return [value or None for value in values]

    async def scan_records(self, table: str, cursor: int, count: int) -> tuple[int, list[tuple[Value, Value]]]:
        step = await self.client.eval(_SCAN_RECORDS, 1, self._key(table), _LIMIT, str(cursor), str(count))
        flat = step[1]
        return int(step[0]), list(zip(flat[0::2], flat[1::2], strict=False))

    async def drop_records(self, table: str, fields: Sequence[str]) -> None:
        if fields:
            await self.client.hdel(self._key(table), *fields)

    async def close(self) -> None:
        if self._channels is not None:
            await self._channels.close()
        await _close(self.client)
        for client in self._also_close:
            await _close(client)


class ClusterChannels:
    """Publish and subscribe for a Redis Cluster, through one node at a time.

    A Cluster passes every ``PUBLISH`` to every node over its bus, so one
    node serves both sides; redis-py's asyncio ``RedisCluster`` has no
    publish/subscribe before redis-py 8, so a plain client to one node does
    it.  Each new subscription takes the next node, so a process whose node
    failed resubscribes through another.

    :param cluster: the ``RedisCluster``, asked for its nodes.
    :param node_client: makes a plain client for a node's host and port (with the cluster's credentials and TLS).
    """

    def __init__(self, cluster: Any, node_client: Callable[[str, int], Any]) -> None:
        self._cluster = cluster
        self._node_client = node_client
        self._turn = itertools.count()
        self._client: Any = None

    async def publish(self, channel: str, message: str) -> None:
        client = await self._current()
        try:
            await client.publish(channel, message)
        except Exception:
            await self._drop()  # the next publish or subscription goes through another node
            raise

    async def pubsub(self) -> Any:
        await self._drop()
        return (await self._current()).pubsub()

    async def _current(self) -> Any:
        if self._client is None:
            await self._cluster.initialize()
            nodes = sorted(self._cluster.get_nodes(), key=lambda node: (node.host, node.port))
            node = nodes[next(self._turn) % len(nodes)]
            self._client = self._node_client(node.host, node.port)
        return self._client

    async def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await _close(client)

    async def close(self) -> None:
        await self._drop()


class _RedisSubscription:
    def __init__(self, pubsub: Any) -> None:
        self._pubsub = pubsub
        self._confirmed = self._reconnected = False
        # redis-py reconnects a subscription by itself, and what was published meanwhile is lost: say so.
        self._on_connect = pubsub.on_connect
        pubsub.on_connect = self._connected  # a bound method: redis-py keeps it as a weak method

    async def _connected(self, connection: Any) -> None:
        self._reconnected = self._confirmed
        await self._on_connect(connection)

    async def confirmed(self) -> None:
        # redis-py sends SUBSCRIBE without waiting: the caller may read the store only once Redis took it.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CACHE_OPERATION_TIMEOUT
        while loop.time() < deadline:
            message = await self._pubsub.get_message(timeout=max(0.0, deadline - loop.time()))
            if message is not None and message.get("type") == "subscribe":
                self._confirmed = True
                return
        raise TimeoutError("no confirmation of the subscription")

    async def next_message(self, timeout: float) -> Value:
        if self._reconnected:
            raise ConnectionError("the subscription was lost and made again: a message may have gone unheard")
        message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=timeout)
        if message is None or message.get("type") != "message":
            return None
        return message["data"]  # type: ignore[no-any-return]

    async def close(self) -> None:
        close = getattr(self._pubsub, "aclose", None) or self._pubsub.close  # aclose since redis-py 5.0.1
        await asyncio.wait_for(close(), CACHE_OPERATION_TIMEOUT)


async def _close(client: Any) -> None:
    close = getattr(client, "aclose", None) or client.close  # aclose since redis-py 5.0.1
    await close()
