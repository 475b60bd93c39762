"""Every code example in docs/ and README.md runs, so none can rot.

Each page's fenced blocks are read in order.  A Python block runs as a module of its own, as pasted into a
fresh file; one whose first line is ``# fragment: ...`` continues the block before it and runs joined to it.
A module that defines test cases (``HankoTestCase``, against the testing kit's FakeHanko) has them run too.
A shell block runs when the line before it is ``<!-- shell: run -->`` (with this Python first on ``PATH``),
and says why not otherwise (``<!-- shell: not run: ... -->``); JSON blocks must parse; the other languages
(JavaScript, YAML, HTTP) are shown, not run.  Named blocks (``<!-- example: NAME ... -->``) are also run by
the tests that check what they do (tests/test_readme.py and others, through :func:`example`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import types
import unittest

import pytest

import hanko_tornado
import hanko_tornado.admin
import hanko_tornado.requirements
import hanko_tornado.testing

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = [README, *sorted(p for p in DOCS.rglob("*.md") if "_build" not in p.parts)]
SHOWN_ONLY = {"js", "javascript", "yaml", "http", "text"}
# A code block's fence names its language; ```{toctree} and the like are MyST directives, not examples.
_FENCE = re.compile(r"^```([^\s{]\S*)\s*$")
_MARKER = re.compile(r"^<!-- (example|shell): (.*?) -->$")


@dataclasses.dataclass(frozen=True)
class Block:
    """One fenced block of a page: where it starts, its language, its text and the marker line above it."""

    page: pathlib.Path
    line: int
    language: str
    code: str
    marker: tuple[str, str] | None

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks(page: pathlib.Path) -> list[Block]:
    """The page's fenced blocks, in order (a fence inside another block's text is that block's text)."""
    found = []
    lines = page.read_text().split("\n")
    number = 0
    while number < len(lines):
        opening = _FENCE.match(lines[number])
        if opening is None:
            number += 1
            continue
        end = next(i for i in range(number + 1, len(lines)) if lines[i] == "```")
        marker = _MARKER.match(lines[number - 1]) if number else None
        code = "\n".join(lines[number + 1 : end]) + "\n"
        found.append(Block(page, number + 1, opening.group(1), code, marker.groups() if marker else None))  # type: ignore[arg-type]
        number = end + 1
    return found


def fences(page: pathlib.Path) -> int:
    """How many blocks the page opens, counted without the parser: each opening fence names a language."""
    return sum(1 for line in page.read_text().split("\n") if re.fullmatch(r"```[^\s{]\S*\s*", line))


@dataclasses.dataclass(frozen=True)
class Program:
    """A Python block, with the fragments that continue it, as one module's source."""

    blocks: tuple[Block, ...]

    @property
    def where(self) -> str:
        return self.blocks[0].where + "".join(f"+{b.line}" for b in self.blocks[1:])

    @property
    def name(self) -> str | None:
        marker = self.blocks[0].marker
        return marker[1].split(" (")[0] if marker and marker[0] == "example" else None

    def source(self) -> str:
        return "".join(block.code for block in self.blocks)


def programs(page: pathlib.Path) -> list[Program]:
    """The page's Python programs: each block, joined to the fragments (``# fragment: ...``) after it."""
    found: list[Program] = []
    for block in blocks(page):
        if block.language != "python":
            continue
        if block.code.startswith("# fragment:"):
            assert found, f"{block.where}: a fragment with no block before it"
            found[-1] = Program((*found[-1].blocks, block))
        else:
            found.append(Program((block,)))
    return found


def run(program: Program) -> types.ModuleType:
    """The program run as a module (not ``__main__``, so a ``if __name__ == "__main__"`` server is not started)."""
    module = types.ModuleType("docs_example")
    exec(compile(program.source(), program.where, "exec"), module.__dict__)
    return module


