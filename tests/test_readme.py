"""The README and the docs' named examples do what the text says: the README's app runs as pasted, the
requirements answer as described, the testing kit's example passes, an added token source is tried last.

Every block is also run by tests/test_docs.py; the tests here check what the named ones do.
:func:`example` (the block marked ``<!-- example: NAME -->`` in README.md or docs/, run as a module) is
imported by other tests too.
"""

from __future__ import annotations

import asyncio
import configparser
import json
import os
import pathlib
import re
import signal
import sys
import tempfile
import time
import unittest
from typing import Any

import tornado.web
from test_docs import README, ROOT, blocks, example, own_tests, programs, run
from test_server import free_port
from tornado.httpclient import AsyncHTTPClient, HTTPClientError
from tornado.testing import AsyncTestCase, gen_test

from hanko_tornado.testing import FakeHanko, HankoTestCase

__all__ = ["example"]
STARTUP_SECONDS = 60  # an upper bound for a busy machine, not a wait


class ReadmeFrontPageTest(unittest.TestCase):
    def test_it_is_a_front_page_of_about_200_lines(self) -> None:
        self.assertLessEqual(len(README.read_text().splitlines()), 230)

    def test_the_quick_start_is_the_two_commands(self) -> None:
        quick_start = README.read_text().split("## Quick start", 1)[1].split("\n## ", 1)[0]
        (block,) = [b for b in blocks(README) if b.code.strip() and b.code.split()[0] == "make"]
        self.assertIn(block.code, quick_start)
        commands = [line.split("#")[0].strip() for line in block.code.splitlines()]
        self.assertEqual(commands, ["make serve", "make test"])

    def test_python_versions_say_what_setup_cfg_allows(self) -> None:
        config = configparser.ConfigParser()
        config.read(ROOT / "setup.cfg")
        self.assertEqual(config["options"]["python_requires"], ">=3.10")
        classifiers = re.findall(r"Python :: (3\.\d+)$", config["metadata"]["classifiers"], re.MULTILINE)
        section = README.read_text().split("## Python versions", 1)[1].split("\n## ", 1)[0]
        self.assertIn(f"Python {classifiers[0]} to {classifiers[-1]}", section)
        self.assertEqual(classifiers, ["3.10", "3.11", "3.12", "3.13"])
        self.assertRegex(section, r"\| 3\.10 \| 6\.5 ")
        # The Tornado requirement as setup.cfg states it: with python_version markers, the README must say so.
        tornado = [
            r.strip() for r in config["options"]["install_requires"].splitlines() if r.strip().startswith("tornado")
        ]
        self.assertEqual(tornado, ["tornado>=6.3"])
        self.assertIn("setup.cfg asks for `tornado>=6.3` everywhere", section)
        self.assertIn("| 3.11, 3.12, 3.13 | the newest", section)

    def test_every_link_into_the_docs_leads_to_a_page(self) -> None:
        links = re.findall(r"\]\(((?:docs/)?[\w/.-]+\.(?:md|rst))\)", README.read_text())
        self.assertGreater(len(links), 10)
        for link in links:
            self.assertTrue((ROOT / link).is_file(), link)


class ReadmeAppTestsTest(unittest.TestCase):
    def test_the_app_and_its_tests_pass(self) -> None:
        (app,) = [p for p in programs(README) if p.name == "app"]
        self.assertEqual(len(app.blocks), 2)  # the app, and its tests as the fragment after it
        suite = own_tests(run(app))
        result = unittest.TestResult()
        suite.run(result)
        self.assertEqual((result.errors, result.failures, result.testsRun), ([], [], 2))


class ReadmeAppAsPastedTest(AsyncTestCase):
    """README's app.py, saved to a file and run with python against a FakeHanko given as HANKO_API_URL."""

    @gen_test(timeout=STARTUP_SECONDS * 2)
    async def test_it_serves_the_open_and_the_protected_route(self) -> None:
        (app,) = [p for p in programs(README) if p.name == "app"]
        hanko = FakeHanko(key_size=2048)
        hanko.start()
        port = free_port()
        with tempfile.TemporaryDirectory() as folder:
            (pathlib.Path(folder) / "app.py").write_text(app.blocks[0].code)
            environment = {k: v for k, v in os.environ.items() if not k.startswith("HANKO_")}
            environment.update(HANKO_API_URL=hanko.api_url, HANKO_AUDIENCE="localhost", PORT=str(port))
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "app.py",
                cwd=folder,
                env={**environment, "PYTHONWARNINGS": "error", "PYTHONUNBUFFERED": "1"},
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            try:
                assert process.stdout is not None
                line = await asyncio.wait_for(process.stdout.readline(), STARTUP_SECONDS)
                self.assertEqual(line.decode().strip(), f"listening on http://127.0.0.1:{port}")
                client = AsyncHTTPClient()
                url = f"http://127.0.0.1:{port}"
                home = await client.fetch(f"{url}/")
                self.assertEqual(json.loads(home.body), {"message": "Tornado x Hanko!"})
                user = "6b0d9f2e-4f7a-4c1e-9a55-1b2c3d4e5f60"
                headers = {"Authorization": f"Bearer {hanko.mint(user)}"}
                protected = json.loads((await client.fetch(f"{url}/protected", headers=headers)).body)
                self.assertEqual(protected, {"message": "Hello from protected route!", "user_id": user})
                with self.assertRaises(HTTPClientError) as refused:
                    await client.fetch(f"{url}/protected")
                self.assertEqual(refused.exception.code, 401)
                assert refused.exception.response is not None
                self.assertEqual(json.loads(refused.exception.response.body)["error"], "missing_token")
            finally:
                process.send_signal(signal.SIGTERM)  # as Ctrl-C: main() stops serving and closes the app
                _, stderr = await asyncio.wait_for(process.communicate(), STARTUP_SECONDS)
                await hanko.stop()
        self.assertEqual(process.returncode, 0, stderr.decode())
        self.assertNotIn("Traceback", stderr.decode())
        self.assertNotIn("Warning", stderr.decode())


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
