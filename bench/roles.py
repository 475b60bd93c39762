"""Cost of a role from private metadata on a remembered answer: ``python bench/roles.py``.

What the mixin does per request for ``hanko_requires = private_metadata_has("roles", "admin")`` once the
user's private metadata is remembered: :func:`~hanko_tornado.requirement_data.data_to_load` (nothing to
await) and the check, each request in a fresh context as Tornado runs each request in its own task.
Side by side: the same for ``passkey`` (no I/O), and an empty fresh context (the harness alone).
Target: under 2 µs per request beyond the harness.
"""

from __future__ import annotations

import contextvars
import statistics
import time
import types
import uuid
from collections.abc import Callable

from hanko_tornado.admin import HankoAdminClient, HankoAdminSettings, MetadataCache, private_metadata_has
from hanko_tornado.requirement_data import data_to_load
from hanko_tornado.requirements import Requirement, passkey
from hanko_tornado.user import FrozenDict, HankoUser, freeze

CALLS = 20_000


def per_request(run: Callable[[], None], repeats: int = 9) -> float:
    """Median over ``repeats`` of microseconds per call of ``run``, each in a fresh context."""
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(CALLS):
            contextvars.Context().run(run)
        samples.append((time.perf_counter() - started) / CALLS * 1e6)
    return statistics.median(samples)


def main() -> None:
    client = HankoAdminClient(HankoAdminSettings("http://127.0.0.1:8001", metadata_ttl=3600))
    cache = MetadataCache(client)
    user = HankoUser.from_claims({"sub": str(uuid.uuid4()), "exp": 2_000_000_000, "amr": ["passkey"]})
    cache._entries[user.id] = (time.time(), freeze({"roles": ["editor", "admin"]}))  # remembered
    handler = types.SimpleNamespace(application=types.SimpleNamespace(settings={"hanko_admin_metadata": cache}))

    def check(requirement: Requirement) -> Callable[[], None]:
        def run() -> None:
            loading = data_to_load(requirement, user, handler)
            assert loading is None
            requirement.enforce(user)

        return run

    role = private_metadata_has("roles", "admin")
    results = {
        "harness (fresh context)": per_request(lambda: None),
        "passkey": per_request(check(passkey)),
        'private_metadata_has("roles", "admin")': per_request(check(role)),
        'passkey & private_metadata_has("roles", "admin")': per_request(check(passkey & role)),
    }
    harness = results["harness (fresh context)"]
    for name, micros in results.items():
        print(f"{name:52} {micros:6.3f} µs   beyond the harness: {micros - harness:6.3f} µs")
    assert isinstance(cache._entries[user.id][1], FrozenDict)


if __name__ == "__main__":
    main()
