"""What the admin API answers, as small frozen values, each read strictly from Hanko's JSON.

Every ``from_json`` raises :class:`ValueError` for anything but the shape
Hanko's backend writes (``backend/dto/admin``, ``persistence/models``): a
missing or mistyped field, a time that is not RFC 3339, an id that is not a
UUID.  Unknown fields are ignored, as Hanko adds fields over time.  Metadata
and audit-log details are deeply frozen JSON (:class:`~hanko_tornado.user.FrozenDict`).
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from hanko_tornado.admin.fields import Fields as _Fields
from hanko_tornado.admin.fields import is_uuid
from hanko_tornado.admin.fields import texts as _texts
from hanko_tornado.user import FrozenDict

__all__ = [
    "AdminEmail",
    "AdminSession",
    "AdminUser",
    "AuditLog",
    "ConfigWebhook",
    "Page",
    "UserMetadata",
    "Webhook",
    "Webhooks",
    "is_uuid",
    "read_list",
]

_T = TypeVar("_T")
_EMPTY = FrozenDict()


@dataclasses.dataclass(frozen=True, slots=True)
class AdminEmail:
    """One of a user's email addresses."""

    id: str
    address: str
    is_verified: bool
    is_primary: bool
    created_at: datetime.datetime
    updated_at: datetime.datetime

    @classmethod
    def from_json(cls, document: Any) -> AdminEmail:
        f = _Fields(document, "email")
        return cls(
            f.uuid("id"),
            f.text("address"),
            f.flag("is_verified"),
            f.flag("is_primary"),
            f.required_time("created_at"),
            f.required_time("updated_at"),
        )


@dataclasses.dataclass(frozen=True, slots=True)
class UserMetadata:
    """A user's metadata: ``public`` and ``unsafe`` reach tokens (JWT templates); ``private`` never does.

    Empty objects where the user has none (Hanko's 204).
    """

    # default_factory: Python 3.10's dataclasses refuse any dict subclass as a default, even a frozen one.
    public: FrozenDict = dataclasses.field(default_factory=lambda: _EMPTY)
    private: FrozenDict = dataclasses.field(default_factory=lambda: _EMPTY, repr=False)
    unsafe: FrozenDict = dataclasses.field(default_factory=lambda: _EMPTY)

    @classmethod
    def from_json(cls, document: Any) -> UserMetadata:
        if document is None:
            return cls()
        f = _Fields(document, "metadata")
        return cls(f.obj("public_metadata"), f.obj("private_metadata"), f.obj("unsafe_metadata"))


@dataclasses.dataclass(frozen=True, slots=True)
class AdminUser:
    """A user as the admin API shows it; ``metadata.private`` must never be passed on to a client."""

    id: str
    emails: tuple[AdminEmail, ...]
    username: str | None
    created_at: datetime.datetime
    updated_at: datetime.datetime
    metadata: UserMetadata = dataclasses.field(repr=False)
    name: str = ""
    given_name: str = ""
    family_name: str = ""
    picture: str = ""

    @property
    def primary_email(self) -> AdminEmail | None:
        """The primary email address, when the user has one."""
        return next((email for email in self.emails if email.is_primary), None)

    @classmethod
    def from_json(cls, document: Any) -> AdminUser:
        f = _Fields(document, "user")
        username = document.get("username")
        return cls(
            f.uuid("id"),
            f.array("emails", AdminEmail.from_json),
            None if username is None else _Fields(username, "user.username").text("username"),
            f.required_time("created_at"),
            f.required_time("updated_at"),
            UserMetadata.from_json(document.get("metadata")),
            f.optional_text("name") or "",
            f.optional_text("given_name") or "",
            f.optional_text("family_name") or "",
            f.optional_text("picture") or "",
        )


