"""The performance gate: what authentication costs a request, in instructions counted by callgrind.

``make gate`` (CI runs it after the suite) starts server.py under valgrind's
callgrind against a local FakeHanko with Hanko's keys (RS256, 4096-bit),
counts the instructions of one request on the open route, on the protected
route with a remembered token and with never-seen tokens, and those of one
bare RSA check; it prints them every run, and fails (exit 1) when

- a remembered token costs more than ``REMEMBERED_MARGIN`` of the open route
  on top of the open route, or
- a never-seen token costs, on top of the open route, more than one RSA
  check plus ``FRESH_MARGIN`` of one.

Unlike wall-clock times on a shared machine, instruction counts barely move
between runs; what still moves them (a garbage collection landing in one
phase, the versions pip installs) is what the margins leave room for.
"""

from __future__ import annotations

import argparse
import asyncio
import pathlib
import socket
import sys

from cryptography.hazmat.primitives import serialization
from jwt.utils import base64url_decode

sys.path[:0] = [str(pathlib.Path(__file__).resolve().parent)]  # bench/ is scripts, not a package

import instructions

from hanko_tornado.testing import FakeHanko, SigningKey

#: A remembered token may add this much of the open route's instructions (measured 2026-11-28: 5.0-6.1%).
REMEMBERED_MARGIN = 0.10
#: A never-seen token may add one RSA check and this much of one more (measured 2026-11-28: 22.5-23.8%).
FRESH_MARGIN = 0.40
#: Bare RSA checks counted for the reference figure.
RSA_CHECKS = 50


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def count(requests: int) -> tuple[dict[str, float], float]:
    """Instructions per request in each phase, and for one bare RSA check."""
    key = SigningKey.generate(key_size=4096)
    hanko = FakeHanko(keys=[key])
    hanko.start()
    try:
        one = hanko.mint()
        never_seen = [hanko.mint() for _ in range(requests)]
        phases = {
            "open": ("/", [one] * 20, [one]),
            "remembered": ("/protected", [one] * 20, [one]),
            "never_seen": ("/protected", [one] * 20, never_seen),
        }
        per_request = await asyncio.to_thread(instructions.measure, hanko.api_url, free_port(), phases, requests)
    finally:
        await hanko.stop()
    pem = key.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signed = [(token.rsplit(".", 1)[0], base64url_decode(token.rsplit(".", 1)[1])) for token in never_seen[:RSA_CHECKS]]
    rsa = await asyncio.to_thread(instructions.rsa_check, pem.decode(), signed)
    return per_request, rsa


def verdicts(per_request: dict[str, float], rsa: float) -> list[tuple[str, bool]]:
    """Each figure the gate checks, as a line to print, and whether it is within its margin."""
    open_route = per_request["open"]
    remembered = (per_request["remembered"] - open_route) / open_route
    never_seen = (per_request["never_seen"] - open_route) / rsa - 1
    return [
        (
            f"remembered token: +{remembered:.1%} of the open route (limit +{REMEMBERED_MARGIN:.0%})",
            remembered <= REMEMBERED_MARGIN,
        ),
        (
            f"never-seen token: one RSA check +{never_seen:.1%} of one over the open route (limit +{FRESH_MARGIN:.0%})",
            never_seen <= FRESH_MARGIN,
        ),
    ]


async def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=200, help="requests counted in each phase")
    args = parser.parse_args()
    if not instructions.available():
        print("gate: valgrind and callgrind_control are needed: scripts/system-packages valgrind", file=sys.stderr)
        return 2
    print(f"counting instructions under callgrind ({args.requests} requests a phase) ...", flush=True)
    per_request, rsa = await count(args.requests)
    names = {
        "open": "/ (open route)",
        "remembered": "/protected, remembered token",
        "never_seen": "/protected, never-seen tokens",
    }
    for phase, instructions_per_request in per_request.items():
        print(f"  {names[phase]:32} {instructions_per_request:>12,.0f} instructions per request")
    print(f"  {'one RSA-4096 check (bare)':32} {rsa:>12,.0f} instructions")
    failed = False
    for line, within in verdicts(per_request, rsa):
        print(f"{'ok  ' if within else 'FAIL'} {line}")
        failed = failed or not within
    print("gate: failed" if failed else "gate: passed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
