"""``FakeTenant``: the state of a Hanko tenant as FakeHanko keeps it, and what Hanko does with it.

Keys, sessions, verdicts, faults and webhooks live here, with minting,
validating and ending sessions; the HTTP side (:mod:`~hanko_tornado.testing.handlers`,
:mod:`~hanko_tornado.testing.admin_handlers`) reads and changes this state, and
:class:`~hanko_tornado.testing.FakeHanko` (the server) builds on it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import Any, Literal

import jwt

from hanko_tornado.numeric_date import is_numeric_date
from hanko_tornado.testing.keys import SigningKey
from hanko_tornado.testing.sessions import FakeSession, open_session, validation_answer
from hanko_tornado.testing.webhooks import WebhookSender
from hanko_tornado.webhooks import WEBHOOK_SUBJECT

__all__ = ["HANKO_DEFAULT_CORS_ORIGINS", "WEBHOOK_SUBJECT", "FakeTenant", "Fault"]

Fault = Literal["error", "garbage", "slow", "drop"]

#: Hanko's default ``server.public.cors.allow_origins`` (``backend/config/config_default.go``).
HANKO_DEFAULT_CORS_ORIGINS = ("http://localhost:8888",)


class FakeTenant:
    """A Hanko tenant's keys, sessions and webhooks; see :class:`~hanko_tornado.testing.FakeHanko` for the parameters.

    Where it is served is the server's business: :attr:`api_url` is defined by FakeHanko.
    """

    def __init__(
        self,
        *,
        key_size: int = 4096,
        audience: Iterable[str] = ("localhost",),
        issuer: str | None = None,
        max_age: int = 600,
        keys: Iterable[SigningKey] = (),
        idle_timeout: float | None = None,
        cookie_name: str = "hanko",
        session_limit: int = 5,
        cors_origins: Iterable[str] = HANKO_DEFAULT_CORS_ORIGINS,
    ) -> None:
        self.key_size = key_size
        self.audience = tuple(audience)
        self.issuer = issuer
        self.max_age = max_age
        self.keys: list[SigningKey] = list(keys) or [SigningKey.generate(key_size=key_size)]
        self.idle_timeout = idle_timeout
        self.cookie_name = cookie_name
        self.session_limit = session_limit
        #: The frontend origins that may call with credentials (Hanko's ``server.public.cors.allow_origins``).
        self.cors_origins = tuple(cors_origins)
        #: Live sessions by id, as Hanko's database holds them.
        self.sessions: dict[str, FakeSession] = {}
        #: JWKS fetches and session validations served so far.
        self.jwks_fetches = 0
        self.validations = 0
        #: When set, the JWKS endpoint fails this way: error status, garbage body,
        #: a slow answer (``slow_seconds``), or a dropped connection.
        self.fault: Fault | None = None
        self.slow_seconds = 10.0
        #: The same for ``/sessions/validate``.
        self.session_fault: Fault | None = None
        #: Statuses ``/sessions/validate`` answers for these tokens instead of validating them
        #: (Hanko's 401, 403, 404, or a 5xx), with Hanko's error body.
        self.verdicts: dict[str, int] = {}
        #: Validations by ``POST``, which move a session's last use (and so its idle timeout).
        self.renewals = 0
        self._sender = WebhookSender(self.mint_webhook)
        #: Webhook URLs and the event prefixes each is subscribed to (Hanko's ``webhooks.hooks``).
        self.webhooks = self._sender.hooks
        #: Webhooks sent so far: (url, event, HTTP status, or 599 when the receiver could not be reached).
        self.deliveries = self._sender.deliveries

    @property
    def api_url(self) -> str:
        """The URL to configure as ``HANKO_API_URL``: where the server serves this tenant."""
        raise NotImplementedError("a tenant has an API URL once served: use FakeHanko")

    def jwks(self) -> dict[str, Any]:
        """The JSON Web Key Set as served."""
        return {"keys": [key.public_jwk() for key in self.keys]}

    def rotate_key(self, alg: str = "RS256") -> SigningKey:
        """Add a new key that signs from now on; older keys stay published."""
        key = SigningKey.generate(alg, self.key_size)
        self.keys.append(key)
        return key

    def revoke(self, session_id: str, event: str = "session.delete.explicit.logout") -> None:
        """End a session, as logging out does: ``/sessions/validate`` says it is invalid from now on.

        Fires ``event`` with the session as its data to the registered webhooks, as Hanko does
        (in the background: ``await`` :meth:`webhooks_sent` to wait for the deliveries).
        """
        session = self.sessions.pop(session_id, None)
        if session is not None:
            self._sender.fire(event, session.as_webhook_data())

    def start_session(self, session: FakeSession, event: str = "session.create.flow") -> None:
        """Store ``session`` as Hanko does when a login (or, with ``session.create.admin``, the admin API) makes one.

        The user's oldest live sessions beyond :attr:`session_limit` are deleted first, each with a
        ``session.delete.passive.limit`` webhook, then ``event`` fires with the new session.
        """
        for deleted in open_session(self.sessions, session, self.session_limit):
            self._sender.fire("session.delete.passive.limit", deleted.as_webhook_data())
        self._sender.fire(event, session.as_webhook_data())

    def register_webhook(self, url: str, events: Iterable[str] = ("session", "user")) -> None:
        """Send events that start with one of ``events`` (``"session.delete"``, ``"user.delete"``...) to ``url``."""
        self._sender.register(url, events)

    async def send_webhook(self, url: str, event: str, data: Mapping[str, Any], *, token: str | None = None) -> int:
        """POST one webhook to ``url`` exactly as Hanko does; the receiver's HTTP status (599 if unreachable).

        :param token: send this token instead of a freshly minted one (to replay or forge).
        """
        return await self._sender.send(url, event, data, token=token)

    def fire_webhook(self, event: str, data: Mapping[str, Any]) -> None:
        """Send ``event`` to every registered hook subscribed to it, as Hanko does (one token, hook after hook)."""
        self._sender.fire(event, data)

    async def webhooks_sent(self) -> None:
        """Wait for every webhook fired so far to be delivered (or to fail)."""
        await self._sender.sent()

    def mint(
        self,
        user_id: str | None = None,
        *,
        email: str | None = "user@example.com",
        email_verified: bool = True,
        username: str | None = None,
        audience: Iterable[str] | None = None,
        issuer: str | None = None,
        lifetime: float = 3600,
        session_id: str | None = None,
        amr: Iterable[str] = ("passkey",),
        claims: Mapping[str, Any] | None = None,
        key: SigningKey | None = None,
        headers: Mapping[str, Any] | None = None,
    ) -> str:
        """A session token as Hanko issues it at a login, for a session it then holds (see :meth:`start_session`).

        :param user_id: the ``sub``; a new UUID by default (Hanko's user ids are UUIDs).
        :param lifetime: seconds until ``exp``; negative for an expired token.
        :param key: sign with this key instead of the newest published one
            (a key from :meth:`SigningKey.generate` is one Hanko never published).
        :param claims: extra claims, or ``None`` values to remove standard ones.
        """
        now = int(time.time())
        payload: dict[str, Any] = {
            "sub": user_id or str(uuid.uuid4()),
            "iat": now,
            "exp": int(now + lifetime),
            "aud": list(self.audience if audience is None else audience),
            "session_id": session_id or str(uuid.uuid4()),
            "amr": list(amr),
        }
        if email is not None:
            payload["email"] = {"address": email, "is_primary": True, "is_verified": email_verified}
        if username is not None:
            payload["username"] = username
        if (issuer or self.issuer) is not None:
            payload["iss"] = issuer or self.issuer
        for name, value in (claims or {}).items():
            if value is None:
                payload.pop(name, None)
            else:
                payload[name] = value
        session, user = payload.get("session_id"), payload.get("sub")
        if isinstance(session, str) and isinstance(user, str) and session not in self.sessions:
            exp = payload.get("exp")
            exp = exp if isinstance(exp, int) and is_numeric_date(exp) else now + lifetime  # a time Hanko can store
            self.start_session(FakeSession(session, user, now, exp, time.time()))
        return self._sign(payload, key, headers)

    def mint_webhook(
        self,
        event: str,
        data: Mapping[str, Any],
        *,
        lifetime: float = 300,
        audience: Iterable[str] | None = None,
        key: SigningKey | None = None,
        claims: Mapping[str, Any] | None = None,
    ) -> str:
        """A webhook token as Hanko signs it: the session key, ``sub: "hanko webhooks"``, ``evt``, ``data``, 5 minutes.

        :param claims: extra claims, or ``None`` values to remove standard ones.
        """
        now = int(time.time())
        payload: dict[str, Any] = {
            "sub": WEBHOOK_SUBJECT,
            "iat": now,
            "exp": int(now + lifetime),
            "aud": list(self.audience if audience is None else audience),
            "evt": event,
            "data": dict(data),
        }
        for name, value in (claims or {}).items():
            if value is None:
                payload.pop(name, None)
            else:
                payload[name] = value
        return self._sign(payload, key, None)

    def _sign(self, payload: dict[str, Any], key: SigningKey | None, headers: Mapping[str, Any] | None) -> str:
        key = key or self.keys[-1]
        header = {"kid": key.kid, "typ": "JWT", **(headers or {})}
        return jwt.encode(payload, key.private_key, algorithm=key.alg, headers=header)

    def validate(self, token: str, *, renew: bool = False) -> tuple[int, dict[str, Any]]:
        """Hanko's status and answer for ``/sessions/validate`` on one token; ``renew`` as ``POST`` does.

        See :func:`hanko_tornado.testing.sessions.validation_answer`.
        """
        if token in self.verdicts:
            status = self.verdicts[token]
            return status, {"code": status, "message": HTTPStatus(status).phrase}
        claims = self._verified_claims(token)
        if claims is None:
            return 200, {"is_valid": False}
        status, answer, idle_expired = validation_answer(self.sessions, claims, self.idle_timeout, renew=renew)
        if idle_expired is not None:
            self.revoke(idle_expired, "session.delete.passive.expire")
        if renew and answer.get("is_valid"):
            self.renewals += 1
        return status, answer

    def _verified_claims(self, token: str) -> dict[str, Any] | None:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            key = next(k for k in self.keys if k.kid == kid)
            claims: dict[str, Any] = jwt.decode(
                token, key.private_key.public_key(), algorithms=[key.alg], options={"verify_aud": False}
            )
            return claims
        except (jwt.PyJWTError, StopIteration):
            return None
