"""``HankoAdminWebhookHandler``: Hanko's webhooks, also dropping remembered roles when a user changes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hanko_tornado.admin.metadata_cache import forget_for_event
from hanko_tornado.webhooks import HankoWebhookHandler

__all__ = ["HankoAdminWebhookHandler"]


class HankoAdminWebhookHandler(HankoWebhookHandler):
    """A :class:`~hanko_tornado.webhooks.HankoWebhookHandler` that drops a user's remembered private metadata
    (roles) on ``user.update*`` and ``user.delete``, here and in every process.

    It sees only verified events, each once: a forged or replayed webhook drops nothing.  Override
    :meth:`on_hanko_event` as usual, and call ``await super().on_hanko_event(event, data)`` first.
    """

    async def on_hanko_event(self, event: str, data: Mapping[str, Any]) -> None:
        await forget_for_event(self.application, event, data)
