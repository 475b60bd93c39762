"""Prometheus metrics: what real requests count, bounded labels, and nothing at all when metrics are off."""

from __future__ import annotations

import ast
import asyncio
import gc
import json
import pathlib
import subprocess
import sys
import textwrap
import time
import unittest
import uuid
import weakref
from typing import Any, ClassVar

import tornado.web
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from tornado.testing import bind_unused_port

import hanko_tornado
from hanko_tornado import ConfigurationError, HankoAuthMixin, HankoSettings, MetricsHandler, verifier_for
from hanko_tornado.cache import cache_from_url
from hanko_tornado.metrics import NO_METRICS, REFUSAL_REASONS, WEBHOOK_FAILURE_REASONS
from hanko_tornado.prometheus import recorder_for
from hanko_tornado.testing import FakeHanko, HankoTestCase, SigningKey
from hanko_tornado.tokens import CacheInfo, TokenVerifier
from hanko_tornado.webhooks import HankoWebhookHandler

SECRET = "s" * 32


class UserHandler(HankoAuthMixin, tornado.web.RequestHandler):
    def get(self) -> None:
        self.write({"id": self.hanko_user.id})


class OptionalHandler(HankoAuthMixin, tornado.web.RequestHandler):
    hanko_optional = True

    def get(self) -> None:
        self.write({"signed_in": self.current_user is not None})


class MetricsTestCase(HankoTestCase):
    """An application counting into a fresh registry, which it also serves at /metrics."""

    settings_overrides: ClassVar[dict[str, Any]] = {}

    def make_fake_hanko(self) -> FakeHanko:
        return FakeHanko(key_size=2048, max_age=1)

    def get_app(self) -> tornado.web.Application:
        self.registry = CollectorRegistry()
        values = {"metrics": self.registry, "refetch_interval": 0.2, "jwks_min_ttl": 0, **self.settings_overrides}
        return tornado.web.Application(
            [
                (r"/user", UserHandler),
                (r"/optional", OptionalHandler),
                (r"/metrics", MetricsHandler, {"registry": self.registry}),
                (r"/webhooks/hanko", HankoWebhookHandler),
            ],
            hanko=self.hanko.settings(**values),
        )

    def value(self, name: str, **labels: str) -> float | None:
        return self.registry.get_sample_value(name, labels)

    def authentications(self, result: str, reason: str) -> float | None:
        return self.value("hanko_authentications_total", result=result, reason=reason)

    def status(self, token: str | None, path: str = "/user", **kwargs: Any) -> int:
        if token is None:
            return self.fetch(path, **kwargs).code
        return self.fetch_with_token(path, token, raise_error=False, **kwargs).code

    def sleep(self, seconds: float) -> None:
        self.io_loop.run_sync(lambda: asyncio.sleep(seconds))


