"""The README's testing-kit example runs, as written, and passes."""

from __future__ import annotations

import pathlib
import re
import types
import unittest

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"


class ReadmeExampleTest(unittest.TestCase):
    def test_testing_kit_example_passes(self) -> None:
        text = README.read_text()
        match = re.search(r"<!-- example: testing kit.*?-->\n```python\n(.*?)```", text, re.DOTALL)
        assert match is not None, "the README lost its testing-kit example"
        module = types.ModuleType("readme_example")
        exec(compile(match.group(1), str(README), "exec"), module.__dict__)
        suite = unittest.defaultTestLoader.loadTestsFromModule(module)
        self.assertEqual(suite.countTestCases(), 2)
        result = unittest.TestResult()
        suite.run(result)
        self.assertEqual((result.errors, result.failures), ([], []))
        self.assertEqual(result.testsRun, 2)
