"""``FakeHanko``: a Hanko tenant's public side, answering as Hanko's backend does."""

from __future__ import annotations

import dataclasses
import datetime
import re
import socket
import time
import uuid
from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import Any, Literal

import jwt
import tornado.web
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from jwt.utils import base64url_encode
from tornado.httpserver import HTTPServer
from tornado.routing import URLSpec
from tornado.testing import bind_unused_port

from hanko_tornado.settings import HankoSettings

__all__ = ["FakeHanko", "FakeSession", "Fault", "SigningKey"]

Fault = Literal["error", "garbage", "slow", "drop"]

# The members Hanko publishes for each key (jwk.PublicKeyOf, plus kid, alg and use): no key_ops.
_PUBLISHED_MEMBERS = frozenset({"kty", "kid", "alg", "use", "n", "e", "crv", "x", "y"})
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
_CLAIM_NAMES = {"sub": "subject", "iat": "issued_at", "exp": "expiration", "aud": "audience", "iss": "issuer"}
WEBHOOK_SUBJECT = "hanko webhooks"


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


@dataclasses.dataclass
class FakeSession:
    """A session as Hanko stores it (times in Unix seconds)."""

    id: str
    user_id: str
    created_at: float
    expires_at: float
    last_used: float


def rfc3339(seconds: float) -> str:
    """A time as Go's ``time.Time`` writes it in JSON: RFC 3339, UTC, nanoseconds without trailing zeros."""
    moment = datetime.datetime.fromtimestamp(seconds, tz=datetime.timezone.utc)
    fraction = f"{moment.microsecond:06d}000".rstrip("0")
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + (f".{fraction}" if fraction else "") + "Z"