class AuthenticationOutcomeTest(MetricsTestCase):
    def test_every_outcome_is_counted_under_its_fixed_reason(self) -> None:
        token = self.hanko.mint()
        forged = ".".join(token.split(".")[:2] + self.hanko.mint().split(".")[2:])  # another token's signature
        self.assertEqual([self.status(token), self.status(token)], [200, 200])
        cases = [
            (self.hanko.mint(lifetime=-3600), "expired"),
            (forged, "bad_signature"),
            (self.hanko.mint(key=SigningKey.generate(key_size=2048)), "unknown_key"),
            (self.hanko.mint(audience=["evil.example"]), "audience"),
            (self.hanko.mint_webhook("user.create", {"id": "x"}), "not_session"),
            ("not-a-token", "malformed"),
            ("<script>" * 10, "malformed"),
        ]
        for bad, reason in cases:
            with self.subTest(reason=reason):
                self.assertEqual(self.status(bad), 401)
        self.assertEqual(self.status(None), 401)
        self.assertEqual(self.status(None, "/optional"), 200)
        cookies = {"Cookie": f"hanko={token}; hanko={token}"}
        self.assertEqual(self.fetch("/user", headers=cookies).code, 401)

        self.assertEqual(self.authentications("accepted", "valid"), 2)
        for reason, count in [
            ("expired", 1),
            ("bad_signature", 1),
            ("unknown_key", 1),
            ("audience", 1),
            ("not_session", 1),
            ("malformed", 2),
            ("missing", 1),
            ("duplicate_cookie", 1),
            ("other", 0),
        ]:
            self.assertEqual(self.authentications("refused", reason), count, reason)
        self.assertEqual(self.authentications("anonymous", "missing"), 1)
        self.assertEqual(self.value("hanko_token_cache_lookups_total", result="hit"), 1)
        self.assertEqual(self.value("hanko_token_cache_lookups_total", result="miss"), 8)
        self.assertEqual(self.value("hanko_token_cache_entries"), 1)

    def test_labels_are_a_fixed_bounded_set(self) -> None:
        for token in ["x" * 100, "a.b.c", self.hanko.mint(claims={"sub": "<img src=x>"}), self.hanko.mint()]:
            self.status(token)
        families = {family.name: family for family in self.registry.collect()}
        labels = {(s.labels["result"], s.labels["reason"]) for s in families["hanko_authentications"].samples}
        expected = {("accepted", "valid"), ("anonymous", "missing")}
        expected |= {("refused", reason) for reason in REFUSAL_REASONS}
        expected |= {("unavailable", r) for r in ("keys_unavailable", "session_check_unavailable", "other")}
        self.assertEqual(labels, expected)
        self.assertEqual(len(labels), 20)

    def test_served_in_the_prometheus_text_format(self) -> None:
        self.assertEqual(self.status(self.hanko.mint()), 200)
        response = self.fetch("/metrics")
        self.assertEqual(response.code, 200)
        self.assertTrue(response.headers["Content-Type"].startswith("text/plain"))
        families = {f.name: f for f in text_string_to_metric_families(response.body.decode())}
        for name in [
            "hanko_authentications",
            "hanko_jwks_fetches",
            "hanko_jwks_fetch_duration_seconds",
            "hanko_jwks_keys",
            "hanko_jwks_age_seconds",
            "hanko_jwks_stale",
            "hanko_jwks_fetch_failing",
            "hanko_token_cache_lookups",
            "hanko_token_cache_entries",
            "hanko_session_checks",
            "hanko_shared_cache_fallbacks",
        ]:
            self.assertIn(name, families)
        openmetrics = self.fetch("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
        self.assertTrue(openmetrics.headers["Content-Type"].startswith("application/openmetrics-text"))
        self.assertTrue(openmetrics.body.endswith(b"# EOF\n"))


class KeyFetchTest(MetricsTestCase):
    def test_fetches_by_result_with_their_durations_and_the_key_set_state(self) -> None:
        self.hanko.fault = "error"
        self.assertEqual(self.status(self.hanko.mint()), 503)  # a cold verifier and no keys
        self.assertEqual(self.authentications("unavailable", "keys_unavailable"), 1)
        self.assertEqual(self.value("hanko_jwks_fetches_total", result="failure"), 1)
        self.assertEqual(self.value("hanko_jwks_fetch_failing"), 1)
        self.assertEqual(self.value("hanko_jwks_keys"), 0)
        self.assertIsNone(self.value("hanko_jwks_age_seconds"))
        self.hanko.fault = None
        self.sleep(0.25)  # past the refetch interval
        self.assertEqual(self.status(self.hanko.mint()), 200)
        self.assertEqual(self.value("hanko_jwks_fetches_total", result="success"), 1)
        self.assertEqual(self.value("hanko_jwks_fetch_duration_seconds_count"), 2)
        self.assertEqual(self.value("hanko_jwks_fetch_duration_seconds_bucket", le="+Inf"), 2)
        self.assertEqual(self.value("hanko_jwks_fetch_duration_seconds_bucket", le="1.0"), 2, "loopback is fast")
        duration = self.value("hanko_jwks_fetch_duration_seconds_sum")
        assert duration is not None
        self.assertGreater(duration, 0)
        self.assertEqual((self.value("hanko_jwks_fetch_failing"), self.value("hanko_jwks_keys")), (0, 1))
        self.assertEqual(self.value("hanko_jwks_stale"), 0)
        age = self.value("hanko_jwks_age_seconds")
        assert age is not None
        self.assertLess(age, 1)

    def test_stale_keys_during_an_outage(self) -> None:
        token = self.hanko.mint()
        self.assertEqual(self.status(token), 200)
        self.hanko.fault = "error"
        self.sleep(1.1)  # past the key set's TTL (max-age 1)
        self.assertEqual(self.status(self.hanko.mint()), 200)  # served by the stale set; a refresh starts
        self.sleep(0.1)
        self.assertEqual((self.value("hanko_jwks_stale"), self.value("hanko_jwks_fetch_failing")), (1, 1))
        self.assertEqual(self.value("hanko_jwks_fetches_total", result="failure"), 1)
        age = self.value("hanko_jwks_age_seconds")
        assert age is not None
        self.assertGreater(age, 1)


class SessionCheckMetricsTest(MetricsTestCase):
    settings_overrides: ClassVar[dict[str, Any]] = {"session_check": "validate", "session_check_ttl": 0}

    def test_session_checks_by_result(self) -> None:
        session = str(uuid.uuid4())
        token, ended, refused = self.hanko.mint(), self.hanko.mint(session_id=session), self.hanko.mint()
        self.assertEqual(self.status(token), 200)
        self.hanko.revoke(session)
        self.assertEqual(self.status(ended), 401)
        self.hanko.verdicts[refused] = 404
        self.assertEqual(self.status(refused), 401)
        self.hanko.session_fault = "error"
        self.assertEqual(self.status(self.hanko.mint()), 503)
        self.assertEqual(self.status(self.hanko.mint()), 503)  # within the back-off: Hanko is not asked
        for result, count in [("live", 1), ("ended", 1), ("refused", 1), ("failed", 1), ("backing_off", 1)]:
            self.assertEqual(self.value("hanko_session_checks_total", result=result), count, result)
        self.assertEqual(self.authentications("refused", "session_ended"), 1)
        self.assertEqual(self.authentications("refused", "session_refused"), 1)
        self.assertEqual(self.authentications("unavailable", "session_check_unavailable"), 2)


class SharedCacheFallbackTest(MetricsTestCase):
    def get_app(self) -> tornado.web.Application:
        sock, port = bind_unused_port()
        sock.close()  # nothing listens there: every operation is refused
        self.settings_overrides = {"cache": cache_from_url(f"redis://127.0.0.1:{port}/0"), "cache_secret": SECRET}
        return super().get_app()

    def test_failed_operations_are_counted_by_kind(self) -> None:
        self.assertEqual(self.status(self.hanko.mint()), 200)
        self.assertGreaterEqual(self.value("hanko_shared_cache_fallbacks_total", operation="read") or 0, 1)
        self.assertEqual(self.value("hanko_shared_cache_fallbacks_total", operation="lock"), 1)
        self.assertEqual(self.value("hanko_shared_cache_fallbacks_total", operation="write"), 1)


class RegistryTest(unittest.TestCase):
    def test_applications_sharing_a_registry_share_its_series(self) -> None:
        registry = CollectorRegistry()
        first = verifier_for(tornado.web.Application(hanko=HankoSettings(api_url="https://a.io", metrics=registry)))
        second = verifier_for(tornado.web.Application(hanko=HankoSettings(api_url="https://b.io", metrics=registry)))
        self.assertIs(first.metrics, second.metrics)
        self.assertEqual(registry.get_sample_value("hanko_jwks_keys"), 0)

    def test_settings_that_are_not_a_registry(self) -> None:
        for value in ["yes", 1.5, object()]:
            with self.subTest(value=value), self.assertRaisesRegex(ConfigurationError, "^metrics: must be True"):
                HankoSettings(api_url="https://a.io", metrics=value)
        self.assertIs(
            verifier_for(tornado.web.Application(hanko=HankoSettings(api_url="https://a.io"))).metrics, NO_METRICS
        )
        with self.assertRaisesRegex(ConfigurationError, "^HANKO_METRICS: must be true or false"):
            HankoSettings.from_env({"HANKO_API_URL": "https://a.io", "HANKO_METRICS": "maybe"})


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60, check=False
    )


