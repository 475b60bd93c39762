"""Webhooks and readiness in an application of several Hanko projects: the project comes from the request."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any, ClassVar

import tornado.web
from tornado.httpclient import HTTPResponse

from hanko_tornado import HankoAuthMixin, HankoSettings
from hanko_tornado.health import ReadinessHandler
from hanko_tornado.projects import HankoProjects
from hanko_tornado.testing import FakeHanko, HankoTestCase
from hanko_tornado.webhooks import HankoWebhookHandler

LOGOUT = "session.delete.explicit.logout"


class MeHandler(HankoAuthMixin, tornado.web.RequestHandler):
    def get(self) -> None:
        self.write({"user_id": self.hanko_user.id})


class ProjectWebhooks(HankoWebhookHandler):
    events: ClassVar[list[tuple[str | None, str]]] = []

    async def on_hanko_event(self, event: str, data: Mapping[str, Any]) -> None:
        self.events.append((self.get_hanko_project(), event))


class TenantWebhooks(ProjectWebhooks):
    """Chooses the project from its route, as the auth mixin may."""

    def get_hanko_project(self) -> str | None:
        return self.path_kwargs["tenant"]


class TenantReadiness(ReadinessHandler):
    def get_hanko_project(self) -> str | None:
        return self.path_kwargs["tenant"]


def by_first_path_segment(request: Any) -> str | None:
    return str(request.path.split("/")[1]) or None


class ProjectWebhookTest(HankoTestCase):
    def setUp(self) -> None:
        self.other = FakeHanko(key_size=2048)
        super().setUp()
        self.other.start()
        ProjectWebhooks.events = []

    def tearDown(self) -> None:
        self.io_loop.run_sync(self.other.webhooks_sent)
        self.io_loop.run_sync(self.other.stop)
        super().tearDown()

    def get_app(self) -> tornado.web.Application:
        projects: dict[str, HankoSettings] = {"a": self.hanko.settings(), "b": self.other.settings()}
        return tornado.web.Application(
            [
                (r"/[a-z]+/me", MeHandler),
                (r"/[a-z]+/webhooks", ProjectWebhooks),
                (r"/[a-z]+/readyz", ReadinessHandler),
                (r"/tenants/(?P<tenant>[a-z]+)/readyz", TenantReadiness),
                (r"/tenants/(?P<tenant>[a-z]+)/webhooks", TenantWebhooks),
            ],
            hanko_projects=HankoProjects(projects, select=by_first_path_segment),
        )

    def post(self, path: str, hanko: FakeHanko, event: str, data: Mapping[str, Any]) -> int:
        return self.io_loop.run_sync(lambda: hanko.send_webhook(self.get_url(path), event, data))

    def status(self, path: str, token: str) -> int:
        return self.fetch_with_token(path, token, raise_error=False).code

    def test_a_webhook_ends_only_its_own_projects_session(self) -> None:
        user, session = str(uuid.uuid4()), str(uuid.uuid4())  # the same ids in both projects: only a's end
        a_token, b_token = self.hanko.mint(user, session_id=session), self.other.mint(user, session_id=session)
        self.assertEqual((self.status("/a/me", a_token), self.status("/b/me", b_token)), (200, 200))
        self.hanko.register_webhook(self.get_url("/a/webhooks"), ("session.delete",))
        self.hanko.revoke(session)
        self.io_loop.run_sync(self.hanko.webhooks_sent)
        self.assertEqual(self.hanko.deliveries, [(self.get_url("/a/webhooks"), LOGOUT, 200)])
        self.assertEqual((self.status("/a/me", a_token), self.status("/b/me", b_token)), (401, 200))
        self.assertEqual(ProjectWebhooks.events, [("a", LOGOUT)])
        self.assertEqual(self.post("/b/webhooks", self.other, "user.delete", {"id": user}), 200)
        self.assertEqual(self.status("/b/me", b_token), 401)
        self.assertEqual(ProjectWebhooks.events, [("a", LOGOUT), ("b", "user.delete")])

    def test_a_projects_webhook_is_refused_at_another_projects_endpoint(self) -> None:
        self.assertEqual(self.post("/b/webhooks", self.hanko, "user.create", {"id": "u"}), 401)
        self.assertEqual(self.post("/tenants/a/webhooks", self.other, "user.create", {"id": "u"}), 401)
        self.assertEqual(self.post("/tenants/b/webhooks", self.other, "user.create", {"id": "u"}), 200)
        self.assertEqual(ProjectWebhooks.events, [("b", "user.create")])

    def test_an_unknown_project_is_a_json_404(self) -> None:
        for path in ("/c/webhooks", "/tenants/zzz/webhooks"):
            with self.subTest(path=path):
                self.assertEqual(self.post(path, self.hanko, "user.create", {"id": "u"}), 404)
                response = self.webhook(path, self.hanko)
                self.assertEqual((response.code, json.loads(response.body)["error"]), (404, "not_found"))
        for path in ("/c/readyz", "/tenants/zzz/readyz"):
            response = self.fetch(path)
            self.assertEqual((response.code, json.loads(response.body)["error"]), (404, "not_found"))
        self.assertEqual(ProjectWebhooks.events, [])

    def test_readiness_is_the_requests_projects(self) -> None:
        self.other.fault = "error"
        a_ready, b_ready = self.fetch("/a/readyz"), self.fetch("/tenants/b/readyz")
        self.assertEqual((a_ready.code, json.loads(a_ready.body)["status"]), (200, "ready"))
        self.assertEqual(
            (b_ready.code, json.loads(b_ready.body)["problems"]),
            (503, ["no usable key set: Hanko's key endpoint fails"]),
        )

    def webhook(self, path: str, hanko: FakeHanko) -> HTTPResponse:
        body = json.dumps({"token": hanko.mint_webhook("user.create", {"id": "u"}), "event": "user.create"})
        return self.fetch(path, method="POST", body=body, raise_error=False)
