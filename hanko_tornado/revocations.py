"""Sessions and users that Hanko said ended, remembered until their tokens can no longer be valid.

Hanko's ``session.delete.*`` webhooks (logout, revocation, idle expiry, session
limit) end one session; ``user.delete`` ends every session of a user.
:class:`Revocations` belongs to one verifier: a token of an ended session is
refused, remembered or not, with no call to Hanko.  With a shared Redis cache
the end travels to every process (:mod:`hanko_tornado.ended_records`): a
sealed record in Redis and a sealed publish that the other processes listen
to, so that what they remember is refused within a second.  A process reads
every record when it subscribes (and again whenever it resubscribes), so
while it listens its memory knows every end: a new token costs no Redis round
trip, and a remembered one is kept across a Redis restart.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Callable

from hanko_tornado.cache import CACHE_BACKOFF_SECONDS, CACHE_OPERATION_TIMEOUT, SealedCache, describe_failure
from hanko_tornado.ended_records import EndedRecords, parse_end
from hanko_tornado.failure_streak import FailureStreak
from hanko_tornado.settings import HankoSettings
from hanko_tornado.user import HankoUser

__all__ = ["EndedSessions", "Revocations"]

log = logging.getLogger("hanko_tornado")

_MAX_ENTRIES = 1_000_000


class EndedSessions:
    """Ended sessions (by ``session_id``) and deleted users (by ``sub``), each until a wall-clock time.

    Falsy while empty, so the hot path pays one truth test until a webhook ends something.
    """

    def __init__(self) -> None:
        self._sessions: collections.OrderedDict[str, float] = collections.OrderedDict()
        self._users: collections.OrderedDict[str, float] = collections.OrderedDict()
        self._full_warned = False

    def __len__(self) -> int:
        return len(self._sessions) + len(self._users)

    def has_ended(self, user: HankoUser) -> bool:
        """Whether ``user``'s session or the user was ended, and the record still stands."""
        now = time.time()
        until = self._sessions.get(user.session_id or "")
        if until is not None and now < until:
            return True
        until = self._users.get(user.id)
        return until is not None and now < until

    def end_session(self, session_id: str, until: float) -> bool:
        """Refuse the session's tokens until ``until``; whether this is news."""
        return self._add(self._sessions, session_id, until)

    def end_user(self, user_id: str, until: float) -> bool:
        """Refuse every token of the user until ``until``; whether this is news."""
        return self._add(self._users, user_id, until)

    def _add(self, entries: collections.OrderedDict[str, float], key: str, until: float) -> bool:
        now = time.time()
        if until <= now:
            return False
        known = entries.get(key)
        entries[key] = max(until, known or 0.0)
        while entries and next(iter(entries.values())) <= now:  # drop records whose tokens have all expired
            entries.popitem(last=False)
        if len(entries) > _MAX_ENTRIES:
            entries.popitem(last=False)
            if not self._full_warned:
                self._full_warned = True
                log.warning("more than %d ended sessions recorded: the oldest records are dropped", _MAX_ENTRIES)
        return known is None or known <= now


