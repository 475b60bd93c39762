"""One text per token: base64url spelled any way but the canonical one is refused, in every part."""

from __future__ import annotations

import base64
import json

import tornado.web
from tornado.testing import gen_test

from hanko_tornado import HankoAuthMixin, InvalidTokenError, verifier_for
from hanko_tornado.testing import HankoTestCase

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


class UserHandler(HankoAuthMixin, tornado.web.RequestHandler):
    def get(self) -> None:
        self.write({"id": self.hanko_user.id})


def respelled(part: str) -> list[str]:
    """Every other spelling of ``part`` with the same bytes: its last character's unused low bits set."""
    unused = {2: 4, 3: 2}.get(len(part) % 4, 0)
    index = _ALPHABET.index(part[-1])
    return [part[:-1] + _ALPHABET[index | bits] for bits in range(1, 1 << unused)]


def decoded(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


class CanonicalTest(HankoTestCase):
    def get_app(self) -> tornado.web.Application:
        return tornado.web.Application([(r"/user", UserHandler)], hanko=self.hanko.settings())

    def mint_with_every_part_respellable(self) -> str:
        """A token whose header, payload and signature lengths each leave 2 or 3 over a multiple of 4."""
        for header_pad in range(4):
            for payload_pad in range(4):
                token = self.hanko.mint(claims={"pad": "p" * payload_pad}, headers={"x": "h" * header_pad})
                if all(len(part) % 4 in (2, 3) for part in token.split(".")):
                    return token
        raise AssertionError("no lengths found")  # pragma: no cover - 16 tries cover every remainder

    def status(self, token: str) -> tuple[int, str]:
        response = self.fetch_with_token("/user", token, raise_error=False)
        return response.code, json.loads(response.body)["message" if response.code != 200 else "id"]

    def test_a_respelled_part_is_refused_though_it_decodes_to_the_same_bytes(self) -> None:
        token = self.mint_with_every_part_respellable()
        self.assertEqual(self.status(token)[0], 200)
        parts = token.split(".")
        # The signature covers the payload's very text: a re-spelled payload fails it before it is decoded.
        reasons = ["malformed header", "bad signature", "malformed signature"]
        for index, (what, reason) in enumerate(zip(["header", "payload", "signature"], reasons)):
            spellings = respelled(parts[index])
            self.assertIn(len(spellings), (3, 15))
            for spelling in spellings:
                self.assertEqual(decoded(spelling), decoded(parts[index]))
                other = ".".join([*parts[:index], spelling, *parts[index + 1 :]])
                with self.subTest(part=what, spelling=spelling[-1]):
                    self.assertEqual(self.status(other), (401, f"The session token was refused: {reason}."))
        self.assertEqual(self.status(token)[0], 200, "the canonical token is still remembered and accepted")

    def test_padding_and_foreign_characters_are_refused(self) -> None:
        token = self.mint_with_every_part_respellable()
        header, payload, signature = token.split(".")
        padded = "=" * (-len(signature) % 4)
        for forged in [
            f"{header}.{payload}.{signature}{padded}",
            f"{header}=.{payload}.{signature}",
            f"{header}.{payload}.{signature[:10]}+{signature[11:]}",
            f"{header}.{payload}.{signature[:10]}/{signature[11:]}",
            f"{header}.{payload}.{signature[:10]} {signature[11:]}",
            f"{header}.{payload}.{signature[:-1]}\u00e9",
        ]:
            with self.subTest(forged=forged[-4:]):
                self.assertEqual(self.status(forged)[0], 401)

    @gen_test
    async def test_signature_only_verification_is_canonical_too(self) -> None:
        """What the webhook handler uses: a re-spelled webhook token is no second token."""
        verifier = verifier_for(self._app)
        for pad in range(4):
            token = self.hanko.mint_webhook("user.create", {"id": "x" * pad})
            signature = token.rsplit(".", 1)[1]
            if respelled(signature):
                break
        claims, _ = await verifier.verify_signature(token)
        self.assertEqual(claims["evt"], "user.create")
        for spelling in respelled(signature):
            with self.assertRaises(InvalidTokenError) as raised:
                await verifier.verify_signature(f"{token.rsplit('.', 1)[0]}.{spelling}")
            self.assertEqual(raised.exception.reason, "malformed signature")
