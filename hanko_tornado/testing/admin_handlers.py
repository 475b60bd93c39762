"""FakeHanko's admin API over HTTP: Hanko's paths, statuses, error bodies and paging headers."""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
from typing import Any
from urllib.parse import urlencode

import tornado.web
from tornado.routing import URLSpec

from hanko_tornado.session_protocol import parse_rfc3339
from hanko_tornado.testing.admin import _KINDS, METADATA_LIMIT, FakeAdmin, merge_patch

__all__ = ["admin_routes"]

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _AdminHandler(tornado.web.RequestHandler):
    def initialize(self, admin: FakeAdmin) -> None:
        self.admin = admin

    def check_xsrf_cookie(self) -> None:
        """An API: no forms, no cookies."""

    async def prepare(self) -> None:
        self.admin.calls.append(f"{self.request.method} {self.request.path}")
        self.admin.in_flight += 1
        self.admin.most_in_flight = max(self.admin.most_in_flight, self.admin.in_flight)
        key = self.admin.api_key
        if key is not None and self.request.headers.get("Authorization") != f"Bearer {key}":
            self.answer(401, {"code": 401, "message": "Unauthorized"})
            return
        fault = self.admin.fault
        if self.admin.fault_methods and self.request.method not in self.admin.fault_methods:
            fault = None
        if fault == "slow":
            await asyncio.sleep(self.admin.slow_seconds)
        elif fault == "drop":
            self.request.connection.close()  # type: ignore[union-attr]
            self.finish()
        elif fault == "error":
            self.answer(500, {"code": 500, "message": "Internal Server Error"})
        elif fault == "rate_limited":
            self.set_header("Retry-After", self.admin.retry_after)
            self.answer(429, {"code": 429, "message": "Too Many Requests"})
        elif fault == "garbage":
            self.finish("<html>garbage")
        elif fault == "wrong_shape":
            self.finish(json.dumps([{"id": 5, "enabled": "yes"}] if self.request.method == "GET" else {"id": 5}))
        elif fault == "huge":
            self.finish("[" + ",".join(["{}"] * (3 * 1024 * 1024)) + "]")

    def on_finish(self) -> None:
        self._done()

    def on_connection_close(self) -> None:
        self._done()

    def _done(self) -> None:
        if not getattr(self, "_counted_done", False):
            self._counted_done = True
            self.admin.in_flight -= 1

    def answer(self, status: int, body: Any = None) -> None:
        self.set_status(status)
        if body is None:
            self.finish()
        else:
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps(body))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        error = kwargs.get("exc_info", (None, None))[1]
        if isinstance(error, _Refused):
            self.set_status(error.status)
            self.finish({"code": error.status, "message": error.message})
        else:
            self.finish({"code": status_code, "message": self._reason})

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if not isinstance(value, _Refused):
            super().log_exception(typ, value, tb)

    def user_or_404(self, user_id: str, message: str = "user not found") -> Any:
        if not _UUID.fullmatch(user_id):
            raise _Refused(400, "failed to parse userId as uuid")
        user = self.admin.user(user_id.lower())
        if user is None:
            raise _Refused(404, message)
        return user

    def json_body(self) -> Any:
        try:
            return json.loads(self.request.body or b"null")
        except ValueError:
            raise _Refused(400, "body is not valid JSON") from None

    def paged(self, items: list[Any]) -> None:
        page, per_page = self.number("page", 1), self.number("per_page", 20)
        last = max(1, math.ceil(len(items) / per_page))
        links = []
        base = f"{self.request.protocol}://{self.request.host}{self.request.path}"
        query = {name: self.get_query_argument(name) for name in self.request.query_arguments}

        def link(rel: str, number: int) -> str:
            return f'<{base}?{urlencode({**query, "page": number, "per_page": per_page})}>; rel="{rel}"'

        if page != 1 or page == last:
            links.append(link("first", 1))
        if page != last:
            links.append(link("last", last))
        if page < last:
            links.append(link("next", page + 1))
        if page > 1:
            links.append(link("prev", page - 1))
        self.set_header("Link", ",".join(links))
        self.set_header("X-Total-Count", str(len(items)))
        self.answer(200, items[(page - 1) * per_page : page * per_page])

    def number(self, name: str, default: int) -> int:
        raw = self.get_query_argument(name, "")
        if not raw:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise _Refused(400, f"failed to bind {name}") from None
        return value or default


