"""Strict, typed reads of the JSON objects Hanko's admin API answers with."""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from typing import Any, TypeVar

from hanko_tornado.session_protocol import parse_rfc3339
from hanko_tornado.user import FrozenDict, freeze

__all__ = ["Fields", "is_uuid", "texts"]

_T = TypeVar("_T")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
_EMPTY = FrozenDict()


def is_uuid(value: object) -> bool:
    """Whether ``value`` is a UUID in its usual text form (what Hanko's ids are)."""
    return isinstance(value, str) and _UUID.fullmatch(value) is not None


class Fields:
    """Typed reads of one JSON object; each raises ``ValueError`` naming the field."""

    def __init__(self, document: Any, what: str) -> None:
        if not isinstance(document, dict):
            raise ValueError(f"{what} is not a JSON object")
        self.document = document
        self.what = what

    def _get(self, name: str, kinds: tuple[type, ...], optional: bool) -> Any:
        value = self.document.get(name)
        if value is None and optional:
            return None
        if type(value) not in kinds:
            raise ValueError(f"{self.what}.{name} is missing or not a {kinds[0].__name__}")
        return value

    def text(self, name: str) -> str:
        return str(self._get(name, (str,), False))

    def optional_text(self, name: str) -> str | None:
        value = self._get(name, (str,), True)
        return None if value is None else str(value)

    def flag(self, name: str) -> bool:
        return bool(self._get(name, (bool,), False))

    def number(self, name: str) -> int:
        return int(self._get(name, (int,), False))

    def uuid(self, name: str, optional: bool = False) -> str:
        value = self._get(name, (str,), optional)
        if value is None:
            return ""
        if not is_uuid(value):
            raise ValueError(f"{self.what}.{name} is not a UUID")
        return str(value).lower()

    def time(self, name: str, optional: bool = False) -> datetime.datetime | None:
        value = self._get(name, (str,), optional)
        if value is None:
            return None
        try:
            return parse_rfc3339(value)
        except ValueError:
            raise ValueError(f"{self.what}.{name} is not an RFC 3339 time") from None

    def required_time(self, name: str) -> datetime.datetime:
        moment = self.time(name)
        assert moment is not None
        return moment

    def obj(self, name: str) -> FrozenDict:
        value = self._get(name, (dict,), True)
        return _EMPTY if value is None else freeze(value)

    def array(self, name: str, read: Callable[[Any], _T]) -> tuple[_T, ...]:
        value = self._get(name, (list,), True)  # Go writes a nil slice as null, and omitempty drops it
        return () if value is None else tuple(read(item) for item in value)


def texts(value: Any) -> str:
    if type(value) is not str:
        raise ValueError("an event is not a string")
    return value
