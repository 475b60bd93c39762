"""Users' private metadata (roles), remembered for a bounded time, dropped the moment Hanko says it changed.

Tokens never carry private metadata, so a role kept there costs a call to
Hanko's admin API; :class:`MetadataCache` makes it one call per user per
``metadata_ttl``: in this process's memory, and in the shared Redis cache
(sealed, so that whoever can write to Redis cannot grant a role) for the
other processes.  A ``user.update*`` or ``user.delete`` webhook, or
:meth:`MetadataCache.forget`, drops a user's entry here, in Redis, and
(published on Redis) in every other process.  When the admin API fails, an
answer up to ``metadata_stale_grace`` past its TTL still serves; with none,
:class:`~hanko_tornado.admin.errors.HankoAdminError` (503).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import tornado.web

from hanko_tornado.admin.client import HankoAdminClient, admin_client_for
from hanko_tornado.admin.errors import AdminNotFoundError, HankoAdminError
from hanko_tornado.admin.models import is_uuid
from hanko_tornado.cache import CACHE_BACKOFF_SECONDS, SealedCache, describe_failure
from hanko_tornado.lifecycle import state_of, verifier_for
from hanko_tornado.user import FrozenDict, freeze

__all__ = ["MetadataCache", "close_admin", "forget_for_event", "metadata_cache_for"]

log = logging.getLogger("hanko_tornado")

_MAX_ENTRIES = 100_000
_EMPTY = FrozenDict()


class MetadataCache:
    """Private metadata by user id, for one application's admin client.

    :param shared: the verifier's sealed cache (Redis, or this process's memory); ``None``: this process only.
    :param clock: wall-clock seconds (``time.time``); tests move it.
    """

    def __init__(
        self,
        client: HankoAdminClient,
        shared: SealedCache | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.ttl = client.settings.metadata_ttl
        self.grace = client.settings.metadata_stale_grace
        self.clock = clock
        self._shared_cache = shared
        self._entries: collections.OrderedDict[str, tuple[float, FrozenDict]] = collections.OrderedDict()
        self._loading: dict[str, asyncio.Future[FrozenDict]] = {}
        # Per user, when it was last dropped: a count of drops (for answers fetched here) and the time
        # (for entries other processes wrote).
        self._drops = 0
        self._forgotten: dict[str, tuple[int, float]] = {}
        self._channel = f"hanko_tornado:metadata:{client.settings.api_url}"
        self._listener: asyncio.Task[None] | None = None
        self._closed = False

    def fresh(self, user_id: str) -> FrozenDict | None:
        """The user's private metadata remembered within its TTL, without waiting; ``None`` otherwise."""
        entry = self._entries.get(user_id)
        if entry is not None and self.clock() - entry[0] < self.ttl:
            return entry[1]
        return None

    async def private_metadata(self, user_id: str) -> FrozenDict:
        """The user's private metadata: remembered, from the shared cache, or from Hanko (one call for all waiting).

        :raises HankoAdminError: Hanko could not answer and nothing usable is remembered.
        """
        remembered = self.fresh(user_id)
        if remembered is not None:
            return remembered
        loading = self._loading.get(user_id)
        if loading is None:
            loading = self._loading[user_id] = asyncio.ensure_future(self._load(user_id))
            loading.add_done_callback(lambda _: self._loading.pop(user_id, None))
        return await asyncio.shield(loading)

    async def forget(self, user_id: str) -> None:
        """Drop what is remembered of ``user_id``: here, in the shared cache and in every other process."""
        self._drop(user_id)
        shared = self._shared()
        if shared is None or not shared.can_publish:
            return
        self._listen()
        await shared.delete(self._key(user_id))
        await shared.publish(self._channel, "metadata-forget", json.dumps({"user": user_id}))

    async def close(self) -> None:
        """Stop listening to other processes; call on shutdown."""
        self._closed = True
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(asyncio.shield(self._listener), 2.0)

    def _drop(self, user_id: str) -> None:
        self._entries.pop(user_id, None)
        self._drops += 1
        self._forgotten[user_id] = (self._drops, self.clock())
        while len(self._forgotten) > _MAX_ENTRIES:
            self._forgotten.pop(next(iter(self._forgotten)))

    async def _load(self, user_id: str) -> FrozenDict:
        started, drops = self.clock(), self._drops
        shared = await self._read_shared(user_id, started)
        if shared is not None:
            self._remember(user_id, shared, drops)
            return shared[1]
        try:
            private = (await self.client.get_metadata(user_id)).private
        except AdminNotFoundError:
            private = _EMPTY  # no such user (deleted): no roles
        except HankoAdminError:
            stale = self._entries.get(user_id)
            if stale is not None and started - stale[0] < self.ttl + self.grace:
                log.warning("serving user %s's remembered private metadata: the admin API fails", user_id)
                return stale[1]
            raise
        if self._remember(user_id, (started, private), drops):
            await self._write_shared(user_id, started, private)
        return private

    def _remember(self, user_id: str, entry: tuple[float, FrozenDict], drops: int) -> bool:
        """Keep ``entry`` unless the user was dropped since its fetch began (``drops`` then); whether it was kept."""
        if self._forgotten.get(user_id, (0, 0.0))[0] > drops:
            return False  # dropped while this was fetched: the answer may be from before the change
        self._entries[user_id] = entry
        self._entries.move_to_end(user_id)
        if len(self._entries) > _MAX_ENTRIES:
            self._entries.popitem(last=False)
        return True

    def _shared(self) -> SealedCache | None:
        return self._shared_cache

    def _key(self, user_id: str) -> str:
        return f"{self._channel}:{user_id}"

    async def _read_shared(self, user_id: str, now: float) -> tuple[float, FrozenDict] | None:
        shared = self._shared()
        if shared is None or not shared.can_publish:
            return None
        self._listen()
        text = await shared.get(self._key(user_id), "metadata")
        if text is None:
            return None
        try:  # sealed by a process of this deployment, and still read strictly
            entry = json.loads(text)
            fetched_at, private = entry["fetched_at"], entry["private"]
            if entry["user"] != user_id or type(fetched_at) is not float or not isinstance(private, dict):
                raise ValueError("bad entry")
        except (ValueError, TypeError, KeyError, RecursionError) as error:
            log.warning("ignoring a malformed shared metadata entry: %s", describe_failure(error))
            return None
        if not now - self.ttl < fetched_at <= now + 10 or self._forgotten.get(user_id, (0, -1.0))[1] >= fetched_at:
            return None
        return fetched_at, freeze(private)

    async def _write_shared(self, user_id: str, fetched_at: float, private: Mapping[str, Any]) -> None:
        shared = self._shared()
        if shared is None or not shared.can_publish:
            return
        text = json.dumps({"user": user_id, "fetched_at": float(fetched_at), "private": private})
        await shared.set(self._key(user_id), "metadata", text, ttl=self.ttl)

    def _listen(self) -> None:
        if self._listener is None and not self._closed:
            self._listener = asyncio.ensure_future(self._listening())

    def _stopping(self) -> bool:
        # redis-py can swallow the cancellation of a read: a cancelled listener still sees it was asked to stop.
        task = asyncio.current_task()
        return self._closed or (task is not None and getattr(task, "cancelling", lambda: 0)() > 0)

    async def _listening(self) -> None:
        while not self._stopping():
            shared = self._shared()
            assert shared is not None
            messages = shared.subscribe(self._channel, "metadata-forget", stopped=self._stopping)
            try:
                async for text in messages:
                    if text is None:  # (re)subscribed: what was dropped meanwhile may be remembered here
                        self._entries.clear()
                        continue
                    with contextlib.suppress(ValueError, TypeError, KeyError, AttributeError):
                        user_id = json.loads(text)["user"]
                        if is_uuid(user_id):
                            self._drop(user_id)
            except asyncio.CancelledError:
                self._closed = True
                raise
            except Exception as error:  # noqa: BLE001 - Redis failing must not stop this process; it listens again
                log.warning("stopped hearing of metadata changes (%s); listening again", describe_failure(error))
            finally:
                await messages.aclose()
            if not self._stopping():
                await asyncio.sleep(CACHE_BACKOFF_SECONDS)


