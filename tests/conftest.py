"""Run the whole suite with Tornado's cross_origin_protection on: HANKO_TEST_CROSS_ORIGIN_PROTECTION=1.

Applications that set it themselves keep their own value; the others get it on, as Tornado 6.7 is
expected to default to.
"""

from __future__ import annotations

import os
from typing import Any

import tornado.web

# gen_test's default of 5 s is a wall-clock bound a busy machine can break; each test that needs less says so.
os.environ.setdefault("ASYNC_TEST_TIMEOUT", "60")

if os.environ.get("HANKO_TEST_CROSS_ORIGIN_PROTECTION") == "1":
    _original_init = tornado.web.Application.__init__

    def _protected_init(self: tornado.web.Application, *args: Any, **settings: Any) -> None:
        settings.setdefault("cross_origin_protection", True)
        _original_init(self, *args, **settings)

    tornado.web.Application.__init__ = _protected_init  # type: ignore[method-assign]
