"""``python -m hanko_tornado.admin enable-webhook``: switch this service's webhook back on at Hanko.

Reads ``HANKO_ADMIN_API_URL``, ``HANKO_ADMIN_API_KEY`` and ``HANKO_WEBHOOK_URL`` from the environment;
``status`` prints what Hanko says of the webhook without changing it.  Exit status 0 when it is on.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from hanko_tornado.admin.client import HankoAdminClient
from hanko_tornado.admin.errors import HankoAdminError
from hanko_tornado.admin.health import WebhookHealth
from hanko_tornado.admin.settings import ADMIN_API_URL_VARIABLE, HankoAdminSettings
from hanko_tornado.errors import ConfigurationError


async def _run(command: str, settings: HankoAdminSettings) -> int:
    client = HankoAdminClient(settings)
    health = WebhookHealth(client)
    try:
        if command == "enable-webhook":
            for hook in await health.enable():
                print(f"switched on: {hook.callback} ({', '.join(hook.events)})")
        state = await health.check(wait=settings.timeout + 1)
    finally:
        await client.close()
    if state.problem:
        print(f"webhook: {state.problem}", file=sys.stderr)
    print(f"webhook enabled: {state.enabled}, failures: {state.failures}, webhooks: {state.webhooks}")
    return 0 if state.enabled else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hanko_tornado.admin", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("command", choices=("enable-webhook", "status"))
    args = parser.parse_args(argv)
    try:
        settings = HankoAdminSettings.from_env()
        if settings is None:
            raise ConfigurationError(ADMIN_API_URL_VARIABLE, "is not set")
        return asyncio.run(_run(args.command, settings))
    except ConfigurationError as error:
        print(f"hanko_tornado.admin: {error}", file=sys.stderr)
        return 2
    except HankoAdminError as error:
        print(f"hanko_tornado.admin: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