class FakeHanko:
    """A Hanko tenant's public side, served by Tornado on loopback.

    The newest key in :attr:`keys` signs new tokens; every key is published.
    Every minted session token opens a session in :attr:`sessions`;
    ``/sessions/validate`` answers about those sessions as Hanko does.

    :param key_size: RSA key size; Hanko uses 4096, tests may pick 2048 for speed.
    :param audience: the ``aud`` minted tokens carry by default.
    :param path: a tenant path prefix, such as ``/tenant-1``.
    :param keys: the published keys, newest last; one new key by default.
    :param idle_timeout: seconds a session may go unused (Hanko's ``session.idle_timeout``);
        ``None`` for none, Hanko's default.
    :param cookie_name: the cookie ``GET /sessions/validate`` reads when no bearer header is sent.
    """

    def __init__(
        self,
        *,
        key_size: int = 4096,
        audience: Iterable[str] = ("localhost",),
        issuer: str | None = None,
        max_age: int = 600,
        path: str = "",
        keys: Iterable[SigningKey] = (),
        idle_timeout: float | None = None,
        cookie_name: str = "hanko",
    ) -> None:
        self.key_size = key_size
        self.audience = tuple(audience)
        self.issuer = issuer
        self.max_age = max_age
        self.path = path.rstrip("/")
        self.keys: list[SigningKey] = list(keys) or [SigningKey.generate(key_size=key_size)]
        self.idle_timeout = idle_timeout
        self.cookie_name = cookie_name
        #: Live sessions by id, as Hanko's database holds them.
        self.sessions: dict[str, FakeSession] = {}
        #: JWKS fetches and session validations served so far.
        self.jwks_fetches = 0
        self.validations = 0
        #: When set, the JWKS endpoint fails this way: error status, garbage body,
        #: a slow answer (``slow_seconds``), or a dropped connection.
        self.fault: Fault | None = None
        self.slow_seconds = 10.0
        #: The same for ``/sessions/validate``.
        self.session_fault: Fault | None = None
        #: Statuses ``/sessions/validate`` answers for these tokens instead of validating them
        #: (Hanko's 401, 403, 404, or a 5xx), with Hanko's error body.
        self.verdicts: dict[str, int] = {}
        #: Validations by ``POST``, which move a session's last use (and so its idle timeout).
        self.renewals = 0
        self._bound: tuple[socket.socket, int] | None = None
        self._server: HTTPServer | None = None

    @property
    def port(self) -> int:
        """The loopback port :meth:`start` serves on, chosen on first use."""
        return self._bind()[1]

    def _bind(self) -> tuple[socket.socket, int]:
        if self._bound is None:
            self._bound = bind_unused_port()
        return self._bound

    @property
    def api_url(self) -> str:
        """The URL to configure as ``HANKO_API_URL``."""
        return f"http://127.0.0.1:{self.port}{self.path}"

    def settings(self, **overrides: Any) -> HankoSettings:
        """Settings that point a verifier at this fake, checking its audience."""
        values: dict[str, Any] = {"api_url": self.api_url, "audience": self.audience, "issuer": self.issuer}
        return HankoSettings(**{**values, **overrides})

    def routes(self, prefix: str = "") -> list[URLSpec]:
        """The fake's routes under ``prefix``, to mount into another application."""
        from hanko_tornado.testing.handlers import JwksHandler, ValidateHandler

        return [
            tornado.web.url(rf"{prefix}/\.well-known/jwks\.json", JwksHandler, {"hanko": self}),
            tornado.web.url(rf"{prefix}/sessions/validate", ValidateHandler, {"hanko": self}),
        ]

    def start(self) -> None:
        """Start serving on :attr:`port`; needs the loop the test runs on."""
        self._server = HTTPServer(tornado.web.Application(self.routes(self.path)))
        self._server.add_sockets([self._bind()[0]])

    async def stop(self) -> None:
        """Stop serving and drop open connections."""
        if self._server is not None:
            self._server.stop()
            await self._server.close_all_connections()
            self._server = None

    def jwks(self) -> dict[str, Any]:
        """The JSON Web Key Set as served."""
        return {"keys": [key.public_jwk() for key in self.keys]}

    def rotate_key(self, alg: str = "RS256") -> SigningKey:
        """Add a new key that signs from now on; older keys stay published."""
        key = SigningKey.generate(alg, self.key_size)
        self.keys.append(key)
        return key

    def revoke(self, session_id: str) -> None:
        """End a session, as logging out does: ``/sessions/validate`` says it is invalid from now on."""
        self.sessions.pop(session_id, None)

    def mint(
        self,
        user_id: str | None = None,
        *,
        email: str | None = "user@example.com",
        email_verified: bool = True,
        username: str | None = None,
        audience: Iterable[str] | None = None,
        issuer: str | None = None,
        lifetime: float = 3600,
        session_id: str | None = None,
        amr: Iterable[str] = ("passkey",),
        claims: Mapping[str, Any] | None = None,
        key: SigningKey | None = None,
        headers: Mapping[str, Any] | None = None,
    ) -> str:
        """A session token as Hanko issues it, for a session this fake then holds.

        :param user_id: the ``sub``; a new UUID by default (Hanko's user ids are UUIDs).
        :param lifetime: seconds until ``exp``; negative for an expired token.
        :param key: sign with this key instead of the newest published one
            (a key from :meth:`SigningKey.generate` is one Hanko never published).
        :param claims: extra claims, or ``None`` values to remove standard ones.
        """
        now = int(time.time())
        payload: dict[str, Any] = {
            "sub": user_id or str(uuid.uuid4()),
            "iat": now,
            "exp": int(now + lifetime),
            "aud": list(self.audience if audience is None else audience),
            "session_id": session_id or str(uuid.uuid4()),
            "amr": list(amr),
        }
        if email is not None:
            payload["email"] = {"address": email, "is_primary": True, "is_verified": email_verified}
        if username is not None:
            payload["username"] = username
        if (issuer or self.issuer) is not None:
            payload["iss"] = issuer or self.issuer
        for name, value in (claims or {}).items():
            if value is None:
                payload.pop(name, None)
            else:
                payload[name] = value
        session, user = payload.get("session_id"), payload.get("sub")
        if isinstance(session, str) and isinstance(user, str) and session not in self.sessions:
            exp = payload["exp"] if isinstance(payload.get("exp"), int) else now + lifetime
            self.sessions[session] = FakeSession(session, user, now, exp, time.time())
        return self._sign(payload, key, headers)

    def mint_webhook(
        self,
        event: str,
        data: Mapping[str, Any],
        *,
        lifetime: float = 300,
        audience: Iterable[str] | None = None,
        key: SigningKey | None = None,
        claims: Mapping[str, Any] | None = None,
    ) -> str:
        """A webhook token as Hanko signs it: the session key, ``sub: "hanko webhooks"``, ``evt``, ``data``, 5 minutes.

        :param claims: extra claims, or ``None`` values to remove standard ones.
        """
        now = int(time.time())
        payload: dict[str, Any] = {
            "sub": WEBHOOK_SUBJECT,
            "iat": now,
            "exp": int(now + lifetime),
            "aud": list(self.audience if audience is None else audience),
            "evt": event,
            "data": dict(data),
        }
        for name, value in (claims or {}).items():
            if value is None:
                payload.pop(name, None)
            else:
                payload[name] = value
        return self._sign(payload, key, None)

    def _sign(self, payload: dict[str, Any], key: SigningKey | None, headers: Mapping[str, Any] | None) -> str:
        key = key or self.keys[-1]
        header = {"kid": key.kid, "typ": "JWT", **(headers or {})}
        return jwt.encode(payload, key.private_key, algorithm=key.alg, headers=header)

    def validate(self, token: str, *, renew: bool = False) -> tuple[int, dict[str, Any]]:
        """Hanko's status and answer for ``/sessions/validate`` on one token; ``renew`` as ``POST`` does.

        A token that is not a verified session token's answer is ``{"is_valid": false}``; one whose
        claims are not a session's (``sub`` or ``session_id`` not a UUID, ``email`` not an object) is
        a 400; a session past
        its idle timeout is deleted, as Hanko does.
        """
        if token in self.verdicts:
            status = self.verdicts[token]
            return status, {"code": status, "message": HTTPStatus(status).phrase}
        claims = self._verified_claims(token)
        if claims is None:
            return 200, {"is_valid": False}
        for name in ("sub", "session_id"):
            if not (isinstance(claims.get(name), str) and _UUID.fullmatch(claims[name])):
                return 400, {"code": 400, "message": f"failed to parse token claims: {name!r} is not a uuid"}
        if "email" in claims and not isinstance(claims["email"], dict):
            return 400, {"code": 400, "message": "failed to parse token claims: 'email' is malformed"}
        session = self.sessions.get(claims["session_id"])
        now = time.time()
        if session is None:
            return 200, {"is_valid": False}
        if self.idle_timeout is not None and now - session.last_used > self.idle_timeout:
            del self.sessions[session.id]
            return 200, {"is_valid": False}
        if renew:
            self.renewals += 1
            session.last_used = now
        answer: dict[str, Any] = {
            "is_valid": True,
            "claims": {_CLAIM_NAMES.get(name, name): value for name, value in claims.items()},
            "expiration_time": rfc3339(claims["exp"]),
            "user_id": claims["sub"],
        }
        for name in ("issued_at", "expiration"):
            if name in answer["claims"]:
                answer["claims"][name] = rfc3339(answer["claims"][name])
        if self.idle_timeout is not None:
            answer["idle_expires_at"] = rfc3339(min(session.last_used + self.idle_timeout, claims["exp"]))
        return 200, answer

    def _verified_claims(self, token: str) -> dict[str, Any] | None:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            key = next(k for k in self.keys if k.kid == kid)
            claims: dict[str, Any] = jwt.decode(
                token, key.private_key.public_key(), algorithms=[key.alg], options={"verify_aud": False}
            )
            return claims
        except (jwt.PyJWTError, StopIteration):
            return None
