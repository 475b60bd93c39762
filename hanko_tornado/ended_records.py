"""The ended-session records in a shared store: one table of sealed records, its snapshot, and one channel.

Each end is a record ``"{kind}:{id}"`` in one table per Hanko API (one
Redis hash, so one Cluster slot), sealed for its own key, kind ``"ended"``,
and published, sealed for the channel, to every process that listens.  A
process reads the whole table once it has subscribed (the *snapshot*), so
that from then on its memory knows every end and a new token costs no Redis
round trip.  Whoever can write to Redis without the secret can neither add
an end nor change one (an entry that does not open is refused, an older
sealed end written back never shortens a newer one), and a table they
swell past :data:`MAX_SNAPSHOT_RECORDS` only makes the process read records per token again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from hanko_tornado.cache import SealedCache, decode_entry, describe_failure
from hanko_tornado.sealing import open_entry, seal_entry
from hanko_tornado.store import CACHE_OPERATION_TIMEOUT, Value

__all__ = ["MAX_SNAPSHOT_RECORDS", "EndedRecords", "parse_end"]

log = logging.getLogger("hanko_tornado")

#: The most records a snapshot reads: more, and the process reads the records per new token instead.
MAX_SNAPSHOT_RECORDS = 200_000
_SCAN_STEP = 1000

End = tuple[str, str, float]
T = TypeVar("T")


class EndedRecords:
    """Where the ends of one Hanko API are shared: the channel, the table and how entries are sealed."""

    def __init__(self, api_url: str) -> None:
        self.channel = f"hanko_tornado:ended:{api_url}"
        self.table = f"{self.channel}:records"

    def key(self, kind: str, ident: str) -> str:
        """What a record is sealed for: it opens at no other field, nor in another deployment."""
        return f"{self.channel}:{kind}:{ident}"

    async def share(self, cache: SealedCache, kind: str, ident: str, until: float) -> bool:
        """Record the end and publish it; whether both were taken."""
        text = json.dumps({"kind": kind, "id": ident, "until": until})
        entry = seal_entry(cache.secret, self.key(kind, ident), "ended", text)
        ttl = max(1.0, math.ceil(until - time.time()))
        field = f"{kind}:{ident}"
        put = await cache.attempt("write", lambda: cache.store.put_record(self.table, field, entry, ttl), urgent=True)
        return put and await cache.publish(self.channel, "ended", text, urgent=True)

    async def read(self, cache: SealedCache, wanted: list[tuple[str, str]]) -> list[End]:
        """The ends recorded for ``wanted`` ``(kind, id)`` pairs, in one round trip; none when the store fails."""
        fields = [f"{kind}:{ident}" for kind, ident in wanted]
        values = await cache.call("read", lambda: cache.store.read_records(self.table, fields))
        ends = []
        for (kind, ident), value in zip(wanted, values or [], strict=False):
            end = self._open(cache, kind, ident, value)
            if end is not None:
                ends.append(end)
        return ends

    async def snapshot(self, cache: SealedCache, apply: Callable[[str, str, float], object]) -> bool:
        """Apply every live end recorded; whether the table was read whole (drops the sealed ends past their time).

        :raises Exception: the store failed; the caller subscribes again.
        """
        cursor, seen, refused, expired = 0, 0, 0, []
        now = time.time()
        while True:
            cursor, records = await _bounded(cache.store.scan_records(self.table, cursor, _SCAN_STEP))
            for field, value in records:
                seen += 1
                end = self._open_field(cache, field, value)
                if end is None:
                    refused += 1
                elif end[2] <= now:
                    expired.append(f"{end[0]}:{end[1]}")
                else:
                    apply(*end)
            if cursor == 0 or seen >= MAX_SNAPSHOT_RECORDS:
                break
        if refused:
            log.warning("refused %d ended-session records in the shared cache that do not open", refused)
        if expired:
            await _bounded(cache.store.drop_records(self.table, expired[:_SCAN_STEP]))
        if cursor != 0:
            log.warning(
                "more than %d ended-session records in the shared cache: new tokens are checked against them "
                "one by one (a Redis round trip each) instead of from memory",
                MAX_SNAPSHOT_RECORDS,
            )
        return cursor == 0

    def _open_field(self, cache: SealedCache, field: Value, value: Value) -> End | None:
        try:
            kind, _, ident = (decode_entry(field) or "").partition(":")
        except ValueError:
            return None
        return self._open(cache, kind, ident, value, quiet=True)

    def _open(self, cache: SealedCache, kind: str, ident: str, value: Value, *, quiet: bool = False) -> End | None:
        if kind not in ("session", "user") or not 0 < len(ident) <= 128:
            return None
        try:
            text = decode_entry(value)
            if text is None:
                return None
            end = parse_end(open_entry(cache.secret, self.key(kind, ident), "ended", text), quiet=quiet)
        except ValueError as error:
            if not quiet:
                log.warning("refusing a shared cache entry (ended): %s", describe_failure(error))
            return None
        return end if end is not None and end[:2] == (kind, ident) else None


def parse_end(text: str, *, quiet: bool = False) -> End | None:
    """A shared end read strictly: anyone may write to Redis, though only sealed entries get this far."""
    try:
        entry = json.loads(text)
        kind, ident, until = entry["kind"], entry["id"], entry["until"]
        if kind not in ("session", "user") or not isinstance(ident, str) or not 0 < len(ident) <= 128:
            raise ValueError("bad entry")
        if isinstance(until, bool) or not isinstance(until, (int, float)) or not math.isfinite(until):
            raise ValueError("bad time")
        return kind, ident, float(until)
    except (ValueError, TypeError, KeyError) as error:
        if not quiet:
            log.warning("ignoring a malformed ended-session entry: %s", describe_failure(error))
        return None


async def _bounded(operation: Awaitable[T]) -> T:
    return await asyncio.wait_for(operation, CACHE_OPERATION_TIMEOUT)
