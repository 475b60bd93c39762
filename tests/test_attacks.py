"""The classic attacks on JWT verifiers, and a hostile key endpoint: each has its documented outcome."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import tracemalloc
from typing import Any

import jwt
import tornado.web
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port

from hanko_tornado import HankoAuthMixin, verifier_for
from hanko_tornado.lifecycle import state_of
from hanko_tornado.testing import HankoTestCase, SigningKey


class UserHandler(HankoAuthMixin, tornado.web.RequestHandler):
    def get(self) -> None:
        self.write({"id": self.hanko_user.id})


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(**overrides: Any) -> dict[str, Any]:
    return {
        "sub": "aaaaaaaa-0000-4000-8000-000000000001",
        "session_id": "5e551011-0000-4000-8000-000000000001",
        "exp": int(time.time()) + 600,
        "aud": ["localhost"],
        **overrides,
    }


def signed(header: dict[str, Any], payload: bytes, private_key: Any, sign_with: str) -> str:
    """A token whose header says one thing and whose signature was made another way."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(payload)}"
    signature = jwt.get_algorithm_by_name(sign_with).sign(signing_input.encode(), private_key)
    return f"{signing_input}.{b64(signature)}"


class CountingHandler(tornado.web.RequestHandler):
    hits = 0

    def get(self) -> None:
        CountingHandler.hits += 1
        self.finish({"keys": []})


class AttackTest(HankoTestCase):
    def get_app(self) -> tornado.web.Application:
        # An unknown kid waits for the next fetch this process may make: keep that short.
        return tornado.web.Application([(r"/user", UserHandler)], hanko=self.hanko.settings(refetch_interval=0.3))

    def answer(self, token: str) -> tuple[int, str]:
        response = self.fetch_with_token("/user", token, raise_error=False)
        body = json.loads(response.body)
        return response.code, body.get("message", body.get("id", ""))

    def test_algorithm_swaps(self) -> None:
        rsa_key = self.hanko.keys[0]
        ec_key = self.hanko.rotate_key("ES256")
        payload = json.dumps(claims()).encode()
        swaps = [
            (rsa_key.private_key, "PS256", "PS256", rsa_key.kid),  # RSA-PSS with the RS256 key
            (rsa_key.private_key, "RS512", "RS512", rsa_key.kid),  # another hash with the same key
            (ec_key.private_key, "ES384", "ES256", ec_key.kid),  # another curve's algorithm on the P-256 key
            (SigningKey.generate("ES256").private_key, "ES256", "ES256", rsa_key.kid),  # EC naming the RSA kid
            (rsa_key.private_key, "RS256", "RS256", ec_key.kid),  # RS256 naming the EC kid
        ]
        for private_key, alg, sign_with, kid in swaps:
            with self.subTest(alg=alg, kid=kid):
                code, message = self.answer(signed({"alg": alg, "kid": kid}, payload, private_key, sign_with))
                self.assertEqual(code, 401)
                self.assertIn("algorithm does not match the key", message)
        self.assertEqual(
            self.answer(jwt.encode(claims(), ec_key.private_key, "ES256", headers={"kid": ec_key.kid})),
            (200, "aaaaaaaa-0000-4000-8000-000000000001"),
        )

    def test_kid_values_that_are_paths_or_huge(self) -> None:
        attacker = SigningKey.generate(key_size=2048)
        for kid in ["../../../../etc/passwd", "/dev/zero", "' OR 1=1 --", "k" * 10_000, "\u0000"]:
            with self.subTest(kid=kid[:20]):
                code, _ = self.answer(self.hanko.mint(key=attacker, headers={"kid": kid}))
                self.assertEqual(code, 401)

    def test_jku_x5u_jwk_x5c_are_ignored(self) -> None:
        sock, port = bind_unused_port()
        elsewhere = HTTPServer(tornado.web.Application([(r"/.*", CountingHandler)]))
        elsewhere.add_sockets([sock])
        url = f"http://127.0.0.1:{port}/jwks.json"
        attacker = SigningKey.generate(key_size=2048)
        embedded = attacker.public_jwk()
        pointing = {"jku": url, "x5u": url, "jwk": embedded, "x5c": ["MIIB"]}
        self.assertEqual(self.answer(self.hanko.mint(key=attacker, headers=pointing))[0], 401)
        self.assertEqual(self.answer(self.hanko.mint(key=attacker, headers={**pointing, "kid": attacker.kid}))[0], 401)
        self.assertEqual(
            self.answer(self.hanko.mint("aaaaaaaa-0000-4000-8000-000000000002", headers=pointing)),
            (200, "aaaaaaaa-0000-4000-8000-000000000002"),
        )
        self.assertEqual(CountingHandler.hits, 0, "nothing was fetched from the URLs in the token")
        elsewhere.stop()

    def test_stripped_and_truncated_signatures(self) -> None:
        header, payload, signature = self.hanko.mint().split(".")
        for token in [
            f"{header}.{payload}.",
            f"{header}.{payload}",
            f"{header}.{payload}.{signature[:-4]}",
            f"{header}.{payload}.AAAA",
        ]:
            with self.subTest(token=token[-8:]):
                self.assertEqual(self.answer(token)[0], 401)

    def test_a_header_checked_before_vouches_for_nothing_else(self) -> None:
        good = self.hanko.mint("aaaaaaaa-0000-4000-8000-000000000001")
        self.assertEqual(self.answer(good), (200, "aaaaaaaa-0000-4000-8000-000000000001"))
        header, _, signature = good.split(".")
        forged = f"{header}.{b64(json.dumps(claims(sub='admin')).encode())}.{signature}"
        self.assertEqual(self.answer(forged), (401, "The session token was refused: bad signature."))
        self.assertEqual(self.answer(good), (200, "aaaaaaaa-0000-4000-8000-000000000001"))

    def test_duplicate_claims_are_refused_even_when_signed(self) -> None:
        key = self.hanko.keys[0]
        header = b64(json.dumps({"alg": "RS256", "kid": key.kid}).encode())
        payload = b64(
            b'{"sub": "aaaaaaaa-0000-4000-8000-000000000001", "sub": "admin", "exp": 9999999999, "aud": ["localhost"]}'
        )
        signature = jwt.get_algorithm_by_name("RS256").sign(f"{header}.{payload}".encode(), key.private_key)
        code, message = self.answer(f"{header}.{payload}.{b64(signature)}")
        self.assertEqual((code, message), (401, "The session token was refused: malformed payload."))

    def test_megabyte_tokens(self) -> None:
        huge = "a" * (1 << 20)
        for headers in ({"Authorization": f"Bearer {huge}"}, {"Cookie": f"hanko={huge}"}):
            with self.subTest(header=next(iter(headers))):
                try:
                    response = self.fetch("/user", headers=headers, raise_error=False)
                except Exception:  # noqa: BLE001 - the server may close the connection on a 1 MB header
                    continue
                self.assertLess(response.code, 500)
        self.assertEqual(self.answer("a" * 20_000)[0], 401)
        self.assertEqual(
            self.answer(self.hanko.mint("aaaaaaaa-0000-4000-8000-000000000013")),
            (200, "aaaaaaaa-0000-4000-8000-000000000013"),
        )


