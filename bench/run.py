"""Benchmark: what Hanko authentication costs a Tornado API built with hanko_tornado.

One command (``make bench``): starts ``server.py`` against a local FakeHanko
(RS256, 4096-bit keys, Hanko-shaped claims), drives load with wrk when it is
installed (else with bench/loadgen.py), and prints

- the open route and the protected route with one token, 2,000 tokens in
  rotation and never-seen tokens: requests per second, p50/p99 latency, and
  each protected figure as a ratio to the open route under the same load and
  the same Authorization header, from interleaved rounds (medians);
- a micro-benchmark of the verify path against the bare signature check;
- JWKS fetch counts for a cold burst and for the whole run;
- the memory the verified-token cache takes at its default bound.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import pathlib
import platform
import shutil
import signal
import socket
import statistics
import sys
import tempfile
import tracemalloc
from typing import Any

from cryptography.hazmat.primitives import serialization
from tornado.httpclient import AsyncHTTPClient
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port

ROOT = pathlib.Path(__file__).resolve().parent.parent
LUA = ROOT / "bench" / "tokens.lua"
sys.path[:0] = [str(ROOT / "bench"), str(ROOT)]  # bench/ and server.py are scripts, not packages

import instructions
import loadgen
import micro

import server
from hanko_tornado import CorsSettings, HankoSettings, TokenVerifier, verifier_for
from hanko_tornado.testing import FakeHanko, SigningKey, fetch_concurrently


def _mint_batch(args: tuple[bytes, str, int]) -> list[str]:
    pem, kid, count = args
    private_key = serialization.load_pem_private_key(pem, password=None)
    hanko = FakeHanko(keys=[SigningKey(kid=kid, alg="RS256", private_key=private_key)])
    return [hanko.mint() for _ in range(count)]


def mint_many(key: SigningKey, count: int) -> list[str]:
    """``count`` distinct valid tokens, minted on every core."""
    pem = key.private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    workers = os.cpu_count() or 1
    batches = [(pem, key.kid, count // workers + (i < count % workers)) for i in range(workers)]
    with multiprocessing.Pool(workers) as pool:
        return [token for batch in pool.map(_mint_batch, batches) for token in batch]


def pinned(cpu: int) -> list[str]:
    """A command prefix that keeps a process on one CPU, so that server and load do not trade places."""
    return ["taskset", "-c", str(cpu)] if shutil.which("taskset") and (os.cpu_count() or 1) > 1 else []


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def load(url: str, tokens: list[str], args: argparse.Namespace, folder: pathlib.Path) -> dict[str, Any]:
    if not args.python_loadgen and shutil.which("wrk"):
        token_file = folder / "tokens.txt"
        token_file.write_text("\n".join(tokens) + "\n")
        process = await asyncio.create_subprocess_exec(
            *pinned(1),
            "wrk",
            "-t1",
            f"-c{args.connections}",
            f"-d{args.seconds}s",
            "-s",
            str(LUA),
            url,
            "--",
            str(token_file),
            stdout=asyncio.subprocess.PIPE,
        )
        stdout, _ = await process.communicate()
        lines = stdout.decode().strip().splitlines()
        try:
            result: dict[str, Any] = json.loads(lines[-1])
        except (IndexError, ValueError):
            raise RuntimeError(f"wrk said: {lines[-5:]}") from None
        result["tokens"] = len(tokens)
    else:
        result = await loadgen.run(url, tokens, args.connections, args.seconds)
    result["rps"] = result["requests"] / result["seconds"]
    return result


async def scenario(
    name: str, base: str, token_sets: list[list[str]], args: argparse.Namespace, folder: pathlib.Path
) -> list[dict[str, Any]]:
    """Interleaved rounds of / and /protected under the same load; one row per route.

    With one token set, every run uses it (after one unmeasured warm-up run);
    with several, round ``i`` uses set ``i``, so /protected never sees a token twice.
    """
    fresh = len(token_sets) > 1
    if not fresh:
        await load(base + "/protected", token_sets[0], args, folder)
    runs: dict[str, list[dict[str, Any]]] = {"/": [], "/protected": []}
    for round_number in range(len(token_sets) if fresh else args.rounds):
        tokens = token_sets[round_number] if fresh else token_sets[0]
        order = ["/", "/protected"] if round_number % 2 == 0 else ["/protected", "/"]
        for path in order:
            runs[path].append(await load(base + path, tokens, args, folder))
    # Each round's two runs sit side by side in time, so their ratio cancels most of the machine's drift.
    ratios = sorted(p["rps"] / o["rps"] for o, p in zip(runs["/"], runs["/protected"], strict=True))
    quartiles = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
    rows = []
    for path, results in runs.items():
        rows.append(
            {
                "scenario": name,
                "route": path,
                "rps": statistics.median(r["rps"] for r in results),
                "p50_ms": statistics.median(r["p50_ms"] for r in results),
                "p99_ms": statistics.median(r["p99_ms"] for r in results),
                "ratio": statistics.median(ratios) if path != "/" else 1.0,
                "spread": f"{quartiles[0]:.3f}-{quartiles[2]:.3f}" if path != "/" else "",
                "bad": sum(r["bad_status"] + r["socket_errors"] for r in results),
                "reused": sum(max(0, r["requests"] - r["tokens"]) for r in results) if fresh and path != "/" else 0,
            }
        )
    return rows


async def cold_burst(hanko: FakeHanko, token: str, count: int) -> tuple[int, int]:
    """JWKS fetches and 200 answers for ``count`` concurrent requests to a cold application.

    Runs the example API in this process with no warm-up (server.py warms its key set at start-up).
    """
    fetches_before = hanko.jwks_fetches
    app = server.make_app(hanko.settings(), CorsSettings())
    sock, port = bind_unused_port()
    http_server = HTTPServer(app)
    http_server.add_sockets([sock])
    try:
        responses = await fetch_concurrently([(f"http://127.0.0.1:{port}/protected", token)] * count)
    finally:
        http_server.stop()
        await verifier_for(app).close()
    return hanko.jwks_fetches - fetches_before, sum(r.code == 200 for r in responses)


async def start_server(hanko: FakeHanko, port: int) -> asyncio.subprocess.Process:
    env = {
        **os.environ,
        "HANKO_API_URL": hanko.api_url,
        "HANKO_AUDIENCE": "localhost",
        "LOG_LEVEL": "WARNING",
        "SHUTDOWN_DELAY_SECONDS": "0",
    }
    process = await asyncio.create_subprocess_exec(
        *pinned(0), sys.executable, str(ROOT / "server.py"), "--port", str(port), env=env, cwd=tempfile.gettempdir()
    )
    client = AsyncHTTPClient()
    for _ in range(200):
        try:
            await client.fetch(f"http://127.0.0.1:{port}/")
        except OSError:
            await asyncio.sleep(0.05)
            continue
        for _ in range(200):  # server.py answers while its start-up fetch runs
            if hanko.jwks_fetches:
                break
            await asyncio.sleep(0.05)
        return process
    raise RuntimeError("server.py did not start")


async def cache_memory(hanko: FakeHanko, tokens: list[str]) -> tuple[int, float]:
    """Entries and MiB the verified-token cache holds when full at its default bound."""
    verifier = TokenVerifier(HankoSettings(api_url=hanko.api_url, audience=hanko.audience))
    await verifier.key_store.refresh()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for token in tokens:
        await verifier.verify_token(token)
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    info = verifier.cache_info()
    await verifier.close()
    assert info.currsize == info.maxsize, "fill the cache to its bound"
    return info.currsize, (after - before) / 2**20


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=1, help="length of one load run")
    parser.add_argument("--rounds", type=int, default=60, help="interleaved rounds per scenario")
    parser.add_argument("--fresh-rounds", type=int, default=30, help="interleaved rounds with never-seen tokens")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--python-loadgen", action="store_true", help="use bench/loadgen.py even when wrk is here")
    parser.add_argument("--no-instructions", action="store_true", help="skip the callgrind instruction counts")
    parser.add_argument("--instruction-requests", type=int, default=200, help="requests per callgrind phase")
    parser.add_argument("--fresh-rate", type=int, default=3200, help="never-seen tokens minted per second of load")
    args = parser.parse_args()

    key = SigningKey.generate(key_size=4096)
    hanko = FakeHanko(keys=[key])
    hanko.start()
    print("minting tokens (RS256, 4096-bit) ...", file=sys.stderr, flush=True)
    fresh_per_run = int(args.fresh_rate * args.seconds)
    pool = mint_many(key, 2000 + max(10_000, fresh_per_run * args.fresh_rounds))
    one, rotation, fresh = pool[0], pool[:2000], pool[2000:]
    fresh_sets = [fresh[i * fresh_per_run : (i + 1) * fresh_per_run] for i in range(args.fresh_rounds)]

    if pinned(1):
        os.sched_setaffinity(0, {1})  # the bench process (and bench/loadgen.py) stays off the server's CPU
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = await start_server(hanko, port)
    rows: list[dict[str, Any]] = []
    try:
        fetches_at_start = hanko.jwks_fetches
        with tempfile.TemporaryDirectory() as folder:
            here = pathlib.Path(folder)
            rows += await scenario("one token", base, [[one]], args, here)
            rows += await scenario("2,000 tokens in rotation", base, [rotation], args, here)
            rows += await scenario("never-seen tokens", base, fresh_sets, args, here)
        fetches_under_load = hanko.jwks_fetches - fetches_at_start
    finally:
        server.send_signal(signal.SIGTERM)
        await server.wait()

    counted: dict[str, float] = {}
    if instructions.available() and not args.no_instructions:
        print("counting instructions under callgrind ...", file=sys.stderr, flush=True)
        phases = {
            "open": ("/", [one] * 20, [one]),
            "one": ("/protected", [one] * 20, [one]),
            "rotation": ("/protected", rotation[:200], rotation[:200]),
            "fresh": ("/protected", [one] * 20, fresh[-args.instruction_requests :]),
        }
        counted = await asyncio.to_thread(
            instructions.measure, hanko.api_url, free_port(), phases, args.instruction_requests
        )
    burst_fetches, burst_ok = await cold_burst(hanko, pool[1], 500)
    micro_results = await micro.measure(hanko, pool[:300])
    size, mebibytes = await cache_memory(hanko, fresh[:10_000])
    await hanko.stop()

    loadgen_name = "wrk" if shutil.which("wrk") and not args.python_loadgen else "bench/loadgen.py"
    print(
        f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"load: {loadgen_name}, {args.connections} connections, "
        f"{args.rounds} interleaved rounds of {args.seconds:g} s ({args.fresh_rounds} with never-seen tokens)\n"
    )
    print("| scenario | route | req/s | p50 ms | p99 ms | ratio to / | quartiles | non-2xx |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        note = f" ({row['reused']} token reuses)" if row["reused"] else ""
        print(
            f"| {row['scenario']}{note} | {row['route']} | {row['rps']:.0f} | {row['p50_ms']:.2f} | "
            f"{row['p99_ms']:.2f} | {row['ratio']:.3f} | {row['spread']} | {row['bad']} |"
        )
    bare = micro_results["bare RSA check"]
    print("\n| verify path (per token) | µs | ratio to bare RSA check |")
    print("|---|---:|---:|")
    for name, micros in micro_results.items():
        print(f"| {name} | {micros:.1f} | {micros / bare:.2f} |")
    if counted:
        print("\n| instructions per request (callgrind) | instructions | ratio of / to this |")
        print("|---|---:|---:|")
        names = {
            "open": "/ (open)",
            "one": "/protected, one token",
            "rotation": "/protected, 200 tokens in rotation",
            "fresh": "/protected, never-seen tokens",
        }
        for phase, count in counted.items():
            print(f"| {names[phase]} | {count:,.0f} | {counted['open'] / count:.3f} |")
    print(
        f"\nJWKS fetches: {fetches_at_start} at server.py start-up, {fetches_under_load} more under the whole load; "
        f"a cold burst of 500 concurrent requests: {burst_fetches} fetch, {burst_ok} answered 200"
    )
    print(f"verified-token cache at its default bound ({size:,} tokens): {mebibytes:.1f} MiB (tracemalloc)")


if __name__ == "__main__":
    asyncio.run(main())
