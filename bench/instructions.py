"""Instructions per request, counted by valgrind's callgrind: a figure this noisy machine cannot blur.

server.py runs under callgrind with instrumentation off; for each phase the
counters are zeroed, instrumentation is switched on, a fixed number of
requests is sent one after another, and the counts are dumped.  Instruction
counts do not weigh every instruction alike (RSA arithmetic runs at a higher
rate than the interpreter), so they complement the wall-clock table rather
than replace it.
"""

from __future__ import annotations

import glob
import http.client
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time

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


def measure(
    api_url: str, port: int, phases: dict[str, tuple[str, list[str], list[str]]], count: int
) -> dict[str, float]:
    """Instructions per request for each phase: ``name -> (path, warm-up tokens, measured tokens)``.

    Phase names are plain words: callgrind keeps them as the dumps' names.
    """
    folder = tempfile.mkdtemp(prefix="hanko-callgrind-")
    env = {**os.environ, "HANKO_API_URL": api_url, "HANKO_AUDIENCE": "localhost", "LOG_LEVEL": "WARNING"}
    command = [
        "valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={folder}/out",
        sys.executable, str(ROOT / "server.py"), "--port", str(port),
    ]  # fmt: skip
    server = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL, cwd=folder)
    control = ["callgrind_control"]
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
            for command_args in (["-z"], ["-i", "on"]):
                subprocess.run([*control, *command_args, str(server.pid)], check=True, capture_output=True)
            for index in range(count):
                _get(connection, path, measured[index % len(measured)])
            for command_args in (["-i", "off"], ["-d", name]):
                subprocess.run([*control, *command_args, str(server.pid)], check=True, capture_output=True)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait()
    results = {}
    for dump in glob.glob(f"{folder}/out.*"):
        lines = pathlib.Path(dump).read_text().splitlines()
        name = next(line.split("dump ", 1)[1] for line in lines if line.startswith("desc: Trigger: dump "))
        total = next(int(line.split()[1]) for line in lines if line.startswith("totals:"))
        results[name] = total / count
    shutil.rmtree(folder, ignore_errors=True)
    return {name: results[name] for name in phases}