@dataclasses.dataclass(frozen=True, slots=True)
class AdminSession:
    """One of a user's active sessions (``user_agent`` and ``ip_address`` only where Hanko recorded them)."""

    id: str
    user_id: str
    user_agent: str | None
    ip_address: str | None
    created_at: datetime.datetime
    updated_at: datetime.datetime
    expires_at: datetime.datetime | None
    last_used: datetime.datetime

    @classmethod
    def from_json(cls, document: Any) -> AdminSession:
        f = _Fields(document, "session")
        return cls(
            f.uuid("id"),
            f.uuid("user_id"),
            f.optional_text("user_agent"),
            f.optional_text("ip_address"),
            f.required_time("created_at"),
            f.required_time("updated_at"),
            f.time("expires_at", optional=True),
            f.required_time("last_used"),
        )


@dataclasses.dataclass(frozen=True, slots=True)
class AuditLog:
    """One audit-log entry (``type`` such as ``login_success``, ``user_deleted``)."""

    id: str
    type: str
    error: str | None
    meta_http_request_id: str
    meta_source_ip: str
    meta_user_agent: str
    actor_user_id: str | None
    actor_email: str | None
    details: FrozenDict
    created_at: datetime.datetime
    updated_at: datetime.datetime

    @classmethod
    def from_json(cls, document: Any) -> AuditLog:
        f = _Fields(document, "audit log")
        return cls(
            f.uuid("id"),
            f.text("type"),
            f.optional_text("error"),
            f.optional_text("meta_http_request_id") or "",
            f.optional_text("meta_source_ip") or "",
            f.optional_text("meta_user_agent") or "",
            f.uuid("actor_user_id", optional=True) or None,
            f.optional_text("actor_email"),
            f.obj("details"),
            f.required_time("created_at"),
            f.required_time("updated_at"),
        )


@dataclasses.dataclass(frozen=True, slots=True)
class Webhook:
    """A webhook registered in Hanko's database: switched off (``enabled`` false) after more than 5 failures."""

    id: str
    callback: str
    enabled: bool
    failures: int
    expires_at: datetime.datetime
    events: tuple[str, ...]
    created_at: datetime.datetime
    updated_at: datetime.datetime

    @classmethod
    def from_json(cls, document: Any) -> Webhook:
        f = _Fields(document, "webhook")
        return cls(
            f.uuid("id"),
            f.text("callback"),
            f.flag("enabled"),
            f.number("failures"),
            f.required_time("expires_at"),
            f.array("events", lambda event: _Fields(event, "webhook.events").text("event")),
            f.required_time("created_at"),
            f.required_time("updated_at"),
        )


@dataclasses.dataclass(frozen=True, slots=True)
class ConfigWebhook:
    """A webhook from Hanko's config file: never switched off."""

    callback: str
    events: tuple[str, ...]

    @classmethod
    def from_json(cls, document: Any) -> ConfigWebhook:
        f = _Fields(document, "config webhook")
        return cls(f.text("callback"), f.array("events", _texts))


@dataclasses.dataclass(frozen=True, slots=True)
class Webhooks:
    """``GET /webhooks``: the hooks in Hanko's database and those in its config file."""

    database: tuple[Webhook, ...]
    config: tuple[ConfigWebhook, ...]

    @classmethod
    def from_json(cls, document: Any) -> Webhooks:
        f = _Fields(document, "webhooks")
        return cls(f.array("database", Webhook.from_json), f.array("config", ConfigWebhook.from_json))


@dataclasses.dataclass(frozen=True, slots=True)
class Page(Generic[_T]):
    """One page of a list: its items, the total across pages (``X-Total-Count``) and where the next one is."""

    items: tuple[_T, ...]
    total: int
    page: int
    per_page: int

    @property
    def next_page(self) -> int | None:
        """The next page's number, ``None`` on the last page."""
        return self.page + 1 if self.page * self.per_page < self.total else None


def read_list(document: Any, read: Callable[[Any], _T], what: str) -> tuple[_T, ...]:
    """A JSON array of ``what``, each item read by ``read``.

    :raises ValueError: not an array, or an item is malformed.
    """
    if not isinstance(document, list):
        raise ValueError(f"the {what} are not a JSON array")
    return tuple(read(item) for item in document)
