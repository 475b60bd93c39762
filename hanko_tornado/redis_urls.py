"""Redis URLs: one node, Sentinel or Cluster, with ACL users, a database and TLS, read into a store.

::

    redis://[user:password@]host[:port][/db]              one Redis or Valkey node
    rediss://…                                            the same over TLS
    unix://[user:password@]/path/to/redis.sock[?db=N]     a local socket
    redis+sentinel://[user:password@]host[:port][,host[:port]…]/service[/db]
    rediss+sentinel://…                                   TLS to the sentinels and the primary
    redis+cluster://[user:password@]host[:port][,host[:port]…]
    rediss+cluster://…

The Sentinel form is the one of redis-sentinel-url, Prefect and RedisVL
(sentinels on port 26379 unless given).  The user and password are the data
nodes' (Redis 6 ACL users; a password alone for ``requirepass``); the
sentinels' own, if they need one, are ``sentinel_username`` and
``sentinel_password``.  TLS options: ``ssl_ca_certs`` (a CA file: a private
CA, as managed services use), ``ssl_certfile`` and ``ssl_keyfile`` (a client
certificate), ``ssl_check_hostname=false`` (on by default).  Anything else in
the query is refused, and no error names the password.
"""

from __future__ import annotations

import logging
import re
import ssl
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, unquote_plus, urlsplit

from hanko_tornado.errors import ConfigurationError
from hanko_tornado.redis_store import ClusterChannels, RedisStore
from hanko_tornado.store import CACHE_OPERATION_TIMEOUT

__all__ = ["REDIS_SCHEMES", "mask_url", "store_from_url"]

log = logging.getLogger("hanko_tornado")

REDIS_SCHEMES = ("redis", "rediss", "unix", "redis+sentinel", "rediss+sentinel", "redis+cluster", "rediss+cluster")
#: Connections to Redis per process (per node in a Cluster).
CACHE_CONNECTIONS = 200
_TLS_OPTIONS = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_check_hostname")
_HOST = re.compile(r"^(?:\[(?P<v6>[0-9a-fA-F:.]+)\]|(?P<name>[^:\[\]/]+))(?::(?P<port>\d{1,5}))?$")


def mask_url(url: str) -> str:
    """``url`` with its passwords replaced by ``***`` (the user info's, and any ``*password`` in the query),
    for a log line or an error."""
    url = _QUERY_PASSWORD.sub(_masked_option, url.strip())
    scheme, sep, rest = url.partition("://")
    userinfo, at, hosts = rest.rpartition("@")
    if not sep or not at or ":" not in userinfo:
        return url
    user = userinfo.partition(":")[0]
    return f"{scheme}://{user}:***@{hosts}"


# One option of the query (after "?" or "&", up to the next "&" or "#"): its name, and its value.
_QUERY_PASSWORD = re.compile(r"(?<=[?&])([^=&#]*)=([^&#]*)")


def _masked_option(option: re.Match[str]) -> str:
    # Names as parse_qsl reads them (sentinel%5Fpassword is sentinel_password).
    name = option.group(1)
    return f"{name}=***" if "password" in unquote_plus(name).lower() else option.group(0)


def store_from_url(url: str) -> RedisStore:
    """A store on Redis for ``url`` (see the module's forms); nothing is connected yet.

    :raises ConfigurationError: the URL is malformed, names an unknown option,
        or its TLS files cannot be read; the message never holds the password.
    """
    masked = mask_url(url)
    try:
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        userinfo, _, netloc = parts.netloc.rpartition("@")
    except ValueError:
        raise ConfigurationError("cache_url", f"is not a URL: {masked}") from None
    if scheme not in REDIS_SCHEMES:
        raise ConfigurationError("cache_url", f"must start with memory:// or {', '.join(REDIS_SCHEMES)}, got {masked}")
    tls = scheme.startswith("rediss")
    options = _options(parts.query, scheme, masked)
    user, _, password = userinfo.partition(":")
    common: dict[str, Any] = {
        "username": unquote(user) or None,
        "password": unquote(password) or None,
        "socket_timeout": CACHE_OPERATION_TIMEOUT,
        "socket_connect_timeout": CACHE_OPERATION_TIMEOUT,
        "max_connections": CACHE_CONNECTIONS,
        **(_tls(options, masked) if tls else {}),
    }
    if scheme == "unix":
        return _node(dict(common, unix_socket_path=unquote(parts.path), db=_db(options.get("db", "0"))), masked)
    hosts = [_host(host, masked, 26379 if "sentinel" in scheme else 6379) for host in netloc.split(",")]
    if scheme.endswith("+sentinel"):
        service, _, db = parts.path.strip("/").partition("/")
        if not service:
            raise ConfigurationError("cache_url", f"needs the service name after the sentinels: {masked}")
        return _sentinel(hosts, unquote(service), _db(db or "0"), common, options, masked)
    if scheme.endswith("+cluster"):
        if parts.path.strip("/") not in ("", "0"):
            raise ConfigurationError("cache_url", f"a Redis Cluster has only database 0: {masked}")
        return _cluster(hosts, common, masked)
    if len(hosts) != 1:
        raise ConfigurationError("cache_url", f"names several hosts (redis+sentinel://, redis+cluster://?): {masked}")
    host, port = hosts[0]
    return _node(dict(common, host=host, port=port, db=_db(parts.path.strip("/") or "0")), masked)


