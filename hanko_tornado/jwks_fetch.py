"""Getting Hanko's JWKS: one bounded fetch from its key endpoint, and the shared-cache entry processes pass it in.

:class:`SharedKeySet` reads an entry as strictly as a fresh answer from Hanko,
since others may write the shared cache: its times are bounded by the
settings, a set said to be fetched in the future is refused, and the body is
parsed by :func:`~hanko_tornado.jwks.parse_jwks` like any other.  Its fetch
lock lets one process of those sharing the cache fetch while the others wait
for what it shares.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import math
import re
import time

from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from hanko_tornado.cache import SealedCache, describe_failure
from hanko_tornado.jwks import KeySet, jwks_version, parse_jwks
from hanko_tornado.settings import HankoSettings

__all__ = ["SharedKeySet", "fetch_jwks"]

log = logging.getLogger("hanko_tornado")

#: Seconds another host's clock may run ahead: a key set fetched later than that is refused.
_CLOCK_SKEW = 10.0
_MAX_AGE = re.compile(r"(?:^|[,\s])max-age\s*=\s*(\d+)", re.IGNORECASE)
_DEFAULT_MAX_AGE = 600.0
_LOCK_POLL_SECONDS = 0.05


async def fetch_jwks(client: AsyncHTTPClient, settings: HankoSettings) -> tuple[str, float]:
    """The body of Hanko's JWKS and its TTL (its ``max-age``, bounded by the settings).

    No redirect is followed and nothing is decompressed.

    :raises ValueError: Hanko answered anything but 200; transport errors raise as they come.
    """
    request = HTTPRequest(
        settings.jwks_url,
        headers={"Accept": "application/json"},
        connect_timeout=settings.jwks_timeout,
        request_timeout=settings.jwks_timeout,
        follow_redirects=False,
        decompress_response=False,
    )
    response = await client.fetch(request, raise_error=False)
    if response.code != 200:
        reason = response.error or f"HTTP {response.code}"
        raise ValueError(f"answered {reason}")
    return response.body.decode("utf-8"), _ttl(response.headers.get("Cache-Control", ""), settings)


def _ttl(cache_control: str, settings: HankoSettings) -> float:
    match = _MAX_AGE.search(cache_control)
    max_age = float(match.group(1)) if match else _DEFAULT_MAX_AGE
    return min(max(max_age, settings.jwks_min_ttl), settings.jwks_max_ttl)


def _entry(body: str, key_set: KeySet) -> str:
    """The shared-cache entry for a key set fetched with ``body``."""
    return json.dumps({"jwks": body, "fetched_at": key_set.fetched_at, "ttl": key_set.ttl})


def _read_entry(text: str, settings: HankoSettings, held: KeySet | None) -> KeySet | None:
    """The key set in a shared-cache entry, ``None`` when past its TTL.

    When it holds the same keys as ``held``, ``held``'s very key objects are kept (not parsed again).

    :raises ValueError: the entry is malformed, or fetched in the future.
    """
    entry = json.loads(text)
    fetched_at, ttl = float(entry["fetched_at"]), float(entry["ttl"])
    if not (math.isfinite(fetched_at) and settings.jwks_min_ttl <= ttl <= settings.jwks_max_ttl):
        raise ValueError("bad times")
    now = time.time()
    if fetched_at > now + _CLOCK_SKEW:  # it would pass for newer than every set fetched until then
        raise ValueError("fetched in the future")
    body = entry["jwks"]
    if not isinstance(body, str) or len(body) > settings.jwks_max_bytes:
        raise ValueError("bad body")
    if now >= fetched_at + ttl:
        return None
    if held is not None and held.version == jwks_version(body):
        return dataclasses.replace(held, fetched_at=fetched_at, ttl=ttl)  # same keys: no parsing again
    return parse_jwks(body, fetched_at=fetched_at, ttl=ttl)


class SharedKeySet:
    """One Hanko key set in a sealed cache that processes share: its entry, and the lock of the one fetching it."""

    def __init__(self, cache: SealedCache, settings: HankoSettings) -> None:
        self.cache = cache
        self.settings = settings
        self.key = f"hanko_tornado:jwks:{settings.jwks_url}"
        self.lock_key = f"{self.key}:fetching"

    async def read(self, held: KeySet | None) -> KeySet | None:
        """The shared key set (``held``'s key objects when it has the same keys); ``None`` when missing,
        past its TTL or malformed (logged)."""
        try:
            text = await self.cache.get(self.key, "jwks")
            return None if text is None else _read_entry(text, self.settings, held)
        except Exception as error:  # noqa: BLE001 - any malformed entry is ignored alike
            log.warning("ignoring a malformed shared key cache entry: %s", describe_failure(error))
            return None

    async def write(self, body: str, key_set: KeySet) -> None:
        """Share the key set fetched with ``body``, for its TTL."""
        await self.cache.set(self.key, "jwks", _entry(body, key_set), ttl=math.ceil(key_set.ttl))

    async def lock(self) -> bool | None:
        """Take the fetch lock: ``True`` taken, ``False`` another process holds it, ``None`` the cache fails."""
        return await self.cache.take_lock(self.lock_key, self.settings.jwks_timeout + 1)

    async def unlock(self) -> None:
        """Let go of the fetch lock taken."""
        await self.cache.delete(self.lock_key)

    async def wait_for_other_fetch(self, held: KeySet | None) -> KeySet | None:
        """The key set newer than ``held`` that the fetch lock's holder shares; ``None`` once the lock is gone
        or stale, or after a while."""
        deadline = time.monotonic() + self.settings.jwks_timeout + 1
        while time.monotonic() < deadline:
            await asyncio.sleep(_LOCK_POLL_SECONDS)
            locked = await self.cache.lock_is_live(self.lock_key)  # read first: the holder shares, then lets go
            cached = await self.read(held)
            if cached is not None and cached.newer_than(held):
                return cached
            if not locked:
                return None
        return None
