"""Hanko's admin API from Tornado: an async client, log out everywhere, roles from private metadata, webhook health.

Configure it with ``hanko_admin=HankoAdminSettings(...)`` beside ``hanko=`` in
the application's settings (``HankoAdminSettings.from_env()`` reads
``HANKO_ADMIN_API_URL`` and ``HANKO_ADMIN_API_KEY``)::

    from hanko_tornado.admin import admin_client_for, log_out_everywhere, private_metadata_has

    class AdminOnly(HankoAuthMixin, CorsHandler):
        hanko_requires = private_metadata_has("roles", "admin")

    class Sessions(HankoAuthMixin, CorsHandler):
        async def delete(self) -> None:
            user = self.hanko_user
            await log_out_everywhere(admin_client_for(self.application), verifier_for(self.application), user.id)
"""

from hanko_tornado.admin.client import UNCHANGED, HankoAdminClient, admin_client_for
from hanko_tornado.admin.errors import (
    AdminNotFoundError,
    AdminRateLimitedError,
    AdminRequestError,
    AdminUnauthorizedError,
    AdminUnavailableError,
    HankoAdminError,
)
from hanko_tornado.admin.health import AdminReadinessHandler, WebhookHealth, WebhookState, webhook_health_for
from hanko_tornado.admin.logout import log_out_everywhere, revoke_session
from hanko_tornado.admin.metadata_cache import MetadataCache, close_admin, forget_for_event, metadata_cache_for
from hanko_tornado.admin.models import (
    AdminEmail,
    AdminSession,
    AdminUser,
    AuditLog,
    ConfigWebhook,
    Page,
    UserMetadata,
    Webhook,
    Webhooks,
)
from hanko_tornado.admin.requirements import private_metadata_has, private_metadata_passes
from hanko_tornado.admin.settings import HankoAdminSettings
from hanko_tornado.admin.webhooks import HankoAdminWebhookHandler

__all__ = [
    "UNCHANGED",
    "AdminEmail",
    "AdminNotFoundError",
    "AdminRateLimitedError",
    "AdminReadinessHandler",
    "AdminRequestError",
    "AdminSession",
    "AdminUnauthorizedError",
    "AdminUnavailableError",
    "AdminUser",
    "AuditLog",
    "ConfigWebhook",
    "HankoAdminClient",
    "HankoAdminError",
    "HankoAdminSettings",
    "HankoAdminWebhookHandler",
    "MetadataCache",
    "Page",
    "UserMetadata",
    "Webhook",
    "WebhookHealth",
    "WebhookState",
    "Webhooks",
    "admin_client_for",
    "close_admin",
    "forget_for_event",
    "log_out_everywhere",
    "metadata_cache_for",
    "private_metadata_has",
    "private_metadata_passes",
    "revoke_session",
    "webhook_health_for",
]
