"""Hanko's answers read strictly: JSON that parses, shapes that fit, statuses mapped to one error each."""

from __future__ import annotations

import email.utils
import json
import logging
import math
import time
from collections.abc import Callable
from typing import Any, TypeVar

from tornado.httpclient import HTTPResponse

from hanko_tornado.admin.errors import (
    AdminNotFoundError,
    AdminRateLimitedError,
    AdminRequestError,
    AdminUnauthorizedError,
    AdminUnavailableError,
    HankoAdminError,
)
from hanko_tornado.admin.settings import ADMIN_API_URL_VARIABLE
from hanko_tornado.cache import describe_failure

__all__ = ["error_for", "read", "read_json"]

log = logging.getLogger("hanko_tornado")

_T = TypeVar("_T")
_MAX_RETRY_AFTER = 3600
_MAX_MESSAGE = 200


def read_json(response: HTTPResponse, what: str) -> Any:
    try:
        return json.loads(response.body or b"null")
    except (ValueError, RecursionError, UnicodeDecodeError):
        raise AdminUnavailableError(f"{what}: the answer is not JSON", response.code) from None


def read(read: Callable[[Any], _T], document: Any, what: str) -> _T:
    try:
        return read(document)
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as error:
        log.warning("Hanko's admin API answered %s with an unexpected shape: %s", what, error)
        raise AdminUnavailableError(f"{what}: unexpected answer ({error})") from None


def error_for(response: HTTPResponse, what: str) -> HankoAdminError:
    status = response.code
    if status == 599:
        reason = describe_failure(response.error) if response.error is not None else "no answer"
        return AdminUnavailableError(f"{what}: {reason}", 0)
    if status in (401, 403):
        return AdminUnauthorizedError(f"{what}: HTTP {status} (check {ADMIN_API_URL_VARIABLE} and the API key)", status)
    if status == 404:
        return AdminNotFoundError(f"{what}: HTTP 404", status)
    if status == 429:
        return AdminRateLimitedError(f"{what}: HTTP 429", status, _retry_after(response))
    if 400 <= status < 500:
        return AdminRequestError(what, status, _hanko_message(response))
    return AdminUnavailableError(f"{what}: HTTP {status}", status, _retry_after(response))


def _retry_after(response: HTTPResponse) -> int:
    """``Retry-After`` in whole seconds (a number or an HTTP date), from 1 to an hour; 1 when absent or bad."""
    raw = (response.headers.get("Retry-After") or "").strip()
    seconds: float = 1
    if raw.isascii() and raw.isdigit():
        seconds = int(raw[:6])
    elif raw:
        try:
            seconds = email.utils.parsedate_to_datetime(raw).timestamp() - time.time()
        except (TypeError, ValueError, IndexError, OverflowError):
            seconds = 1
    return int(min(max(1, math.ceil(seconds)), _MAX_RETRY_AFTER))


def _hanko_message(response: HTTPResponse) -> str:
    """Hanko's ``message`` from an error body, printable and short; ``""`` when there is none."""
    try:
        message = json.loads(response.body or b"{}").get("message")
    except (ValueError, AttributeError, RecursionError, UnicodeDecodeError):
        return ""
    if not isinstance(message, str):
        return ""
    return "".join(c if c.isprintable() else "?" for c in message[:_MAX_MESSAGE])
