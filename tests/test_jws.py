"""The compact JWS reader: what no Hanko token carries is refused before any key is looked up."""

from __future__ import annotations

import base64
import json
import unittest
from typing import Any

from hanko_tornado.errors import InvalidTokenError
from hanko_tornado.jws import CompactParser, decode_json


def part(value: Any) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def token(header: Any, payload: Any = None, signature: bytes = b"signature") -> str:
    return ".".join((part(header), part(payload or {"sub": "x"}), part(signature)))


class CompactParserTest(unittest.TestCase):
    def refusal(self, text: str) -> tuple[str, str]:
        with self.assertRaises(InvalidTokenError) as refused:
            CompactParser().parse(text)
        return refused.exception.code, refused.exception.reason

    def test_a_token_is_taken_apart(self) -> None:
        text = token({"alg": "RS256", "kid": "k1"})
        alg, kid, signing_input, payload, signature = CompactParser().parse(text)
        self.assertEqual((alg, kid, signature), ("RS256", "k1", b"signature"))
        self.assertEqual(signing_input, text.rsplit(".", 1)[0].encode())
        self.assertEqual(decode_json(payload, "payload"), {"sub": "x"})

    def test_what_no_hanko_token_carries_is_refused(self) -> None:
        for header in ({"alg": "none"}, {"alg": "HS256", "kid": "k"}, {"kid": "k"}, {"alg": 256}):
            with self.subTest(header=header):
                self.assertEqual(self.refusal(token(header))[0], "algorithm")
        cases = {
            "malformed key id": {"alg": "RS256", "kid": 7},
            "unsupported critical header": {"alg": "RS256", "crit": ["exp"]},
            "unsupported payload encoding": {"alg": "RS256", "b64": False},
        }
        for reason, header in cases.items():
            with self.subTest(header=header):
                self.assertEqual(self.refusal(token(header)), ("malformed", reason))

    def test_broken_shapes_are_malformed(self) -> None:
        good = token({"alg": "RS256"})
        header, payload, signature = good.split(".")
        duplicate = part(b'{"alg": "RS256", "alg": "none"}')
        for text in ("", "a.b", f"{header}..{signature}", f"{good}.extra", f"{header}.{payload}.s!g", "é" + good):
            with self.subTest(text=text[:12]):
                self.assertEqual(self.refusal(text)[0], "malformed")
        self.assertEqual(self.refusal(f"{duplicate}.{payload}.{signature}"), ("malformed", "malformed header"))
        self.assertEqual(self.refusal(f"{part([1])}.{payload}.{signature}"), ("malformed", "malformed header"))

    def test_a_checked_header_is_remembered_and_the_memory_is_bounded(self) -> None:
        parser = CompactParser()
        for kid in range(200):
            parser.parse(token({"alg": "RS256", "kid": str(kid)}))
        self.assertLessEqual(len(parser._headers), 64)
        self.assertEqual(parser.parse(token({"alg": "RS256", "kid": "199"}))[1], "199")

    def test_a_payload_that_is_not_an_object_is_malformed(self) -> None:
        with self.assertRaises(InvalidTokenError):
            decode_json(part([1, 2]).encode(), "payload")
        with self.assertRaises(InvalidTokenError):
            decode_json(part(b'{"a": 1, "a": 2}').encode(), "payload")
