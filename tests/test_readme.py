"""The README's examples run, as written: the testing kit's tests pass, the requirements answer as it says."""

from __future__ import annotations

import json
import pathlib
import re
import time
import types
import unittest
from typing import Any

import tornado.web

from hanko_tornado.testing import HankoTestCase

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"


def example(name: str) -> types.ModuleType:
    """The README's Python block marked ``<!-- example: name ... -->``, run as a module."""
    match = re.search(rf"<!-- example: {name}.*?-->\n```python\n(.*?)```", README.read_text(), re.DOTALL)
    assert match is not None, f"the README lost its {name} example"
    module = types.ModuleType(f"readme_{name.replace(' ', '_')}")
    exec(compile(match.group(1), str(README), "exec"), module.__dict__)
    return module


class ReadmeRequirementsTest(HankoTestCase):
    def get_app(self) -> tornado.web.Application:
        handlers = example("requirements")
        return tornado.web.Application(
            [(r"/account", handlers.AccountHandler), (r"/admin", handlers.AdminHandler)], hanko=self.hanko.settings()
        )

    def status(self, path: str, method: str = "GET", **mint: Any) -> tuple[int, str | None]:
        body = None if method in ("GET", "DELETE") else "{}"
        response = self.fetch_with_token(path, self.hanko.mint(**mint), method=method, body=body, raise_error=False)
        return response.code, json.loads(response.body).get("error") if response.code != 200 else None

    def test_the_answers_are_as_described(self) -> None:
        old = {"claims": {"iat": int(time.time()) - 3600}}
        self.assertEqual(self.status("/account"), (200, None))
        self.assertEqual(self.status("/account", email_verified=False), (403, "insufficient_scope"))
        self.assertEqual(self.status("/account", "DELETE", email_verified=False), (200, None))
        self.assertEqual(self.status("/account", "DELETE", **old), (401, "insufficient_user_authentication"))
        self.assertEqual(self.status("/account", "PUT", email_verified=False), (403, "insufficient_scope"))
        self.assertEqual(self.status("/account", "PUT", amr=("pwd",)), (401, "insufficient_user_authentication"))
        self.assertEqual(self.status("/admin", claims={"role": "owner"}), (200, None))
        self.assertEqual(self.status("/admin", username="root"), (200, None))
        self.assertEqual(self.status("/admin", username="ada"), (403, "insufficient_scope"))


class ReadmeExampleTest(unittest.TestCase):
    def test_testing_kit_example_passes(self) -> None:
        module = example("testing kit")
        suite = unittest.defaultTestLoader.loadTestsFromModule(module)
        self.assertEqual(suite.countTestCases(), 2)
        result = unittest.TestResult()
        suite.run(result)
        self.assertEqual((result.errors, result.failures), ([], []))
        self.assertEqual(result.testsRun, 2)


class ReadmeTokenSourceTest(HankoTestCase):
    def get_app(self) -> tornado.web.Application:
        return tornado.web.Application([(r"/api", example("token source").ApiHandler)], hanko=self.hanko.settings())

    def test_the_added_source_is_tried_after_the_bearer_token_and_the_cookie(self) -> None:
        user = "aaaaaaaa-0000-4000-8000-0000000000aa"
        token = self.hanko.mint(user)
        for headers in [
            {"X-Session-Token": token},
            {"Authorization": "Bearer expired.or.bad", "X-Session-Token": token},
        ]:
            response = self.fetch("/api", headers=headers)
            self.assertEqual(json.loads(response.body), {"user_id": user})
        self.assertEqual(self.fetch("/api", raise_error=False).code, 401)