class UsersHandler(_AdminHandler):
    """``GET /users``: the user list, as Hanko's admin API answers it."""

    def get(self) -> None:
        direction = self.get_query_argument("sort_direction", "") or "desc"
        if direction not in ("asc", "desc"):
            raise _Refused(400, "sort_direction must be desc or asc")
        users = sorted(self.admin.users.values(), key=lambda u: u.created_at, reverse=direction == "desc")
        ids = [part for part in self.get_query_argument("user_id", "").split(",") if part]
        if any(not _UUID.fullmatch(part) for part in ids):
            raise _Refused(400, "failed to parse user_id as uuid")
        email = self.get_query_argument("email", "").lower()
        username = self.get_query_argument("username", "").lower()
        users = [
            user
            for user in users
            if (not ids or user.id in ids)
            and (not email or any(email in e["address"] for e in user.emails))
            and (not username or username in (user.username or ""))
        ]
        self.paged([user.as_json() for user in users])


class UserHandler(_AdminHandler):
    """``/users/{id}``: one user (``GET``), or deleted (``DELETE``)."""

    def get(self, user_id: str) -> None:
        self.answer(200, self.user_or_404(user_id).as_json())

    def delete(self, user_id: str) -> None:
        self.admin.delete_user(self.user_or_404(user_id).id)
        self.answer(204)


class MetadataHandler(_AdminHandler):
    """``/users/{id}/metadata``: the user's public, private and unsafe metadata, read and patched."""

    def get(self, user_id: str) -> None:
        user = self.user_or_404(user_id)
        metadata = user.metadata_json()
        self.answer(200, metadata) if metadata is not None else self.answer(204)

    def patch(self, user_id: str) -> None:
        patch = self.json_body()
        if patch is not None and not isinstance(patch, dict):
            raise _Refused(400, "patch metadata must be null or object")
        for kind in _KINDS:
            if patch is not None and kind in patch and patch[kind] is not None and not isinstance(patch[kind], dict):
                raise _Refused(400, f"{kind} must be an object or null")
        user = self.user_or_404(user_id)
        if patch is None:
            merged: dict[str, Any] = {kind: {} for kind in _KINDS}
        else:
            current = {kind: value for kind, value in user.metadata.items() if value}
            merged = merge_patch(current, {kind: patch[kind] for kind in _KINDS if kind in patch})
        for kind in _KINDS:
            if len(json.dumps(merged.get(kind) or {}, separators=(",", ":"))) > METADATA_LIMIT:
                raise _Refused(400, f"{kind.split('_')[0]} metadata exceeds the limit of {METADATA_LIMIT} characters")
        user.metadata = {kind: merged.get(kind) or {} for kind in _KINDS}
        user.updated_at = time.time()
        metadata = user.metadata_json()
        self.answer(200, metadata) if metadata is not None else self.answer(204)


class EmailsHandler(_AdminHandler):
    """``GET /users/{id}/emails``: the user's email addresses."""

    def get(self, user_id: str) -> None:
        if not _UUID.fullmatch(user_id):
            raise _Refused(400, "user_id must be a uuid")
        user = self.admin.user(user_id.lower())  # Hanko lists an unknown user's emails as none
        self.answer(200, [dict(email) for email in user.emails] if user is not None else [])


class SessionsHandler(_AdminHandler):
    """``GET /users/{id}/sessions``: the user's live sessions."""

    def get(self, user_id: str) -> None:
        user = self.user_or_404(user_id, "Not Found")
        self.answer(200, self.admin.sessions_of(user.id))


