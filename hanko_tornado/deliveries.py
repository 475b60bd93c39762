"""The record of Hanko webhooks handed on already: per endpoint, by what Hanko signed, until their ``exp``.

Hanko makes one token per event and posts it to every hook subscribed to it, so
each endpoint hands an event on once, and the same token at two endpoints is
news to both.  A token is known by its signing input and its signature's bytes,
never by its text: a signature's last base64url character has unused low bits
that decoders ignore, so one token can be spelled several ways.
"""

from __future__ import annotations

import base64
import binascii
import collections
import hashlib
import time

import tornado.web

from hanko_tornado.lifecycle import state_of

__all__ = ["Deliveries", "deliveries_of"]

_REMEMBERED_DELIVERIES = 100_000


class Deliveries:
    """Webhooks handed on already, by endpoint and what Hanko signed (SHA-256), until their ``exp`` (bounded).

    Keyed by the signed content, not the token's text: a signature's last base64url character has unused bits
    that decoders ignore, so one token has several spellings, and a replay must not pass as news in another.
    """

    def __init__(self) -> None:
        self._seen: collections.OrderedDict[bytes, float] = collections.OrderedDict()

    def first_time(self, endpoint: str, token: str, until: float) -> bool:
        """Whether ``endpoint`` sees this (verified) token for the first time; it is remembered until ``until``."""
        now = time.time()
        while self._seen and next(iter(self._seen.values())) <= now:
            self._seen.popitem(last=False)
        digest = hashlib.sha256(endpoint.encode("utf-8", "surrogatepass") + b"\n" + _signed_content(token)).digest()
        if digest in self._seen:
            return False
        self._seen[digest] = until
        if len(self._seen) > _REMEMBERED_DELIVERIES:
            self._seen.popitem(last=False)
        return True


def _signed_content(token: str) -> bytes:
    """A verified token's signing input and its signature's bytes: the same for every spelling of the token."""
    signing_input, _, signature = token.rpartition(".")
    try:
        decoded = base64.b64decode(signature + "=" * (-len(signature) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        decoded = signature.encode()  # not reached for a verified token: the verifier refuses such signatures
    return signing_input.encode() + b"." + decoded


def deliveries_of(application: tornado.web.Application) -> Deliveries:
    """The application's record of delivered webhooks, made on first use (kept with its other Hanko objects)."""
    return state_of(application).part(Deliveries, Deliveries)
