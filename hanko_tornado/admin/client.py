"""``HankoAdminClient``: Hanko's admin API from Tornado, with typed answers and bounded calls.

One client per application (see :func:`admin_client_for`), on its own
``AsyncHTTPClient``: at most ``concurrency`` calls in flight, each bounded by
``timeout``, no redirect followed, no answer larger than ``max_body_bytes``
read.  Every answer is read strictly (:mod:`hanko_tornado.admin.models`);
anything else is a :class:`~hanko_tornado.admin.errors.HankoAdminError`,
never a crash::

    client = admin_client_for(self.application)
    user = await client.get_user(self.hanko_user.id)
    await client.patch_metadata(user.id, private={"roles": ["admin"]})
"""

from __future__ import annotations

import datetime
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import Any, TypeVar
from urllib.parse import urlencode

import tornado.web
from tornado.httpclient import HTTPRequest
from tornado.simple_httpclient import SimpleAsyncHTTPClient

from hanko_tornado.admin.answers import error_for, read, read_json
from hanko_tornado.admin.errors import AdminUnavailableError, HankoAdminError
from hanko_tornado.admin.models import (
    AdminEmail,
    AdminSession,
    AdminUser,
    AuditLog,
    Page,
    UserMetadata,
    Webhook,
    Webhooks,
    is_uuid,
    read_list,
)
from hanko_tornado.admin.settings import ADMIN_API_URL_VARIABLE, HankoAdminSettings
from hanko_tornado.cache import describe_failure
from hanko_tornado.lifecycle import state_of

__all__ = ["UNCHANGED", "HankoAdminClient", "admin_client_for"]

log = logging.getLogger("hanko_tornado")

_T = TypeVar("_T")
#: A metadata kind not to touch in :meth:`HankoAdminClient.patch_metadata`.
UNCHANGED: Any = type("Unchanged", (), {"__repr__": lambda self: "UNCHANGED"})()


