"""server.py's routes on Hanko's admin API: the caller's profile, log out everywhere, an admin-only route.

Without admin settings (``HANKO_ADMIN_API_URL``) each answers 501 ``admin_api_not_configured``.
"""

from __future__ import annotations

from typing import Any

from hanko_tornado import CorsHandler, HankoAuthMixin, verifier_for
from hanko_tornado.admin import HankoAdminError, admin_client_for, log_out_everywhere, private_metadata_has
from hanko_tornado.admin.settings import ADMIN_API_KEY_VARIABLE, ADMIN_API_URL_VARIABLE


class AdminApiHandler(HankoAuthMixin, CorsHandler):
    """A route that needs Hanko's admin API: 501, naming the variable to set, when it is not configured."""

    async def prepare(self) -> None:
        if "hanko_admin" not in self.settings:
            self.set_status(501)
            message = f"Set {ADMIN_API_URL_VARIABLE} (and {ADMIN_API_KEY_VARIABLE} on Hanko Cloud) to use this route."
            self.finish({"error": "admin_api_not_configured", "message": message})
            return
        await super().prepare()

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        error = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(error, HankoAdminError):
            self.clear()
            error.answer(self)  # 404, 503 with Retry-After...: never what Hanko said
        else:
            super().write_error(status_code, **kwargs)

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if not isinstance(value, HankoAdminError):  # the client logged it already, without any secret
            super().log_exception(typ, value, tb)


class MeHandler(AdminApiHandler):
    """The caller's profile from the admin API: emails and public metadata (never the private metadata)."""

    async def get(self) -> None:
        user = await admin_client_for(self.application).get_user(self.hanko_user.id)
        emails = [{"address": e.address, "is_primary": e.is_primary, "is_verified": e.is_verified} for e in user.emails]
        self.write({"user_id": user.id, "emails": emails, "public_metadata": user.metadata.public})


class SessionsHandler(AdminApiHandler):
    """``DELETE``: log the caller out everywhere, at Hanko and in every process at once."""

    async def delete(self) -> None:
        user = self.hanko_user
        client, verifier = admin_client_for(self.application), verifier_for(self.application)
        ended = await log_out_everywhere(client, verifier, user.id, also=user.session_id)
        self.write({"message": "Logged out everywhere.", "sessions_ended": ended})


class AdminOnlyHandler(AdminApiHandler):
    """Only for users whose private metadata's ``roles`` hold ``"admin"`` (403 ``insufficient_scope`` otherwise)."""

    hanko_requires = private_metadata_has("roles", "admin")

    def get(self) -> None:
        self.write({"message": "Hello, admin!", "user_id": self.hanko_user.id})


def admin_routes() -> list[Any]:
    """``/protected/me``, ``/protected/sessions`` and ``/protected/admin``."""
    return [
        (r"/protected/me", MeHandler),
        (r"/protected/sessions", SessionsHandler),
        (r"/protected/admin", AdminOnlyHandler),
    ]
