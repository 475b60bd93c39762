"""Tokens from an independent implementation: jose (the library of Hanko's Bun guide) mints, server.py verifies."""

from __future__ import annotations

import json
import pathlib
import shutil
import subprocess
import unittest
from typing import Any, ClassVar

import tornado.web
from test_server import running_server
from tornado.httpserver import HTTPServer
from tornado.testing import AsyncTestCase, bind_unused_port, gen_test

JOSE = pathlib.Path(__file__).resolve().parent / "jose"


def mint_with_jose(audience: str) -> dict[str, Any]:
    """Keys, JWKS and tokens made by jose in Node.js (tests/jose/mint.mjs)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        raise unittest.SkipTest("Node.js and npm are not installed: the jose tokens cannot be minted")
    if not (JOSE / "node_modules" / "jose").is_dir():
        subprocess.run([npm, "ci", "--silent", "--no-audit", "--no-fund"], cwd=JOSE, check=True, timeout=300)
    result = subprocess.run(
        [node, "mint.mjs", audience], cwd=JOSE, check=True, capture_output=True, text=True, timeout=120
    )
    minted: dict[str, Any] = json.loads(result.stdout)
    return minted


class JwksHandler(tornado.web.RequestHandler):
    def initialize(self, jwks: dict[str, Any]) -> None:
        self.jwks = jwks

    def get(self) -> None:
        self.set_header("Cache-Control", "max-age=600")
        self.finish(self.jwks)


class JoseTokensTest(AsyncTestCase):
    minted: ClassVar[dict[str, Any]]

    @classmethod
    def setUpClass(cls) -> None:
        cls.minted = mint_with_jose("localhost")

    def setUp(self) -> None:
        super().setUp()
        sock, port = bind_unused_port()
        app = tornado.web.Application([(r"/\.well-known/jwks\.json", JwksHandler, {"jwks": self.minted["jwks"]})])
        self.jwks_server = HTTPServer(app)
        self.jwks_server.add_sockets([sock])
        self.api_url = f"http://127.0.0.1:{port}"

    def tearDown(self) -> None:
        self.jwks_server.stop()
        super().tearDown()

    @gen_test(timeout=60)
    async def test_server_accepts_valid_jose_tokens_and_refuses_the_rest(self) -> None:
        tokens = self.minted["tokens"]
        expected = {
            "valid_rs256": (200, "105e0000-0000-4000-8000-000000000001"),
            "valid_es256": (200, "105e0000-0000-4000-8000-000000000002"),
            "expired_rs256": (401, "expired"),
            "expired_es256": (401, "expired"),
            "tampered_rs256": (401, "bad signature"),
            "tampered_es256": (401, "bad signature"),
            "other_key_rs256": (401, "bad signature"),
        }
        self.assertEqual(set(tokens), set(expected))
        async with running_server({"HANKO_API_URL": self.api_url, "HANKO_AUDIENCE": "localhost"}) as server:
            for name, (status, detail) in expected.items():
                for headers in ({"Authorization": f"Bearer {tokens[name]}"}, {"Cookie": f"hanko={tokens[name]}"}):
                    response = await server.fetch("/protected", headers=headers)
                    body = json.loads(response.body)
                    with self.subTest(token=name, sent=next(iter(headers))):
                        self.assertEqual(response.code, status, body)
                        self.assertIn(detail, body.get("user_id") or body.get("message"))
