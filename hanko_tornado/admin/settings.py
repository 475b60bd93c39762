"""Settings of the admin API client: where Hanko's admin API is, its key, and the client's bounds.

Hanko Cloud: ``HANKO_ADMIN_API_URL=https://<project id>.hanko.io/admin`` and the
project's API key as ``HANKO_ADMIN_API_KEY`` (sent as ``Authorization: Bearer
<key>``).  Self-hosted: ``hanko serve admin`` listens on a port of its own
(8001 by default) and has no key at all, so it must be reachable only from
inside a private network: leave ``HANKO_ADMIN_API_KEY`` unset there.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from hanko_tornado.errors import ConfigurationError
from hanko_tornado.settings import is_loopback_host

__all__ = ["ADMIN_API_KEY_VARIABLE", "ADMIN_API_URL_VARIABLE", "HankoAdminSettings"]

log = logging.getLogger("hanko_tornado")

ADMIN_API_URL_VARIABLE = "HANKO_ADMIN_API_URL"
ADMIN_API_KEY_VARIABLE = "HANKO_ADMIN_API_KEY"
_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no", "")


@dataclasses.dataclass(frozen=True)
class HankoAdminSettings:
    """How to reach Hanko's admin API; every value is checked when built (:class:`ConfigurationError`).

    :param api_url: the admin API's base URL (Hanko Cloud: ``https://<project id>.hanko.io/admin``; self-hosted:
        ``http://hanko:8001``, with ``allow_http``); ``https`` unless the host is loopback.
    :param api_key: Hanko Cloud's API key, sent as ``Authorization: Bearer``; never in a repr, log or message.
    :param timeout: seconds one call may take, connecting included.
    :param max_body_bytes: a larger answer is refused unread (a failed call).
    :param concurrency: calls in flight at once per process; more wait their turn.
    :param metadata_ttl: seconds a user's private metadata (roles) is remembered.
    :param metadata_stale_grace: seconds past that TTL a remembered answer still serves while the admin API fails.
    :param webhook_url: this service's webhook callback, as registered at Hanko: readiness and metrics report
        whether Hanko still has it enabled.  ``None``: every webhook registered in Hanko's database.
    :param webhook_check_interval: least seconds between two looks at Hanko's webhooks.
    :param allow_http: allow ``http://`` beyond loopback (a self-hosted admin API on a private network).
    """

    api_url: str
    api_key: str | None = dataclasses.field(default=None, repr=False)
    timeout: float = 5.0
    max_body_bytes: int = 4 * 1024 * 1024
    concurrency: int = 10
    metadata_ttl: float = 60.0
    metadata_stale_grace: float = 300.0
    webhook_url: str | None = None
    webhook_check_interval: float = 180.0
    allow_http: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "api_url", _normalize(self.api_url, self.allow_http is True))
        key = self.api_key.strip() if isinstance(self.api_key, str) else self.api_key
        if key is not None and (not isinstance(key, str) or not key.isascii() or not key.isprintable() or " " in key):
            raise ConfigurationError(
                "api_key", "must be printable ASCII without spaces (a Hanko Cloud API key), or unset"
            )
        object.__setattr__(self, "api_key", key or None)
        where = urlsplit(self.api_url)
        if key and where.scheme == "http" and not is_loopback_host(where.hostname or ""):
            raise ConfigurationError("api_key", "is never sent over plain http: use https for the admin API")
        for name, minimum in (
            ("timeout", 1e-3),
            ("max_body_bytes", 1024),
            ("concurrency", 1),
            ("metadata_ttl", 0.0),
            ("metadata_stale_grace", 0.0),
            ("webhook_check_interval", 1.0),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ConfigurationError(name, f"must be a number of at least {minimum:g}, got {value!r}")
            if value < minimum:
                raise ConfigurationError(name, f"must be a number of at least {minimum:g}, got {value!r}")
        if self.webhook_url is not None and urlsplit(self.webhook_url).scheme not in ("http", "https"):
            raise ConfigurationError("webhook_url", f"must be an http(s) URL, got {self.webhook_url!r}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> HankoAdminSettings | None:
        """Settings from ``HANKO_ADMIN_API_URL`` and ``HANKO_ADMIN_API_KEY`` (and ``HANKO_WEBHOOK_URL``,
        ``HANKO_ALLOW_HTTP``); ``None`` when ``HANKO_ADMIN_API_URL`` is not set.

        :raises ConfigurationError: naming the variable to fix.
        """
        environ = os.environ if environ is None else environ
        url = environ.get(ADMIN_API_URL_VARIABLE, "").strip()
        key = environ.get(ADMIN_API_KEY_VARIABLE, "").strip() or None
        if not url:
            if key:
                raise ConfigurationError(ADMIN_API_URL_VARIABLE, f"is not set, but {ADMIN_API_KEY_VARIABLE} is")
            return None
        allow_http = environ.get("HANKO_ALLOW_HTTP", "").strip().lower()
        if allow_http not in _TRUE + _FALSE:
            raise ConfigurationError("HANKO_ALLOW_HTTP", f"must be true or false, got {allow_http!r}")
        values: dict[str, Any] = {"api_url": url, "api_key": key, "allow_http": allow_http in _TRUE}
        if environ.get("HANKO_WEBHOOK_URL", "").strip():
            values["webhook_url"] = environ["HANKO_WEBHOOK_URL"].strip()
        values.update(overrides)
        variables = {"api_url": ADMIN_API_URL_VARIABLE, "api_key": ADMIN_API_KEY_VARIABLE}
        variables["webhook_url"] = "HANKO_WEBHOOK_URL"
        try:
            return cls(**values)
        except ConfigurationError as error:
            raise ConfigurationError(variables.get(error.setting, error.setting), error.problem) from None

    def url(self, path: str) -> str:
        """The URL of ``path`` (``/users/...``) at the admin API."""
        return f"{self.api_url}{path}"


def _normalize(url: str, allow_http: bool) -> str:
    parts = urlsplit(url.strip()) if isinstance(url, str) else urlsplit("")
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigurationError("api_url", f"must be an http(s) URL with a host, got {url!r}")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname) and not allow_http:
        raise ConfigurationError(
            "api_url",
            "must use https; http is allowed for loopback hosts, and for a self-hosted admin API on a private "
            "network with HANKO_ALLOW_HTTP=true (allow_http=True)",
        )
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ConfigurationError("api_url", "must not carry a query, fragment or credentials")
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"
