"""Reading a compact JWS (RFC 7515) as Hanko signs them: three base64url parts, a strict header, no extension.

:class:`CompactParser` splits a token into what its signature check needs and
refuses, before any key is looked up, what no Hanko token carries: ``alg:
none`` and HMAC (an algorithm swap), critical headers, an unencoded payload,
duplicate members.  The claims are read by :func:`decode_json`, once the
signature holds.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import Any

from hanko_tornado.base64url import decode_part, to_standard_base64
from hanko_tornado.errors import InvalidTokenError

__all__ = ["CompactParser", "ParsedToken", "decode_json"]

_REFUSED_ALGORITHMS = frozenset({"none", "HS256", "HS384", "HS512"})
_HEADERS_REMEMBERED = 64


#: A compact JWS taken apart: its algorithm, key id, signing input, payload (standard base64, for
#: :func:`decode_json` once the signature holds) and signature (a plain tuple: made for every new token).
ParsedToken = tuple[str, "str | None", bytes, bytes, bytes]


class CompactParser:
    """Takes compact JWS tokens apart, remembering the few headers it checked (every token a key signs shares one)."""

    def __init__(self) -> None:
        # Headers seen before, already checked (bounded, cleared when full).
        self._headers: dict[bytes, tuple[str, str | None]] = {}

    def parse(self, token: str) -> ParsedToken:
        """The algorithm, key id, signing input, payload (standard base64) and signature of ``token``.

        :raises InvalidTokenError: not three base64url parts, or a header no Hanko token has.
        """
        raw = token.encode("ascii", errors="replace")  # a non-ASCII character becomes "?", which is refused below
        standard = to_standard_base64(raw)
        header, _, rest = standard.partition(b".")
        payload, _, signature = rest.partition(b".")
        if not (header and payload and signature) or b"!" in standard or b"." in signature:
            raise InvalidTokenError("malformed")
        checked = self._headers.get(header)
        if checked is None:
            checked = _check_header(decode_json(header, "header", header=True))
            if len(self._headers) >= _HEADERS_REMEMBERED:
                self._headers.clear()
            self._headers[header] = checked
        alg, kid = checked
        signing_input = raw[: len(header) + 1 + len(payload)]
        return alg, kid, signing_input, payload, decode_part(signature, "signature")


def _check_header(header: Mapping[str, Any]) -> tuple[str, str | None]:
    alg, kid = header.get("alg"), header.get("kid")
    if not isinstance(alg, str) or alg in _REFUSED_ALGORITHMS:
        raise InvalidTokenError("algorithm")
    if kid is not None and not isinstance(kid, str):
        raise InvalidTokenError("malformed", "malformed key id")
    if "crit" in header:
        # No JWS extension is understood here, so every critical one is refused (RFC 7515 4.1.11).
        raise InvalidTokenError("malformed", "unsupported critical header")
    if header.get("b64", True) is not True:
        raise InvalidTokenError("malformed", "unsupported payload encoding")
    return alg, kid


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate member")
    return result


# The header is read before the signature is checked: its names are not interned, only signed ones are (below).
_HEADER_DECODER = json.JSONDecoder(object_pairs_hook=_reject_duplicates)


def _interned_names(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Verified claims stay in the token cache: sharing their few (signed) names saves a third of its memory.
    result = {sys.intern(name): value for name, value in pairs}
    if len(result) != len(pairs):
        raise ValueError("duplicate member")
    return result


_PAYLOAD_DECODER = json.JSONDecoder(object_pairs_hook=_interned_names)


def decode_json(part: bytes, what: str, *, header: bool = False) -> dict[str, Any]:
    """The JSON object in one part of a token (standard base64); a header's names are not interned.

    :raises InvalidTokenError: not base64, not UTF-8, not JSON, not an object, or a member twice.
    """
    decoder = _HEADER_DECODER if header else _PAYLOAD_DECODER
    try:
        value = decoder.decode(decode_part(part, what).decode("utf-8"))
    except (ValueError, RecursionError):
        raise InvalidTokenError("malformed", f"malformed {what}") from None
    if not isinstance(value, dict):
        raise InvalidTokenError("malformed", f"malformed {what}")
    return value
