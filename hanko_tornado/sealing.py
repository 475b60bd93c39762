"""Sealed entries: text bound by an HMAC to the deployment's secret, the entry's key and its kind.

Whoever can write to a shared store (Redis) but does not know the secret can
neither slip an entry in nor move a sealed entry to another key or kind:
:func:`open_entry` refuses it.  This process's memory needs no seal, so
without a secret both functions hand the text through unchanged.
"""

from __future__ import annotations

import hashlib
import hmac
import json

__all__ = ["ENTRY_FORMAT", "MIN_SECRET_LENGTH", "open_entry", "seal_entry"]

MIN_SECRET_LENGTH = 32
#: The layout of a sealed entry, sealed with it: an entry of another layout never opens.
ENTRY_FORMAT = "hanko2"


def _tag(secret: str, key: str, kind: str, text: str) -> bytes:
    # The layout, kind and key are sealed with the text, so a sealed entry opens only where it was written.
    # JSON escapes newlines, so the first newline ends the header: no two entries seal the same bytes.
    header = json.dumps([ENTRY_FORMAT, kind, key])
    return hmac.new(secret.encode(), f"{header}\n{text}".encode(), hashlib.sha256).hexdigest().encode()


def seal_entry(secret: str | None, key: str, kind: str, text: str) -> str:
    """``text`` sealed for cache ``key`` and entry ``kind`` (``"jwks"``, ``"session"``, ``"lock"``, ``"ended"``).

    Unchanged without a secret: this process's memory needs no seal.
    """
    if not secret:
        return text
    return f"{ENTRY_FORMAT}.{kind}.{_tag(secret, key, kind, text).decode()}.{text}"


def open_entry(secret: str | None, key: str, kind: str, entry: str) -> str:
    """The text of an entry sealed for ``key`` and ``kind``.

    :raises ValueError: the entry is of another layout or kind, or its tag is
        missing or wrong (another secret, or sealed for another key).
    """
    if not secret:
        return entry
    layout, _, rest = entry.partition(".")
    entry_kind, _, rest = rest.partition(".")
    tag, _, text = rest.partition(".")
    if layout != ENTRY_FORMAT or entry_kind != kind:
        raise ValueError(f"not a sealed {kind} entry of this version")
    # Compared as bytes: compare_digest refuses non-ASCII text, and the tag is whatever Redis holds.
    if not hmac.compare_digest(tag.encode("utf-8", "surrogatepass"), _tag(secret, key, kind, text)):
        raise ValueError("not sealed with this deployment's cache secret for this key")
    return text