async def close_admin(application: tornado.web.Application) -> None:
    """Close what the admin API uses in ``application`` (its metadata cache's listener, its client); on shutdown.

    :func:`hanko_tornado.close` does it too, with everything else.
    """
    state = state_of(application)
    cache = state.existing(MetadataCache)
    if cache is not None:
        await cache.close()
    client = state.existing(HankoAdminClient)
    if client is not None:
        await client.close()


def metadata_cache_for(application: tornado.web.Application) -> MetadataCache:
    """The application's metadata cache, made on first use (its admin client; its verifier's shared cache).

    :raises LookupError: the application has no ``hanko_admin`` setting.
    """

    def made() -> MetadataCache:
        client = admin_client_for(application)
        return MetadataCache(client, verifier_for(application).cache if "hanko" in application.settings else None)

    return state_of(application).part(MetadataCache, made)


async def forget_for_event(application: tornado.web.Application, event: str, data: Mapping[str, Any]) -> None:
    """Drop the remembered metadata of the user a verified ``user.update*`` or ``user.delete`` event names.

    Call it from :meth:`~hanko_tornado.webhooks.HankoWebhookHandler.on_hanko_event` (which sees only
    verified events, each once); :class:`~hanko_tornado.admin.webhooks.HankoAdminWebhookHandler` does.
    """
    if not (event == "user.delete" or event == "user.update" or event.startswith("user.update.")):
        return
    user_id = data.get("id")
    if "hanko_admin" in application.settings and is_uuid(user_id):
        await metadata_cache_for(application).forget(str(user_id))
