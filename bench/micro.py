"""Micro-benchmark of the verify path: fresh and cached tokens against the bare RSA signature check.

Also the cost of a handler's requirement (``passkey & max_age(600)``) on a remembered token:
``python bench/micro.py``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import statistics
import time
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

import jwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from hanko_tornado import TokenVerifier
from hanko_tornado.requirements import max_age, passkey, requirement_for
from hanko_tornado.testing import FakeHanko


def _per_call(run: Callable[[], None], calls: int, repeats: int) -> float:
    """Median over ``repeats`` of the time per call, in microseconds."""
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        samples.append((time.perf_counter() - started) / calls * 1e6)
    return statistics.median(samples)


async def _per_await(make: Callable[[], Coroutine[Any, Any, None]], calls: int, repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        await make()
        samples.append((time.perf_counter() - started) / calls * 1e6)
    return statistics.median(samples)


async def measure(hanko: FakeHanko, tokens: list[str], repeats: int = 7) -> dict[str, float]:
    """Microseconds per token for each way of checking ``tokens`` (all valid, all distinct)."""
    settings = hanko.settings()
    source = TokenVerifier(settings)
    await source.key_store.refresh()
    seed = source.key_store.seed()  # every verifier below starts from this key set: none fetches
    public_key = hanko.keys[-1].private_key.public_key()
    parts = [token.rsplit(".", 1) for token in tokens]
    signed = [(signing_input.encode(), jwt.utils.base64url_decode(signature)) for signing_input, signature in parts]

    def bare_rsa() -> None:
        for message, signature in signed:
            public_key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())

    def pyjwt_decode() -> None:
        for token in tokens:
            jwt.decode(token, public_key, algorithms=["RS256"], audience="localhost")

    async def fresh() -> None:
        verifier = TokenVerifier(settings, seed=seed)  # an empty verified-token cache
        for token in tokens:
            await verifier.verify_token(token)

    warm = TokenVerifier(settings, seed=seed)
    for token in tokens:
        await warm.verify_token(token)

    async def cached() -> None:
        for token in tokens:
            await warm.verify_token(token)

    checked = TokenVerifier(dataclasses.replace(settings, session_check="validate", session_check_ttl=3600), seed=seed)
    users = [await checked.verify_token(token) for token in tokens]
    for token, user in zip(tokens, users, strict=True):
        await checked.session_checker.check(token, user)  # one call to Hanko per session, then remembered

    async def session_remembered() -> None:
        for token in tokens:
            user = checked.remembered_user(token)
            assert user is not None
            await checked.session_checker.check(token, user)

    ended = TokenVerifier(settings, seed=seed)
    for token in tokens:
        await ended.verify_token(token)
    for _ in range(10_000):  # logouts of other sessions, as webhooks record them
        await ended.revocations.end("session", str(uuid.uuid4()), time.time() + 3600)
        await ended.revocations.end("user", str(uuid.uuid4()), time.time() + 3600)

    def remembered(verifier: TokenVerifier) -> Callable[[], None]:
        def run() -> None:
            for _ in range(20):
                for token in tokens:
                    verifier.remembered_user(token)

        return run

    # Side by side, alternating, so that the machine's drift falls on both alike.
    plain, with_ended = [], []
    for _ in range(repeats * 3):
        plain.append(_per_call(remembered(warm), len(tokens) * 20, 1))
        with_ended.append(_per_call(remembered(ended), len(tokens) * 20, 1))

    class StepUpHandler:
        """What the mixin reads a requirement from: the method, then the class (no @requires here)."""

        hanko_requires = passkey & max_age(600)

        def get(self) -> None:
            pass

    handler, leeway = StepUpHandler(), settings.leeway
    users = [warm.remembered_user(token) for token in tokens]

    def remembered_only() -> None:
        for token in tokens:
            warm.remembered_user(token)

    def requirement_check() -> None:
        for user in users:
            requirement = requirement_for(handler, "GET")
            assert requirement is not None and user is not None
            requirement.enforce(user, leeway=leeway)

    def remembered_and_checked() -> None:
        for token in tokens:
            user = warm.remembered_user(token)
            requirement = requirement_for(handler, "GET")
            assert requirement is not None and user is not None
            requirement.enforce(user, leeway=leeway)

    results = {
        "remembered_user, nothing ended": statistics.median(plain),
        "remembered_user, 20,000 ended sessions and users": statistics.median(with_ended),
        "  ended-session bookkeeping (difference of medians)": statistics.median(with_ended) - statistics.median(plain),
        "bare RSA check": _per_call(bare_rsa, len(tokens), repeats),
        "jwt.decode (PyJWT)": _per_call(pyjwt_decode, len(tokens), repeats),
        "verify_token, never seen": await _per_await(fresh, len(tokens), repeats),
        "verify_token, seen before": await _per_await(cached, len(tokens), repeats),
        "seen before + session check, answer remembered": await _per_await(session_remembered, len(tokens), repeats),
        "remembered_user (the mixin's hot path)": _per_call(remembered_only, len(tokens), repeats),
        "requirement check (passkey & max_age), remembered user": _per_call(requirement_check, len(tokens), repeats),
        "seen before + requirement check": _per_call(remembered_and_checked, len(tokens), repeats),
    }
    await source.close()
    return results


async def main() -> None:
    hanko = FakeHanko(key_size=4096)
    hanko.start()
    tokens = [hanko.mint() for _ in range(300)]
    for name, micros in (await measure(hanko, tokens)).items():
        print(f"{name:56} {micros:8.1f} µs")
    await hanko.stop()


if __name__ == "__main__":
    asyncio.run(main())
