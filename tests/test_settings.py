"""HankoSettings: normalised URLs, strict values, and start-up errors that name what to fix."""

from __future__ import annotations

import unittest

from hanko_tornado import ConfigurationError, HankoSettings


class HankoSettingsTest(unittest.TestCase):
    def test_trailing_slash_and_tenant_path(self) -> None:
        self.assertEqual(
            HankoSettings(api_url="https://x.hanko.io/").jwks_url, "https://x.hanko.io/.well-known/jwks.json"
        )
        self.assertEqual(
            HankoSettings(api_url="https://h.example.com/tenant-1/").jwks_url,
            "https://h.example.com/tenant-1/.well-known/jwks.json",
        )

    def test_https_required_unless_loopback(self) -> None:
        for url in ["http://127.0.0.1:8000", "http://localhost", "http://[::1]:8000", "http://127.0.0.2"]:
            HankoSettings(api_url=url)
        for url in ["http://x.hanko.io", "ftp://x.hanko.io", "x.hanko.io", "https://", "https://u:p@x.io"]:
            with self.subTest(url=url), self.assertRaises(ConfigurationError):
                HankoSettings(api_url=url)

    def test_numbers_are_checked(self) -> None:
        for field, value in [("leeway", -1), ("jwks_timeout", 0), ("token_cache_size", 0), ("leeway", float("nan"))]:
            with self.subTest(field=field), self.assertRaisesRegex(ConfigurationError, field):
                HankoSettings(api_url="https://x.io", **{field: value})

    def test_leeway_is_bounded(self) -> None:
        self.assertEqual(HankoSettings(api_url="https://x.io", leeway=300).leeway, 300)
        for value in (300.5, 31536000, float("inf")):
            with self.subTest(value=value), self.assertRaisesRegex(ConfigurationError, "^leeway: "):
                HankoSettings(api_url="https://x.io", leeway=value)

    def test_audience_accepts_one_or_many(self) -> None:
        self.assertEqual(HankoSettings(api_url="https://x.io", audience="a").audience, ("a",))  # type: ignore[arg-type]
        self.assertEqual(HankoSettings(api_url="https://x.io", audience=("a", "b")).audience, ("a", "b"))


class FromEnvTest(unittest.TestCase):
    def test_reads_every_variable(self) -> None:
        settings = HankoSettings.from_env(
            {
                "HANKO_API_URL": "https://x.hanko.io/",
                "HANKO_AUDIENCE": "localhost, example.com",
                "HANKO_ISSUER": "https://x.hanko.io",
                "HANKO_COOKIE_NAME": "session",
                "HANKO_LEEWAY_SECONDS": "5",
                "HANKO_JWKS_TIMEOUT_SECONDS": "2.5",
                "HANKO_JWKS_REFETCH_INTERVAL_SECONDS": "10",
                "HANKO_JWKS_STALE_GRACE_SECONDS": "60",
                "HANKO_TOKEN_CACHE_SIZE": "100",
                "HANKO_AUDIENCE_UNRELATED": "ignored",
            }
        )
        self.assertEqual(settings.api_url, "https://x.hanko.io")
        self.assertEqual(settings.audience, ("localhost", "example.com"))
        self.assertEqual((settings.cookie_name, settings.leeway, settings.jwks_timeout), ("session", 5.0, 2.5))
        self.assertEqual((settings.refetch_interval, settings.stale_grace, settings.token_cache_size), (10, 60, 100))

    def test_errors_name_the_variable(self) -> None:
        cases = [
            ({}, "HANKO_API_URL: is not set"),
            ({"HANKO_API_URL": "http://x.hanko.io"}, "HANKO_API_URL: must use https"),
            ({"HANKO_API_URL": "https://x.io", "HANKO_LEEWAY_SECONDS": "soon"}, "HANKO_LEEWAY_SECONDS: must be"),
            ({"HANKO_API_URL": "https://x.io", "HANKO_TOKEN_CACHE_SIZE": "-3"}, "HANKO_TOKEN_CACHE_SIZE: must be"),
            ({"HANKO_API_URL": "https://x.io", "HANKO_COOKIE_NAME": "a;b"}, "HANKO_COOKIE_NAME: is not"),
            ({"HANKO_API_URL": "https://x.io", "HANKO_LEEWAY_SECONDS": "31536000"}, "HANKO_LEEWAY_SECONDS: must be"),
        ]
        for environ, message in cases:
            with self.subTest(message=message), self.assertRaises(ConfigurationError) as raised:
                HankoSettings.from_env(environ)
            self.assertTrue(str(raised.exception).startswith(message), str(raised.exception))
            self.assertNotIn("\n", str(raised.exception))


class PrivateNetworkHankoTest(unittest.TestCase):
    """A self-hosted Hanko on a private network (Hanko's docker-compose: http://hanko:8000)."""

    def test_http_beyond_loopback_needs_allow_http_and_warns_once(self) -> None:
        with self.assertRaisesRegex(ConfigurationError, "^api_url: must use https.*allow_http=True"):
            HankoSettings(api_url="http://hanko:8000")
        with self.assertLogs("hanko_tornado", "WARNING") as logs:
            settings = HankoSettings(api_url="http://hanko:8000", allow_http=True)
        self.assertEqual(settings.jwks_url, "http://hanko:8000/.well-known/jwks.json")
        self.assertEqual(len(logs.output), 1)
        self.assertIn("unencrypted", logs.output[0])

    def test_from_env(self) -> None:
        environ = {"HANKO_API_URL": "http://hanko:8000"}
        with self.assertRaisesRegex(ConfigurationError, "^HANKO_API_URL: must use https.*HANKO_ALLOW_HTTP=true"):
            HankoSettings.from_env(environ)
        with self.assertLogs("hanko_tornado", "WARNING"):
            self.assertTrue(HankoSettings.from_env({**environ, "HANKO_ALLOW_HTTP": "true"}).allow_http)
        with self.assertRaisesRegex(ConfigurationError, "^HANKO_ALLOW_HTTP: must be true or false"):
            HankoSettings.from_env({**environ, "HANKO_ALLOW_HTTP": "maybe"})
        with self.assertRaisesRegex(ConfigurationError, "^HANKO_API_URL: must use https"):
            HankoSettings.from_env({**environ, "HANKO_ALLOW_HTTP": "false"})

    def test_session_check_modes(self) -> None:
        for mode in ("off", "validate", "renew"):
            self.assertEqual(HankoSettings(api_url="https://x.io", session_check=mode).session_check, mode)
        with self.assertRaisesRegex(ConfigurationError, "^HANKO_SESSION_CHECK: must be one of off, validate, renew"):
            HankoSettings.from_env({"HANKO_API_URL": "https://x.io", "HANKO_SESSION_CHECK": "sometimes"})
        with self.assertRaisesRegex(ConfigurationError, "^session_check_concurrency"):
            HankoSettings(api_url="https://x.io", session_check_concurrency=0)
