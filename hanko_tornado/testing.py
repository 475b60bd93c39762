"""Test Hanko-protected handlers with no Hanko tenant and no network.

:class:`FakeHanko` stands in for a Hanko tenant's public side on a loopback
port: it serves ``/.well-known/jwks.json`` and ``/sessions/validate`` as
Hanko does, mints Hanko-shaped tokens, rotates keys, revokes sessions and
fails on demand.  :class:`HankoTestCase` wires one into an
``AsyncHTTPTestCase``::

    class ProfileTest(HankoTestCase):
        def get_app(self) -> tornado.web.Application:
            return make_app(hanko=self.hanko.settings())

        def test_profile(self) -> None:
            response = self.fetch_with_token("/profile", self.hanko.mint(user_id="u-1"))
            self.assertEqual(response.code, 200)
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import jwt
import tornado.web
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from tornado.httpclient import AsyncHTTPClient, HTTPResponse
from tornado.httpserver import HTTPServer
from tornado.routing import URLSpec
from tornado.testing import AsyncHTTPTestCase, bind_unused_port

from hanko_tornado.settings import HankoSettings

__all__ = ["FakeHanko", "HankoTestCase", "SigningKey", "fetch_concurrently"]

Fault = Literal["error", "garbage", "slow", "drop"]


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
        """The public half as a JWK, as Hanko publishes it."""
        algorithm = ECAlgorithm if self.alg.startswith("ES") else RSAAlgorithm
        jwk: dict[str, Any] = algorithm.to_jwk(self.private_key.public_key(), as_dict=True)
        return {**jwk, "kid": self.kid, "alg": self.alg, "use": "sig"}


class FakeHanko:
    """A Hanko tenant's public side, served by Tornado on loopback.

    The newest key in :attr:`keys` signs new tokens; every key is published.

    :param key_size: RSA key size; Hanko uses 4096, tests may pick 2048 for speed.
    :param audience: the ``aud`` minted tokens carry by default.
    :param path: a tenant path prefix, such as ``/tenant-1``.
    :param keys: the published keys, newest last; one new key by default.
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
    ) -> None:
        self.key_size = key_size
        self.audience = tuple(audience)
        self.issuer = issuer
        self.max_age = max_age
        self.path = path.rstrip("/")
        self.keys: list[SigningKey] = list(keys) or [SigningKey.generate(key_size=key_size)]
        #: JWKS fetches and session validations served so far.
        self.jwks_fetches = 0
        self.validations = 0
        #: When set, the JWKS endpoint fails this way: error status, garbage body,
        #: a slow answer (``slow_seconds``), or a dropped connection.
        self.fault: Fault | None = None
        self.slow_seconds = 10.0
        #: The same for ``/sessions/validate``.
        self.session_fault: Fault | None = None
        self.revoked_sessions: set[str] = set()
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
        return [
            tornado.web.url(rf"{prefix}/\.well-known/jwks\.json", _JwksHandler, {"hanko": self}),
            tornado.web.url(rf"{prefix}/sessions/validate", _ValidateHandler, {"hanko": self}),
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
        """End a session, as logging out does: ``/sessions/validate`` says it is invalid."""
        self.revoked_sessions.add(session_id)

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
        """A session token as Hanko issues it.

        :param lifetime: seconds until ``exp``; negative for an expired token.
        :param key: sign with this key instead of the newest published one
            (a key from :meth:`SigningKey.generate` is one Hanko never published).
        :param claims: extra claims, or ``None`` values to remove standard ones.
        """
        key = key or self.keys[-1]
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
        header = {"kid": key.kid, "typ": "JWT", **(headers or {})}
        return jwt.encode(payload, key.private_key, algorithm=key.alg, headers=header)

    def validate(self, token: str | None) -> dict[str, Any]:
        """What ``/sessions/validate`` answers for ``token``."""
        self.validations += 1
        claims = self._verified_claims(token) if token else None
        if claims is None or claims.get("session_id") in self.revoked_sessions:
            return {"is_valid": False}
        names = {"sub": "subject", "iat": "issued_at", "exp": "expiration", "aud": "audience", "iss": "issuer"}
        return {
            "is_valid": True,
            "claims": {names.get(name, name): value for name, value in claims.items()},
            "expiration_time": claims["exp"],
            "user_id": claims["sub"],
        }

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


class _FakeHandler(tornado.web.RequestHandler):
    def initialize(self, hanko: FakeHanko) -> None:
        self.hanko = hanko

    async def answer_fault(self, fault: Fault | None) -> bool:
        """Fail as ``fault`` says; whether the answer is finished."""
        if fault == "slow":
            await asyncio.sleep(self.hanko.slow_seconds)
        if fault == "drop":
            self.request.connection.close()  # type: ignore[union-attr]
            return True
        if fault == "error":
            self.set_status(500)
            self.finish({"code": 500, "message": "Internal Server Error"})
            return True
        if fault == "garbage":
            self.finish("<html>garbage")
            return True
        return False


class _JwksHandler(_FakeHandler):
    async def get(self) -> None:
        self.hanko.jwks_fetches += 1
        if await self.answer_fault(self.hanko.fault):
            return
        self.set_header("Cache-Control", f"max-age={self.hanko.max_age}")
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(self.hanko.jwks()))


