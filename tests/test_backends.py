"""The store's modules and the runner's import one way: every import counted, function-local and type-checking too."""

from __future__ import annotations

import ast
import pathlib
import unittest

from aiocache import SimpleMemoryCache
from tornado.testing import AsyncTestCase, gen_test

import hanko_tornado
from hanko_tornado.backends import close_cache, is_shared, store_for
from hanko_tornado.store import MemoryStore

PACKAGE = pathlib.Path(hanko_tornado.__file__).resolve().parent  # the checkout, or the installed wheel


def module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_imports() -> dict[str, set[str]]:
    """Each hanko_tornado module and the hanko_tornado modules it imports anywhere in its text."""
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module)
                found.update(f"{node.module}.{alias.name}" for alias in node.names)  # a submodule imported by name
        graph[name] = {module for module in found if module in modules and module != name}
    return graph


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = list(graph[start])
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo.extend(graph[module])
    return seen


class ImportDirectionTest(unittest.TestCase):
    def test_the_store_contract_imports_no_backend(self) -> None:
        graph = package_imports()
        self.assertEqual(graph["hanko_tornado.store"], set())
        self.assertEqual(graph["hanko_tornado.redis_store"], {"hanko_tornado.store"})
        self.assertEqual(graph["hanko_tornado.backends"], {"hanko_tornado.store", "hanko_tornado.redis_store"})

    def test_no_circle_through_the_store_or_the_runner(self) -> None:
        graph = package_imports()
        runner = {module for module in graph if module.startswith("hanko_tornado.runner")}
        for module in sorted({"hanko_tornado.store", "hanko_tornado.redis_store", "hanko_tornado.backends"} | runner):
            with self.subTest(module=module):
                self.assertNotIn(module, reachable(graph, module), f"{module} imports itself through others")

    def test_the_graph_sees_function_local_imports(self) -> None:
        # The Redis client is imported inside a function: a graph that missed those would prove nothing.
        self.assertIn("hanko_tornado.redis_urls", package_imports()["hanko_tornado.cache"])


class BackendTest(AsyncTestCase):
    def test_memory_is_this_process_only(self) -> None:
        self.assertIsInstance(store_for(None), MemoryStore)
        self.assertFalse(is_shared(None))

    def test_a_store_is_used_as_it_is(self) -> None:
        store = MemoryStore()
        self.assertIs(store_for(store), store)

    def test_another_aiocache_cache_counts_as_shared(self) -> None:
        class ApplicationCache:  # an aiocache-like cache of the application's own, not this process's memory
            pass

        self.assertTrue(is_shared(ApplicationCache()))
        self.assertFalse(is_shared(SimpleMemoryCache()))

    @gen_test
    async def test_close_cache_closes_an_aiocache_cache(self) -> None:
        class ApplicationCache:
            closed = 0

            async def close(self) -> None:
                self.closed += 1

        cache = ApplicationCache()
        await close_cache(cache)
        self.assertEqual(cache.closed, 1)
