"""FakeHanko's admin API: users, metadata, emails, sessions, audit logs and webhooks, kept as Hanko keeps them.

``hanko.admin`` (a :class:`FakeAdmin`) serves them under ``{api_url}/admin``
with Hanko's paths, bodies, statuses and paging (``backend/handler/*admin*.go``);
its sessions are the FakeHanko's own, so a minted token's session is listed,
and deleting it there sends ``session.delete.admin.revoke``.  A user exists
once added with :meth:`FakeAdmin.add_user`, or once a minted token names it.
"""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from hanko_tornado.testing.sessions import rfc3339
from hanko_tornado.testing.tenant import FakeTenant

if TYPE_CHECKING:
    from hanko_tornado.admin.settings import HankoAdminSettings

__all__ = ["AdminFault", "FakeAdmin", "FakeUser", "FakeWebhook"]

#: How the admin API fails when told to: 500, 429 (with ``retry_after``), a body that is not JSON, JSON of
#: another shape, a body larger than any client should read, a slow answer, a dropped connection.
AdminFault = Literal["error", "rate_limited", "garbage", "wrong_shape", "huge", "slow", "drop"]
METADATA_LIMIT = 3000
_KINDS = ("public_metadata", "private_metadata", "unsafe_metadata")


@dataclasses.dataclass
class FakeUser:
    """A user as Hanko's database holds it (times in Unix seconds; metadata as JSON objects, ``{}`` for none)."""

    id: str
    emails: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    username: str | None = None
    created_at: float = dataclasses.field(default_factory=time.time)
    updated_at: float = dataclasses.field(default_factory=time.time)
    metadata: dict[str, dict[str, Any]] = dataclasses.field(default_factory=lambda: {kind: {} for kind in _KINDS})

    def as_json(self) -> dict[str, Any]:
        """The user as ``GET /users/:id`` answers (``admin.User``): empty parts left out, as Go's omitempty does."""
        document: dict[str, Any] = {"id": self.id, "created_at": rfc3339(self.created_at)}
        document["updated_at"] = rfc3339(self.updated_at)
        if self.emails:
            document["emails"] = [dict(email) for email in self.emails]
        if self.username is not None:
            times = {"created_at": rfc3339(self.created_at), "updated_at": rfc3339(self.updated_at)}
            document["username"] = {"id": _uuid_for(self.id + "username"), "username": self.username, **times}
        metadata = self.metadata_json()
        if metadata is not None:
            document["metadata"] = metadata
        return document

    def metadata_json(self) -> dict[str, Any] | None:
        """``admin.Metadata``: the kinds that are not empty; ``None`` (a 204) when all are."""
        present = {kind: value for kind, value in self.metadata.items() if value}
        return present or None


@dataclasses.dataclass
class FakeWebhook:
    """A webhook registered in Hanko's database."""

    id: str
    callback: str
    events: tuple[str, ...]
    enabled: bool = True
    failures: int = 0
    created_at: float = dataclasses.field(default_factory=time.time)
    updated_at: float = dataclasses.field(default_factory=time.time)
    expires_at: float = dataclasses.field(default_factory=lambda: time.time() + 30 * 24 * 3600)

    def as_json(self) -> dict[str, Any]:
        """The webhook as Hanko's admin API writes it."""
        return {
            "id": self.id,
            "callback": self.callback,
            "enabled": self.enabled,
            "failures": self.failures,
            "expires_at": rfc3339(self.expires_at),
            "events": [{"id": _uuid_for(self.id + event), "event": event} for event in self.events],
            "created_at": rfc3339(self.created_at),
            "updated_at": rfc3339(self.updated_at),
        }


