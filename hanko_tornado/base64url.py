"""The base64url of compact JWS parts, read strictly: one spelling per token, no character skipped.

``to_standard_base64`` turns a whole token into standard base64 in one pass
(dots kept, any other byte made ``"!"``, which no part may hold), and
``decode_part`` decodes one part, accepting only its canonical spelling: no
padding, and the unused low bits of the last character zero.  Otherwise one
token could be written several ways (16 for an RS256 signature) and pass for as
many tokens, in the verified-token cache and in webhook replay records alike.
"""

from __future__ import annotations

import binascii

from hanko_tornado.errors import InvalidTokenError

__all__ = ["decode_part", "to_standard_base64"]

_URL_SAFE = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."
_STANDARD = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/."
_TO_STANDARD = bytes(_STANDARD[_URL_SAFE.index(byte)] if byte in _URL_SAFE else ord("!") for byte in range(256))
# The characters a part of n characters may end with, by n % 4: with 2 (or 3) over, the last character
# carries 4 (or 2) unused low bits, which must be zero; with 1 over it is no base64 (a2b_base64 refuses it).
_CANONICAL_LAST: tuple[frozenset[int], ...] = (
    frozenset(_STANDARD),
    frozenset(_STANDARD),
    frozenset(_STANDARD[0:64:16]),
    frozenset(_STANDARD[0:64:4]),
)


def to_standard_base64(token: bytes) -> bytes:
    """``token`` in standard base64, dots kept; every byte outside base64url (``"="`` too) becomes ``"!"``."""
    return token.translate(_TO_STANDARD)


def decode_part(part: bytes, what: str) -> bytes:
    """The bytes of one non-empty part that :func:`to_standard_base64` gave, if spelled canonically.

    :raises InvalidTokenError: ``malformed <what>``.
    """
    if part[-1] not in _CANONICAL_LAST[len(part) % 4]:
        raise InvalidTokenError("malformed", f"malformed {what}")
    try:
        return binascii.a2b_base64(part + b"=" * (-len(part) % 4))
    except binascii.Error:
        raise InvalidTokenError("malformed", f"malformed {what}") from None
