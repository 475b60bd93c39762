"""Every public name of the testing kit has a docstring: its modules, classes, functions and their methods."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import unittest

import hanko_tornado.testing

# unittest's and Tornado's hooks the kit implements: their own docs say what they do.
_HANDLER_HOOKS = {
    "setUp",
    "tearDown",
    "initialize",
    "prepare",
    "write_error",
    *"get post put patch delete head options".split(),
}


def undocumented() -> list[str]:
    missing = []
    for info in pkgutil.iter_modules(hanko_tornado.testing.__path__, "hanko_tornado.testing."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        if not module.__doc__:
            missing.append(info.name)
        for name, value in vars(module).items():
            if name.startswith("_") or getattr(value, "__module__", None) != module.__name__:
                continue
            if not (inspect.isclass(value) or inspect.isfunction(value)):
                continue
            if not value.__doc__:
                missing.append(f"{info.name}.{name}")
            if inspect.isclass(value):
                for member, attribute in vars(value).items():
                    function = attribute.fget if isinstance(attribute, property) else attribute
                    if member.startswith("_") or member in _HANDLER_HOOKS or not callable(function):
                        continue
                    if not function.__doc__:
                        missing.append(f"{info.name}.{name}.{member}")
    return missing


class KitDocumentationTest(unittest.TestCase):
    def test_every_public_name_has_a_docstring(self) -> None:
        self.assertEqual(undocumented(), [])
