"""``HankoTestCase`` and a burst helper: test handlers against a FakeHanko on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from tornado.httpclient import AsyncHTTPClient, HTTPResponse
from tornado.testing import AsyncHTTPTestCase

from hanko_tornado.cache import close_cache
from hanko_tornado.settings import HankoSettings
from hanko_tornado.testing.fake import FakeHanko

__all__ = ["HankoTestCase", "fetch_concurrently"]


async def fetch_concurrently(requests: Sequence[tuple[str, str]], timeout: float = 60) -> list[HTTPResponse]:
    """GET every ``(url, token)`` at once, the token as a bearer header; answers in order, errors not raised.

    For bursts: one client with as many connections as requests, so that all are in flight together.
    """
    client = AsyncHTTPClient(force_instance=True, max_clients=max(1, len(requests)))
    try:
        return await asyncio.gather(
            *(
                client.fetch(
                    url, headers={"Authorization": f"Bearer {token}"}, raise_error=False, request_timeout=timeout
                )
                for url, token in requests
            )
        )
    finally:
        client.close()


class HankoTestCase(AsyncHTTPTestCase):
    """An ``AsyncHTTPTestCase`` with a :class:`FakeHanko` running as ``self.hanko``.

    Build the application under test with ``self.hanko.settings()`` in
    ``get_app``; send tokens with :meth:`fetch_with_token`.
    """

    hanko_key_size = 2048

    def setUp(self) -> None:
        self.hanko = self.make_fake_hanko()
        super().setUp()
        self.hanko.start()

    def tearDown(self) -> None:
        # Webhooks still under way reach the application while it is whole (each gives up after 10 s).
        self.io_loop.run_sync(self.hanko.webhooks_sent, timeout=60)
        for owner in (self._app.settings.get("hanko_verifier"), self._app.settings.get("hanko_projects")):
            if owner is not None:
                self.io_loop.run_sync(owner.close)
        settings = self._app.settings.get("hanko")
        if isinstance(settings, HankoSettings) and settings.cache is not None:
            self.io_loop.run_sync(lambda: close_cache(settings.cache))  # a Redis cache's connections too
        self.io_loop.run_sync(self.hanko.stop)
        super().tearDown()

    def make_fake_hanko(self) -> FakeHanko:
        """The fake tenant for this test; override to configure it."""
        return FakeHanko(key_size=self.hanko_key_size)

    def fetch_with_token(self, path: str, token: str, *, cookie: bool = False, **kwargs: Any) -> HTTPResponse:
        """``self.fetch`` with ``token`` as a bearer header, or as the ``hanko`` cookie."""
        headers = dict(kwargs.pop("headers", None) or {})
        if cookie:
            headers["Cookie"] = f"hanko={token}"
        else:
            headers["Authorization"] = f"Bearer {token}"
        return self.fetch(path, headers=headers, **kwargs)
