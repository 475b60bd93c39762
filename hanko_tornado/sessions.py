"""Revocation: ask Hanko whether a verified token's session still exists.

A Hanko token checked only by its signature stays valid until ``exp``, even
after logout.  With ``session_check="validate"``, a :class:`SessionChecker`
asks ``GET {api_url}/sessions/validate`` (passive: it does not extend the
session's idle timeout) about each session, and remembers the answer for
``session_check_ttl`` seconds (never past ``exp``): in this process, and in
the key store's aiocache cache, so that processes sharing a Redis cache share
the answers too.  Concurrent requests for one session share one call.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import json
import logging
import math
import time

from tornado.httpclient import HTTPRequest

from hanko_tornado.errors import InvalidTokenError, SessionCheckUnavailableError
from hanko_tornado.keys import KeyStore
from hanko_tornado.settings import HankoSettings
from hanko_tornado.user import HankoUser

__all__ = ["SessionChecker"]

log = logging.getLogger("hanko_tornado")

_MAX_REMEMBERED_SESSIONS = 10_000


class SessionChecker:
    """Checks sessions against Hanko's ``/sessions/validate`` for one application.

    It borrows the key store's HTTP client and cache.
    """

    def __init__(self, settings: HankoSettings, key_store: KeyStore) -> None:
        self.settings = settings
        self.key_store = key_store
        self.validate_url = f"{settings.api_url}/sessions/validate"
        # session key -> (is_valid, answer good until, wall-clock seconds)
        self._answers: collections.OrderedDict[str, tuple[bool, float]] = collections.OrderedDict()
        self._pending: dict[str, asyncio.Future[bool]] = {}
        self._failing = False
        self._last_failure = -math.inf

    async def check(self, token: str, user: HankoUser) -> None:
        """Return when ``user``'s session is live; raise when Hanko says it ended.

        :raises InvalidTokenError: Hanko answered ``is_valid: false``.
        :raises SessionCheckUnavailableError: Hanko could not answer and the check fails closed.
        """
        session = user.session_id or hashlib.sha256(token.encode()).hexdigest()
        answer = self._answers.get(session)
        if answer is not None and time.time() < answer[1]:
            valid = answer[0]
        else:
            pending = self._pending.get(session)
            if pending is None:
                pending = self._pending[session] = asyncio.ensure_future(self._ask(session, token, user))
                pending.add_done_callback(lambda _: self._pending.pop(session, None))
            valid = await asyncio.shield(pending)
        if not valid:
            raise InvalidTokenError("session ended")

    async def _ask(self, session: str, token: str, user: HankoUser) -> bool:
        cache_key = f"hanko_tornado:session:{self.settings.api_url}:{session}"
        answer = await self._read_cache(cache_key)
        if answer is None:
            if time.monotonic() - self._last_failure < self.settings.refetch_interval:
                # Hanko failed a moment ago: do not pile more calls on it.
                return self._unanswered(None)
            try:
                valid = await self._validate(token)
            except Exception as error:  # noqa: BLE001 - any failure to get an answer is handled alike
                return self._unanswered(error)
            if self._failing:
                self._failing = False
                log.info("Hanko session validation answers again")
            answer = (valid, min(time.time() + self.settings.session_check_ttl, user.expires_at.timestamp()))
            await self._write_cache(cache_key, answer)
        self._remember(session, answer)
        return answer[0]

    async def _validate(self, token: str) -> bool:
        request = HTTPRequest(
            self.validate_url,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            connect_timeout=self.settings.session_check_timeout,
            request_timeout=self.settings.session_check_timeout,
            follow_redirects=False,
            decompress_response=False,
        )
        response = await self.key_store.get_http_client().fetch(request, raise_error=False)
        if response.code != 200:
            raise ValueError(f"answered HTTP {response.code}")
        answer = json.loads(response.body)
        valid = answer.get("is_valid") if isinstance(answer, dict) else None
        if not isinstance(valid, bool):  # a 200 alone does not mean valid: Hanko says so in is_valid
            raise ValueError("answer has no boolean is_valid")
        return valid

    def _unanswered(self, error: Exception | None) -> bool:
        fail_open = self.settings.session_check_failure == "open"
        if error is not None:
            self._last_failure = time.monotonic()
        if not self._failing:
            self._failing = True
            outcome = "accepting locally verified tokens" if fail_open else "refusing requests with 503"
            log.warning("Hanko session validation failed (%s); %s", error, outcome)
        if fail_open:
            return True
        raise SessionCheckUnavailableError(retry_after=max(1, round(self.settings.refetch_interval)))

    def _remember(self, session: str, answer: tuple[bool, float]) -> None:
        self._answers[session] = answer
        self._answers.move_to_end(session)
        if len(self._answers) > _MAX_REMEMBERED_SESSIONS:
            self._answers.popitem(last=False)

    async def _read_cache(self, cache_key: str) -> tuple[bool, float] | None:
        """A live answer another request (or process) stored, checked as strictly as Hanko's own."""
        text = await self.key_store.get_cache().get(cache_key, "session")
        if text is None:
            return None
        try:
            entry = json.loads(text)
            valid, good_until = entry["is_valid"], float(entry["until"])
            now = time.time()
            if not isinstance(valid, bool) or not now < good_until <= now + self.settings.session_check_ttl:
                raise ValueError("bad entry")
            return valid, good_until
        except Exception as error:  # noqa: BLE001 - any malformed entry is ignored alike
            log.warning("ignoring a malformed shared session cache entry: %s", error)
            return None

    async def _write_cache(self, cache_key: str, answer: tuple[bool, float]) -> None:
        ttl = answer[1] - time.time()
        if ttl > 0:
            entry = json.dumps({"is_valid": answer[0], "until": answer[1]})
            await self.key_store.get_cache().set(cache_key, "session", entry, ttl=ttl)
