"""FailureStreak: the first failure warns, later ones are quieter, each backs off, the recovery is said once."""

from __future__ import annotations

import unittest

from support import captured_logs

from hanko_tornado.failure_streak import FailureStreak


class Clock:
    """Monotonic seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FailureStreakTest(unittest.TestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.streak = FailureStreak("it answers again", backoff=5.0, clock=self.clock)

    def test_a_streak_is_logged_when_it_starts_and_when_it_ends(self) -> None:
        with captured_logs() as lines:
            self.streak.succeeded()  # nothing failed yet: nothing to say
            self.streak.failed("it failed", "it still fails")
            self.clock.now += 6
            self.streak.failed("it failed", "it still fails")
            self.streak.succeeded()
            self.streak.succeeded()
        self.assertEqual(
            lines,
            [
                "hanko_tornado WARNING it failed",
                "hanko_tornado INFO it still fails",
                "hanko_tornado INFO it answers again",
            ],
        )

    def test_each_failure_backs_off_from_its_own_time(self) -> None:
        self.assertFalse(self.streak.backing_off)
        self.streak.failed("it failed")
        self.assertTrue(self.streak.backing_off)
        self.clock.now += 4.9
        self.assertTrue(self.streak.backing_off)
        self.streak.failed("it failed")  # a failure in the back-off starts it again
        self.clock.now += 4.9
        self.assertTrue(self.streak.backing_off)
        self.clock.now += 0.1
        self.assertFalse(self.streak.backing_off)

    def test_a_success_ends_the_streak_but_not_the_back_off(self) -> None:
        self.streak.failed("it failed")
        self.streak.succeeded()
        self.assertFalse(self.streak.failing)
        self.assertTrue(self.streak.backing_off, "another attempt may have answered while the back-off runs")

    def test_failures_within_a_back_off_are_silent(self) -> None:
        with captured_logs() as lines:
            self.streak.failed("it failed", "it still fails")
            self.clock.now += 1
            self.streak.failed("it failed", "it still fails")  # another attempt in flight: said already
        self.assertEqual(lines, ["hanko_tornado WARNING it failed"])
        self.assertTrue(self.streak.failing)

    def test_later_failures_at_the_level_asked_or_not_at_all(self) -> None:
        quiet = FailureStreak("back", clock=self.clock)  # no back-off: every failure is a new attempt
        with captured_logs() as lines:
            quiet.failed("first", "again", again_level=10)
            quiet.failed("first", "again", again_level=10)
            quiet.failed("first")
        self.assertEqual(lines, ["hanko_tornado WARNING first", "hanko_tornado DEBUG again"])
        self.assertFalse(quiet.backing_off)

    def test_a_new_streak_after_a_recovery_warns_again(self) -> None:
        with captured_logs() as lines:
            self.streak.failed("it failed")
            self.clock.now += 6
            self.streak.succeeded()
            self.streak.failed("it failed again")
        self.assertEqual(
            lines,
            [
                "hanko_tornado WARNING it failed",
                "hanko_tornado INFO it answers again",
                "hanko_tornado WARNING it failed again",
            ],
        )
