"""Hanko's webhooks: verified events, handed on once, and sessions ended the moment Hanko says so.

Hanko POSTs each event as JSON ``{"token": "<jwt>", "event": "<event>"}``.  The
JWT is signed with the tenant's session key and carries ``sub: "hanko
webhooks"``, ``evt`` (the event), ``data`` (the payload) and the session
tokens' audience, and lives 5 minutes.  :class:`HankoWebhookHandler` verifies
it with the application's key store, ends sessions for ``session.delete*`` and
``user.delete`` events, answers 200, and hands the event on::

    class Webhooks(HankoWebhookHandler):
        async def on_hanko_event(self, event: str, data: Mapping[str, Any]) -> None:
            if event == "user.create":
                await create_account(data["id"])

    app = tornado.web.Application([(r"/webhooks/hanko", Webhooks)], hanko=HankoSettings(...))
"""

from __future__ import annotations

import collections
import hashlib
import json
import logging
import time
from collections.abc import Mapping
from typing import Any

import tornado.web

from hanko_tornado.errors import HankoError, InvalidTokenError
from hanko_tornado.metrics import WebhookResult
from hanko_tornado.session_protocol import parse_rfc3339
from hanko_tornado.tokens import TokenVerifier, verifier_for
from hanko_tornado.user import freeze

__all__ = ["WEBHOOK_SUBJECT", "HankoWebhookHandler", "WebhookEvent", "verify_webhook"]

log = logging.getLogger("hanko_tornado")

WEBHOOK_SUBJECT = "hanko webhooks"
_MAX_BODY_BYTES = 1024 * 1024
_MAX_EVENT_LENGTH = 128
_REMEMBERED_DELIVERIES = 100_000
_RESULTS: dict[int, WebhookResult] = {400: "malformed", 401: "refused", 503: "unavailable"}


class WebhookEvent:
    """A verified event: its name, its data (deeply frozen) and until when its token was valid."""

    __slots__ = ("data", "event", "expires_at")

    def __init__(self, event: str, data: Mapping[str, Any], expires_at: float) -> None:
        self.event = event
        self.data = data
        self.expires_at = expires_at


async def verify_webhook(verifier: TokenVerifier, token: str, event: str) -> WebhookEvent:
    """Verify a webhook token as Hanko signs them, for the ``event`` named beside it.

    Same keys, rotation and outage rules as session tokens; ``sub`` must be ``"hanko webhooks"``,
    ``evt`` equal ``event``, ``data`` present, ``exp`` present and the audience right where one is
    configured (``iss`` is not checked: Hanko's webhook tokens carry none).

    :raises InvalidTokenError: the token is not a valid webhook token for this event.
    :raises KeysUnavailableError: no signing keys could be had to check it.
    """
    claims, _ = await verifier.verify_signature(token)
    usable_until = verifier.check_times(claims, issuer=False)
    if claims.get("sub") != WEBHOOK_SUBJECT:
        raise InvalidTokenError("not a webhook token")
    if claims.get("evt") != event:
        raise InvalidTokenError("event does not match the token")
    if "data" not in claims:
        raise InvalidTokenError("no event data")
    return WebhookEvent(event, freeze(claims["data"]), usable_until)


