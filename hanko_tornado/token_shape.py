"""What is wrong with the shape of a string offered as a JWT, said without repeating any of it.

For ``python -m hanko_tornado check``: a token refused as malformed gets the
part that is broken (``two dots expected``, ``the payload is not JSON: was it
cut when copied?``).  Only for telling a person: the verifier decides on its
own, and nothing here is used to accept a token.
"""

from __future__ import annotations

import base64
import binascii
import json
import re

__all__ = ["token_shape_problem"]

_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")
_PARTS = ("header", "payload", "signature")


def token_shape_problem(token: str) -> str | None:
    """Which part of ``token`` does not parse as a signed JWT, in words; ``None`` if its shape is sound.

    The answer names parts, counts and positions, never the token's characters.
    """
    if not token:
        return "no token: pass it as the argument, or on standard input"
    if any(character.isspace() for character in token):
        return "it contains spaces or line breaks: was it wrapped or joined when copied?"
    dots = token.count(".")
    if dots == 4:
        return "five parts: an encrypted JWT (JWE); Hanko's session tokens are signed JWTs with three parts"
    if dots != 2:
        return f"two dots expected (header.payload.signature), found {dots}: was it cut when copied?"
    for position, (name, part) in enumerate(zip(_PARTS, token.split("."), strict=True), start=1):
        if not part:
            return f"the {name} (part {position} of 3) is empty"
        if not _BASE64URL.fullmatch(part):
            return f"the {name} has characters base64url does not use (quotes or '=' from copying?)"
    header, payload, _ = token.split(".")
    if not isinstance(_json_part(header), dict):
        return "the header is not JSON: is this a JWT at all?"
    if not isinstance(_json_part(payload), dict):
        return "the payload is not JSON: was it cut when copied?"
    return None


def _json_part(part: str) -> object:
    try:
        return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (ValueError, binascii.Error, RecursionError):
        return None
