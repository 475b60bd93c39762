"""Settings of a Hanko verifier: where the keys live and what a token must say.

Pass a :class:`HankoSettings` to the application as ``hanko=``::

    app = tornado.web.Application(handlers, hanko=HankoSettings(api_url="https://xyz.hanko.io"))

Every value is checked when the object is built, so a wrong setting stops the
program at start-up with a :class:`~hanko_tornado.errors.ConfigurationError`.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import math
import os
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from hanko_tornado.cache import MIN_SECRET_LENGTH, cache_from_url, is_shared
from hanko_tornado.errors import ConfigurationError
from hanko_tornado.prometheus import registry_for

log = logging.getLogger("hanko_tornado")

__all__ = ["ENVIRONMENT_VARIABLES", "HankoSettings", "is_loopback_host"]

# The most clock skew ``leeway`` may allow: more would keep expired tokens working.
_MAX_LEEWAY = 300.0


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` names this machine (``localhost``, 127.0.0.0/8 or ``::1``)."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _normalize_api_url(url: str, allow_http: bool) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigurationError("api_url", f"must be an http(s) URL with a host, got {url!r}")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        if not allow_http:
            raise ConfigurationError(
                "api_url",
                "must use https; http is allowed for loopback hosts, and for a Hanko on a private network "
                "with HANKO_ALLOW_HTTP=true (allow_http=True)",
            )
        log.warning("HANKO_ALLOW_HTTP: tokens go to Hanko at %s unencrypted; keep that network private", url)
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ConfigurationError("api_url", "must not carry a query, fragment or credentials")
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


@dataclasses.dataclass(frozen=True)
class HankoSettings:
    """How to find Hanko's keys and what a valid session token must carry.

    :param api_url: the Hanko API base URL; may carry a tenant path; a trailing
        slash is ignored; ``https`` unless the host is loopback.
    :param audience: accepted audiences; ``aud`` is checked only when set.
    :param issuer: the expected ``iss``; checked only when set.
    :param cookie_name: the cookie that holds the token when no bearer header is sent.
    :param leeway: seconds of clock skew allowed on ``exp``, ``nbf`` and ``iat``; at most 300.
    :param max_token_bytes: longer tokens are refused before any parsing.
    :param jwks_timeout: seconds allowed for one JWKS fetch.
    :param jwks_max_bytes: a larger JWKS body is a failed fetch.
    :param jwks_min_ttl: lower bound on the key set's ``max-age``.
    :param jwks_max_ttl: upper bound on the key set's ``max-age``.
    :param refetch_interval: least seconds between two JWKS fetches that an
        unknown ``kid`` or a failure may cause.
    :param stale_grace: seconds a key set keeps serving after its TTL while
        Hanko's key endpoint fails.
    :param token_cache_size: how many verified tokens each process remembers.
    :param cache: an aiocache cache for the raw key set and session answers
        (for example a ``RedisCache``); ``None`` keeps them in this process's memory.
    :param cache_secret: seals entries in a shared cache (HMAC-SHA256), so that
        whoever can write to Redis cannot slip a key in; required with a
        shared cache, at least 32 characters, the same in every process.
    :param session_check: ``"validate"`` asks Hanko whether each token's
        session still exists (logout, revocation) with ``GET /sessions/validate``;
        ``"renew"`` asks with ``POST``, which also extends the session's idle
        timeout; ``"off"`` trusts the signature.
    :param session_check_ttl: seconds an answer about a session is remembered (never past ``exp``).
    :param session_check_failure: when Hanko cannot answer: ``"closed"`` answers
        503, ``"open"`` accepts the locally verified token.
    :param session_check_timeout: seconds allowed for one session validation.
    :param session_check_concurrency: session validations in flight at once per
        process (connections of the session check's own HTTP client).
    :param max_session_lifetime: the longest a Hanko session token may live (Hanko Cloud allows a month):
        how long a user deleted by webhook stays refused, and the most a webhook's end is kept.
    :param require_shared_cache: a shared cache that does not answer makes ``/readyz`` unready; off by default,
        since every process still serves from its own memory (``shared_cache`` is reported ``degraded``).
    :param allow_http: allow an ``http://`` API URL beyond loopback (a Hanko on a
        private network, as Hanko's docker-compose sets up); warns at start-up.
    :param metrics: count into Prometheus (see :mod:`hanko_tornado.metrics`): ``True`` for
        prometheus_client's default registry, or a ``CollectorRegistry``; ``None`` (not
        asked, the default) and ``False`` count nothing.  Needs
        ``pip install 'hanko-tornado[metrics]'``.
    """

    api_url: str
    audience: tuple[str, ...] = ()
    issuer: str | None = None
    cookie_name: str = "hanko"
    leeway: float = 30.0
    max_token_bytes: int = 16 * 1024
    jwks_timeout: float = 5.0
    jwks_max_bytes: int = 512 * 1024
    jwks_min_ttl: float = 60.0
    jwks_max_ttl: float = 3600.0
    refetch_interval: float = 5.0
    stale_grace: float = 24 * 3600.0
    token_cache_size: int = 10_000
    cache: Any = dataclasses.field(default=None, compare=False)
    cache_secret: str | None = dataclasses.field(default=None, repr=False)
    session_check: str = "off"
    session_check_ttl: float = 30.0
    session_check_failure: str = "closed"
    session_check_timeout: float = 5.0
    session_check_concurrency: int = 100
    max_session_lifetime: float = 31 * 24 * 3600.0
    allow_http: bool = False
    require_shared_cache: bool = False
    metrics: Any = dataclasses.field(default=None, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "api_url", _normalize_api_url(self.api_url, self.allow_http is True))
        if isinstance(self.audience, str):
            object.__setattr__(self, "audience", (self.audience,))
        object.__setattr__(self, "audience", tuple(a for a in self.audience if a))
        if not self.cookie_name or not self.cookie_name.isascii() or any(c in self.cookie_name for c in ' =;,"\t\r\n'):
            raise ConfigurationError("cookie_name", f"is not a valid cookie name: {self.cookie_name!r}")
        for name in ("leeway", "jwks_min_ttl", "stale_grace", "refetch_interval"):
            _require(name, getattr(self, name), minimum=0.0)
        if self.leeway > _MAX_LEEWAY:
            raise ConfigurationError("leeway", f"must be at most {_MAX_LEEWAY:g} seconds, got {self.leeway!r}")
        for name in ("jwks_timeout", "jwks_max_ttl", "max_token_bytes", "jwks_max_bytes", "token_cache_size"):
            _require(name, getattr(self, name), minimum=1e-9)
        _require("session_check_concurrency", self.session_check_concurrency, minimum=1)
        _require("max_session_lifetime", self.max_session_lifetime, minimum=60)
        _require_choice("session_check", self.session_check, ("off", "validate", "renew"))
        _require_choice("session_check_failure", self.session_check_failure, ("closed", "open"))
        _require("session_check_ttl", self.session_check_ttl, minimum=0.0)
        _require("session_check_timeout", self.session_check_timeout, minimum=1e-9)
        if is_shared(self.cache) and len(self.cache_secret or "") < MIN_SECRET_LENGTH:
            raise ConfigurationError(
                "cache_secret",
                f"a shared cache needs a secret of at least {MIN_SECRET_LENGTH} characters, the same in every process",
            )
        if not isinstance(self.require_shared_cache, bool):
            raise ConfigurationError("require_shared_cache", "must be True or False")
        if self.jwks_min_ttl > self.jwks_max_ttl:
            raise ConfigurationError("jwks_min_ttl", "must not exceed jwks_max_ttl")
        if self.metrics is not None and self.metrics is not False:
            registry_for(self.metrics)  # prometheus_client is imported only here, when metrics are asked for

    @property
    def jwks_url(self) -> str:
        """Where Hanko publishes its public keys."""
        return f"{self.api_url}/.well-known/jwks.json"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> HankoSettings:
        """Build settings from ``HANKO_*`` environment variables (see ``ENVIRONMENT_VARIABLES``).

        :raises ConfigurationError: naming the variable to fix.
        """
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for variable, (field, convert, expected) in ENVIRONMENT_VARIABLES.items():
            raw = environ.get(variable, "").strip()
            if not raw:
                continue
            try:
                values[field] = convert(raw)
            except ConfigurationError as error:
                raise ConfigurationError(variable, error.problem) from None
            except ValueError:
                raise ConfigurationError(variable, f"must be {expected}, got {raw!r}") from None
        if "api_url" not in values:
            raise ConfigurationError("HANKO_API_URL", "is not set: set it to your Hanko API URL (see .env.example)")
        values.update(overrides)
        try:
            return cls(**values)
        except ConfigurationError as error:
            variable = next((v for v, (f, _, _) in ENVIRONMENT_VARIABLES.items() if f == error.setting), error.setting)
            raise ConfigurationError(variable, error.problem) from None


def _require(name: str, value: float, *, minimum: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < minimum:
        raise ConfigurationError(name, f"must be a number of at least {minimum:g}, got {value!r}")


def _require_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigurationError(name, f"must be one of {', '.join(choices)}, got {value!r}")


def _boolean(raw: str) -> bool:
    words = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
    if raw.lower() not in words:
        raise ValueError(raw)
    return words[raw.lower()]


def _names(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


#: The environment variables :meth:`HankoSettings.from_env` reads: the field each
#: sets, how its text is read, and what it must look like.
ENVIRONMENT_VARIABLES: dict[str, tuple[str, Callable[[str], Any], str]] = {
    "HANKO_API_URL": ("api_url", str, "a URL"),
    "HANKO_AUDIENCE": ("audience", _names, "comma-separated audiences"),
    "HANKO_ISSUER": ("issuer", str, "an issuer"),
    "HANKO_COOKIE_NAME": ("cookie_name", str, "a cookie name"),
    "HANKO_LEEWAY_SECONDS": ("leeway", float, "a number of seconds"),
    "HANKO_JWKS_TIMEOUT_SECONDS": ("jwks_timeout", float, "a number of seconds"),
    "HANKO_JWKS_REFETCH_INTERVAL_SECONDS": ("refetch_interval", float, "a number of seconds"),
    "HANKO_JWKS_STALE_GRACE_SECONDS": ("stale_grace", float, "a number of seconds"),
    "HANKO_TOKEN_CACHE_SIZE": ("token_cache_size", int, "a whole number"),
    "HANKO_CACHE_URL": ("cache", cache_from_url, "memory:// or a Redis URL"),
    "HANKO_REQUIRE_SHARED_CACHE": ("require_shared_cache", _boolean, "true or false"),
    "HANKO_CACHE_SECRET": ("cache_secret", str, "a secret"),
    "HANKO_SESSION_CHECK": ("session_check", str, "off, validate or renew"),
    "HANKO_SESSION_CHECK_SECONDS": ("session_check_ttl", float, "a number of seconds"),
    "HANKO_SESSION_CHECK_FAILURE": ("session_check_failure", str, "closed or open"),
    "HANKO_SESSION_CHECK_TIMEOUT_SECONDS": ("session_check_timeout", float, "a number of seconds"),
    "HANKO_SESSION_CHECK_CONCURRENCY": ("session_check_concurrency", int, "a whole number"),
    "HANKO_ALLOW_HTTP": ("allow_http", _boolean, "true or false"),
    "HANKO_MAX_SESSION_LIFETIME_SECONDS": ("max_session_lifetime", float, "a number of seconds"),
    "HANKO_METRICS": ("metrics", _boolean, "true or false"),
}
