"""The README's admin example runs as written, and server.py --dev has the admin routes working."""

from __future__ import annotations

import asyncio
import json
import re

import tornado.web
from test_readme import example
from test_server import running_server
from tornado.testing import AsyncTestCase, gen_test

from hanko_tornado.admin import admin_client_for, close_admin
from hanko_tornado.testing import HankoTestCase


class ReadmeAdminExampleTest(HankoTestCase):
    def get_app(self) -> tornado.web.Application:
        handlers = example("admin")
        routes = [(r"/profile", handlers.ProfileHandler), (r"/sessions", handlers.SessionsHandler)]
        return tornado.web.Application(
            [*routes, (r"/admin", handlers.AdminHandler)],
            hanko=self.hanko.settings(),
            hanko_admin=self.hanko.admin.settings(),
        )

    def tearDown(self) -> None:
        self.io_loop.run_sync(lambda: close_admin(self._app))
        super().tearDown()

    def test_the_example_answers_as_described(self) -> None:
        admin = self.hanko.admin.add_user(email="ada@example.com", public={"plan": "pro"}, private={"roles": ["admin"]})
        token = self.hanko.mint(admin.id)
        profile = json.loads(self.fetch_with_token("/profile", token).body)
        self.assertEqual(profile, {"emails": ["ada@example.com"], "public": {"plan": "pro"}})
        self.assertEqual(self.fetch_with_token("/admin", token).code, 200)
        other = self.hanko.mint(self.hanko.admin.add_user().id)
        self.assertEqual(self.fetch_with_token("/admin", other, raise_error=False).code, 403)
        self.assertEqual(json.loads(self.fetch_with_token("/sessions", token, method="DELETE").body), {"ended": 1})
        self.assertEqual(self.fetch_with_token("/admin", token, raise_error=False).code, 401)
        assert admin_client_for(self._app).calls["GET /users/:id/metadata"] == 2


class DevServerTest(AsyncTestCase):
    @gen_test(timeout=90)
    async def test_dev_mode_serves_the_admin_routes_with_its_own_fake_admin_api(self) -> None:
        async with running_server({}, "--dev") as server:
            assert server.process.stdout is not None
            banner = (await server.process.stdout.read(4096)).decode()
            match = re.search(r"Authorization: Bearer ([\w.-]+)", banner)
            assert match is not None, banner
            headers = {"Authorization": f"Bearer {match.group(1)}"}
            me = await server.fetch("/protected/me", headers=headers)
            self.assertEqual(json.loads(me.body)["emails"][0]["address"], "dev@example.com")
            self.assertEqual((await server.fetch("/protected/admin", headers=headers)).code, 200)
            ready = json.loads((await server.fetch("/readyz")).body)
            self.assertEqual(ready["webhook"]["enabled"], True)
            logout = await server.fetch("/protected/sessions", method="DELETE", headers=headers)
            self.assertEqual(json.loads(logout.body)["sessions_ended"], 1)
            self.assertEqual((await server.fetch("/protected", headers=headers)).code, 401)
            await asyncio.sleep(0.2)  # the fake's session.delete.admin.revoke webhook reaches the server
        _, log = await server.output()
        self.assertIn("Hanko webhook session.delete.admin.revoke accepted", log)
