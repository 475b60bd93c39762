"""One owner for an application's Hanko objects: made on first use, never in its settings, closed by close()."""

from __future__ import annotations

import gc
import json
import weakref

import tornado.web
from tornado.testing import gen_test

from hanko_tornado import HankoAuthMixin, HankoSettings, TokenVerifier, close, verifier_for
from hanko_tornado.admin import HankoAdminSettings, admin_client_for, metadata_cache_for, webhook_health_for
from hanko_tornado.deliveries import Deliveries, deliveries_of
from hanko_tornado.errors import KeysUnavailableError
from hanko_tornado.lifecycle import state_of
from hanko_tornado.testing import HankoTestCase
from hanko_tornado.webhooks import HankoWebhookHandler


class UserHandler(HankoAuthMixin, tornado.web.RequestHandler):
    def get(self) -> None:
        self.write({"id": self.hanko_user.id})


class Webhooks(HankoWebhookHandler):
    pass


class ApplicationStateTest(HankoTestCase):
    def get_app(self) -> tornado.web.Application:
        return tornado.web.Application(
            [(r"/user", UserHandler), (r"/webhooks/hanko", Webhooks)],
            hanko=self.hanko.settings(),
            hanko_admin=self.hanko.admin.settings(),
        )

    def test_the_settings_stay_what_the_application_was_given(self) -> None:
        given = dict(self._app.settings)
        self.assertEqual(self.fetch_with_token("/user", self.hanko.mint()).code, 200)
        webhook = json.dumps({"token": self.hanko.mint_webhook("user.create", {"id": "x"}), "event": "user.create"})
        self.assertEqual(self.fetch("/webhooks/hanko", method="POST", body=webhook).code, 200)
        admin_client_for(self._app)
        metadata_cache_for(self._app)
        webhook_health_for(self._app)
        self.assertEqual(self._app.settings, given)

    def test_each_object_is_made_once_per_application(self) -> None:
        verifier = verifier_for(self._app)
        self.assertIs(verifier_for(self._app), verifier)
        self.assertIs(state_of(self._app).verifier, verifier)
        self.assertIs(deliveries_of(self._app), deliveries_of(self._app))
        self.assertIs(admin_client_for(self._app), metadata_cache_for(self._app).client)
        other = tornado.web.Application(hanko=self.hanko.settings())
        self.assertIsNot(verifier_for(other), verifier)
        self.assertIsNot(deliveries_of(other), deliveries_of(self._app))
        self.io_loop.run_sync(lambda: close(other))

    def test_the_verifier_shares_its_cache_with_the_metadata_cache(self) -> None:
        self.assertIs(metadata_cache_for(self._app)._shared(), verifier_for(self._app).cache)

    @gen_test
    async def test_close_closes_what_was_made_and_it_stays_closed(self) -> None:
        verifier = verifier_for(self._app)
        await verifier.verify_token(self.hanko.mint())
        await close(self._app)
        self.assertIs(verifier_for(self._app), verifier, "a request after close meets the closed verifier")
        with self.assertRaises(KeysUnavailableError):
            await verifier.key_store.get_key("no such key", "RS256")


class GivenObjectsTest(HankoTestCase):
    def get_app(self) -> tornado.web.Application:
        self.given = TokenVerifier(self.hanko.settings())
        return tornado.web.Application([(r"/user", UserHandler)], hanko_verifier=self.given)

    def test_a_given_verifier_is_the_one_used_and_closed(self) -> None:
        self.assertEqual(self.fetch_with_token("/user", self.hanko.mint()).code, 200)
        self.assertIs(verifier_for(self._app), self.given)
        self.assertEqual(self.given.cache_info().misses, 1)

    @gen_test
    async def test_a_given_verifier_never_used_is_closed_too(self) -> None:
        await close(self._app)
        with self.assertRaises(KeysUnavailableError):
            await self.given.key_store.get_key(None, "RS256")

    def test_a_provided_part_is_used(self) -> None:
        deliveries = Deliveries()
        state_of(self._app).provide(Deliveries, deliveries)
        self.assertIs(deliveries_of(self._app), deliveries)


class LifetimeTest(HankoTestCase):
    def get_app(self) -> tornado.web.Application:
        return tornado.web.Application()

    def test_the_objects_go_with_their_application(self) -> None:
        app = tornado.web.Application(
            hanko=HankoSettings(api_url="https://a.example"), hanko_admin=HankoAdminSettings("https://admin.example")
        )
        verifier, deliveries = weakref.ref(verifier_for(app)), weakref.ref(deliveries_of(app))
        client = weakref.ref(admin_client_for(app))
        del app
        gc.collect()  # the application; its state goes with it, and the verifier's cycles at the next pass
        gc.collect()
        self.assertEqual((verifier(), deliveries(), client()), (None, None, None))

    def test_an_application_without_hanko_settings_is_told_what_it_needs(self) -> None:
        with self.assertRaisesRegex(TypeError, "hanko=HankoSettings"):
            verifier_for(tornado.web.Application())
        with self.assertRaisesRegex(TypeError, "TokenVerifier"):
            verifier_for(tornado.web.Application(hanko_verifier=object()))

    @gen_test
    async def test_close_is_safe_on_any_application(self) -> None:
        await close(tornado.web.Application())
