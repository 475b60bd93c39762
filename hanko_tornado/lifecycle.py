"""The end of an application's Hanko objects: one call on shutdown closes what they hold."""

from __future__ import annotations

import tornado.web

from hanko_tornado.backends import close_cache
from hanko_tornado.settings import HankoSettings

__all__ = ["close"]


async def close(application: tornado.web.Application) -> None:
    """Close everything ``application``'s Hanko objects hold; await it once, on shutdown.

    The verifier or the projects' verifiers (their HTTP clients, their listener for ended sessions), the admin
    API's client and metadata cache, and the shared cache's connections.  What was never made is skipped, so it
    is safe on any application, with or without a ``hanko`` setting.
    """
    settings = application.settings
    if "hanko_admin_client" in settings or "hanko_admin_metadata" in settings:
        from hanko_tornado.admin.metadata_cache import close_admin  # the admin API only where it was used

        await close_admin(application)
    for owner in (settings.get("hanko_verifier"), settings.get("hanko_projects")):
        if owner is not None:
            await owner.close()
    hanko = settings.get("hanko")
    if isinstance(hanko, HankoSettings) and hanko.cache is not None:
        await close_cache(hanko.cache)  # a Redis cache's connections too
