"""Several Hanko projects in one application: each token checked by its own project only, a bounded registry."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any, ClassVar

import tornado.web
from support import captured_logs
from tornado.httpclient import HTTPResponse

from hanko_tornado import CorsHandler, CorsSettings, HankoAuthMixin, HankoSettings
from hanko_tornado.projects import HankoProjects
from hanko_tornado.requirements import max_age, passkey
from hanko_tornado.testing import FakeHanko, HankoTestCase, SigningKey
from hanko_tornado.tokens import TokenVerifier
from hanko_tornado.webhooks import HankoWebhookHandler


class MeHandler(HankoAuthMixin, CorsHandler):
    def get(self, *args: str, **kwargs: str) -> None:
        self.write({"project": self.get_hanko_project(), "user_id": self.hanko_user.id})


class StepUpHandler(MeHandler):
    hanko_requires = passkey & max_age(600)


class TenantHandler(MeHandler):
    """Chooses the project from the route itself, as Hanko v3's tenant paths do."""

    def get_hanko_project(self) -> str | None:
        return self.path_kwargs["tenant"]


class ProjectWebhooks(HankoWebhookHandler):
    """Each project's webhooks at its own URL (Hanko signs each tenant's with that tenant's key)."""

    def get_hanko_verifier(self) -> TokenVerifier:
        verifier = self.settings["hanko_projects"].verifier(self.request.path.split("/")[1])
        assert isinstance(verifier, TokenVerifier)
        return verifier


def by_first_path_segment(request: Any) -> str | None:
    return str(request.path.split("/")[1]) or None


class ProjectTestCase(HankoTestCase):
    max_verifiers: ClassVar[int] = 16

    def setUp(self) -> None:
        self.other = self.make_other_hanko()
        super().setUp()
        self.other.start()

    def tearDown(self) -> None:
        self.io_loop.run_sync(self.other.stop)  # HankoTestCase closes the projects' verifiers
        super().tearDown()

    def make_other_hanko(self) -> FakeHanko:
        return FakeHanko(key_size=2048)

    def get_app(self) -> tornado.web.Application:
        projects: dict[str, HankoSettings] = {
            "a": self.hanko.settings(refetch_interval=0.2),
            "b": self.other.settings(cookie_name="b_session", leeway=0, refetch_interval=0.2),
        }
        self.projects = HankoProjects(projects, select=by_first_path_segment, max_verifiers=self.max_verifiers)
        return tornado.web.Application(
            [
                (r"/[a-z]+/me", MeHandler),
                (r"/[a-z]+/step-up", StepUpHandler),
                (r"/tenants/(?P<tenant>[a-z]+)/me", TenantHandler),
                (r"/[a-z]+/webhooks", ProjectWebhooks),
            ],
            hanko_projects=self.projects,
            cors=CorsSettings(origins=["http://localhost:3000"]),
        )

    def get(self, path: str, token: str, **kwargs: Any) -> HTTPResponse:
        return self.fetch_with_token(path, token, raise_error=False, **kwargs)

    def assert_refused(self, path: str, token: str, reason: str, **kwargs: Any) -> None:
        response = self.get(path, token, **kwargs)
        self.assertEqual(response.code, 401, response.body)
        self.assertIn(reason, json.loads(response.body)["message"])