def example(name: str) -> types.ModuleType:
    """The Python block marked ``<!-- example: name ... -->`` in README.md or docs/, run as a module."""
    named = [program for page in PAGES for program in programs(page) if program.name == name]
    assert len(named) == 1, f"{len(named)} examples named {name!r} in README.md and docs/"
    return run(named[0])


def own_tests(module: types.ModuleType) -> unittest.TestSuite:
    """The test cases the module defines itself (not the ones it imports, such as HankoTestCase)."""
    suite = unittest.TestSuite()
    for value in vars(module).values():
        if isinstance(value, type) and issubclass(value, unittest.TestCase) and value.__module__ == module.__name__:
            suite.addTests(unittest.defaultTestLoader.loadTestsFromTestCase(value))
    return suite


ALL_PROGRAMS = [program for page in PAGES for program in programs(page)]
SHELL = [b for page in PAGES for b in blocks(page) if b.language in ("sh", "shell", "bash", "console")]


@pytest.mark.parametrize("program", ALL_PROGRAMS, ids=[p.where for p in ALL_PROGRAMS])
def test_python_example_runs(program: Program) -> None:
    module = run(program)
    suite = own_tests(module)
    if suite.countTestCases():
        result = unittest.TestResult()
        suite.run(result)
        assert (result.errors, result.failures, result.skipped) == ([], [], [])
        assert result.testsRun == suite.countTestCases() > 0


@pytest.mark.parametrize("block", [b for b in SHELL if b.marker == ("shell", "run")], ids=lambda b: b.where)
def test_shell_example_runs(block: Block) -> None:
    environment = {**os.environ, "PATH": f"{pathlib.Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for variable in ("HANKO_API_URL", "HANKO_AUDIENCE", "HANKO_ISSUER"):
        environment.pop(variable, None)
    code = block.code.replace(".venv/bin/python", sys.executable)
    with tempfile.TemporaryDirectory() as folder:  # no .env of this checkout is read
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", code], cwd=folder, env=environment, capture_output=True, timeout=60
        )
    assert result.returncode == 0, result.stderr.decode()


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_block_of_the_page_is_run_or_says_why_not(page: pathlib.Path) -> None:
    found = blocks(page)
    assert len(found) == fences(page) > 0, "a block the examples' parser missed, or a page with no example"
    for block in found:
        if block.language == "python":
            continue
        if block.language == "json":
            json.loads(block.code)
        elif block.language in ("sh", "shell", "bash", "console"):
            marker = block.marker
            assert marker is not None and marker[0] == "shell", f"{block.where}: say whether this shell block runs"
            assert marker[1] == "run" or marker[1].startswith("not run: "), f"{block.where}: {marker[1]!r}"
        else:
            assert block.language in SHOWN_ONLY, f"{block.where}: no rule for {block.language!r} blocks"


def test_pages_with_python_have_their_programs_found() -> None:
    for page in PAGES:
        python_blocks = sum(1 for b in blocks(page) if b.language == "python")
        joined = sum(len(p.blocks) for p in programs(page))
        assert joined == python_blocks, page
    assert len(ALL_PROGRAMS) >= 15  # as many as the pages had when this was written
    assert sum(1 for p in ALL_PROGRAMS if p.blocks[0].page == README) >= 1


def reference_names(page: str) -> set[str]:
    """The names an API reference page documents with autodoc (the last dotted part of each)."""
    text = (DOCS / "api" / page).read_text()
    return {name.rsplit(".", 1)[-1] for name in re.findall(r"^\.\. auto\w+:: (\S+)$", text, re.MULTILINE)}


def test_the_api_reference_covers_the_public_names() -> None:
    top = set(hanko_tornado.__all__)
    assert top - reference_names("hanko_tornado.rst") == set()
    shared = {n for n in hanko_tornado.requirements.__all__ if n in top}  # documented once, with hanko_tornado
    assert set(hanko_tornado.requirements.__all__) - shared - reference_names("requirements.rst") == set()
    assert set(hanko_tornado.admin.__all__) - reference_names("admin.rst") == set()
    assert set(hanko_tornado.testing.__all__) - reference_names("testing.rst") == set()
