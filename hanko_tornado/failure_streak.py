"""A run of failures of one thing: said once when it starts, once when it ends, with a back-off between.

The key endpoint, Hanko's session validation, the shared cache and the
subscription to ended sessions each fail and recover the same way: the
first failure is a warning, later ones are quieter (or silent), each one
backs off, and the first success after them says so once.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

__all__ = ["FailureStreak"]

log = logging.getLogger("hanko_tornado")


class FailureStreak:
    """Whether one thing is failing, since when it may be tried again, and the log lines that say so.

    :param recovered: logged (info) by the first :meth:`succeeded` after a failure.
    :param backoff: seconds after each failure during which :attr:`backing_off` holds.
    :param clock: monotonic seconds (tests pass their own).
    """

    def __init__(self, recovered: str, *, backoff: float = 0.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.recovered = recovered
        self.backoff = backoff
        self._clock = clock
        self._failing = False
        self._retry_at = -math.inf

    @property
    def failing(self) -> bool:
        """Whether the last attempt failed."""
        return self._failing

    @property
    def backing_off(self) -> bool:
        """Whether a failure was less than ``backoff`` seconds ago: leave the thing alone."""
        return self._clock() < self._retry_at

    def failed(self, started: str, again: str | None = None, *, again_level: int = logging.INFO) -> None:
        """Count a failure, and back off from now.

        :param started: logged (warning) when this failure starts a streak.
        :param again: logged at ``again_level`` for a later failure of the streak, unless it came while
            backing off (another attempt in flight failed already and said so); ``None``: nothing.
        """
        backing_off = self.backing_off
        self._retry_at = self._clock() + self.backoff
        if not self._failing:
            self._failing = True
            log.warning("%s", started)
        elif again is not None and not backing_off:
            log.log(again_level, "%s", again)

    def succeeded(self) -> None:
        """The thing answered: a streak, if any, is over (logged once)."""
        if self._failing:
            self._failing = False
            log.info("%s", self.recovered)
