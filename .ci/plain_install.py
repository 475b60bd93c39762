"""After a plain ``pip install hanko-tornado`` (no extras): server.py starts from the environment alone.

Run by .ci/package with the clean environment's Python: copies server.py (and server_pages.py, server_admin.py) to an
empty folder with a ``.env`` that would stop it if it were read, starts it with
its settings in the environment, and checks that it answers, says once that
``.env`` is not read, prints no warning, and stops with SIGTERM (exit 0).
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def main(server: str) -> int:
    if importlib.util.find_spec("dotenv") is not None:
        print("plain install: python-dotenv is installed, so this is not a plain install", file=sys.stderr)
        return 1
    folder = pathlib.Path(tempfile.mkdtemp(prefix="hanko-plain-"))
    shutil.copy(server, folder / "server.py")
    for beside in ("server_pages.py", "server_admin.py"):  # the example's pages and admin routes, which it imports
        shutil.copy(pathlib.Path(server).parent / beside, folder / beside)
    (folder / ".env").write_text("LOG_LEVEL=chatty\n")  # read, it would stop server.py with exit 2
    port = free_port()
    env = {**os.environ, "HANKO_API_URL": "http://127.0.0.1:9", "PYTHONWARNINGS": "default"}  # keys unreachable
    process = subprocess.Popen(
        [sys.executable, "server.py", "--port", str(port)], cwd=folder, env=env, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 30
    while not answers(port) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    started = process.poll() is None and answers(port)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)
    shutil.rmtree(folder)
    problems = []
    if not started:
        problems.append("server.py did not answer")
    if process.returncode != 0:
        problems.append(f"server.py exited with {process.returncode}")
    if sum(".env not read" in line for line in stderr.splitlines()) != 1:
        problems.append("server.py did not say once that .env is not read")
    if "Warning:" in stderr:
        problems.append("server.py printed a warning")
    if problems:
        print(f"plain install: {'; '.join(problems)}:\n{stderr}", file=sys.stderr)
        return 1
    print("plain install: server.py ran from the environment alone, said .env is not read, stopped cleanly")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
