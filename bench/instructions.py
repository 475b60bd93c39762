"""Instructions per request, counted by valgrind's callgrind: a figure this noisy machine cannot blur.

server.py runs under callgrind with instrumentation off; for each phase the
counters are zeroed, instrumentation is switched on, a fixed number of
requests is sent one after another, and the counts are dumped.  Instruction
counts do not weigh every instruction alike (RSA arithmetic runs at a higher
rate than the interpreter), so they complement the wall-clock table rather
than replace it.
"""

from __future__ import annotations

import base64
import glob
import http.client
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

ROOT = pathlib.Path(__file__).resolve().parent.parent


def available() -> bool:
    """Whether valgrind and callgrind_control are installed."""
    return bool(shutil.which("valgrind") and shutil.which("callgrind_control"))


def _get(connection: http.client.HTTPConnection, path: str, token: str) -> None:
    connection.request("GET", path, headers={"Authorization": f"Bearer {token}"})
    response = connection.getresponse()
    response.read()
    if response.status != 200:
        raise RuntimeError(f"{path} answered {response.status}")


def _control(pid: int, *args: str) -> None:
    subprocess.run(["callgrind_control", *args, str(pid)], check=True, capture_output=True)


def _count(pid: int, name: str, work: Callable[[], None]) -> None:
    """Count the instructions ``pid`` runs while ``work`` runs, into a dump called ``name``."""
    _control(pid, "-z")
    _control(pid, "-i", "on")
    work()
    _control(pid, "-i", "off")
    _control(pid, "-d", name)


def _dumps(folder: str) -> dict[str, int]:
    """Instructions in each dump in ``folder``, by the dump's name."""
    totals = {}
    for dump in glob.glob(f"{folder}/out.*"):
        lines = pathlib.Path(dump).read_text().splitlines()
        name = next(line.split("dump ", 1)[1] for line in lines if line.startswith("desc: Trigger: dump "))
        totals[name] = next(int(line.split()[1]) for line in lines if line.startswith("totals:"))
    shutil.rmtree(folder, ignore_errors=True)
    return totals


def _callgrind(folder: str) -> list[str]:
    return ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={folder}/out"]


def measure(
    api_url: str, port: int, phases: dict[str, tuple[str, list[str], list[str]]], count: int
) -> dict[str, float]:
    """Instructions per request for each phase: ``name -> (path, warm-up tokens, measured tokens)``.

    Phase names are plain words: callgrind keeps them as the dumps' names.
    """
    folder = tempfile.mkdtemp(prefix="hanko-callgrind-")
    env = {
        **os.environ,
        "HANKO_API_URL": api_url,
        "HANKO_AUDIENCE": "localhost",
        "LOG_LEVEL": "WARNING",
        "SHUTDOWN_DELAY_SECONDS": "0",
    }
    command = [*_callgrind(folder), sys.executable, str(ROOT / "server.py"), "--port", str(port)]
    server = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL, cwd=folder)
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
                connection.request("GET", "/")
                connection.getresponse().read()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("server.py did not start under callgrind") from None
                time.sleep(0.5)
        for name, (path, warm, measured) in phases.items():
            for token in warm:
                _get(connection, path, token)

            def requests(path: str = path, measured: list[str] = measured) -> None:
                for index in range(count):
                    _get(connection, path, measured[index % len(measured)])

            _count(server.pid, name, requests)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait()
    totals = _dumps(folder)
    return {name: totals[name] / count for name in phases}


def rsa_check(public_pem: str, signed: list[tuple[str, bytes]]) -> float:
    """Instructions for one bare RSA check with ``cryptography``, as bench/micro.py times it.

    ``signed``: (signing input, signature) pairs, all valid under the PEM public key.
    """
    folder = tempfile.mkdtemp(prefix="hanko-callgrind-")
    data = pathlib.Path(folder, "signed.json")
    pairs = [(message, base64.b64encode(signature).decode()) for message, signature in signed]
    data.write_text(json.dumps({"key": public_pem, "signed": pairs}))
    command = [*_callgrind(folder), sys.executable, str(ROOT / "bench" / "rsa_check.py"), str(data)]
    process = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=folder
    )
    assert process.stdin is not None and process.stdout is not None
    stdin, stdout = process.stdin, process.stdout

    def check_all() -> None:
        stdin.write("go\n")
        stdin.flush()
        if stdout.readline().strip() != "done":
            raise RuntimeError("bench/rsa_check.py failed under callgrind")

    try:
        if stdout.readline().strip() != "ready":
            raise RuntimeError("bench/rsa_check.py did not start under callgrind")
        _count(process.pid, "rsa", check_all)
    finally:
        stdin.close()
        process.wait()
    return _dumps(folder)["rsa"] / len(signed)