class HankoWebhookHandler(tornado.web.RequestHandler):
    """Receives Hanko's webhooks; override :meth:`on_hanko_event`.

    Answers 400 for a malformed body, 401 for a token that is not a valid webhook
    token for the event named, 503 when no keys can be had, and 200 once the event
    is accepted.  A token seen before (until its ``exp``) is answered 200 and not
    handed on again.  ``session.delete*`` ends that session and ``user.delete``
    every session of the user, in this process at once and, through a shared
    Redis cache, in every process within a second.
    """

    def get_hanko_verifier(self) -> TokenVerifier:
        """The verifier whose keys check the tokens, and whose sessions events end."""
        return verifier_for(self.application)

    async def on_hanko_event(self, event: str, data: Mapping[str, Any]) -> None:
        """Called once per accepted event, after the answer went out; the default does nothing."""

    def check_xsrf_cookie(self) -> None:
        """Hanko's server posts here: no cookie, no form; the token authenticates the request."""

    def check_trusted_origin(self, origin: str) -> bool:
        return True  # authenticated by the token it carries, never by a cookie

    async def post(self) -> None:
        verifier = self.get_hanko_verifier()
        event_name = ""
        try:
            token, event_name = self._read_body()
            event = await verify_webhook(verifier, token, event_name)
        except HankoError as error:
            verifier.metrics.webhook_received(event_name, _RESULTS.get(error.status_code, "refused"))
            self._refuse(error)
            return
        if not _deliveries(self.application).first_time(token, event.expires_at):
            verifier.metrics.webhook_received(event.event, "replayed")
            log.info("Hanko webhook %s delivered again: not handed on twice", event.event)
            self.finish({"status": "accepted"})
            return
        verifier.metrics.webhook_received(event.event, "accepted")
        await end_sessions_for(verifier, event)
        log.info("Hanko webhook %s accepted%s", event.event, _ids(event.data))
        self.finish({"status": "accepted"})
        try:
            await self.on_hanko_event(event.event, event.data)
        except Exception:
            log.exception("handling the Hanko webhook %s failed", event.event)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.finish({"error": self._reason.lower().replace(" ", "_"), "message": self._reason})

    def _read_body(self) -> tuple[str, str]:
        body = self.request.body
        try:
            if len(body) > _MAX_BODY_BYTES:
                raise ValueError("too large")
            document = json.loads(body)
        except (ValueError, RecursionError):
            raise _BadWebhook("The webhook body is not a JSON object of at most 1 MiB.") from None
        if not isinstance(document, dict):
            raise _BadWebhook("The webhook body is not a JSON object.")
        token, event = document.get("token"), document.get("event")
        if not isinstance(token, str) or not token:
            raise _BadWebhook("The webhook body has no token.")
        if not isinstance(event, str) or not 0 < len(event) <= _MAX_EVENT_LENGTH:
            raise _BadWebhook("The webhook body has no event.")
        return token, event

    def _refuse(self, error: HankoError) -> None:
        if isinstance(error, InvalidTokenError):
            log.info("refused a Hanko webhook from %s: %s", self.request.remote_ip, error.reason)
        error.answer(self)


class _BadWebhook(HankoError):
    """The body is not what Hanko sends (400)."""

    status_code = 400
    error = "malformed_webhook"


class _Deliveries:
    """Webhook tokens handed on already, by SHA-256, until their ``exp`` (bounded)."""

    def __init__(self) -> None:
        self._seen: collections.OrderedDict[bytes, float] = collections.OrderedDict()

    def first_time(self, token: str, until: float) -> bool:
        now = time.time()
        while self._seen and next(iter(self._seen.values())) <= now:
            self._seen.popitem(last=False)
        digest = hashlib.sha256(token.encode()).digest()
        if digest in self._seen:
            return False
        self._seen[digest] = until
        if len(self._seen) > _REMEMBERED_DELIVERIES:
            self._seen.popitem(last=False)
        return True


def _deliveries(application: tornado.web.Application) -> _Deliveries:
    """The application's record of delivered webhooks, kept in its settings as its verifier is."""
    deliveries = application.settings.get("hanko_webhook_deliveries")
    if deliveries is None:
        deliveries = application.settings["hanko_webhook_deliveries"] = _Deliveries()
    assert isinstance(deliveries, _Deliveries)
    return deliveries


async def end_sessions_for(verifier: TokenVerifier, event: WebhookEvent) -> None:
    """End what ``event`` says ended: one session for ``session.delete*``, a user for ``user.delete``."""
    data, now = event.data, time.time()
    retention = verifier.settings.max_session_lifetime
    if event.event.startswith("session.delete") and isinstance(data.get("id"), str):
        until = _session_expiry(data.get("expires_at"), now + retention)
        await verifier.revocations.end("session", data["id"], until)
    elif event.event == "user.delete" and isinstance(data.get("id"), str):
        await verifier.revocations.end("user", data["id"], now + retention)


def _session_expiry(expires_at: Any, latest: float) -> float:
    try:
        return min(parse_rfc3339(expires_at).timestamp(), latest)
    except ValueError:
        return latest


def _ids(data: Mapping[str, Any]) -> str:
    """The ids an event names, for the log: never anything else from it."""
    ids = [f"{name}={data[name]}" for name in ("id", "user_id") if isinstance(data.get(name), str)]
    return f" ({', '.join(ids)})" if ids else ""
