"""FakeHanko's webhook delivery, as Hanko's ``webhooks`` package does it.

Per event: one token, posted to every hook whose subscribed event is a prefix
of it (``strings.HasPrefix``), one hook after another, with a 10 s timeout and
no retry.  Each event is delivered in the background, as Hanko's worker
goroutines are.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from tornado.httpclient import AsyncHTTPClient, HTTPClientError

__all__ = ["WebhookSender"]

#: Hanko's ``http.Client`` timeout for one delivery.
DELIVERY_TIMEOUT_SECONDS = 10.0


class WebhookSender:
    """The hooks a FakeHanko posts to, and what they answered.

    :param mint: makes the token of one event (``mint(event, data)``).
    """

    def __init__(self, mint: Callable[[str, Mapping[str, Any]], str]) -> None:
        self._mint = mint
        #: Webhook URLs and the event prefixes each is subscribed to (Hanko's ``webhooks.hooks``).
        self.hooks: list[tuple[str, tuple[str, ...]]] = []
        #: Webhooks sent so far: (url, event, HTTP status, or 599 when the receiver could not be reached).
        self.deliveries: list[tuple[str, str, int]] = []
        self._sending: set[asyncio.Future[None]] = set()

    def register(self, url: str, events: Iterable[str]) -> None:
        """Post events that start with one of ``events`` to ``url``."""
        self.hooks.append((url, tuple(events)))

    async def send(self, url: str, event: str, data: Mapping[str, Any], *, token: str | None = None) -> int:
        """POST one webhook to ``url`` exactly as Hanko does; the receiver's HTTP status (599 if unreachable)."""
        body = json.dumps({"token": token or self._mint(event, data), "event": event})
        try:
            response = await AsyncHTTPClient().fetch(
                url,
                method="POST",
                body=body,
                headers={"Content-Type": "application/json"},
                raise_error=False,
                request_timeout=DELIVERY_TIMEOUT_SECONDS,
            )
            code = response.code
        except (HTTPClientError, OSError):  # raise_error=False still raises for a timeout or a refused connection
            code = 599
        self.deliveries.append((url, event, code))
        return code

    def fire(self, event: str, data: Mapping[str, Any]) -> None:
        """Deliver ``event`` to every hook subscribed to it, in the background: one token for all of them."""
        urls = [url for url, prefixes in self.hooks if any(event.startswith(prefix) for prefix in prefixes)]
        if urls:
            sending = asyncio.ensure_future(self._deliver(urls, event, self._mint(event, data)))
            self._sending.add(sending)
            sending.add_done_callback(self._sending.discard)

    async def sent(self) -> None:
        """Wait for every event fired so far to be delivered (or to fail)."""
        while self._sending:
            await asyncio.gather(*self._sending)

    async def _deliver(self, urls: list[str], event: str, token: str) -> None:
        for url in urls:  # one after another, as Hanko's worker does; a failure does not stop the others
            await self.send(url, event, {}, token=token)
