"""Property-based tests: whatever a client sends, the answer is 200 for a valid token and 401 otherwise."""

from __future__ import annotations

import base64
import json
import math
import time
import uuid
from typing import Any

import jwt
import tornado.web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import captured_logs

from hanko_tornado import HankoAuthMixin
from hanko_tornado.testing import HankoTestCase

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
LEEWAY = 30
STANDARD = {"sub", "exp", "nbf", "iat", "aud", "iss", "session_id", "email", "username", "amr"}

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=200)


class UserHandler(HankoAuthMixin, tornado.web.RequestHandler):
    def get(self) -> None:
        self.write({"id": self.hanko_user.id})


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def date_ok(value: Any, *, now: float, future_ok: bool) -> bool:
    """The oracle's own reading of a NumericDate claim."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 253402300799:
        return False
    return future_ok or value <= now + LEEWAY


def is_uuid(value: Any) -> bool:
    """The oracle's own reading of a Hanko id: a UUID in its canonical form."""
    if not isinstance(value, str) or len(value) != 36:
        return False
    try:
        return str(uuid.UUID(value)) == value.lower()
    except ValueError:
        return False


def expected_status(header: dict[str, Any], payload: dict[str, Any], kid: str) -> int:
    """What a careful verifier answers, written independently of hanko_tornado."""
    now = time.time()
    header_ok = header.get("alg") == "RS256" and header.get("kid", kid) == kid and "crit" not in header
    header_ok = header_ok and header.get("b64", True) is True
    exp, aud = payload.get("exp"), payload.get("aud")
    audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    claims_ok = (
        date_ok(exp, now=now, future_ok=True)
        and now < exp + LEEWAY
        and all(date_ok(payload[name], now=now, future_ok=False) for name in ("nbf", "iat") if name in payload)
        and all(is_uuid(payload.get(name)) for name in ("sub", "session_id"))
        and "localhost" in [a for a in audiences if isinstance(a, str)]
    )
    return 200 if header_ok and claims_ok else 401


class FuzzTest(HankoTestCase):
    def get_app(self) -> tornado.web.Application:
        return tornado.web.Application([(r"/user", UserHandler)], hanko=self.hanko.settings(leeway=LEEWAY))

    def sign(self, header: Any, payload: bytes) -> str:
        key = self.hanko.keys[0]
        signing_input = f"{b64(json.dumps(header).encode())}.{b64(payload)}"
        return (
            f"{signing_input}.{b64(jwt.get_algorithm_by_name('RS256').sign(signing_input.encode(), key.private_key))}"
        )

    def status(self, headers: dict[str, str]) -> int:
        with captured_logs() as lines:
            code = self.fetch("/user", headers=headers, raise_error=False).code
        self.assertFalse([line for line in lines if "ERROR" in line], "nothing raised out of the mixin")
        return code

    @FUZZ
    @given(value=header_text)
    def test_any_authorization_header(self, value: str) -> None:
        self.assertEqual(self.status({"Authorization": value}), 401)
        self.assertEqual(self.status({"Authorization": f"Bearer {value}"}), 401)

    @FUZZ
    @given(
        value=st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters=';,"\\'), max_size=300)
    )
    def test_any_cookie(self, value: str) -> None:
        self.assertEqual(self.status({"Cookie": f"hanko={value}"}), 401)

    @FUZZ
    @given(parts=st.lists(st.binary(max_size=300), min_size=1, max_size=5))
    def test_any_bytes_in_the_segments(self, parts: list[bytes]) -> None:
        token = ".".join(b64(part) for part in parts)
        self.assertEqual(self.status({"Authorization": f"Bearer {token}"}), 401)

    @FUZZ
    @given(header=json_values, payload=json_values)
    def test_signed_arbitrary_json(self, header: Any, payload: Any) -> None:
        token = self.sign(header, json.dumps(payload).encode())
        expected = 200 if isinstance(header, dict) and isinstance(payload, dict) else 401
        if expected == 200:
            expected = expected_status(header, payload, self.hanko.keys[0].kid)
        self.assertEqual(self.status({"Authorization": f"Bearer {token}"}), expected)

    @FUZZ
    @given(
        extra_header=st.dictionaries(
            st.text(max_size=10).filter(lambda n: n not in {"alg", "kid", "crit", "b64"}), json_values, max_size=4
        ),
        extra_claims=st.dictionaries(st.text(max_size=10).filter(lambda n: n not in STANDARD), json_values, max_size=4),
        overrides=st.dictionaries(
            st.sampled_from(["exp", "nbf", "iat", "sub", "session_id", "aud"]), json_values, max_size=2
        ),
    )
    def test_valid_tokens_with_extras_and_overrides(
        self, extra_header: dict[str, Any], extra_claims: dict[str, Any], overrides: dict[str, Any]
    ) -> None:
        kid = self.hanko.keys[0].kid
        header = {**extra_header, "alg": "RS256", "kid": kid, "typ": "JWT"}
        payload = {
            "sub": "aaaaaaaa-0000-4000-8000-000000000012",
            "session_id": "5e551011-0000-4000-8000-000000000012",
            "exp": math.floor(time.time()) + 600,
            "aud": ["localhost"],
            **extra_claims,
            **overrides,
        }
        token = self.sign(header, json.dumps(payload).encode())
        self.assertEqual(self.status({"Authorization": f"Bearer {token}"}), expected_status(header, payload, kid))

    @FUZZ
    @given(depth=st.integers(min_value=1, max_value=5000), digits=st.integers(min_value=1, max_value=6000))
    def test_deep_nesting_and_huge_numbers(self, depth: int, digits: int) -> None:
        nested = b'{"sub": "u", "exp": 9999999999, "aud": "localhost", "deep": ' + b"[" * depth + b"]" * depth + b"}"
        huge = b'{"sub": "u", "aud": "localhost", "exp": 1' + b"0" * digits + b"}"
        header = {"alg": "RS256", "kid": self.hanko.keys[0].kid}
        for payload in (nested, huge):
            try:
                expected = expected_status(header, json.loads(payload), header["kid"])
            except (ValueError, RecursionError):
                expected = 401  # not JSON that a parser can hold
            token = self.sign(header, payload)
            self.assertEqual(self.status({"Authorization": f"Bearer {token}"}), expected)
