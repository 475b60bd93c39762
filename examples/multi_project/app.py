"""Two Hanko projects in one application, chosen by the path: ``/shop/...`` and ``/admin/...``.

Each project has its own API URL, keys and audience; a token is only ever
checked against its path's project (a shop token on ``/admin/me`` is a 401),
and a path of no project is a 404::

    SHOP_HANKO_API_URL=https://<shop project>.hanko.io SHOP_HANKO_AUDIENCE=shop.example.com \\
    ADMIN_HANKO_API_URL=https://<admin project>.hanko.io ADMIN_HANKO_AUDIENCE=admin.example.com \\
        python examples/multi_project/app.py
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Mapping

import tornado.web
from tornado.httputil import HTTPServerRequest

from hanko_tornado import ConfigurationError, HankoAuthMixin, HankoProjects, HankoSettings, close

PROJECTS = ("shop", "admin")


class MeHandler(HankoAuthMixin, tornado.web.RequestHandler):
    """Who is calling, in the project the path names."""

    def get(self, project: str) -> None:
        self.write({"project": project, "user_id": self.hanko_user.id})


def project_of(request: HTTPServerRequest) -> str | None:
    """``/shop/me`` -> ``"shop"``; ``None`` (a 404) for a path of no project."""
    first = request.path.split("/")[1]
    return first if first in PROJECTS else None


def settings_from_env(environ: Mapping[str, str] = os.environ) -> dict[str, HankoSettings]:
    """Each project's settings from its own variables: ``SHOP_HANKO_API_URL``, ``ADMIN_HANKO_AUDIENCE``..."""
    projects = {}
    for name in PROJECTS:
        prefix = f"{name.upper()}_"
        try:
            projects[name] = HankoSettings.from_env(
                {k[len(prefix) :]: v for k, v in environ.items() if k.startswith(prefix)}
            )
        except ConfigurationError as error:  # name the project's own variable
            raise ConfigurationError(prefix + error.setting, error.problem) from None
    return projects


def make_app(projects: Mapping[str, HankoSettings] | None = None) -> tornado.web.Application:
    """The application; each project's settings from the environment by default."""
    hanko_projects = HankoProjects(projects or settings_from_env(), select=project_of)
    return tornado.web.Application([(r"/(shop|admin)/me", MeHandler)], hanko_projects=hanko_projects)


async def main() -> None:
    port = int(os.environ.get("PORT", "8000"))
    app = make_app()
    app.listen(port, address=os.environ.get("HOST", "127.0.0.1"))
    print(f"listening on http://localhost:{port}/shop/me and /admin/me", flush=True)
    try:
        await asyncio.Event().wait()  # until Ctrl-C
    finally:
        await close(app)  # Hanko's HTTP clients and caches


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: main() closes, then a quiet exit
        asyncio.run(main())
