"""``server.py --dev``: an embedded stand-in for Hanko that issues its own tokens, and the banner that says so.

The stand-in (:class:`~hanko_tornado.testing.FakeHanko`, with its admin API
and the frontend API that ``<hanko-auth>`` calls) is mounted under
:data:`DEV_PREFIX` on the server's own port, so the application trusts keys
it serves itself: hence loopback only, and one process.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from hanko_tornado.admin.settings import HankoAdminSettings
from hanko_tornado.errors import ConfigurationError
from hanko_tornado.settings import HankoSettings, is_loopback_host

__all__ = ["DEV_PREFIX", "DevStandIn"]

#: Where the stand-in's routes are mounted on the server's own origin.
DEV_PREFIX = "/_dev/hanko"
#: The one user the stand-in knows, an admin (private metadata ``roles``), with a token of 12 hours.
_DEV_USER = "aaaaaaaa-0000-4000-8000-000000000014"


@dataclasses.dataclass(frozen=True)
class DevStandIn:
    """The settings that trust the stand-in, the routes that serve it, and a token it issued."""

    hanko: HankoSettings
    admin: HankoAdminSettings
    routes: list[Any]
    #: A session token that stays good for 12 hours: in the banner only, never in a repr (logs, tracebacks).
    token: str = dataclasses.field(repr=False)

    @classmethod
    def start(cls, host: str, port: int, processes: int) -> DevStandIn:
        """A stand-in for a server on ``host``:``port``.

        :raises ConfigurationError: ``host`` is not loopback, or ``processes`` is not 1.
        """
        if not is_loopback_host(host):
            raise ConfigurationError("--dev", "issues its own tokens, so it only runs on a loopback --host")
        if processes != 1:
            raise ConfigurationError("--dev", "runs one process: each would issue tokens with keys of its own")
        from hanko_tornado.testing import FakeHanko  # only dev mode needs the testing kit
        from hanko_tornado.testing.frontend import FakeFrontendApi  # the login flow <hanko-auth> runs, and logout

        fake = FakeHanko(key_size=4096)
        url_host = f"[{host}]" if ":" in host else host
        hanko = HankoSettings(api_url=f"http://{url_host}:{port}{DEV_PREFIX}", audience=fake.audience)
        token = fake.mint(_DEV_USER, lifetime=12 * 3600)
        fake.admin.add_user(_DEV_USER, email="dev@example.com", private={"roles": ["admin"]})
        fake.admin.add_webhook(f"http://{url_host}:{port}/webhooks/hanko")  # its admin revocations reach us
        routes = [*fake.routes(DEV_PREFIX), *FakeFrontendApi(fake).routes(DEV_PREFIX)]
        return cls(hanko, HankoAdminSettings(api_url=f"{hanko.api_url}/admin"), routes, token)

    def print_banner(self, host: str, port: int) -> None:
        """Say on stdout that tokens are self-issued, and how to call the server with this one."""
        url = f"http://{host}:{port}/protected"
        print(
            "\n".join(
                [
                    "=" * 72,
                    "DEV MODE: keys and tokens come from an embedded stand-in for Hanko.",
                    "Tokens are self-issued: never expose this server or use it in production.",
                    "=" * 72,
                    "Try the protected route with a bearer token:",
                    f"  curl -H 'Authorization: Bearer {self.token}' {url}",
                    "or with the hanko cookie:",
                    f"  curl --cookie 'hanko={self.token}' {url}",
                    f"or open http://{host}:{port}/app in a browser (the login page offers the token).",
                    "",
                ]
            ),
            flush=True,
        )
