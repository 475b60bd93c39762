"""Every public name of the testing kit has a docstring (its modules, classes, functions and their methods), and
the API reference (docs/api/testing.rst) documents the names a test reaches."""

from __future__ import annotations

import importlib
import inspect
import pathlib
import pkgutil
import re
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


# The kit's names a test reaches: the package's own, and the fakes FakeHanko hands out (hanko.admin, its users
# and webhooks) or that a page test mounts (FakeFrontendApi); serve.main runs python -m hanko_tornado.testing.
REACHED = {
    "hanko_tornado.testing.admin": ["FakeAdmin", "FakeUser", "FakeWebhook"],
    "hanko_tornado.testing.frontend": ["FakeFrontendApi"],
    "hanko_tornado.testing.serve": ["main", "parser"],
}
REFERENCE = pathlib.Path(__file__).resolve().parent.parent / "docs" / "api" / "testing.rst"


class KitReferenceTest(unittest.TestCase):
    def test_every_public_name_is_in_the_api_reference(self) -> None:
        documented = set(re.findall(r"^\.\. auto\w+:: (\S+)$", REFERENCE.read_text(), re.MULTILINE))
        wanted = {f"hanko_tornado.testing.{name}" for name in hanko_tornado.testing.__all__}
        for module, names in REACHED.items():
            self.assertTrue(set(names) <= set(importlib.import_module(module).__all__), module)
            wanted |= {f"{module}.{name}" for name in names}
        documented = {
            name if name.startswith("hanko_tornado.") else f"hanko_tornado.testing.{name}" for name in documented
        }
        self.assertEqual(wanted - documented, set())

    def test_methods_a_kit_class_inherits_from_the_kit_are_documented_with_it(self) -> None:
        text = REFERENCE.read_text()
        for name in hanko_tornado.testing.__all__:
            value = getattr(hanko_tornado.testing, name)
            kit_bases = [b for b in getattr(value, "__mro__", ())[1:] if b.__module__.startswith("hanko_tornado.")]
            if kit_bases:  # FakeHanko's mint, revoke... are FakeTenant's
                self.assertIn(f".. autoclass:: {name}\n   :inherited-members:\n", text, name)
