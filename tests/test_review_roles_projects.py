"""Review: roles from private metadata in an application with several Hanko projects.

The admin API answers for one project (the application's ``hanko=``).  Hanko's admin API lets a project's
owner create a user under any id (``POST /users`` takes ``id``), so another project's token can carry the
``sub`` of an admin of the first: its roles must never be looked up in the first project's admin API.
"""

from __future__ import annotations

import json
from typing import Any

import tornado.web

from hanko_tornado import CorsHandler, CorsSettings, HankoAuthMixin, HankoSettings
from hanko_tornado.admin import admin_client_for, private_metadata_has, private_metadata_passes
from hanko_tornado.projects import HankoProjects
from hanko_tornado.testing import FakeHanko, HankoTestCase


def by_first_path_segment(request: Any) -> str | None:
    return str(request.path.split("/")[1]) or None


class AdminOnly(HankoAuthMixin, CorsHandler):
    hanko_requires = private_metadata_has("roles", "admin")

    def get(self) -> None:
        self.write({"project": self.get_hanko_project(), "user_id": self.hanko_user.id})


class NotBanned(AdminOnly):
    hanko_requires = private_metadata_passes(lambda m: not m.get("banned"), "not banned")


class RolesAcrossProjectsTest(HankoTestCase):
    own_project = True

    def setUp(self) -> None:
        self.other = FakeHanko(key_size=2048)
        super().setUp()
        self.other.start()

    def tearDown(self) -> None:
        self.io_loop.run_sync(admin_client_for(self._app).close)
        self.io_loop.run_sync(self.other.stop)
        super().tearDown()

    def get_app(self) -> tornado.web.Application:
        projects: dict[str, HankoSettings] = {"a": self.hanko.settings(), "b": self.other.settings()}
        own: dict[str, Any] = {"hanko": self.hanko.settings()} if self.own_project else {}
        return tornado.web.Application(
            [(r"/[a-z]+/admin", AdminOnly), (r"/[a-z]+/not-banned", NotBanned)],
            hanko_projects=HankoProjects(projects, select=by_first_path_segment),
            hanko_admin=self.hanko.admin.settings(timeout=2.0),
            cors=CorsSettings(origins=["http://localhost:3000"]),
            **own,
        )

    def get(self, path: str, token: str) -> tuple[int, dict[str, Any]]:
        response = self.fetch_with_token(path, token, raise_error=False)
        return response.code, json.loads(response.body)

    def metadata_calls(self) -> int:
        return sum(1 for call in self.hanko.admin.calls if call.endswith("/metadata"))

    def test_the_admin_projects_own_admin_gets_in(self) -> None:
        admin = self.hanko.admin.add_user(private={"roles": ["admin"]})
        self.assertEqual(self.get("/a/admin", self.hanko.mint(admin.id))[0], 200)

    def test_another_projects_token_with_the_admins_id_gets_no_role(self) -> None:
        admin = self.hanko.admin.add_user(private={"roles": ["admin"]})
        forged = self.other.mint(admin.id)  # project b's owner created a user under a's admin's id
        code, body = self.get("/b/admin", forged)
        self.assertEqual((code, body["error"]), (403, "insufficient_scope"), body)
        self.assertEqual(self.metadata_calls(), 0, "b's user is never looked up in a's admin API")

    def test_a_negative_predicate_fails_closed_for_another_projects_user(self) -> None:
        user = self.other.admin.add_user(private={"banned": True})
        code, body = self.get("/b/not-banned", self.other.mint(user.id))
        self.assertEqual((code, body["error"]), (403, "insufficient_scope"), body)


class RolesWithoutOwnProjectTest(RolesAcrossProjectsTest):
    """Several projects and no ``hanko=``: which project the admin API serves is unknown, so no role is granted."""

    own_project = False

    def test_the_admin_projects_own_admin_gets_in(self) -> None:
        admin = self.hanko.admin.add_user(private={"roles": ["admin"]})
        code, body = self.get("/a/admin", self.hanko.mint(admin.id))
        self.assertEqual((code, body["error"]), (403, "insufficient_scope"), body)
