"""token_shape_problem: the broken part of a token that does not parse, named without repeating the token."""

from __future__ import annotations

import base64
import json
import unittest

from hanko_tornado.testing import FakeHanko
from hanko_tornado.token_shape import token_shape_problem


def part(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


class TokenShapeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.token = FakeHanko(key_size=2048).mint()

    def test_a_minted_token_is_sound(self) -> None:
        self.assertIsNone(token_shape_problem(self.token))

    def test_each_broken_part_is_named(self) -> None:
        header, payload, signature = self.token.split(".")
        cases = {
            "": "no token",
            header: "two dots expected (header.payload.signature), found 0",
            f"{header}.{payload}": "two dots expected (header.payload.signature), found 1",
            f"{header}.{payload[:40]}.{signature}": "the payload is not JSON: was it cut when copied?",
            f"{header}.{payload[:-7]}": "two dots expected",
            f"{header}.{payload}.": "the signature (part 3 of 3) is empty",
            f".{payload}.{signature}": "the header (part 1 of 3) is empty",
            f"{part(['a'])}.{payload}.{signature}": "the header is not JSON",
            f"{header}.{part('text')}.{signature}": "the payload is not JSON",
            f"{header}.{payload}.{signature}==": "the signature has characters base64url does not use",
            f'"{self.token}"': "the header has characters base64url does not use",
            f"{header}.{payload}\n.{signature}": "spaces or line breaks",
            "a.b.c.d.e": "five parts: an encrypted JWT (JWE)",
        }
        for token, says in cases.items():
            with self.subTest(says=says):
                problem = token_shape_problem(token)
                assert problem is not None
                self.assertIn(says, problem)
                for piece in (header, payload, signature):
                    self.assertNotIn(piece[:12], problem, "never a part of the token")

    def test_hostile_input_is_an_answer_not_an_exception(self) -> None:
        deep = part(json.loads("[" * 100 + "]" * 100))
        for token in ("\x00.\x00.\x00", "é.é.é", f"{'[' * 100000}.a.b", f"{deep}.{deep}.x", "a" * 100000):
            self.assertIsInstance(token_shape_problem(token), str)
