"""``python -m hanko_tornado check``: a real process against a FakeHanko says why a token is refused."""

from __future__ import annotations

import asyncio
import sys

from tornado.testing import AsyncTestCase, gen_test

from hanko_tornado.testing import FakeHanko, SigningKey


class CheckCommandTest(AsyncTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.hanko = FakeHanko(key_size=2048, audience=("https://app.example.com",))
        self.hanko.start()

    def tearDown(self) -> None:
        self.io_loop.run_sync(self.hanko.stop)
        super().tearDown()

    async def check(self, *args: str, stdin: str = "") -> tuple[int, str]:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "hanko_tornado",
            "check",
            "--api-url",
            self.hanko.api_url,
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await process.communicate(stdin.encode())
        assert process.returncode is not None
        return process.returncode, output.decode()

    def assert_no_token(self, token: str, output: str) -> None:
        self.assertNotIn(token, output)
        self.assertNotIn(token.split(".")[-1][-40:], output, "no part of the signature")

    @gen_test(timeout=60)
    async def test_valid_token(self) -> None:
        token = self.hanko.mint(email="ada@example.com")
        code, output = await self.check("--audience", "https://app.example.com", token)
        self.assertEqual(code, 0, output)
        self.assertIn("verdict: valid", output)
        self.assertIn('"address": "ada@example.com"', output)
        self.assertIn('"kid": ', output)
        self.assertNotIn("hint", output)
        self.assert_no_token(token, output)

    @gen_test(timeout=60)
    async def test_an_unquoted_bearer_header_is_read_not_echoed(self) -> None:
        token = self.hanko.mint()
        code, output = await self.check("--audience", "https://app.example.com", "Bearer", token)
        self.assertEqual(code, 0, output)
        self.assert_no_token(token, output)
        code, output = await self.check("--bogus", token)
        self.assertEqual(code, 2, output)
        self.assert_no_token(token, output)

    @gen_test(timeout=60)
    async def test_wrong_audience_names_the_one_in_the_token(self) -> None:
        token = self.hanko.mint()
        code, output = await self.check("--audience", "localhost", stdin=f"Bearer {token}\n")
        self.assertEqual(code, 1, output)
        self.assertIn("verdict: refused (wrong audience)", output)
        self.assertIn("the token's aud is https://app.example.com", output)
        self.assert_no_token(token, output)

    @gen_test(timeout=60)
    async def test_reasons_and_hints(self) -> None:
        cases = [
            (self.hanko.mint_webhook("user.create", {"id": "x"}), "not a session token", "webhook token"),
            (self.hanko.mint(lifetime=-3600), "token expired", "s ago"),
            (self.hanko.mint(key=SigningKey.generate(key_size=2048)), "unknown signing key", "issued it"),
            ("eyJhbGciOiJub25lIn0.e30.c2lnbmF0dXJlLXRoYXQtaXMtbm90LWEtcmVhbC1zaWduYXR1cmU", "algorithm", None),
        ]
        for token, reason, hint in cases:
            code, output = await self.check(token)
            self.assertEqual(code, 1, output)
            self.assertIn(f"verdict: refused ({reason}", output)
            if hint:
                self.assertIn(hint, output)
            self.assert_no_token(token, output)

    @gen_test(timeout=60)
    async def test_unreachable_keys_and_bad_options(self) -> None:
        self.hanko.fault = "error"
        code, output = await self.check(self.hanko.mint())
        self.assertEqual(code, 3, output)
        self.assertIn("could not be had", output)
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "hanko_tornado",
            "check",
            "--api-url",
            "http://hanko:8000",
            "x",
            stdout=asyncio.subprocess.PIPE,
        )
        output_bytes, _ = await process.communicate()
        self.assertEqual(process.returncode, 2)
        self.assertIn("HANKO_ALLOW_HTTP=true", output_bytes.decode())


class MaskTest(AsyncTestCase):
    """A token given in the wrong place (an unset variable, swapped arguments) is never printed back."""

    def setUp(self) -> None:
        super().setUp()
        self.hanko = FakeHanko(key_size=2048)
        self.token = self.hanko.mint()

    async def run_check(self, *args: str) -> tuple[int, str]:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "hanko_tornado",
            "check",
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await process.communicate()
        assert process.returncode is not None
        return process.returncode, output.decode()

    def assert_masked(self, output: str) -> None:
        for part in [self.token, *self.token.split(".")]:
            self.assertNotIn(part, output)
        self.assertNotIn(self.token.split(".")[2][-20:], output)

    @gen_test(timeout=60)
    async def test_a_token_given_as_the_api_url_is_not_echoed(self) -> None:
        cases = {
            "unset $HANKO_API_URL before the token": ("--api-url", self.token),
            "swapped arguments": ("--api-url", self.token, "https://example.hanko.io"),
            "as an issuer": ("--api-url", "not a url", "--issuer", self.token),
        }
        for name, args in cases.items():
            with self.subTest(name):
                code, output = await self.run_check(*args)
                self.assertEqual(code, 2, output)
                self.assertIn("api_url: must be an http(s) URL with a host, got <the value given>", output)
                self.assert_masked(output)

    @gen_test(timeout=60)
    async def test_a_token_inside_an_accepted_url_or_an_option_is_masked_everywhere(self) -> None:
        # Resolving the name fails at once (.invalid never resolves): the log line and the verdict name the URL.
        code, output = await self.run_check("--api-url", f"https://{self.token}.invalid", self.token)
        self.assertEqual(code, 3, output)
        self.assertIn("keys:    https://<token>", output)
        self.assertIn("log:     Hanko key endpoint https://<token>", output)
        self.assert_masked(output)
        code, output = await self.run_check("--api-url", "https://example.hanko.io", "--leeway", self.token)
        self.assertEqual(code, 2, output)
        self.assert_masked(output)
