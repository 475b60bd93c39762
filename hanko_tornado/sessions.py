"""Revocation: ask Hanko whether a verified token's session still exists.

A Hanko token checked only by its signature stays valid until ``exp``, even
after logout.  With ``session_check="validate"`` or ``"renew"``, a
:class:`SessionChecker` asks Hanko's ``/sessions/validate`` about each
session and remembers the answer for ``session_check_ttl`` seconds (never
past the token's ``exp``, nor the session's expiry or idle expiry): in this
process, and in the sealed cache it is given, so that processes sharing a
Redis cache share the answers too.  Concurrent requests for one session share
one call.  ``"validate"`` asks with ``GET`` (passive); ``"renew"`` with
``POST``, which also moves the session's idle timeout, as Hanko's docs advise
backends to do, for requests only: an open WebSocket's re-checks are passive.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
import time

from tornado.httpclient import AsyncHTTPClient
from tornado.simple_httpclient import SimpleAsyncHTTPClient

from hanko_tornado.cache import SealedCache, describe_failure
from hanko_tornado.errors import InvalidTokenError, SessionCheckUnavailableError
from hanko_tornado.failure_streak import FailureStreak
from hanko_tornado.metrics import Recorder
from hanko_tornado.session_protocol import SESSION_ENDED, SessionStatus, ask_hanko
from hanko_tornado.settings import HankoSettings
from hanko_tornado.user import HankoUser

__all__ = ["SessionChecker"]

log = logging.getLogger("hanko_tornado")

_MAX_REMEMBERED_SESSIONS = 10_000
_ANSWER_BODY_BYTES = 64 * 1024


class SessionChecker:
    """Checks sessions against Hanko's ``/sessions/validate`` for one application.

    It has an HTTP client of its own, with ``session_check_concurrency``
    connections, so that session checks never queue behind key fetches (or
    key fetches behind them).

    :param cache: where answers are shared with the processes that share it.
    :param recorder: where checks are counted.
    """

    def __init__(self, settings: HankoSettings, *, cache: SealedCache, recorder: Recorder) -> None:
        self.settings = settings
        self._cache = cache
        self._recorder = recorder
        self._answers: collections.OrderedDict[str, SessionStatus] = collections.OrderedDict()
        # Passive answers in renew mode (open sockets), kept apart: a request must still renew.
        self._passive_answers: collections.OrderedDict[str, SessionStatus] = collections.OrderedDict()
        self._pending: dict[str, asyncio.Future[SessionStatus | None]] = {}
        self._slots: asyncio.Semaphore | None = None
        self._http_client: AsyncHTTPClient | None = None
        # After a failure, Hanko is left alone for refetch_interval: more calls would only pile up on it.
        self._streak = FailureStreak("Hanko session validation answers again", backoff=settings.refetch_interval)
        self._congested = False
        self._closed = False

    async def check(self, token: str, user: HankoUser, *, renew: bool = True) -> SessionStatus | None:
        """What Hanko says of ``user``'s live session; ``None`` when it could not say and the check fails open.

        :param renew: whether this is user activity, which ``session_check="renew"`` reports to Hanko (a
            request); ``False`` asks passively (``GET``) whatever the mode: an open socket's re-check.
            A passive answer never stands in for a renewing one, so requests still renew.
        :raises InvalidTokenError: Hanko says the session ended, or refused the token (400, 401, 403, 404).
        :raises SessionCheckUnavailableError: Hanko could not answer and the check fails closed, or
            Hanko would have to be asked after :meth:`close`.
        """
        session = user.session_id
        assert session is not None, "verified session tokens carry a session_id"
        passive = not renew and self.settings.session_check == "renew"
        status = self._answers.get(session)
        if passive and (status is None or time.time() >= status.good_until):
            status = self._passive_answers.get(session)  # a renewing answer does for a passive check, not back
        if status is None or time.time() >= status.good_until:
            key = f"{session} passive" if passive else session
            pending = self._pending.get(key)
            if pending is None:
                if self._closed:  # shut down: asking would make an HTTP client again, which nobody would close
                    raise SessionCheckUnavailableError(retry_after=1)
                pending = self._pending[key] = asyncio.ensure_future(self._ask(session, token, user, passive))
                pending.add_done_callback(lambda _: self._pending.pop(key, None))
            status = await asyncio.shield(pending)
            if status is None:
                return None
        if not status.valid:
            raise InvalidTokenError(
                "session_ended" if status.reason == SESSION_ENDED else "session_refused", status.reason
            )
        return status

    @property
    def failing(self) -> bool:
        """Whether Hanko's session validation failed last time it was asked (5xx, timeout, unreadable)."""
        return self._streak.failing

    async def close(self) -> None:
        """Close the HTTP client, for good: a check Hanko must answer after it raises
        :class:`~hanko_tornado.errors.SessionCheckUnavailableError`; call on shutdown."""
        self._closed = True
        if self._http_client is not None:
            self._http_client.close()
            self._http_client = None

    def get_http_client(self) -> AsyncHTTPClient:
        """The client for session checks: its own connections, no redirects, a small body cap."""
        if self._http_client is None:
            self._http_client = SimpleAsyncHTTPClient(
                force_instance=True,
                max_clients=self.settings.session_check_concurrency,
                max_body_size=_ANSWER_BODY_BYTES,
            )
        return self._http_client

    async def _ask(self, session: str, token: str, user: HankoUser, passive: bool) -> SessionStatus | None:
        cache_key = f"hanko_tornado:session:{self.settings.api_url}:{session}"
        status = await self._read_cache(cache_key, session)
        if status is not None:
            self._recorder.session_checked("shared")
        else:
            if self._streak.backing_off:
                self._recorder.session_checked("backing_off")
                return self._unavailable()  # Hanko failed a moment ago: do not pile more calls on it
            if self._slots is None:
                self._slots = asyncio.Semaphore(self.settings.session_check_concurrency)
            try:
                # Waiting for a free connection here is this process's congestion, not Hanko failing.
                await asyncio.wait_for(self._slots.acquire(), self.settings.session_check_timeout)
            except asyncio.TimeoutError:
                self._recorder.session_checked("congested")
                if not self._congested:
                    self._congested = True
                    log.warning(
                        "session checks waited %gs for one of this process's %d connections to Hanko; "
                        "raise session_check_concurrency if this recurs",
                        self.settings.session_check_timeout,
                        self.settings.session_check_concurrency,
                    )
                return self._unavailable()
            self._congested = False
            try:
                status = await ask_hanko(
                    self.get_http_client(),
                    self.settings,
                    session,
                    token,
                    user.expires_at,
                    renew=False if passive else None,
                )
            except Exception as error:  # noqa: BLE001 - any failure to get an answer is handled alike
                self._recorder.session_checked("failed")
                outcome = "accepting locally verified tokens" if self._fails_open else "refusing requests with 503"
                self._streak.failed(f"Hanko session validation failed ({describe_failure(error)}); {outcome}")
                return self._unavailable()
            finally:
                self._slots.release()
            self._recorder.session_checked(
                "live" if status.valid else "ended" if status.reason == SESSION_ENDED else "refused"
            )
            self._streak.succeeded()
            if not passive:  # the shared answers are renewing ones in renew mode
                await self._write_cache(cache_key, status)
        self._remember(self._passive_answers if passive else self._answers, session, status)
        return status

    @property
    def _fails_open(self) -> bool:
        return self.settings.session_check_failure == "open"

    def _unavailable(self) -> SessionStatus | None:
        """``None`` (accept the locally verified token) when failing open; else raise."""
        if self._fails_open:
            return None
        raise SessionCheckUnavailableError(retry_after=max(1, math.ceil(self.settings.refetch_interval)))

    @staticmethod
    def _remember(answers: collections.OrderedDict[str, SessionStatus], session: str, status: SessionStatus) -> None:
        answers[session] = status
        answers.move_to_end(session)
        if len(answers) > _MAX_REMEMBERED_SESSIONS:
            answers.popitem(last=False)

    async def _read_cache(self, cache_key: str, session: str) -> SessionStatus | None:
        """A live answer another request (or process) stored, checked as strictly as Hanko's own."""
        text = await self._cache.get(cache_key, "session")
        if text is None:
            return None
        try:
            status = SessionStatus.from_json(session, text)
            if not time.time() < status.good_until <= time.time() + self.settings.session_check_ttl:
                raise ValueError("bad times")
            return status
        except Exception as error:  # noqa: BLE001 - any malformed entry is ignored alike
            log.warning("ignoring a malformed shared session cache entry: %s", error)
            return None

    async def _write_cache(self, cache_key: str, status: SessionStatus) -> None:
        ttl = status.good_until - time.time()
        if ttl > 0:
            await self._cache.set(cache_key, "session", status.to_json(), ttl=ttl)
