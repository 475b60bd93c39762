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

import tornado.web

from hanko_tornado.admin import HankoAdminClient, HankoAdminSettings, MetadataCache, private_metadata_has
from hanko_tornado.lifecycle import state_of
from hanko_tornado.requirement_data import data_to_load
from hanko_tornado.requirements import Requirement, passkey
from hanko_tornado.user import FrozenDict, HankoUser, freeze

CALLS = 10_000


def per_request(run: Callable[[], None]) -> float:
    """Seconds for ``CALLS`` calls of ``run``, each in a fresh context."""
    started = time.perf_counter()
    for _ in range(CALLS):
        contextvars.Context().run(run)
    return time.perf_counter() - started


def side_by_side(variants: dict[str, Callable[[], None]], rounds: int = 15) -> dict[str, float]:
    """Median microseconds per call of each variant, over rounds that alternate them (a noisy neighbour slows all)."""
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, run in variants.items():
            samples[name].append(per_request(run) / CALLS * 1e6)
    return {name: statistics.median(values) for name, values in samples.items()}


def main() -> None:
    client = HankoAdminClient(HankoAdminSettings("http://127.0.0.1:8001", metadata_ttl=3600))
    cache = MetadataCache(client)
    user = HankoUser.from_claims({"sub": str(uuid.uuid4()), "exp": 2_000_000_000, "amr": ["passkey"]})
    cache._entries[user.id] = (time.time(), freeze({"roles": ["editor", "admin"]}))  # remembered
    application = tornado.web.Application()
    state_of(application).provide(MetadataCache, cache)
    handler = types.SimpleNamespace(application=application)

    def check(requirement: Requirement) -> Callable[[], None]:
        def run() -> None:
            loading = data_to_load(requirement, user, handler)
            assert loading is None
            requirement.enforce(user)

        return run

    role = private_metadata_has("roles", "admin")
    results = side_by_side(
        {
            "harness (fresh context)": lambda: None,
            "passkey": check(passkey),
            'private_metadata_has("roles", "admin")': check(role),
            'passkey & private_metadata_has("roles", "admin")': check(passkey & role),
        }
    )
    harness, baseline = results["harness (fresh context)"], results["passkey"] - results["harness (fresh context)"]
    for name, micros in results.items():
        beyond = micros - harness
        print(f"{name:50} {micros:6.3f} µs  beyond the harness {beyond:6.3f} µs  ({beyond / baseline:4.1f}x passkey)")
    assert isinstance(cache._entries[user.id][1], FrozenDict)


if __name__ == "__main__":
    main()
