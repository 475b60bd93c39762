"""A sealed copy of the key set on local disk, for a process started while Hanko's key endpoint fails.

Workers write the key set they hold whenever they fetched a newer one; a worker started later (a
replacement, a rolling restart, the host itself restarted) starts from the copy instead of from nothing,
within the same TTL and stale grace as the process that fetched it.  The copy is hostile input like a
shared cache entry: it is sealed with an HMAC under a secret, must be a small regular file of this user
that no one else may write, must be for this ``jwks_url``, and its JWKS is parsed as strictly as Hanko's
answer.  Anything wrong with it is logged and ignored: the process starts without it.
"""

from __future__ import annotations

import json
import logging
import math
import os
import stat
import time

from hanko_tornado.cache import describe_failure, open_entry, seal_entry
from hanko_tornado.jwks import KeySet, VerificationKey, parse_jwks
from hanko_tornado.keys import KeyStoreSeed
from hanko_tornado.settings import HankoSettings

__all__ = ["KeysFile"]

log = logging.getLogger("server")

_KIND = "keys-file"
#: Seconds another process's clock may run ahead: a copy fetched later than that is refused.
_CLOCK_SKEW = 10.0


class KeysFile:
    """The copy at ``path``, sealed with ``secret`` (every process of the host must know it)."""

    def __init__(self, path: str, secret: str, settings: HankoSettings) -> None:
        self.path, self.secret, self.settings = path, secret, settings
        self._key = f"hanko_tornado:keys-file:{settings.jwks_url}"
        self._written_at: float | None = None  # the fetched_at of the key set this process wrote or read

    def read(self) -> KeyStoreSeed | None:
        """A seed for a new key store from the copy, ``None`` when there is none or it is not usable."""
        try:
            text = self._read_text()
            if text is None:
                return None
            key_set = self._parse(open_entry(self.secret, self._key, _KIND, text))
        except Exception as error:  # noqa: BLE001 - hostile input: every kind of wrong is ignored alike
            log.warning("ignoring the key set copy %s: %s", self.path, describe_failure(error))
            return None
        if key_set is None:
            return None
        self._written_at = key_set.fetched_at
        log.info("starting from the key set copy %s (%d key(s))", self.path, len(key_set.keys))
        return KeyStoreSeed(key_set, -math.inf)

    def write(self, key_set: KeySet | None) -> None:
        """Write ``key_set`` when it was fetched after the one last written or read here; failures are logged."""
        if key_set is None or (self._written_at is not None and key_set.fetched_at <= self._written_at):
            return
        jwks = {"keys": [_public_jwk(key) for key in key_set.keys]}
        entry = {
            "jwks_url": self.settings.jwks_url,
            "jwks": json.dumps(jwks),
            "fetched_at": key_set.fetched_at,
            "ttl": key_set.ttl,
        }
        text = seal_entry(self.secret, self._key, _KIND, json.dumps(entry))
        partial = f"{self.path}.{os.getpid()}.partial"
        try:
            descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
            with os.fdopen(descriptor, "w", encoding="utf-8") as file:
                file.write(text)
            os.replace(partial, self.path)  # atomic: a reader sees the old copy or the new one, never half
        except OSError as error:
            log.warning("cannot write the key set copy %s: %s", self.path, error.strerror)
            return
        self._written_at = key_set.fetched_at

    def _read_text(self) -> str | None:
        try:
            descriptor = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except FileNotFoundError:
            return None
        with os.fdopen(descriptor, "rb") as file:
            info = os.fstat(file.fileno())
            if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o022:
                raise ValueError("not a regular file of this user that only this user may write")
            limit = 2 * self.settings.jwks_max_bytes + 4096  # the JWKS, escaped in JSON, and the seal
            data = file.read(limit + 1)
        if len(data) > limit:
            raise ValueError("too large")
        return data.decode("utf-8")

    def _parse(self, text: str) -> KeySet | None:
        entry = json.loads(text)
        if not isinstance(entry, dict) or entry.get("jwks_url") != self.settings.jwks_url:
            raise ValueError("not a copy of this jwks_url's key set")
        times, body = (entry.get("fetched_at"), entry.get("ttl")), entry.get("jwks")
        if any(type(value) not in (int, float) for value in times) or not isinstance(body, str):
            raise ValueError("malformed")
        fetched_at, ttl = float(times[0]), float(times[1])  # type: ignore[arg-type]
        if not (math.isfinite(fetched_at) and self.settings.jwks_min_ttl <= ttl <= self.settings.jwks_max_ttl):
            raise ValueError("bad times")
        now = time.time()
        if fetched_at > now + _CLOCK_SKEW:
            raise ValueError("fetched in the future")
        if len(body) > self.settings.jwks_max_bytes:
            raise ValueError("JWKS too large")
        if now >= fetched_at + ttl + self.settings.stale_grace:
            log.info("the key set copy %s is past its stale grace: not used", self.path)
            return None
        return parse_jwks(body, fetched_at=fetched_at, ttl=ttl)


def _public_jwk(key: VerificationKey) -> dict[str, object]:
    """A verification key as a public JWK, with its kid and the one algorithm it verifies."""
    jwk: dict[str, object] = dict(key.algorithm.to_jwk(key.public_key, as_dict=True))
    jwk.update({"alg": key.alg, "use": "sig"})
    if key.kid is not None:
        jwk["kid"] = key.kid
    return jwk
