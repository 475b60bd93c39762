"""The stand-alone FakeHanko's control endpoints: mint tokens, list and end sessions, register webhooks.

Served by ``python -m hanko_tornado.testing`` beside Hanko's own routes, under
``/_fake`` (a path Hanko has not), for tests written in any language:

- ``POST /_fake/tokens`` with a JSON object (every member optional: ``user_id``,
  ``email``, ``username``, ``session_id``, ``lifetime``, ``amr``, ``audience``,
  ``claims``, as :meth:`FakeHanko.mint` takes them): 201
  ``{"token": ..., "user_id": ..., "session_id": ...}``, a login's session opened;
- ``GET /_fake/sessions``: ``{"sessions": [...]}``, as Hanko's webhooks carry them;
- ``DELETE /_fake/sessions/{id}``: the session ends as a logout does
  (``session.delete.explicit.logout`` fires); 204, or 404;
- ``POST /_fake/webhooks`` with ``{"url": ..., "events": [...]}``: Hanko's
  events that start with one of ``events`` (all ``session`` and ``user`` ones
  by default) are posted to ``url``, which must be on loopback; 204.

Only loopback may ask: the server listens on loopback only, a request whose
``Host`` is not a loopback name is refused (403, so a web page that rebinds
its own name to 127.0.0.1 cannot reach it), and a body must be sent as
``application/json`` (415 otherwise, so no page can send one without CORS,
which these endpoints never grant).
"""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

import tornado.web
from tornado.routing import URLSpec

from hanko_tornado.settings import is_loopback_host
from hanko_tornado.testing.fake import FakeHanko

__all__ = ["control_routes"]

_MINT_STRINGS = ("user_id", "email", "username", "session_id")
_MINT_LISTS = ("amr", "audience")


def control_routes(hanko: FakeHanko) -> list[URLSpec]:
    """The ``/_fake`` routes for ``hanko``."""
    return [
        tornado.web.url(r"/_fake/tokens", TokensHandler, {"hanko": hanko}),
        tornado.web.url(r"/_fake/sessions", SessionsHandler, {"hanko": hanko}),
        tornado.web.url(r"/_fake/sessions/([^/]+)", SessionHandler, {"hanko": hanko}),
        tornado.web.url(r"/_fake/webhooks", WebhooksHandler, {"hanko": hanko}),
    ]


class _ControlHandler(tornado.web.RequestHandler):
    def initialize(self, hanko: FakeHanko) -> None:
        self.hanko = hanko

    def prepare(self) -> None:
        host = urllib.parse.urlsplit(f"//{self.request.host}").hostname or ""
        if not is_loopback_host(host):
            self.refuse(403, "only loopback may use the fake's control endpoints")
        elif self.request.body and self.request.headers.get("Content-Type", "").split(";")[0] != "application/json":
            self.refuse(415, "send the body as application/json")

    def refuse(self, status: int, message: str) -> None:
        self.set_status(status)
        self.finish({"error": message})

    def json_body(self) -> dict[str, Any] | None:
        """The body as a JSON object (``{}`` when empty), or ``None`` after answering 400."""
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError:
            body = None
        if not isinstance(body, dict):
            self.refuse(400, "the body is not a JSON object")
            return None
        return body

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.finish({"error": self._reason})


class TokensHandler(_ControlHandler):
    """``POST /_fake/tokens``: a session token minted as a login's (see the module)."""

    def post(self) -> None:
        body = self.json_body()
        if body is None:
            return
        arguments: dict[str, Any] = {}
        for name, value in body.items():
            if name in _MINT_STRINGS and (value is None or isinstance(value, str)):
                arguments[name] = value
            elif name in _MINT_LISTS and isinstance(value, list) and all(isinstance(v, str) for v in value):
                arguments[name] = value
            elif name == "lifetime" and isinstance(value, (int, float)) and not isinstance(value, bool):
                arguments[name] = value
            elif name == "claims" and isinstance(value, dict):
                arguments[name] = value
            else:
                self.refuse(400, f"{name!r}: not a member this endpoint takes, or not of its type")
                return
        before = set(self.hanko.sessions)
        token = self.hanko.mint(**arguments)
        opened = [self.hanko.sessions[s] for s in self.hanko.sessions if s not in before]
        self.set_status(201)
        self.finish(
            {
                "token": token,
                "user_id": opened[0].user_id if opened else arguments.get("user_id"),
                "session_id": opened[0].id if opened else arguments.get("session_id"),
            }
        )


class SessionsHandler(_ControlHandler):
    """``GET /_fake/sessions``: the live sessions."""

    def get(self) -> None:
        self.finish({"sessions": [session.as_webhook_data() for session in self.hanko.sessions.values()]})


class SessionHandler(_ControlHandler):
    """``DELETE /_fake/sessions/{id}``: the session ended as a logout ends it."""

    def delete(self, session_id: str) -> None:
        if session_id not in self.hanko.sessions:
            self.refuse(404, "no such session")
            return
        self.hanko.revoke(session_id)
        self.set_status(204)
        self.finish()


class WebhooksHandler(_ControlHandler):
    """``POST /_fake/webhooks``: a loopback URL subscribed to Hanko's events."""

    def post(self) -> None:
        body = self.json_body()
        if body is None:
            return
        url, events = body.get("url"), body.get("events", ["session", "user"])
        parts = urllib.parse.urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not is_loopback_host(parts.hostname or ""):
            self.refuse(400, "url: an http(s) URL on loopback (127.0.0.1, ::1 or localhost)")
            return
        if not isinstance(events, list) or not events or not all(isinstance(e, str) and e for e in events):
            self.refuse(400, 'events: a list of event prefixes, such as ["session.delete"]')
            return
        self.hanko.register_webhook(parts.geturl(), events)
        self.set_status(204)
        self.finish()