def _options(query: str, scheme: str, masked: str) -> dict[str, str]:
    allowed = {*_TLS_OPTIONS} if scheme.startswith("rediss") else set()
    allowed |= {"sentinel_username", "sentinel_password"} if scheme.endswith("+sentinel") else set()
    allowed |= {"db"} if scheme == "unix" else set()
    options: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name not in allowed or name in options:
            if name in _TLS_OPTIONS:
                why = "TLS options need rediss://"
            else:
                why = f"allowed here: {', '.join(sorted(allowed))}" if allowed else "this URL takes no options"
            raise ConfigurationError("cache_url", f"unknown or repeated option {quote(name)!r} ({why}): {masked}")
        options[name] = value
    return options


def _tls(options: dict[str, str], masked: str) -> dict[str, Any]:
    check = options.get("ssl_check_hostname", "true").lower()
    if check not in ("true", "false"):
        raise ConfigurationError("cache_url", f"ssl_check_hostname must be true or false: {masked}")
    ca, cert, key = (options.get(name) or None for name in ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile"))
    if key and not cert:
        raise ConfigurationError("cache_url", f"ssl_keyfile needs ssl_certfile: {masked}")
    try:  # read now, so that a wrong path is a start-up error rather than a Redis that never answers
        context = ssl.create_default_context(cafile=ca)
        if cert:
            context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as error:
        reason = f"{error.strerror}: {error.filename}" if getattr(error, "filename", None) else str(error)
        raise ConfigurationError("cache_url", f"cannot use its TLS files ({reason}): {masked}") from None
    if check == "false":
        log.warning("the shared cache's TLS certificate is not checked against its host name (%s)", masked)
    return {
        "ssl": True,
        "ssl_cert_reqs": "required",
        "ssl_ca_certs": ca,
        "ssl_certfile": cert,
        "ssl_keyfile": key,
        "ssl_check_hostname": check == "true",  # redis-py before 6 does not check unless told
    }


def _host(text: str, masked: str, default_port: int) -> tuple[str, int]:
    match = _HOST.match(unquote(text))
    port = int(match["port"] or default_port) if match else 0
    if match is None or not 0 < port < 65536:
        raise ConfigurationError("cache_url", f"has a malformed host {text!r}: {masked}")
    return match["v6"] or match["name"], port


def _db(text: str) -> int:
    if not text.isdigit() or len(text) > 5:
        raise ConfigurationError("cache_url", f"the database must be a number, got {text!r}")
    return int(text)


def _retrying() -> dict[str, Any]:
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff
    from redis.exceptions import ConnectionError as RedisConnectionError

    # One retry on a fresh connection: after a Redis restart the pooled connections are dead, and the first
    # command on each would otherwise count as Redis failing and switch the shared cache off for another 5 s.
    # Not on a timeout (redis-py's default retries those too): a Redis that does not answer gets one
    # CACHE_OPERATION_TIMEOUT, and on Python 3.10 a retry could outlive it (async_timeout can turn the
    # caller's asyncio.wait_for cancellation into redis-py's own timeout, which was then retried).
    return {
        "retry": Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        "retry_on_error": [RedisConnectionError],
    }


def _redis() -> Any:
    try:
        import redis.asyncio
    except ImportError:
        raise ConfigurationError("cache_url", "needs Redis support: pip install 'hanko-tornado[redis]'") from None
    return redis.asyncio


def _node(kwargs: dict[str, Any], masked: str) -> RedisStore:
    redis = _redis()
    return RedisStore(redis.Redis(**kwargs, **_retrying()), description=masked)


def _sentinel(
    hosts: list[tuple[str, int]], service: str, db: int, common: dict[str, Any], options: dict[str, str], masked: str
) -> RedisStore:
    redis = _redis()
    from redis.asyncio.sentinel import Sentinel

    of_sentinels = {key: value for key, value in common.items() if key.startswith(("socket_", "ssl"))}
    of_sentinels["username"] = options.get("sentinel_username") or None
    of_sentinels["password"] = options.get("sentinel_password") or None
    sentinel = Sentinel(  # type: ignore[no-untyped-call]
        hosts, sentinel_kwargs=of_sentinels, **common, **_retrying()
    )
    client = sentinel.master_for(service, redis_class=redis.Redis, db=db)
    locate = client.connection_pool.get_master_address
    return RedisStore(client, description=masked, also_close=sentinel.sentinels, locate=locate)


def _cluster(hosts: list[tuple[str, int]], common: dict[str, Any], masked: str) -> RedisStore:
    redis = _redis()
    from redis.asyncio.cluster import ClusterNode, RedisCluster

    cluster = RedisCluster(startup_nodes=[ClusterNode(host, port) for host, port in hosts], **common)
    node_options = {key: value for key, value in common.items() if key != "max_connections"}

    def node_client(host: str, port: int) -> Any:
        return redis.Redis(host=host, port=port, **node_options)

    return RedisStore(cluster, description=masked, channels=ClusterChannels(cluster, node_client))
