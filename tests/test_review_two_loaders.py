"""Review: a requirement with two private-metadata checks loads the metadata once and is met on the first request."""

from __future__ import annotations

import json

import tornado.web
from test_admin_requirements import RolesCase

from hanko_tornado import HankoAuthMixin
from hanko_tornado.admin import private_metadata_has, private_metadata_passes
from hanko_tornado.cors import CorsHandler


class AdminEditor(HankoAuthMixin, CorsHandler):
    hanko_requires = private_metadata_has("roles", "admin") & private_metadata_passes(
        lambda m: m.get("level", 0) >= 3, "level 3 or more"
    )

    def get(self) -> None:
        self.write({"ok": True})


class TwoLoadersTest(RolesCase):
    def get_app(self) -> tornado.web.Application:
        app = super().get_app()
        app.add_handlers(r".*", [(r"/admin-editor", AdminEditor)])
        return app

    def test_both_checks_are_met_on_the_first_request(self) -> None:
        _, token = self.user_with(roles=["admin"], level=3)
        response = self.fetch_with_token("/admin-editor", token, raise_error=False)
        self.assertEqual(response.code, 200, response.body)
        _, junior = self.user_with(roles=["admin"], level=1)
        response = self.fetch_with_token("/admin-editor", junior, raise_error=False)
        self.assertEqual((response.code, json.loads(response.body)["error"]), (403, "insufficient_scope"))