class TwoProjectsTest(ProjectTestCase):
    def test_each_project_accepts_its_own_tokens(self) -> None:
        ada, bob = "aaaaaaaa-0000-4000-8000-00000000000a", "bbbbbbbb-0000-4000-8000-00000000000b"
        response = self.get("/a/me", self.hanko.mint(ada))
        self.assertEqual(json.loads(response.body), {"project": "a", "user_id": ada})
        response = self.fetch("/b/me", headers={"Cookie": f"b_session={self.other.mint(bob)}"})
        self.assertEqual(json.loads(response.body), {"project": "b", "user_id": bob})
        self.assertEqual((self.hanko.jwks_fetches, self.other.jwks_fetches), (1, 1))

    def test_neither_accepts_the_others_tokens(self) -> None:
        a_token, b_token = self.hanko.mint(), self.other.mint()
        self.assert_refused("/b/me", a_token, "unknown signing key")
        self.assert_refused("/a/me", b_token, "unknown signing key")
        self.assert_refused("/tenants/b/me", a_token, "unknown signing key")

    def test_a_token_remembered_by_its_project_is_not_accepted_by_another(self) -> None:
        a_token = self.hanko.mint()
        for _ in range(2):
            self.assertEqual(self.get("/a/me", a_token).code, 200)
        self.assert_refused("/b/me", a_token, "unknown signing key")
        self.assertEqual(self.get("/a/me", a_token).code, 200)

    def test_each_project_reads_its_own_cookie(self) -> None:
        response = self.fetch("/b/me", headers={"Cookie": f"hanko={self.other.mint()}"})
        self.assertEqual((response.code, json.loads(response.body)["error"]), (401, "missing_token"))

    def test_requirements_use_the_projects_own_settings(self) -> None:
        now = int(time.time())
        self.assertEqual(self.get("/a/step-up", self.hanko.mint(claims={"iat": now - 620})).code, 200)  # leeway 30
        response = self.get("/b/step-up", self.other.mint(claims={"iat": now - 620}))  # leeway 0
        self.assertEqual((response.code, json.loads(response.body)["max_age"]), (401, 600))

    def test_a_handler_may_choose_the_project(self) -> None:
        response = self.get("/tenants/b/me", self.other.mint("bbbbbbbb-0000-4000-8000-00000000000b"))
        self.assertEqual(json.loads(response.body)["project"], "b")

    def test_a_request_for_no_project_is_not_found(self) -> None:
        for path in ["/c/me", "/tenants/zzz/me"]:
            with self.subTest(path=path):
                response = self.get(path, self.hanko.mint())
                self.assertEqual((response.code, json.loads(response.body)["error"]), (404, "not_found"))
        self.assertEqual(self.projects.live_projects(), ())


class SameKeyIdTest(ProjectTestCase):
    """Project b publishes a key under a's key id: a's tokens are still checked with b's key only."""

    shared_kid = "0c1d2e3f-0000-4000-8000-000000000001"

    def make_fake_hanko(self) -> FakeHanko:
        return FakeHanko(key_size=2048, keys=[SigningKey.generate(key_size=2048, kid=self.shared_kid)])

    def make_other_hanko(self) -> FakeHanko:
        return FakeHanko(key_size=2048, keys=[SigningKey.generate(key_size=2048, kid=self.shared_kid)])

    def test_no_fallback_to_the_other_projects_key(self) -> None:
        self.assert_refused("/b/me", self.hanko.mint(), "bad signature")
        self.assert_refused("/a/me", self.other.mint(), "bad signature")
        self.assertEqual(self.get("/a/me", self.hanko.mint()).code, 200)
        self.assertEqual(self.get("/b/me", self.other.mint()).code, 200)


class BoundedTest(ProjectTestCase):
    max_verifiers: ClassVar[int] = 1

    def test_at_most_max_verifiers_live_the_least_recently_used_is_let_go(self) -> None:
        a_token = self.hanko.mint()
        b_cookie = {"Cookie": f"b_session={self.other.mint()}"}
        with captured_logs() as lines:
            self.assertEqual(self.get("/a/me", a_token).code, 200)
            self.assertEqual(self.fetch("/b/me", headers=b_cookie).code, 200)
            self.assertEqual(self.projects.live_projects(), ("b",))
            self.assertEqual(self.get("/a/me", a_token).code, 200)
            self.assertEqual(self.fetch("/b/me", headers=b_cookie).code, 200)
        self.assertEqual((self.hanko.jwks_fetches, self.other.jwks_fetches), (1, 1), "a verifier let go comes back")
        warnings = [line for line in lines if "more than 1 Hanko projects in use" in line]
        self.assertEqual(len(warnings), 1, lines)