class SessionHandler(_AdminHandler):
    """``DELETE /users/{id}/sessions/{session_id}``: one session ended by the admin API."""

    def delete(self, user_id: str, session_id: str) -> None:
        user = self.user_or_404(user_id, "Not Found")
        if not _UUID.fullmatch(session_id):
            raise _Refused(400, "session_id must be a uuid4")
        session = self.admin.hanko.sessions.get(session_id.lower())
        if session is None or session.user_id != user.id:
            raise _Refused(404, "Not Found")
        self.admin.hanko.revoke(session.id, "session.delete.admin.revoke")
        self.answer(204)


class AuditLogsHandler(_AdminHandler):
    """``GET /audit_logs``: the audit log, as Hanko's admin API answers it."""

    def get(self) -> None:
        types = self.get_query_arguments("type")
        filters = {name: self.get_query_argument(name, "") for name in ("actor_user_id", "actor_email")}
        filters["meta_source_ip"] = self.get_query_argument("meta_source_ip", "")
        search = self.get_query_argument("q", "")
        times = []
        for name in ("start_time", "end_time"):
            raw = self.get_query_argument(name, "")
            try:
                times.append(parse_rfc3339(raw).timestamp() if raw else None)
            except ValueError:
                raise _Refused(400, f"failed to bind {name}") from None
        entries = [
            entry
            for entry in reversed(self.admin.audit_logs)  # newest first
            if (not types or entry["type"] in types)
            and all(not wanted or entry.get(name) == wanted for name, wanted in filters.items())
            and (not search or any(search in str(entry.get(name, "")) for name in ("actor_user_id", "actor_email")))
            and (times[0] is None or parse_rfc3339(entry["created_at"]).timestamp() >= times[0])
            and (times[1] is None or parse_rfc3339(entry["created_at"]).timestamp() <= times[1])
        ]
        self.paged(entries)


class WebhooksHandler(_AdminHandler):
    """``GET /webhooks``: the webhooks registered."""

    def get(self) -> None:
        config = self.admin.config_webhooks()
        self.answer(200, {"database": [hook.as_json() for hook in self.admin.webhooks], "config": config or None})


class WebhookHandler(_AdminHandler):
    """``PUT /webhooks/{id}``: one webhook changed."""

    def put(self, hook_id: str) -> None:
        if not _UUID.fullmatch(hook_id):
            raise _Refused(400, "id must be a uuid4")
        body = self.json_body()
        if not isinstance(body, dict):
            raise _Refused(400, "body must be an object")
        callback, events, enabled = body.get("callback"), body.get("events"), body.get("enabled")
        if not isinstance(callback, str) or not callback.startswith(("http://", "https://")):
            raise _Refused(400, "callback is a required field")
        if not isinstance(events, list) or not events or not all(isinstance(e, str) and e for e in events):
            raise _Refused(400, "events is a required field")
        if not isinstance(enabled, bool):
            raise _Refused(400, "enabled is a required field")
        hook = next((hook for hook in self.admin.webhooks if hook.id == hook_id.lower()), None)
        if hook is None:
            raise _Refused(404, f"unable to find webhook with id: {hook_id}")
        self.admin.update_webhook(hook, callback, tuple(events), enabled)
        self.answer(200, hook.as_json())


def admin_routes(admin: FakeAdmin, prefix: str) -> list[URLSpec]:
    """The admin API's routes for ``admin`` under ``prefix``."""
    routes: list[tuple[str, type[tornado.web.RequestHandler]]] = [
        (r"/users", UsersHandler),
        (r"/users/([^/]+)", UserHandler),
        (r"/users/([^/]+)/metadata", MetadataHandler),
        (r"/users/([^/]+)/emails", EmailsHandler),
        (r"/users/([^/]+)/sessions", SessionsHandler),
        (r"/users/([^/]+)/sessions/([^/]+)", SessionHandler),
        (r"/audit_logs", AuditLogsHandler),
        (r"/webhooks", WebhooksHandler),
        (r"/webhooks/([^/]+)", WebhookHandler),
    ]
    return [tornado.web.url(f"{prefix}{path}", handler, {"admin": admin}) for path, handler in routes]