class Revocations:
    """The ended sessions of one verifier, shared with every process that shares its Redis cache.

    :param cache: the verifier's sealed cache (Redis, or this process's memory).
    :param forget: drops every token the verifier remembers; called when this process may
        have missed an end it cannot learn again (the records were too many to read whole),
        so that those tokens are verified afresh.
    :param ended: where the ends are kept, when they must outlive this object; a new record by default.
    """

    def __init__(
        self,
        settings: HankoSettings,
        *,
        cache: SealedCache,
        forget: Callable[[], None],
        ended: EndedSessions | None = None,
    ) -> None:
        self.ended = ended if ended is not None else EndedSessions()
        self.settings = settings
        self.records = EndedRecords(settings.api_url)
        self._cache = cache
        self._forget = forget
        #: How many times this process (re)subscribed to the other processes' ends and read them all: each time,
        #: it may have missed some while not listening, so open sockets check again (see the WebSocket mixin).
        self.subscriptions = 0
        self._listener: asyncio.Task[None] | None = None
        self._stopped = asyncio.Event()
        self._closed = False
        #: Subscribed, with every record read since: memory knows every end, and no token needs Redis.
        self.knows_every_end = False

    def has_ended(self, user: HankoUser) -> bool:
        """Whether this process knows that ``user``'s session ended (no waiting: the hot path)."""
        return bool(self.ended) and self.ended.has_ended(user)

    async def has_ended_anywhere(self, user: HankoUser) -> bool:
        """Whether ``user``'s session ended, here or in the shared record (for a token verified afresh).

        Redis is read only while this process may have missed an end (not subscribed yet, or not since a failure).
        """
        if self.has_ended(user):
            return True
        cache = self._cache
        if not cache.can_publish:
            return False
        self._listen()
        if self.knows_every_end:
            return False
        for end in await self.records.read(cache, [("session", user.session_id or ""), ("user", user.id)]):
            self._apply(*end)
        return self.ended.has_ended(user)

    async def has_ended_in_record(self, user: HankoUser) -> bool | None:
        """Whether ``user``'s session ended, reading the shared record again; ``None`` when it could not be read.

        For open sockets after a resubscription: ``None`` (the shared cache failed or backs off) means ask later.
        """
        cache = self._cache
        if not cache.can_publish:
            return self.has_ended(user)
        if not cache.answering:
            return None
        ended = await self.has_ended_anywhere(user)
        return ended if ended or cache.answering else None

    async def end(self, kind: str, ident: str, until: float) -> None:
        """End a ``"session"`` (by id) or a ``"user"`` (all sessions): here at once, then everywhere.

        :param until: when its tokens expire (the session's ``expires_at``); the end is kept ``leeway``
            seconds longer, as long as a token may still be accepted.
        """
        until += self.settings.leeway
        self._apply(kind, ident, until)
        cache = self._cache
        if not cache.can_publish:
            return
        self._listen()
        if not await self.records.share(cache, kind, ident, until):
            log.warning(
                "could not share with other processes that %s %s ended (the shared cache failed): "
                "they may accept its tokens until they verify them afresh",
                kind,
                ident,
            )

    async def close(self) -> None:
        """Stop listening; call on shutdown."""
        self._closed = True
        self._stopped.set()
        if self._listener is not None:
            self._listener.cancel()
            # Its subscription is closed before the cache is; bounded, whatever redis-py does with the cancel.
            with contextlib.suppress(asyncio.CancelledError, asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._listener), 2 * CACHE_OPERATION_TIMEOUT)

    def _apply(self, kind: str, ident: str, until: float) -> bool:
        until = min(until, time.time() + self.settings.max_session_lifetime + self.settings.leeway)
        return self.ended.end_session(ident, until) if kind == "session" else self.ended.end_user(ident, until)

    def _listen(self) -> None:
        """Listen to the other processes' ends from now on (started on first need, on the running loop)."""
        if self._listener is None and not self._closed:
            self._listener = asyncio.ensure_future(self._listening())

    async def _listening(self) -> None:
        cache = self._cache
        streak = FailureStreak("listening to ended sessions on the shared cache again")
        while not self._closed and not _cancelling():
            messages = cache.subscribe(self.records.channel, "ended", stopped=self._stopping)
            try:
                async for text in messages:
                    if text is None:  # subscribed: whatever ended while nobody listened is read from the records
                        await self._read_every_end(cache)
                        self.subscriptions += 1
                        streak.succeeded()
                        continue
                    end = parse_end(text)
                    if end is not None:
                        self._apply(*end)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - Redis failing must not stop this process; it listens again
                streak.failed(
                    f"stopped hearing of sessions other processes end ({describe_failure(error)}); "
                    f"listening again in {CACHE_BACKOFF_SECONDS:g} s"
                )
            finally:
                self.knows_every_end = False  # from the first failure on, an end may go unheard
                await messages.aclose()  # unsubscribes and returns the connection now, not when collected
            # redis-py may swallow a cancellation and end the subscription instead: close() is also an event.
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), CACHE_BACKOFF_SECONDS)

    async def _read_every_end(self, cache: SealedCache) -> None:
        """Apply every end recorded (subscribed first, read second: an end recorded before is in it, one after is
        published); a table too large to read whole makes the remembered tokens be verified afresh."""
        if await self.records.snapshot(cache, self._apply):
            self.knows_every_end = True
        else:
            self._forget()
            cache.recorder.shared_cache_failed("read")

    def _stopping(self) -> bool:
        # Checked too: redis-py can swallow a cancellation while it reads.
        return self._stopped.is_set() or _cancelling()


def _cancelling() -> bool:
    """Whether the running task was asked to stop, even if what it awaited swallowed the cancellation (3.11+)."""
    task = asyncio.current_task()
    return task is not None and getattr(task, "cancelling", lambda: 0)() > 0