class HankoAdminClient:
    """Calls Hanko's admin API; create it anywhere, it starts its HTTP client on first use, on the running loop.

    Every method raises :class:`~hanko_tornado.admin.errors.HankoAdminError` (a subclass saying what failed)
    and :class:`ValueError` for an argument that is not what Hanko takes (an id that is not a UUID).
    """

    def __init__(self, settings: HankoAdminSettings) -> None:
        self.settings = settings
        self._http_client: SimpleAsyncHTTPClient | None = None
        self._closed = False
        #: Calls made so far, by ``"METHOD /path-template"``: what this process cost Hanko.
        self.calls: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"HankoAdminClient({self.settings.api_url!r})"

    # Users --------------------------------------------------------------------------------------------------
    async def get_user(self, user_id: str) -> AdminUser:
        """The user, with emails and metadata (``GET /users/:id``).  :raises AdminNotFoundError: no such user."""
        _, document, _ = await self._call("GET", f"/users/{_id(user_id, 'user_id')}", "/users/:id")
        return read(AdminUser.from_json, document, "GET /users/:id")

    async def list_users(
        self,
        *,
        page: int = 1,
        per_page: int = 20,
        email: str | None = None,
        username: str | None = None,
        user_ids: Iterable[str] = (),
        sort_direction: str = "desc",
    ) -> Page[AdminUser]:
        """One page of users (``GET /users``), newest first unless ``sort_direction="asc"``."""
        if sort_direction not in ("asc", "desc"):
            raise ValueError("sort_direction must be 'asc' or 'desc'")
        query: dict[str, Any] = {"page": _positive(page, "page"), "per_page": _positive(per_page, "per_page")}
        query["sort_direction"] = sort_direction
        ids = [_id(user_id, "user_ids") for user_id in user_ids]
        if ids:
            query["user_id"] = ",".join(ids)
        if email:
            query["email"] = email
        if username:
            query["username"] = username
        return await self._page("/users", query, AdminUser.from_json)

    async def users(self, *, per_page: int = 100, **filters: Any) -> AsyncIterator[AdminUser]:
        """Every user, page after page (each page one call), with :meth:`list_users`'s filters."""
        page: int | None = 1
        while page is not None:
            listed = await self.list_users(page=page, per_page=per_page, **filters)
            for user in listed.items:
                yield user
            page = listed.next_page if listed.items else None

    async def delete_user(self, user_id: str) -> None:
        """Delete the user (``DELETE /users/:id``; Hanko sends ``user.delete``).  :raises AdminNotFoundError:"""
        await self._call("DELETE", f"/users/{_id(user_id, 'user_id')}", "/users/:id", ok=(204,))

    async def list_emails(self, user_id: str) -> tuple[AdminEmail, ...]:
        """The user's email addresses (``GET /users/:user_id/emails``; an unknown user has none)."""
        path = f"/users/{_id(user_id, 'user_id')}/emails"
        _, document, _ = await self._call("GET", path, "/users/:user_id/emails")
        return read(lambda d: read_list(d, AdminEmail.from_json, "emails"), document, "GET emails")

    # Metadata -----------------------------------------------------------------------------------------------
    async def get_metadata(self, user_id: str) -> UserMetadata:
        """The user's public, private and unsafe metadata (``GET /users/:id/metadata``; empty where none)."""
        path = f"/users/{_id(user_id, 'user_id')}/metadata"
        _, document, _ = await self._call("GET", path, "/users/:id/metadata", ok=(200, 204))
        return read(UserMetadata.from_json, document, "GET metadata")

    async def patch_metadata(
        self, user_id: str, *, public: Any = UNCHANGED, private: Any = UNCHANGED, unsafe: Any = UNCHANGED
    ) -> UserMetadata:
        """Merge-patch (RFC 7396) each kind given: a mapping merges (a ``None`` member removes it), ``None``
        clears the kind.  Hanko allows 3000 characters per kind (:class:`AdminRequestError` beyond).

        Hanko sends no webhook for it: call :meth:`MetadataCache.forget` where roles are remembered.
        """
        patch: dict[str, Any] = {}
        for name, value in (("public_metadata", public), ("private_metadata", private), ("unsafe_metadata", unsafe)):
            if value is UNCHANGED:
                continue
            if value is not None and not isinstance(value, Mapping):
                raise ValueError(f"{name} must be a mapping or None")
            patch[name] = None if value is None else dict(value)
        if not patch:
            raise ValueError("give at least one of public, private, unsafe")
        path = f"/users/{_id(user_id, 'user_id')}/metadata"
        _, document, _ = await self._call("PATCH", path, "/users/:id/metadata", body=patch, ok=(200, 204))
        return read(UserMetadata.from_json, document, "PATCH metadata")

    # Sessions -----------------------------------------------------------------------------------------------
    async def list_sessions(self, user_id: str) -> tuple[AdminSession, ...]:
        """The user's active sessions, newest first (``GET /users/:user_id/sessions``; no paging)."""
        path = f"/users/{_id(user_id, 'user_id')}/sessions"
        _, document, _ = await self._call("GET", path, "/users/:user_id/sessions")
        return read(lambda d: read_list(d, AdminSession.from_json, "sessions"), document, "GET sessions")

    async def delete_session(self, user_id: str, session_id: str) -> None:
        """End one session at Hanko (``DELETE /users/:user_id/sessions/:session_id``; Hanko sends
        ``session.delete.admin.revoke``).  To end it in this service at once too, use
        :func:`~hanko_tornado.admin.logout.revoke_session`.

        :raises AdminNotFoundError: no such user, or no such session of this user.
        """
        path = f"/users/{_id(user_id, 'user_id')}/sessions/{_id(session_id, 'session_id')}"
        await self._call("DELETE", path, "/users/:user_id/sessions/:session_id", ok=(204,))

    # Audit logs ---------------------------------------------------------------------------------------------
    async def list_audit_logs(
        self,
        *,
        page: int = 1,
        per_page: int = 20,
        types: Iterable[str] = (),
        actor_user_id: str | None = None,
        actor_email: str | None = None,
        source_ip: str | None = None,
        search: str | None = None,
        start_time: datetime.datetime | None = None,
        end_time: datetime.datetime | None = None,
    ) -> Page[AuditLog]:
        """One page of audit logs (``GET /audit_logs``), filtered by type, actor, source IP, text and time."""
        query: list[tuple[str, Any]] = [("page", _positive(page, "page"))]
        query.append(("per_page", _positive(per_page, "per_page")))
        query += [("type", kind) for kind in types]
        for name, value in (
            ("actor_user_id", actor_user_id),
            ("actor_email", actor_email),
            ("meta_source_ip", source_ip),
            ("q", search),
        ):
            if value:
                query.append((name, value))
        for name, moment in (("start_time", start_time), ("end_time", end_time)):
            if moment is not None:
                if moment.tzinfo is None:
                    raise ValueError(f"{name} must be an aware datetime")
                query.append((name, moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")))
        return await self._page("/audit_logs", query, AuditLog.from_json)

    # Webhooks -----------------------------------------------------------------------------------------------
    async def list_webhooks(self) -> Webhooks:
        """The webhooks in Hanko's database (with ``enabled`` and ``failures``) and in its config file."""
        _, document, _ = await self._call("GET", "/webhooks", "/webhooks")
        return read(Webhooks.from_json, document, "GET /webhooks")

    async def enable_webhook(self, webhook: Webhook) -> Webhook:
        """Switch a database webhook back on, with its callback and events, failures reset (``PUT /webhooks/:id``)."""
        body = {"callback": webhook.callback, "events": list(webhook.events), "enabled": True}
        path = f"/webhooks/{_id(webhook.id, 'webhook.id')}"
        _, document, _ = await self._call("PUT", path, "/webhooks/:id", body=body)
        return read(Webhook.from_json, document, "PUT /webhooks/:id")

    async def close(self) -> None:
        """Close the HTTP client, for good: later calls raise :class:`AdminUnavailableError`."""
        self._closed = True
        if self._http_client is not None:
            self._http_client.close()
            self._http_client = None

    # The calls ----------------------------------------------------------------------------------------------
    def get_http_client(self) -> SimpleAsyncHTTPClient:
        """The client for admin API calls, and only those (its own instance: bounded, no redirects)."""
        if self._closed:
            raise AdminUnavailableError("the admin client is closed")
        if self._http_client is None:
            self._http_client = SimpleAsyncHTTPClient(
                force_instance=True, max_clients=self.settings.concurrency, max_body_size=self.settings.max_body_bytes
            )
        return self._http_client

    async def _page(self, path: str, query: Any, read_item: Callable[[Any], _T]) -> Page[_T]:
        _, document, headers = await self._call("GET", f"{path}?{urlencode(query)}", path)
        pairs = query if isinstance(query, list) else list(query.items())
        numbers = dict(pairs)

        def page(document: Any) -> Page[_T]:
            total = headers.get("X-Total-Count", "")
            if not (total.isascii() and total.isdigit()):
                raise ValueError("X-Total-Count is missing or not a count")
            return Page(read_list(document, read_item, "items"), int(total), numbers["page"], numbers["per_page"])

        return read(page, document, f"GET {path}")

    async def _call(
        self, method: str, path: str, template: str, *, body: Any = None, ok: tuple[int, ...] = (200,)
    ) -> tuple[int, Any, Any]:
        """Hanko's status, JSON answer (``None`` when empty) and headers; a :class:`HankoAdminError` otherwise."""
        what = f"{method} {template}"
        self.calls[what] = self.calls.get(what, 0) + 1
        headers = {"Accept": "application/json"}
        if self.settings.api_key:
            headers["Authorization"] = f"Bearer {self.settings.api_key}"
        if body is not None:
            headers["Content-Type"] = "application/json"
        request = HTTPRequest(
            self.settings.url(path),
            method=method,
            headers=headers,
            body=json.dumps(body) if body is not None else None,
            connect_timeout=self.settings.timeout,
            request_timeout=self.settings.timeout,
            follow_redirects=False,
            decompress_response=False,  # what max_body_bytes bounds is what is read, with no gzip to inflate
        )
        try:
            response = await self.get_http_client().fetch(request, raise_error=False)
        except HankoAdminError:
            raise
        except Exception as error:  # noqa: BLE001 - whatever the transport does, the caller gets one error family
            raise self._failed(AdminUnavailableError(f"{what}: {describe_failure(error)}")) from None
        if response.code in ok:
            return response.code, read_json(response, what) if response.code != 204 else None, response.headers
        raise self._failed(error_for(response, what))

    def _failed(self, error: HankoAdminError) -> HankoAdminError:
        log.warning("Hanko's admin API call failed: %s", error)
        return error


def _id(value: str, name: str) -> str:
    # Ids go into the path: anything but a UUID could walk to another endpoint.
    if not is_uuid(value):
        raise ValueError(f"{name} must be a UUID")
    return value.lower()


def _positive(value: int, name: str) -> int:
    if type(value) is not int or value < 1:
        raise ValueError(f"{name} must be a whole number of at least 1")
    return value


def admin_client_for(application: tornado.web.Application) -> HankoAdminClient:
    """The application's admin client, made on first use from its ``hanko_admin`` setting.

    :raises LookupError: the application has no ``hanko_admin`` setting (``HANKO_ADMIN_API_URL`` unset).
    """

    def made() -> HankoAdminClient:
        settings = application.settings.get("hanko_admin")
        if settings is None:
            raise LookupError(f"no hanko_admin setting: set {ADMIN_API_URL_VARIABLE}")
        if not isinstance(settings, HankoAdminSettings):
            raise TypeError("the 'hanko_admin' setting must be a HankoAdminSettings")
        return HankoAdminClient(settings)

    return state_of(application).part(HankoAdminClient, made)
