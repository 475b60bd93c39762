"""Never-seen tokens with a shared Redis against memory only: what the ended-session check costs a new token.

Two verifiers, one on this process's memory and one on a real ``redis-server`` (subscribed, so ending
sessions are known from the snapshot), verify tokens neither has seen, one at a time, in alternating rounds
(a noisy neighbour slows both alike).  Reports tokens per second of each, the median of the per-round ratios,
and the Redis commands the Redis side sent.  Target: at least 0.9x.  Run: ``python bench/redis_fresh.py``
(``--rounds``, ``--tokens``; ``--source DIR`` measures another checkout's package, e.g. the code before).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import pathlib
import statistics
import sys
import time

here = pathlib.Path(__file__).resolve().parent
parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--rounds", type=int, default=10)
parser.add_argument("--tokens", type=int, default=300, help="never-seen tokens per round and side")
parser.add_argument("--source", default=str(here.parent), help="the checkout whose hanko_tornado is measured")
args = parser.parse_args()
sys.path[:0] = [args.source, str(here.parent / "tests")]

import tornado.web
from redis_server import RedisServer

from hanko_tornado import verifier_for
from hanko_tornado.cache import cache_from_url, close_cache
from hanko_tornado.testing import FakeHanko


async def per_second(verifier: object, tokens: list[str]) -> float:
    gc.disable()
    started = time.perf_counter()
    for token in tokens:
        await verifier.verify_token(token)  # type: ignore[attr-defined]
    elapsed = time.perf_counter() - started
    gc.enable()
    return len(tokens) / elapsed


async def main() -> None:
    redis = RedisServer()
    redis.start()
    hanko = FakeHanko(key_size=2048)
    hanko.start()
    store = cache_from_url(redis.url)
    memory = verifier_for(tornado.web.Application(hanko=hanko.settings()))
    shared = verifier_for(tornado.web.Application(hanko=hanko.settings(cache=store, cache_secret="b" * 32)))
    try:
        for verifier in (memory, shared):
            await verifier.verify_token(hanko.mint())
        deadline = time.monotonic() + 30
        while not getattr(shared.revocations, "knows_every_end", True) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # the code before has no such flag: give it its subscription
        rounds = [([hanko.mint() for _ in range(args.tokens)], [hanko.mint() for _ in range(args.tokens)])]
        rounds += [
            ([hanko.mint() for _ in range(args.tokens)], [hanko.mint() for _ in range(args.tokens)])
            for _ in range(args.rounds - 1)
        ]
        before = int(redis.info("total_commands_processed"))
        results = []
        for index, (mine, theirs) in enumerate(rounds):
            first, second = (memory, shared) if index % 2 == 0 else (shared, memory)
            a = await per_second(first, mine)
            b = await per_second(second, theirs)
            results.append((a, b) if first is memory else (b, a))
        commands = int(redis.info("total_commands_processed")) - before - 1
    finally:
        for verifier in (memory, shared):
            await verifier.close()
        await close_cache(store)
        await hanko.stop()
        redis.stop()
    memory_rate = statistics.median(m for m, _ in results)
    shared_rate = statistics.median(s for _, s in results)
    ratio = statistics.median(s / m for m, s in results)
    print(f"never-seen tokens, {args.rounds} alternating rounds of {args.tokens}, package from {args.source}")
    print(f"  memory only: {memory_rate:8.0f} tokens/s (median)")
    print(f"  with Redis:  {shared_rate:8.0f} tokens/s (median)")
    print(f"  ratio:       {ratio:8.2f}x (median of per-round ratios; target >= 0.9)")
    print(f"  Redis commands during the rounds: {commands} for {args.rounds * args.tokens} tokens")


asyncio.run(main())
