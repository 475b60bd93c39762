"""``check`` reads HANKO_API_URL, HANKO_AUDIENCE, HANKO_ISSUER from the environment and ./.env; names broken parts."""

from __future__ import annotations

import asyncio
import os
import pathlib
import sys
import tempfile

from tornado.testing import AsyncTestCase, gen_test

from hanko_tornado.testing import FakeHanko

AUDIENCE = "https://app.example.com"
SETTINGS = ("HANKO_API_URL", "HANKO_AUDIENCE", "HANKO_ISSUER")


class CheckFromEnvironmentTest(AsyncTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.hanko = FakeHanko(key_size=2048, audience=(AUDIENCE,))
        self.hanko.start()
        self.folder = tempfile.TemporaryDirectory()
        self.addCleanup(self.folder.cleanup)

    def tearDown(self) -> None:
        self.io_loop.run_sync(self.hanko.stop)
        super().tearDown()

    def write_env(self, text: str) -> None:
        pathlib.Path(self.folder.name, ".env").write_text(text)

    async def check(self, *args: str, **environment: str) -> tuple[int, str]:
        clean = {name: value for name, value in os.environ.items() if name not in SETTINGS}
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "hanko_tornado",
            "check",
            *args,
            cwd=self.folder.name,
            env={**clean, **environment},
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await process.communicate()
        assert process.returncode is not None
        return process.returncode, output.decode()

    @gen_test(timeout=120)
    async def test_the_settings_from_dot_env(self) -> None:
        self.write_env(f"HANKO_API_URL={self.hanko.api_url}\nHANKO_AUDIENCE='{AUDIENCE}'\n")
        code, output = await self.check(self.hanko.mint())
        self.assertEqual(code, 0, output)
        self.assertIn("from:    HANKO_API_URL from .env, HANKO_AUDIENCE from .env", output)
        self.assertNotIn("pin the audience", output, "the audience from .env was used")

    @gen_test(timeout=120)
    async def test_the_environment_wins_over_dot_env_and_a_flag_over_both(self) -> None:
        self.write_env("HANKO_API_URL=http://127.0.0.1:9\nHANKO_AUDIENCE=https://wrong.example\n")
        environment = {"HANKO_API_URL": self.hanko.api_url, "HANKO_AUDIENCE": AUDIENCE}
        code, output = await self.check(self.hanko.mint(), **environment)
        self.assertEqual(code, 0, output)
        self.assertIn("HANKO_API_URL from the environment, HANKO_AUDIENCE from the environment", output)
        code, output = await self.check("--audience", "https://other.example", self.hanko.mint(), **environment)
        self.assertEqual(code, 1, output)
        self.assertIn("verdict: refused (wrong audience)", output)
        self.assertIn("from:    HANKO_API_URL from the environment\n", output)

    @gen_test(timeout=120)
    async def test_the_issuer_from_the_environment(self) -> None:
        code, output = await self.check(
            self.hanko.mint(), HANKO_API_URL=self.hanko.api_url, HANKO_ISSUER="https://issuer.example"
        )
        self.assertEqual(code, 1, output)
        self.assertIn("verdict: refused (wrong issuer)", output)

    @gen_test(timeout=120)
    async def test_no_api_url_anywhere_is_one_line_and_exit_2(self) -> None:
        token = self.hanko.mint()
        code, output = await self.check(token)
        self.assertEqual(code, 2, output)
        self.assertEqual(
            output.strip().splitlines(),
            ["hanko_tornado check: no API URL: pass --api-url, or set HANKO_API_URL (environment or ./.env)"],
        )

    @gen_test(timeout=120)
    async def test_a_token_in_dot_env_as_the_url_is_not_echoed(self) -> None:
        token = self.hanko.mint()
        self.write_env(f"HANKO_API_URL={token}\n")
        code, output = await self.check("x")
        self.assertEqual(code, 2, output)
        for part in token.split("."):
            self.assertNotIn(part[:20], output)

    @gen_test(timeout=120)
    async def test_a_broken_token_says_which_part(self) -> None:
        token = self.hanko.mint()
        header, payload, signature = token.split(".")
        for broken, says in (
            (f"{header}.{payload}", "two dots expected (header.payload.signature), found 1"),
            (
                f"{header}.{payload[: len(payload) // 2]}.{signature}",
                "the payload is not JSON: was it cut when copied?",
            ),
            (f"{header}.{payload}.", "the signature (part 3 of 3) is empty"),
        ):
            code, output = await self.check("--api-url", self.hanko.api_url, broken)
            self.assertEqual(code, 1, output)
            self.assertIn("verdict: refused (", output)
            self.assertIn(f"hint:    {says}", output)
            for part in (header, payload, signature):
                self.assertNotIn(part[-20:], output, "no part of the token")