class WithoutMetricsTest(unittest.TestCase):
    def test_nothing_is_imported_nor_counted_when_metrics_are_off(self) -> None:
        result = run_python(
            """
            import asyncio, sys
            import tornado.web
            from tornado.httpclient import AsyncHTTPClient
            from tornado.httpserver import HTTPServer
            from tornado.testing import bind_unused_port
            import hanko_tornado, hanko_tornado.health, hanko_tornado.metrics
            from hanko_tornado import HankoAuthMixin, ReadinessHandler, verifier_for
            from hanko_tornado.testing import FakeHanko

            class UserHandler(HankoAuthMixin, tornado.web.RequestHandler):
                def get(self):
                    self.write({"id": self.hanko_user.id})

            async def main():
                hanko = FakeHanko(key_size=2048)
                hanko.start()
                routes = [("/user", UserHandler), ("/readyz", ReadinessHandler)]
                app = tornado.web.Application(routes, hanko=hanko.settings())
                sock, port = bind_unused_port()
                HTTPServer(app).add_sockets([sock])
                client, url = AsyncHTTPClient(), f"http://127.0.0.1:{port}"
                ok = await client.fetch(url + "/user", headers={"Authorization": "Bearer " + hanko.mint()})
                ready = await client.fetch(url + "/readyz")
                refused = await client.fetch(url + "/user", raise_error=False)
                recorder = verifier_for(app).metrics
                print(ok.code, ready.code, refused.code, type(recorder).__name__, vars(recorder))

            asyncio.run(main())
            print(sorted(name for name in sys.modules if name.startswith("prometheus")))
            """
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.splitlines(), ["200 200 401 Recorder {}", "[]"])

    def test_asking_for_metrics_without_the_extra_is_one_line(self) -> None:
        result = run_python(
            """
            import sys
            sys.modules["prometheus_client"] = None  # as if not installed
            from hanko_tornado import ConfigurationError, HankoSettings
            from hanko_tornado.metrics import metrics_available
            print(metrics_available())
            for make in (lambda: HankoSettings(api_url="https://a.io", metrics=True),
                         lambda: HankoSettings.from_env({"HANKO_API_URL": "https://a.io", "HANKO_METRICS": "true"})):
                try:
                    make()
                except ConfigurationError as error:
                    print(error)
            print(HankoSettings.from_env({"HANKO_API_URL": "https://a.io", "HANKO_METRICS": "false"}).metrics)
            """
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(
            result.stdout.splitlines(),
            [
                "False",
                "metrics: needs prometheus_client: pip install 'hanko-tornado[metrics]'",
                "HANKO_METRICS: needs prometheus_client: pip install 'hanko-tornado[metrics]'",
                "False",
            ],
        )


class WebhookEventTest(MetricsTestCase):
    def post(self, body: str) -> int:
        return self.fetch("/webhooks/hanko", method="POST", body=body, raise_error=False).code

    def test_webhooks_are_counted_by_event_family_and_result(self) -> None:
        logout = "session.delete.explicit.logout"
        token = self.hanko.mint_webhook(logout, {"id": "5e551011-0000-4000-8000-00000000cccc"})
        body = json.dumps({"token": token, "event": logout})
        self.assertEqual([self.post(body), self.post(body)], [200, 200])
        forged = self.hanko.mint_webhook("user.create", {"id": "x"}, lifetime=-3600)
        self.assertEqual(self.post(json.dumps({"token": forged, "event": "whatever.a-client.wrote"})), 401)
        self.assertEqual(self.post("not json"), 400)
        self.assertEqual(self.value("hanko_webhook_events_total", event="session.delete", result="accepted"), 1)
        self.assertEqual(self.value("hanko_webhook_events_total", event="session.delete", result="replayed"), 1)
        self.assertEqual(self.value("hanko_webhook_events_total", event="other", result="refused"), 1)
        self.assertEqual(self.value("hanko_webhook_events_total", event="other", result="malformed"), 1)
        self.assertEqual(self.value("hanko_webhook_events_total", event="user.create", result="accepted"), 0)

    def test_failures_by_reason_and_the_time_of_the_last_verified_webhook(self) -> None:
        self.assertEqual(self.post("not json"), 400)
        self.assertIsNone(self.value("hanko_webhook_last_verified_timestamp_seconds"), "absent before the first")
        self.assertEqual(self.value("hanko_webhook_failures_total", reason="expired"), 0, "exported at 0")
        expired = self.hanko.mint_webhook("user.create", {"id": "x"}, lifetime=-3600)
        self.assertEqual(self.post(json.dumps({"token": expired, "event": "user.create"})), 401)
        self.assertIsNone(self.value("hanko_webhook_last_verified_timestamp_seconds"), "refused ones do not count")
        before = time.time()
        token = self.hanko.mint_webhook("user.create", {"id": "x"})
        self.assertEqual(self.post(json.dumps({"token": token, "event": "user.create"})), 200)
        last = self.value("hanko_webhook_last_verified_timestamp_seconds")
        assert last is not None
        self.assertGreaterEqual(last, before)
        self.assertLessEqual(last, time.time())
        self.hanko.fault = "error"
        rotated = self.hanko.mint_webhook("user.create", {"id": "x"}, key=self.hanko.rotate_key())
        self.sleep(0.3)  # past refetch_interval: the unknown key is looked for, and the key endpoint fails
        self.assertEqual(self.post(json.dumps({"token": rotated, "event": "user.create"})), 503)
        failures = {
            reason: self.value("hanko_webhook_failures_total", reason=reason) for reason in WEBHOOK_FAILURE_REASONS
        }
        self.assertEqual(
            {reason: count for reason, count in failures.items() if count},
            {"expired": 1, "malformed_body": 1, "keys_unavailable": 1},
        )


class Owner:
    """What a verifier hands its recorder: a key set's state and a token cache's counters."""

    def __init__(self, keys: int, entries: int) -> None:
        self.keys, self.entries = keys, entries

    def key_status(self) -> Any:
        from hanko_tornado.keys import KeySetStatus

        return KeySetStatus(usable=True, keys=self.keys, age=1.0, ttl=60.0, stale=False, failing=False)

    def token_cache(self) -> CacheInfo:
        return CacheInfo(hits=self.entries, misses=1, maxsize=100, currsize=self.entries)


class WatchTest(unittest.TestCase):
    def setUp(self) -> None:
        self.registry = CollectorRegistry()
        self.recorder = recorder_for(self.registry)

    def value(self, name: str, **labels: str) -> float | None:
        return self.registry.get_sample_value(name, labels)

    def test_what_an_owner_reports_is_read_at_each_scrape_while_it_lives(self) -> None:
        first, second = Owner(keys=3, entries=7), Owner(keys=2, entries=5)
        self.recorder.watch(first, key_status=first.key_status, token_cache=first.token_cache)
        self.recorder.watch(second, key_status=second.key_status, token_cache=second.token_cache)
        self.assertEqual((self.value("hanko_jwks_keys"), self.value("hanko_token_cache_entries")), (2, 12))
        second.entries = 6
        self.assertEqual(self.value("hanko_token_cache_lookups_total", result="hit"), 13, "read at the scrape")
        del second
        gc.collect()
        self.assertEqual((self.value("hanko_jwks_keys"), self.value("hanko_token_cache_entries")), (3, 7))
        del first
        gc.collect()
        self.assertEqual((self.value("hanko_jwks_keys"), self.value("hanko_token_cache_entries")), (0, 0))

    def test_a_verifier_is_not_kept_alive_by_its_registry(self) -> None:
        verifier = TokenVerifier(HankoSettings(api_url="https://a.io", metrics=self.registry))
        self.assertEqual(self.value("hanko_jwks_fetch_failing"), 0)
        verifier.key_store._streak.failed("the key endpoint failed")  # as a failed fetch leaves it
        self.assertEqual(self.value("hanko_jwks_fetch_failing"), 1)
        collected: list[bool] = []
        weakref.finalize(verifier, collected.append, True)
        del verifier
        gc.collect()
        self.assertEqual(collected, [True])
        self.assertEqual(self.value("hanko_jwks_fetch_failing"), 0)

    def test_one_key_store_watched_twice_counts_once_and_functions_are_optional(self) -> None:
        owner = Owner(keys=3, entries=7)
        self.recorder.watch(owner, key_status=owner.key_status, token_cache=owner.token_cache)
        self.recorder.watch(owner, key_status=owner.key_status)
        self.recorder.watch(owner)
        self.assertEqual((self.value("hanko_jwks_keys"), self.value("hanko_token_cache_entries")), (3, 7))


PACKAGE = pathlib.Path(hanko_tornado.__file__).resolve().parent  # the checkout, or the installed wheel


def imports_of(module: str) -> set[str]:
    """The hanko_tornado modules ``module`` imports anywhere in its text: function-local and type-checking too."""
    found = set()
    for node in ast.walk(ast.parse((PACKAGE / f"{module}.py").read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("hanko_tornado"):
            found.add(node.module.removeprefix("hanko_tornado").lstrip(".") or node.names[0].name)
        elif isinstance(node, ast.Import):
            found.update(
                a.name.removeprefix("hanko_tornado.") for a in node.names if a.name.startswith("hanko_tornado")
            )
    return found


class ImportTest(unittest.TestCase):
    """Metrics look at nothing above them; the lower modules import one way."""

    LOWER = (
        "cache",
        "ended_records",
        "failure_streak",
        "jwks",
        "jwks_fetch",
        "keys",
        "metrics",
        "prometheus",
        "revocations",
        "sealing",
        "session_protocol",
        "sessions",
        "settings",
    )

    def test_metrics_import_only_the_errors_and_prometheus_only_metrics(self) -> None:
        self.assertEqual(imports_of("metrics"), {"errors"})
        self.assertEqual(imports_of("prometheus"), {"errors", "metrics"})

    def test_only_the_prometheus_module_imports_prometheus_client(self) -> None:
        def imports_prometheus_client(path: pathlib.Path) -> bool:
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
                names += [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
                if any(name.split(".")[0] == "prometheus_client" for name in names):
                    return True
            return False

        importing = sorted(
            str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py") if imports_prometheus_client(path)
        )
        # The admin extra exports its own webhook gauges (hanko_tornado.admin.health), through its own collector.
        self.assertEqual([name for name in importing if not name.startswith("admin/")], ["prometheus.py"])

    def test_no_circle_through_the_lower_modules(self) -> None:
        graph = {module: imports_of(module) & set(self.LOWER) for module in self.LOWER}
        for start in self.LOWER:
            seen, todo = set(), list(graph[start])
            while todo:
                module = todo.pop()
                if module not in seen:
                    seen.add(module)
                    todo.extend(graph[module])
            self.assertNotIn(start, seen, f"{start} imports itself through others")
        self.assertIn("cache", graph["settings"], "the graph sees the imports it should")
