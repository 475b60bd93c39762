"""A short soak in the suite: mixed traffic while the key endpoint fails, a key rotates in, and it recovers."""

from __future__ import annotations

import pathlib
import sys
import unittest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "bench"))

from soak import soak
from tornado.testing import AsyncTestCase, gen_test


class SoakTest(AsyncTestCase):
    @gen_test(timeout=120)
    async def test_every_answer_is_the_right_one(self) -> None:
        report = await soak(total=3000, connections=100, key_size=2048)
        self.assertEqual(report.mismatches, [])
        self.assertEqual(report.server_errors(), 0)
        self.assertGreaterEqual(report.requests, 3000)
        self.assertGreater(report.answers[("rotated", 503)], 0, "the outage was seen")
        self.assertGreater(report.answers[("rotated", 200)], 0, "the rotated key was accepted after recovery")
        self.assertLess(report.rss_end_kib - report.rss_half_kib, 5 * 1024, "memory stays flat")


if __name__ == "__main__":
    unittest.main()
