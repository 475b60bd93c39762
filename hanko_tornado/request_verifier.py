"""Which verifier checks a request: the application's, or that of the Hanko project the request names.

One way for every handler: :class:`~hanko_tornado.mixin.HankoAuthMixin` (and the
WebSocket mixin), :class:`~hanko_tornado.webhooks.HankoWebhookHandler` and
:class:`~hanko_tornado.health.ReadinessHandler` each call these from their
overridable ``get_hanko_verifier()`` and ``get_hanko_project()``.
"""

from __future__ import annotations

from collections.abc import Callable

import tornado.web

from hanko_tornado.lifecycle import verifier_for
from hanko_tornado.projects import HankoProjects
from hanko_tornado.tokens import TokenVerifier

__all__ = ["request_project", "request_verifier"]


def request_verifier(handler: tornado.web.RequestHandler, project: Callable[[], str | None]) -> TokenVerifier:
    """The verifier that checks ``handler``'s request: the application's, or that of the request's project.

    Without ``hanko_projects``, the application's (``hanko=``); with it, the verifier of the project
    ``project()`` (the handler's ``get_hanko_project``) names.

    :raises tornado.web.HTTPError: 404 when the request names no project, or one there is not; 503 once the
        projects are closed (shut down: a verifier made now would never be closed).
    """
    projects = handler.settings.get("hanko_projects")
    if projects is None:
        return verifier_for(handler.application)
    if not isinstance(projects, HankoProjects):
        raise TypeError("the 'hanko_projects' setting must be a HankoProjects")
    if projects.closed:
        raise tornado.web.HTTPError(503, "the Hanko projects are closed")
    name = project()
    verifier = projects.verifier(name) if name is not None else None
    if verifier is None:
        raise tornado.web.HTTPError(404, "no Hanko project for this request")
    return verifier


def request_project(handler: tornado.web.RequestHandler) -> str | None:
    """The project the application's ``HankoProjects.select`` says ``handler``'s request belongs to."""
    projects = handler.settings["hanko_projects"]
    if projects.select is None:
        raise TypeError("give HankoProjects a select=, or override get_hanko_project()")
    project: str | None = projects.select(handler.request)
    return project
