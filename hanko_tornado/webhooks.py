"""Hanko's webhooks: verified events, handed on once, and sessions ended the moment Hanko says so.

Hanko POSTs each event as JSON ``{"token": "<jwt>", "event": "<event>"}``.  The
JWT is signed with the tenant's session key and carries ``sub: "hanko
webhooks"``, ``evt`` (the event), ``data`` (the payload) and the session
tokens' audience, and lives 5 minutes.  :class:`HankoWebhookHandler` verifies
it with the application's key store (or, with ``hanko_projects``, the request's
project's), ends sessions for ``session.delete*`` and ``user.delete`` events,
answers 200, and hands the event on once per endpoint::

    class Webhooks(HankoWebhookHandler):
        async def on_hanko_event(self, event: str, data: Mapping[str, Any]) -> None:
            if event == "user.create":
                await create_account(data["id"])

    app = tornado.web.Application([(r"/webhooks/hanko", Webhooks)], hanko=HankoSettings(...))
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping
from typing import Any

import tornado.web

from hanko_tornado.deliveries import deliveries_of
from hanko_tornado.errors import (
    HankoError,
    InvalidTokenError,
    KeysUnavailableError,
    UnavailableError,
    write_json_error,
)
from hanko_tornado.metrics import WebhookResult
from hanko_tornado.request_verifier import request_project, request_verifier
from hanko_tornado.session_protocol import parse_rfc3339
from hanko_tornado.tokens import TokenVerifier
from hanko_tornado.user import freeze

__all__ = ["WEBHOOK_SUBJECT", "HankoWebhookHandler", "WebhookEvent", "verify_webhook"]

log = logging.getLogger("hanko_tornado")

WEBHOOK_SUBJECT = "hanko webhooks"
_MAX_BODY_BYTES = 1024 * 1024
_MAX_EVENT_LENGTH = 128
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
        raise InvalidTokenError("not_webhook")
    if claims.get("evt") != event:
        raise InvalidTokenError("event_mismatch")
    if "data" not in claims:
        raise InvalidTokenError("no_data")
    return WebhookEvent(event, freeze(claims["data"]), usable_until)


class HankoWebhookHandler(tornado.web.RequestHandler):
    """Receives Hanko's webhooks; override :meth:`on_hanko_event`.

    Answers 400 for a malformed body, 401 for a token that is not a valid webhook
    token for the event named, 503 when no keys can be had within
    :attr:`hanko_verify_timeout`, 404 (with ``hanko_projects``) for a request of
    no project, and 200 once the event is accepted.  A token this endpoint saw
    before (until its ``exp``, whatever its spelling) is answered 200 and not
    handed on again.  ``session.delete*`` ends that session and ``user.delete``
    every session of the user, in this process at once and, through a shared
    Redis cache, in every process within a second.

    Hanko counts every answer of 400 or more (and no answer within 10 s) as a
    failed delivery, and switches a hook kept in its database off after more
    than five in a row: each such answer is logged as a warning, and counted
    in ``hanko_webhook_failures_total``.
    """

    #: Seconds the token's verification may wait (for Hanko's keys) before the answer is a 503: Hanko gives
    #: up on a delivery after 10 s, and an answer, even a 503, is better logged than a timeout.
    hanko_verify_timeout: float = 7.0

    _hanko_verifier: TokenVerifier | None = None
    _hanko_failure: str | None = None

    def get_hanko_verifier(self) -> TokenVerifier:
        """The verifier whose keys check the tokens, and whose sessions events end.

        The application's (``hanko=``); with ``hanko_projects=``, the one of the project
        :meth:`get_hanko_project` names, as for the auth mixin (404 when there is none).
        """
        return request_verifier(self, self.get_hanko_project)

    def get_hanko_project(self) -> str | None:
        """The Hanko project this webhook comes from (with ``hanko_projects``): what ``select`` says by default.

        Hanko's webhook body names no tenant, so the URL each project's hook posts to must tell them apart.
        """
        return request_project(self)

    def get_hanko_webhook_endpoint(self) -> str:
        """The name of this endpoint's replay record: each endpoint hands every event on once.

        The handler's class by default, so two routes served by one class share a record; name them
        apart from the route if need be, never from the request's path, which any caller can vary.
        """
        handler_class = type(self)
        return f"{handler_class.__module__}.{handler_class.__qualname__}"

    async def on_hanko_event(self, event: str, data: Mapping[str, Any]) -> None:
        """Called once per accepted event, after the answer went out; the default does nothing."""

    def check_xsrf_cookie(self) -> None:
        """Hanko's server posts here: no cookie, no form; the token authenticates the request."""

    def check_trusted_origin(self, origin: str) -> bool:
        return True  # authenticated by the token it carries, never by a cookie

    async def post(self, *args: str, **kwargs: str) -> None:  # route groups (a tenant in the path) are welcome
        verifier = self._hanko_verifier = self.get_hanko_verifier()
        event_name = ""
        try:
            token, event_name = self._read_body()
            event = await self._verify(verifier, token, event_name)
        except HankoError as error:
            verifier.metrics.webhook_received(event_name, _RESULTS.get(error.status_code, "refused"))
            self._refuse(error)
            return
        verifier.metrics.webhook_verified()
        if not deliveries_of(self.application).first_time(self.get_hanko_webhook_endpoint(), token, event.expires_at):
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
        write_json_error(self)

    def on_finish(self) -> None:
        status = self.get_status()
        if self.request.method != "POST" or status < 400:
            return
        reason = self._hanko_failure or ("unknown_project" if status == 404 else _status_failure(status))
        log.warning(
            "answered a Hanko webhook from %s with %d (%s): Hanko counts it as a failed delivery and does not "
            "retry, and switches a hook kept in its database off after more than 5 failures in a row",
            self.request.remote_ip,
            status,
            reason,
        )
        if self._hanko_verifier is not None:
            self._hanko_verifier.metrics.webhook_failed(reason)

    async def _verify(self, verifier: TokenVerifier, token: str, event: str) -> WebhookEvent:
        try:
            return await asyncio.wait_for(verify_webhook(verifier, token, event), self.hanko_verify_timeout)
        except asyncio.TimeoutError:  # the builtin TimeoutError from Python 3.11 on
            raise _TooSlow(retry_after=1) from None

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
        self._hanko_failure = _failure_reason(error)
        error.answer(self)