class TakingTurnsTest(ProjectTestCase):
    """The reviewer's attacks on eviction: more projects than max_verifiers, requests naming each in turn."""

    max_verifiers: ClassVar[int] = 2

    def setUp(self) -> None:
        self.third = FakeHanko(key_size=2048)
        super().setUp()
        self.third.start()

    def tearDown(self) -> None:
        self.io_loop.run_sync(self.third.stop)
        super().tearDown()

    def get_app(self) -> tornado.web.Application:
        app = super().get_app()
        projects = {
            "a": self.hanko.settings(refetch_interval=60),
            "b": self.other.settings(refetch_interval=60),
            "c": self.third.settings(refetch_interval=60),
        }
        self.projects = HankoProjects(projects, select=by_first_path_segment, max_verifiers=self.max_verifiers)
        app.settings["hanko_projects"] = self.projects
        return app

    def test_evicting_a_verifier_never_brings_a_logged_out_session_back(self) -> None:
        session = str(uuid.uuid4())
        token = self.hanko.mint(session_id=session)
        self.assertEqual(self.get("/a/me", token).code, 200)
        data = self.hanko.sessions[session].as_webhook_data()
        url = self.get_url("/a/webhooks")
        status = self.io_loop.run_sync(lambda: self.hanko.send_webhook(url, "session.delete.explicit.logout", data))
        self.assertEqual(status, 200)
        self.assert_refused("/a/me", token, "session ended")
        for path in ("/b/me", "/c/me", "/b/me", "/c/me"):  # anonymous requests naming other projects
            self.assertEqual(self.fetch(path, raise_error=False).code, 401)
        self.assertNotIn("a", self.projects.live_projects())
        self.assert_refused("/a/me", token, "session ended")
        for path in ("/b/me", "/c/me"):
            self.fetch(path, raise_error=False)
        # The minute a let-go verifier waits is over (what its timer does): the next one is new, the end kept.
        first = self.projects._closing["a"][0]
        self.projects._close_later("a")
        self.io_loop.run_sync(lambda: asyncio.sleep(0))
        self.assert_refused("/a/me", token, "session ended")
        self.assertIsNot(self.projects.verifier("a"), first)
        self.assert_refused("/a/me", token, "session ended")
        self.assertEqual(self.get("/a/me", self.hanko.mint()).code, 200, "other sessions of a still work")

    def test_projects_taking_turns_fetch_each_projects_keys_once(self) -> None:
        tokens = {"a": self.hanko.mint(), "b": self.other.mint(), "c": self.third.mint()}
        for round_ in range(20):
            for name, token in tokens.items():
                response = self.get(f"/{name}/me", token)
                self.assertEqual(response.code, 200, (round_, name, response.body))
        fetches = (self.hanko.jwks_fetches, self.other.jwks_fetches, self.third.jwks_fetches)
        self.assertEqual(fetches, (1, 1, 1), "60 requests over 3 projects: one key fetch per project")
        self.assertLessEqual(len(self.projects._closing), self.max_verifiers, "verifiers awaiting close are bounded")

    def test_a_new_verifier_starts_from_the_last_ones_keys_and_fetch_time(self) -> None:
        tokens = {"a": self.hanko.mint(), "b": self.other.mint(), "c": self.third.mint()}
        for name, token in tokens.items():
            self.assertEqual(self.get(f"/{name}/me", token).code, 200)
        first = self.projects._closing["a"][0]
        # Every let-go verifier closed now, as after the minute: only the kept seeds remain.
        for name in list(self.projects._closing):
            self.projects._close_later(name)
        self.io_loop.run_sync(lambda: asyncio.sleep(0))
        for _ in range(3):
            for name, token in tokens.items():
                self.assertEqual(self.get(f"/{name}/me", token).code, 200)
                for other in list(self.projects._closing):
                    self.projects._close_later(other)
        self.assertNotIn(first, self.projects._verifiers.values(), "a's verifier was made anew")
        fetches = (self.hanko.jwks_fetches, self.other.jwks_fetches, self.third.jwks_fetches)
        self.assertEqual(fetches, (1, 1, 1))


class ConfigurationTest(ProjectTestCase):
    def test_projects_from_a_function(self) -> None:
        known = {"a": self.hanko.settings()}
        projects = HankoProjects(known.get, max_verifiers=2)
        self.assertIsNone(projects.verifier("z"))
        self.assertEqual(projects.settings_for("a"), self.hanko.settings())

    def test_wrong_arguments(self) -> None:
        with self.assertRaises(ValueError):
            HankoProjects({}, max_verifiers=0)
        with self.assertRaises(TypeError):
            HankoProjects({"a": "https://a.hanko.io"})  # type: ignore[dict-item]
        with self.assertRaises(TypeError):
            HankoProjects(lambda name: "https://a.hanko.io").verifier("a")  # type: ignore[arg-type,return-value]
