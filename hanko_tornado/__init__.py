"""Verify Hanko session tokens in Tornado handlers.

::

    from hanko_tornado import CorsHandler, CorsSettings, HankoAuthMixin, HankoSettings

    class ProtectedHandler(HankoAuthMixin, CorsHandler):
        def get(self) -> None:
            self.write({"user_id": self.hanko_user.id})

    app = tornado.web.Application(
        [(r"/protected", ProtectedHandler)],
        hanko=HankoSettings(api_url="https://xyz.hanko.io"),
        cors=CorsSettings(origins=["https://app.example.com"]),
    )
"""

from hanko_tornado.candidates import HankoToken
from hanko_tornado.cors import CorsHandler, CorsSettings
from hanko_tornado.errors import (
    AuthenticationError,
    ConfigurationError,
    CrossOriginRequestError,
    HankoError,
    InsufficientScopeError,
    InsufficientUserAuthenticationError,
    InvalidTokenError,
    KeysUnavailableError,
    MissingTokenError,
    RequirementError,
    SessionCheckUnavailableError,
    UnavailableError,
)
from hanko_tornado.health import LivenessHandler, ReadinessHandler
from hanko_tornado.lifecycle import close, verifier_for
from hanko_tornado.mixin import HankoAuthMixin
from hanko_tornado.pages import HankoPageMixin
from hanko_tornado.projects import HankoProjects
from hanko_tornado.prometheus import MetricsHandler
from hanko_tornado.requirements import Requirement, requires
from hanko_tornado.session_protocol import SessionStatus
from hanko_tornado.settings import HankoSettings
from hanko_tornado.tokens import TokenVerifier
from hanko_tornado.user import HankoUser
from hanko_tornado.webhooks import HankoWebhookHandler, WebhookEvent
from hanko_tornado.websocket import HankoWebSocketMixin

__all__ = [
    "AuthenticationError",
    "ConfigurationError",
    "CorsHandler",
    "CorsSettings",
    "CrossOriginRequestError",
    "HankoAuthMixin",
    "HankoError",
    "HankoPageMixin",
    "HankoProjects",
    "HankoSettings",
    "HankoToken",
    "HankoUser",
    "HankoWebSocketMixin",
    "HankoWebhookHandler",
    "InsufficientScopeError",
    "InsufficientUserAuthenticationError",
    "InvalidTokenError",
    "KeysUnavailableError",
    "LivenessHandler",
    "MetricsHandler",
    "MissingTokenError",
    "ReadinessHandler",
    "Requirement",
    "RequirementError",
    "SessionCheckUnavailableError",
    "SessionStatus",
    "TokenVerifier",
    "UnavailableError",
    "WebhookEvent",
    "close",
    "requires",
    "verifier_for",
]

__version__ = "0.2.0"