class FakeAdmin:
    """The admin side of one :class:`~hanko_tornado.testing.FakeHanko`.

    :attr:`api_key`, when set, is required as ``Authorization: Bearer`` (as on Hanko Cloud); a wrong one is a 401.
    """

    def __init__(self, hanko: FakeTenant) -> None:
        self.hanko = hanko
        self.users: dict[str, FakeUser] = {}
        self.webhooks: list[FakeWebhook] = []
        self.audit_logs: list[dict[str, Any]] = []
        self.api_key: str | None = None
        #: When set, every admin call fails this way (see :data:`AdminFault`).
        self.fault: AdminFault | None = None
        #: The HTTP methods :attr:`fault` applies to; empty for all.
        self.fault_methods: set[str] = set()
        self.retry_after = "7"
        self.slow_seconds = 10.0
        #: Calls served, by ``"METHOD path"``; calls being answered now, and the most there were at once.
        self.calls: list[str] = []
        self.in_flight = self.most_in_flight = 0

    @property
    def url(self) -> str:
        """The URL to configure as ``HANKO_ADMIN_API_URL`` (Hanko Cloud's layout: ``{api_url}/admin``)."""
        return f"{self.hanko.api_url}/admin"

    def settings(self, **overrides: Any) -> HankoAdminSettings:
        """Admin settings that point at this fake (with its :attr:`api_key`)."""
        from hanko_tornado.admin.settings import HankoAdminSettings

        return HankoAdminSettings(**{"api_url": self.url, "api_key": self.api_key, **overrides})

    def add_user(
        self,
        user_id: str | None = None,
        *,
        email: str | None = "user@example.com",
        username: str | None = None,
        public: Mapping[str, Any] | None = None,
        private: Mapping[str, Any] | None = None,
        unsafe: Mapping[str, Any] | None = None,
    ) -> FakeUser:
        """Add (or replace) a user, with one primary verified email unless ``email`` is ``None``."""
        user = FakeUser(user_id or str(uuid.uuid4()), username=username)
        if email is not None:
            now = rfc3339(user.created_at)
            user.emails.append(
                {"id": _uuid_for(user.id + email), "address": email, "is_verified": True, "is_primary": True}
                | {"created_at": now, "updated_at": now}
            )
        for kind, value in zip(_KINDS, (public, private, unsafe), strict=True):
            user.metadata[kind] = json.loads(json.dumps(dict(value or {})))
        self.users[user.id] = user
        return user

    def user(self, user_id: str) -> FakeUser | None:
        """The user, if Hanko has it: added, or named by a session of the fake."""
        user = self.users.get(user_id)
        if user is None and any(session.user_id == user_id for session in self.hanko.sessions.values()):
            user = self.users[user_id] = FakeUser(user_id)
        return user

    def delete_user(self, user_id: str) -> bool:
        """Delete a user and (as the database cascades) its sessions; sends ``user.delete``."""
        user = self.user(user_id)
        if user is None:
            return False
        del self.users[user_id]
        for session_id in [s.id for s in self.hanko.sessions.values() if s.user_id == user_id]:
            del self.hanko.sessions[session_id]
        self.hanko.fire_webhook("user.delete", user.as_json())
        return True

    def sessions_of(self, user_id: str) -> list[dict[str, Any]]:
        """The user's active sessions as ``GET /users/:user_id/sessions`` lists them: newest first."""
        now = time.time()
        active = [s for s in self.hanko.sessions.values() if s.user_id == user_id and s.expires_at > now]
        return [session.as_webhook_data() for session in sorted(active, key=lambda s: s.created_at, reverse=True)]

    def add_webhook(self, callback: str, events: Iterable[str] = ("session", "user")) -> FakeWebhook:
        """Register a webhook in the database (as the admin API or Hanko Cloud's console does); it gets events."""
        hook = FakeWebhook(str(uuid.uuid4()), callback, tuple(events))
        self.webhooks.append(hook)
        self.hanko.register_webhook(callback, hook.events)
        return hook

    def switch_off(self, hook: FakeWebhook, failures: int = 6) -> None:
        """What Hanko does after more than 5 failed deliveries in a row: no more events to it."""
        hook.enabled, hook.failures = False, failures
        self.hanko.webhooks[:] = [(url, events) for url, events in self.hanko.webhooks if url != hook.callback]

    def update_webhook(self, hook: FakeWebhook, callback: str, events: tuple[str, ...], enabled: bool) -> None:
        """``PUT /webhooks/:id``: new callback and events, failures reset, 30 more days."""
        self.switch_off(hook, 0)
        hook.callback, hook.events, hook.enabled = callback, events, enabled
        hook.updated_at, hook.expires_at = time.time(), time.time() + 30 * 24 * 3600
        if enabled:
            self.hanko.register_webhook(callback, events)

    def config_webhooks(self) -> list[dict[str, Any]]:
        """The FakeHanko's other webhooks, as Hanko's config file lists them."""
        database = {hook.callback for hook in self.webhooks}
        return [{"callback": url, "events": list(hooks)} for url, hooks in self.hanko.webhooks if url not in database]

    def add_audit_log(self, kind: str, user: FakeUser | None = None, **details: Any) -> dict[str, Any]:
        """Record an audit-log entry of ``kind`` (``login_success``...) by ``user``."""
        now = rfc3339(time.time())
        entry: dict[str, Any] = {"id": str(uuid.uuid4()), "type": kind, "meta_http_request_id": str(uuid.uuid4())}
        entry |= {"meta_source_ip": "127.0.0.1", "meta_user_agent": "FakeHanko", "details": details or None}
        if user is not None:
            entry["actor_user_id"] = user.id
            if user.emails:
                entry["actor_email"] = user.emails[0]["address"]
        entry |= {"created_at": now, "updated_at": now}
        self.audit_logs.append(entry)
        return entry


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON merge patch, as Hanko applies to metadata."""
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for name, value in patch.items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = merge_patch(merged.get(name), value)
    return merged


def _uuid_for(text: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, text))
