"""KeysFile: a sealed copy of the key set on disk, read as hostile input, and a key store seeded from it."""

from __future__ import annotations

import json
import os
import pathlib
import tempfile
import time
from typing import Any

import tornado.web
from support import captured_logs, key_store
from tornado.testing import gen_test

from hanko_tornado.cache import open_entry, seal_entry
from hanko_tornado.jwks import parse_jwks
from hanko_tornado.runner.keys_file import KeysFile
from hanko_tornado.testing import HankoTestCase, SigningKey

SECRET = "s" * 32


class KeysFileTest(HankoTestCase):
    def get_app(self) -> tornado.web.Application:
        return tornado.web.Application([], hanko=self.hanko.settings())

    def setUp(self) -> None:
        super().setUp()
        self.folder = tempfile.TemporaryDirectory()
        self.path = str(pathlib.Path(self.folder.name, "keys"))
        self.settings = self.hanko.settings(stale_grace=3600)

    def tearDown(self) -> None:
        self.folder.cleanup()
        super().tearDown()

    def keys_file(self, secret: str = SECRET, **overrides: Any) -> KeysFile:
        return KeysFile(
            self.path, secret, self.hanko.settings(stale_grace=3600, **overrides) if overrides else self.settings
        )

    def key_set(
        self, fetched_at: float | None = None, ttl: float = 600, keys: list[dict[str, Any]] | None = None
    ) -> Any:
        body = json.dumps({"keys": keys if keys is not None else [key.public_jwk() for key in self.hanko.keys]})
        return parse_jwks(body, fetched_at=time.time() if fetched_at is None else fetched_at, ttl=ttl)

    def write_entry(self, entry: dict[str, Any], secret: str = SECRET) -> None:
        key = f"hanko_tornado:keys-file:{self.settings.jwks_url}"
        pathlib.Path(self.path).write_text(seal_entry(secret, key, "keys-file", json.dumps(entry)))
        os.chmod(self.path, 0o600)

    def entry(self, **changes: Any) -> dict[str, Any]:
        jwks = json.dumps({"keys": [key.public_jwk() for key in self.hanko.keys]})
        return {"jwks_url": self.settings.jwks_url, "jwks": jwks, "fetched_at": time.time(), "ttl": 600, **changes}

    def refused(self, why: str) -> None:
        with captured_logs() as lines:
            self.assertIsNone(self.keys_file().read())
        self.assertTrue(any("ignoring the key set copy" in line and why in line for line in lines), lines)

    @gen_test
    async def test_a_copy_seeds_a_store_that_serves_through_an_outage(self) -> None:
        self.keys_file().write(self.key_set(fetched_at=time.time() - 1200))  # past its TTL, within the grace
        self.assertEqual(os.stat(self.path).st_mode & 0o777, 0o600)
        seed = self.keys_file().read()
        assert seed is not None and seed.key_set is not None
        self.hanko.fault = "error"
        store = key_store(self.settings, seed=seed)
        try:
            key = await store.get_key(self.hanko.keys[0].kid, "RS256")
        finally:
            await store.close()
        self.assertIsNotNone(key)
        self.assertEqual(store.status().keys, 1)

    def test_only_a_newer_key_set_is_written(self) -> None:
        keys_file = self.keys_file()
        keys_file.write(self.key_set(fetched_at=time.time()))
        written = pathlib.Path(self.path).read_text()
        keys_file.write(self.key_set(fetched_at=time.time() - 60))
        self.assertEqual(pathlib.Path(self.path).read_text(), written)
        keys_file.write(None)
        self.assertEqual(pathlib.Path(self.path).read_text(), written)

    def test_no_copy_is_no_seed(self) -> None:
        with captured_logs() as lines:
            self.assertIsNone(self.keys_file().read())
        self.assertFalse([line for line in lines if "WARNING" in line])

    def test_past_the_stale_grace_is_not_used(self) -> None:
        self.write_entry(self.entry(fetched_at=time.time() - 600 - 3601))
        self.assertIsNone(self.keys_file().read())

    def test_hostile_copies_are_ignored(self) -> None:
        other = SigningKey.generate(key_size=2048).public_jwk()
        private = {**self.hanko.keys[0].public_jwk(), "d": "AQAB"}
        cases: dict[str, tuple[dict[str, Any], str]] = {
            "another jwks_url": (self.entry(jwks_url="https://evil.example/.well-known/jwks.json"), "not a copy"),
            "fetched in the future": (self.entry(fetched_at=time.time() + 3600), "future"),
            "a TTL beyond the bound": (self.entry(ttl=10**9), "bad times"),
            "times that are not numbers": (self.entry(fetched_at="now"), "malformed"),
            "not a number at all": (self.entry(fetched_at=float("nan")), "bad times"),
            "a symmetric key": (self.entry(jwks=json.dumps({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]})), "usable"),
            "a private key": (self.entry(jwks=json.dumps({"keys": [private]})), "usable"),
            "a JWKS past the size bound": (self.entry(jwks=json.dumps({"keys": [other] * 2000})), "too large"),
        }
        for name, (entry, why) in cases.items():
            with self.subTest(name):
                self.write_entry(entry)
                self.refused(why)

    def test_a_copy_sealed_with_another_secret_or_tampered_with_is_ignored(self) -> None:
        self.write_entry(self.entry(), secret="t" * 32)
        self.refused("sealed")
        self.write_entry(self.entry())
        text = pathlib.Path(self.path).read_text()
        self.assertIn('"ttl": 600', text)
        pathlib.Path(self.path).write_text(text.replace('"ttl": 600', '"ttl": 601'))  # one byte of the sealed text
        self.refused("sealed")

    def test_a_file_others_may_write_or_a_link_is_ignored(self) -> None:
        self.write_entry(self.entry())
        os.chmod(self.path, 0o666)
        self.refused("only this user may write")
        os.chmod(self.path, 0o600)
        link = pathlib.Path(self.folder.name, "link")
        link.symlink_to(self.path)
        with captured_logs() as lines:
            self.assertIsNone(KeysFile(str(link), SECRET, self.settings).read())
        self.assertTrue(any("ignoring the key set copy" in line for line in lines), lines)

    def test_a_huge_file_is_not_read_whole(self) -> None:
        pathlib.Path(self.path).write_bytes(b"x" * (4 * self.settings.jwks_max_bytes))
        os.chmod(self.path, 0o600)
        self.refused("too large")

    def test_what_is_written_is_sealed(self) -> None:
        self.keys_file().write(self.key_set())
        text = pathlib.Path(self.path).read_text()
        entry = json.loads(open_entry(SECRET, f"hanko_tornado:keys-file:{self.settings.jwks_url}", "keys-file", text))
        self.assertEqual(entry["jwks_url"], self.settings.jwks_url)
        self.assertNotIn('"d"', entry["jwks"], "public keys only")
