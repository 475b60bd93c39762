"""Signing keys for FakeHanko: RSA or EC private keys, published as Hanko publishes them."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from jwt.utils import base64url_encode

__all__ = ["SigningKey"]

# The members Hanko publishes for each key (jwk.PublicKeyOf, plus kid, alg and use): no key_ops.
_PUBLISHED_MEMBERS = frozenset({"kty", "kid", "alg", "use", "n", "e", "crv", "x", "y"})


@dataclasses.dataclass(frozen=True, eq=False)
class SigningKey:
    """A private key that signs tokens, with its ``kid`` and algorithm."""

    kid: str
    alg: str
    private_key: Any = dataclasses.field(repr=False)

    @classmethod
    def generate(cls, alg: str = "RS256", key_size: int = 4096, kid: str | None = None) -> SigningKey:
        """A new key: RSA of ``key_size`` bits for RS*/PS*, the matching curve for ES*."""
        private_key: Any
        if alg.startswith("ES"):
            curve = {"ES256": ec.SECP256R1(), "ES384": ec.SECP384R1(), "ES512": ec.SECP521R1()}[alg]
            private_key = ec.generate_private_key(curve)
        else:
            private_key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
        return cls(kid=kid or str(uuid.uuid4()), alg=alg, private_key=private_key)

    def public_jwk(self) -> dict[str, Any]:
        """The public half as a JWK, with exactly the members Hanko publishes."""
        algorithm = ECAlgorithm if self.alg.startswith("ES") else RSAAlgorithm
        jwk: dict[str, Any] = algorithm.to_jwk(self.private_key.public_key(), as_dict=True)
        jwk = {name: value for name, value in jwk.items() if name in _PUBLISHED_MEMBERS}
        if self.alg.startswith("ES"):
            # A coordinate is always the curve's full length (RFC 7518, 6.2.1.2); PyJWT before 2.9 drops
            # leading zero bytes, and then refuses its own JWK.
            numbers = self.private_key.public_key().public_numbers()
            size = (numbers.curve.key_size + 7) // 8
            jwk["x"], jwk["y"] = (base64url_encode(n.to_bytes(size, "big")).decode() for n in (numbers.x, numbers.y))
        return {**jwk, "kid": self.kid, "alg": self.alg, "use": "sig"}
