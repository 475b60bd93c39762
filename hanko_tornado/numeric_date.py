"""What counts as a time here: a JSON number of seconds since 1970 that a datetime can hold."""

from __future__ import annotations

from typing import Any, TypeGuard

__all__ = ["LAST_NUMERIC_DATE", "is_numeric_date"]

#: 9999-12-31T23:59:59Z: the last second ``datetime`` can show, so every conversion of a checked time is safe.
LAST_NUMERIC_DATE = 253402300799


def is_numeric_date(value: Any) -> TypeGuard[float]:
    """Whether ``value`` is an int or float from 0 to :data:`LAST_NUMERIC_DATE` (never a bool, never NaN)."""
    # Chained comparison: also false for NaN.
    return not isinstance(value, bool) and isinstance(value, (int, float)) and 0 <= value <= LAST_NUMERIC_DATE