class HostileAnswer(tornado.web.RequestHandler):
    def initialize(self, script: dict[str, Any]) -> None:
        self.script = script

    async def get(self) -> None:
        kind = self.script["kind"]
        if kind == "endless":
            self.set_header("Content-Type", "application/json")
            self.write('{"keys": [')
            for _ in range(600):  # bounded: an endless body for the test's purposes
                self.write(" " * 1024)
                await self.flush()
                await asyncio.sleep(0.01)
            self.finish("]}")
        elif kind == "redirect":
            self.redirect(self.script["to"])
        else:
            self.finish(self.script["body"])


class HostileEndpointTest(HankoTestCase):
    """Each hostile answer costs a failed fetch (503 when no key set is held), and the process stays healthy."""

    def get_app(self) -> tornado.web.Application:
        self.script: dict[str, Any] = {}
        url = f"http://127.0.0.1:{self.get_http_port()}/hostile"
        settings = self.hanko.settings(api_url=url, jwks_timeout=0.5, refetch_interval=0)
        hostile = (r"/hostile/\.well-known/jwks\.json", HostileAnswer, {"script": self.script})
        return tornado.web.Application([(r"/user", UserHandler), hostile], hanko=settings)

    def outcome(self, token: str | None = None, **script: Any) -> int:
        self.script.clear()
        self.script.update(script)
        verifier, state_of(self._app).verifier = state_of(self._app).verifier, None  # the next request makes one
        if verifier is not None:
            self.io_loop.run_sync(verifier.close)
        return self.fetch_with_token("/user", token or self.hanko.mint(), raise_error=False).code

    def keys(self, *jwks: dict[str, Any]) -> str:
        return json.dumps({"keys": list(jwks)})

    def test_each_hostile_answer(self) -> None:
        real = self.hanko.keys[0].public_jwk()
        small = SigningKey.generate(key_size=1024, kid=real["kid"]).public_jwk()
        private_rsa = {**real, "d": "AQAB", "p": "AQAB", "q": "AQAB"}
        cases = {
            "gigantic body": {"kind": "body", "body": self.keys(real) + " " * (2 << 20)},
            "endless slow body": {"kind": "endless"},
            "redirect to another host": {"kind": "redirect", "to": f"{self.hanko.api_url}/.well-known/jwks.json"},
            "JSON that is not an object": {"kind": "body", "body": "[1, 2, 3]"},
            "keys that is not a list": {"kind": "body", "body": '{"keys": "none"}'},
            "duplicate kids": {"kind": "body", "body": self.keys(real, {**real})},
            "a key that is too small": {"kind": "body", "body": self.keys(small)},
            "a symmetric key": {"kind": "body", "body": self.keys({"kty": "oct", "kid": real["kid"], "k": "c2VjcmV0"})},
            "a key with private parts": {"kind": "body", "body": self.keys(private_rsa)},
            "the wrong use": {"kind": "body", "body": self.keys({**real, "use": "enc"})},
        }
        tracemalloc.start()
        for name, script in cases.items():
            with self.subTest(case=name):
                started = time.monotonic()
                self.assertEqual(self.outcome(**script), 503)
                self.assertLess(time.monotonic() - started, 15, "bounded by the fetch timeout (0.5 s), not endless")
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        self.assertLess(peak, 16 << 20, "memory stays bounded by the body cap")
        self.assertEqual(self.outcome(kind="body", body=self.keys(real)), 200, "healthy afterwards")

    def test_thousands_of_keys(self) -> None:
        real = self.hanko.keys[0].public_jwk()
        decoy = SigningKey.generate("ES256").public_jwk()
        many = [real] + [{**decoy, "kid": f"decoy-{i}"} for i in range(2000)]
        started = time.monotonic()
        self.assertEqual(self.outcome(kind="body", body=self.keys(*many)), 200)
        self.assertLess(time.monotonic() - started, 30, "not quadratic in the keys (bench/ measures the time)")
        self.assertEqual(len(verifier_for(self._app).key_store.peek(real["kid"], "RS256").kid), len(real["kid"]))
        late = [{**decoy, "kid": f"decoy-{i}"} for i in range(200)] + [real]
        self.assertEqual(self.outcome(kind="body", body=self.keys(*late)), 401, "only the first 100 keys are read")