class _BadWebhook(HankoError):
    """The body is not what Hanko sends (400)."""

    status_code = 400
    error = "malformed_webhook"


class _TooSlow(UnavailableError):
    """The token could not be verified in time: Hanko's keys did not come (503)."""

    error = "keys_unavailable"
    sentence = "Hanko's signing keys did not come in time; try again shortly."


def _failure_reason(error: HankoError) -> str:
    """The fixed label a refused webhook is logged and counted with (see ``WEBHOOK_FAILURE_REASONS``)."""
    if isinstance(error, _BadWebhook):
        return "malformed_body"
    if isinstance(error, _TooSlow):
        return "timeout"
    if isinstance(error, KeysUnavailableError):
        return "keys_unavailable"
    if isinstance(error, InvalidTokenError):
        return "malformed_token" if error.code == "malformed" else error.code
    return _status_failure(error.status_code)


def _status_failure(status: int) -> str:
    return "server_error" if status >= 500 else "other"


async def end_sessions_for(verifier: TokenVerifier, event: WebhookEvent) -> None:
    """End what ``event`` says ended: one session for ``session.delete*``, a user for ``user.delete``."""
    data, now = event.data, time.time()
    retention = verifier.settings.max_session_lifetime
    if event.event.startswith("session.delete") and isinstance(data.get("id"), str):
        until = _session_expiry(data.get("expires_at"), now + retention)
        await verifier.end("session", data["id"], until)
    elif event.event == "user.delete" and isinstance(data.get("id"), str):
        await verifier.end("user", data["id"], now + retention)


def _session_expiry(expires_at: Any, latest: float) -> float:
    try:
        return min(parse_rfc3339(expires_at).timestamp(), latest)
    except ValueError:
        return latest


def _ids(data: Mapping[str, Any]) -> str:
    """The ids an event names, for the log: never anything else from it."""
    ids = [f"{name}={data[name]}" for name in ("id", "user_id") if isinstance(data.get(name), str)]
    return f" ({', '.join(ids)})" if ids else ""