class _ValidateHandler(_FakeHandler):
    async def prepare(self) -> None:
        if await self.answer_fault(self.hanko.session_fault):
            self.hanko.validations += 1

    def get(self) -> None:
        authorization = self.request.headers.get("Authorization", "")
        scheme, _, token = authorization.partition(" ")
        token = token if scheme.lower() == "bearer" else self.get_cookie("hanko", "")
        self.finish(self.hanko.validate(token))

    def post(self) -> None:
        try:
            token = json.loads(self.request.body).get("session_token")
        except (ValueError, AttributeError):
            token = None
        if not isinstance(token, str) or not token:
            self.set_status(400)
            self.finish({"code": 400, "message": "Bad Request"})
            return
        self.finish(self.hanko.validate(token))


async def fetch_concurrently(requests: Sequence[tuple[str, str]], timeout: float = 60) -> list[HTTPResponse]:
    """GET every ``(url, token)`` at once, the token as a bearer header; answers in order, errors not raised.

    For bursts: one client with as many connections as requests, so that all are in flight together.
    """
    client = AsyncHTTPClient(force_instance=True, max_clients=max(1, len(requests)))
    try:
        return await asyncio.gather(
            *(
                client.fetch(
                    url, headers={"Authorization": f"Bearer {token}"}, raise_error=False, request_timeout=timeout
                )
                for url, token in requests
            )
        )
    finally:
        client.close()


class HankoTestCase(AsyncHTTPTestCase):
    """An ``AsyncHTTPTestCase`` with a :class:`FakeHanko` running as ``self.hanko``.

    Build the application under test with ``self.hanko.settings()`` in
    ``get_app``; send tokens with :meth:`fetch_with_token`.
    """

    hanko_key_size = 2048

    def setUp(self) -> None:
        self.hanko = self.make_fake_hanko()
        super().setUp()
        self.hanko.start()

    def tearDown(self) -> None:
        verifier = self._app.settings.get("hanko_verifier")
        if verifier is not None:
            self.io_loop.run_sync(verifier.close)
        self.io_loop.run_sync(self.hanko.stop)
        super().tearDown()

    def make_fake_hanko(self) -> FakeHanko:
        """The fake tenant for this test; override to configure it."""
        return FakeHanko(key_size=self.hanko_key_size)

    def fetch_with_token(self, path: str, token: str, *, cookie: bool = False, **kwargs: Any) -> HTTPResponse:
        """``self.fetch`` with ``token`` as a bearer header, or as the ``hanko`` cookie."""
        headers = dict(kwargs.pop("headers", None) or {})
        if cookie:
            headers["Cookie"] = f"hanko={token}"
        else:
            headers["Authorization"] = f"Bearer {token}"
        return self.fetch(path, headers=headers, **kwargs)
