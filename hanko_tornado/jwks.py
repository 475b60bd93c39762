"""Hanko's JSON Web Key Set: parsed strictly into the keys a token may be verified with.

Only public asymmetric signing keys are kept, each with the one algorithm it
verifies, so that a token's header never picks the algorithm.  The same parser
reads a fresh answer from Hanko and an entry from a shared cache.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from jwt.algorithms import Algorithm, get_default_algorithms

__all__ = ["KeySet", "VerificationKey", "jwks_version", "parse_jwks"]

_ALGORITHMS = get_default_algorithms()
_RSA_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
_EC_ALGORITHMS = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_RSA_BITS = (2048, 8192)
_MAX_KEYS = 100
_MAX_KID_LENGTH = 256


@dataclasses.dataclass(frozen=True, eq=False)
class VerificationKey:
    """One public key from the JWKS and the one algorithm it verifies."""

    kid: str | None
    alg: str
    public_key: Any
    algorithm: Algorithm = dataclasses.field(repr=False)

    def verify(self, signing_input: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is this key's signature of ``signing_input``."""
        try:
            return self.algorithm.verify(signing_input, self.public_key, signature)
        except (ValueError, TypeError):
            return False


@dataclasses.dataclass(frozen=True, eq=False)
class KeySet:
    """A parsed JWKS with the times that govern its use (wall-clock seconds).

    ``fetched_at`` is when the fetch that brought it began: a set fetched at or
    after a request came in shows Hanko's keys as they were when it came.
    """

    version: str
    keys: tuple[VerificationKey, ...]
    by_kid: Mapping[str, VerificationKey]
    fetched_at: float
    ttl: float

    @property
    def fresh_until(self) -> float:
        return self.fetched_at + self.ttl

    def newer_than(self, other: KeySet | None) -> bool:
        """Whether this set was fetched after ``other`` (any set is newer than none)."""
        return other is None or self.fetched_at > other.fetched_at

    def find(self, kid: str | None, alg: str) -> VerificationKey | None:
        """The key for ``kid``; without a kid, the one key for ``alg`` if exactly one fits."""
        if kid is not None:
            return self.by_kid.get(kid)
        fitting = [key for key in self.keys if key.alg == alg]
        return fitting[0] if len(fitting) == 1 else None


def _key_algorithm(jwk: Mapping[str, Any]) -> str | None:
    kty, alg, crv = jwk.get("kty"), jwk.get("alg"), jwk.get("crv")
    if kty == "RSA":
        alg = "RS256" if alg is None else alg
        return alg if alg in _RSA_ALGORITHMS else None
    if kty == "EC" and crv in _EC_ALGORITHMS:
        inferred = _EC_ALGORITHMS[crv]
        return inferred if alg in (None, inferred) else None
    if kty == "OKP" and crv == "Ed25519" and alg in (None, "EdDSA", "Ed25519"):
        return "EdDSA"
    return None


def _parse_key(jwk: Any) -> VerificationKey | None:
    """A verification key from one JWK, or ``None`` when it is not a public signing key."""
    if not isinstance(jwk, dict) or _PRIVATE_MEMBERS & jwk.keys():
        return None
    kid = jwk.get("kid")
    if kid is not None and (not isinstance(kid, str) or not 0 < len(kid) <= _MAX_KID_LENGTH):
        return None
    if jwk.get("use", "sig") != "sig":
        return None
    key_ops = jwk.get("key_ops")
    if key_ops is not None and (not isinstance(key_ops, list) or "verify" not in key_ops):
        return None
    alg = _key_algorithm(jwk)
    if alg is None:
        return None
    algorithm = _ALGORITHMS[alg]
    try:
        public_key = algorithm.from_jwk(jwk)
    except Exception:  # noqa: BLE001 - untrusted input: any failure to parse drops the key
        return None
    if jwk["kty"] == "RSA" and not _RSA_BITS[0] <= public_key.key_size <= _RSA_BITS[1]:
        return None
    if not hasattr(public_key, "verify") or hasattr(public_key, "sign"):
        return None
    return VerificationKey(kid=kid, alg=alg, public_key=public_key, algorithm=algorithm)


def jwks_version(body: str | bytes) -> str:
    """What tells two JWKS documents apart: a digest of the raw body."""
    return hashlib.sha256(body if isinstance(body, bytes) else body.encode()).hexdigest()[:32]


def parse_jwks(body: str | bytes, *, fetched_at: float, ttl: float) -> KeySet:
    """Parse a JWKS document strictly, keeping only public asymmetric signing keys.

    Duplicate ``kid`` values are ambiguous, so every key that shares one is dropped.

    :raises ValueError: when the document is not a JWKS or holds no usable key.
    """
    document = json.loads(body)
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JSON object with a 'keys' list")
    parsed = [key for key in map(_parse_key, document["keys"][:_MAX_KEYS]) if key is not None]
    kids = [key.kid for key in parsed]
    keys = tuple(key for key in parsed if key.kid is None or kids.count(key.kid) == 1)
    if not keys:
        raise ValueError("no usable public signing key")
    return KeySet(
        version=jwks_version(body),
        keys=keys,
        by_kid={key.kid: key for key in keys if key.kid is not None},
        fetched_at=fetched_at,
        ttl=ttl,
    )
