"""Worker processes on one listening socket, replaced one at a time, none of their requests dropped.

The parent opens the socket before it forks, so every worker accepts from one queue: a worker that
stops listening leaves the connections waiting in it to the others.  The parent:

- replaces a worker that dies (a signal, a non-zero exit), up to ``max_restarts`` times;
- starts a replacement as soon as a worker says it is stopping (SIGTERM sent to the worker itself);
- on SIGHUP, replaces the workers one at a time (a rolling restart): it starts the new worker, waits
  until it serves, then stops the old one and waits for it to end before the next;
- on SIGTERM or SIGINT, stops every worker (each drains as :mod:`~hanko_tornado.runner.graceful` says)
  and returns once they ended.

Each worker holds the read end of a pipe whose write end only the parent holds: the pipe's end of file
tells a worker that the parent stopped or died (even by SIGKILL).  A worker reports on a pipe of its
own: ``R`` once it serves, ``D`` once it is stopping.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import selectors
import signal
import sys
from collections import deque
from collections.abc import Callable
from typing import Any

__all__ = ["Supervisor", "WorkerLink"]

log = logging.getLogger("server")


class WorkerLink:
    """A worker's side: the parent's lifeline (readable at end of file) and the pipe it reports on."""

    def __init__(self, number: int, lifeline: int | None, report: int | None) -> None:
        self.number, self.lifeline, self._report = number, lifeline, report

    def serving(self) -> None:
        """Tell the parent this worker serves (a rolling restart goes on)."""
        self._send(b"R")

    def stopping(self) -> None:
        """Tell the parent this worker is stopping (it starts a replacement unless it asked for the stop)."""
        self._send(b"D")

    def _send(self, message: bytes) -> None:
        if self._report is not None:
            with contextlib.suppress(OSError):  # the parent is gone: nothing to tell
                os.write(self._report, message)


@dataclasses.dataclass
class _Worker:
    number: int
    pid: int
    report: int
    serving: bool = False
    stopping: bool = False  # it said so, or the parent stopped it: it is replaced already, or not at all


class Supervisor:
    """Runs ``count`` workers, each ``run_worker(link)`` in a forked process, as the module says.

    :param run_worker: a worker's whole life; its return value is the worker's exit status.
    """

    def __init__(self, count: int, run_worker: Callable[[WorkerLink], int], *, max_restarts: int = 100) -> None:
        self.count, self.run_worker, self.max_restarts = count, run_worker, max_restarts
        self._workers: dict[int, _Worker] = {}
        self._selector = selectors.DefaultSelector()
        self._signals: deque[int] = deque()
        self._lifeline, self._lifeline_end = os.pipe()
        self._wakeup, self._wakeup_end = os.pipe()
        self._stopping = False
        self._restarts = 0
        self._rolling: deque[int] = deque()  # pids of old workers still to replace
        self._retiring: tuple[int, int] | None = None  # (old pid, its replacement's pid)
        self._rolled = 0  # workers the rolling restart under way replaces

    def run(self) -> int:
        """In the parent: supervise until stopped, then the exit status (1 after too many deaths)."""
        os.set_blocking(self._wakeup_end, False)
        signal.set_wakeup_fd(self._wakeup_end)
        for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, self._note_signal)
        self._selector.register(self._wakeup, selectors.EVENT_READ)
        status = 0
        for number in range(self.count):
            self._start(number)
        while self._workers or not self._stopping:
            for key, _ in self._selector.select(timeout=1.0):
                self._read(key.fd)
            while self._signals:
                self._on_signal(self._signals.popleft())
            status = max(status, self._reap())
        signal.set_wakeup_fd(-1)
        return status

    def _note_signal(self, signum: int, frame: Any) -> None:
        self._signals.append(signum)

    def _on_signal(self, signum: int) -> None:
        if signum in (signal.SIGTERM, signal.SIGINT):
            self._stop_all(f"stopping {len(self._workers)} worker(s) ({signal.Signals(signum).name})")
        elif signum == signal.SIGHUP and not self._stopping:
            if self._rolling or self._retiring:
                log.info("SIGHUP: a rolling restart is already under way")
                return
            self._rolling.extend(pid for pid, worker in self._workers.items() if not worker.stopping)
            self._rolled = len(self._rolling)
            log.info("SIGHUP: replacing %d worker(s), one at a time", len(self._rolling))
            self._roll_on()

    def _stop_all(self, why: str) -> None:
        if self._stopping:
            return
        self._stopping = True
        log.info("%s", why)
        self._rolling.clear()
        os.close(self._lifeline_end)  # every worker reads the end of file, and stops

    def _start(self, number: int) -> int:
        report, report_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            self._become_worker(number, report, report_end)
        os.close(report_end)
        self._workers[pid] = _Worker(number, pid, report)
        self._selector.register(report, selectors.EVENT_READ, pid)
        return pid

    def _become_worker(self, number: int, report: int, report_end: int) -> None:
        signal.set_wakeup_fd(-1)
        for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        self._selector.close()
        for fd in [report, self._lifeline_end, self._wakeup, self._wakeup_end] + [
            worker.report for worker in self._workers.values()
        ]:
            with contextlib.suppress(OSError):
                os.close(fd)
        status = 1
        try:
            status = self.run_worker(WorkerLink(number, self._lifeline, report_end))
        except SystemExit as exit:
            status = exit.code if isinstance(exit.code, int) else 1
        except BaseException:  # a worker's crash is logged, and the parent replaces it
            log.exception("worker %d crashed", number)
        finally:
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(status)

    def _read(self, fd: int) -> None:
        if fd == self._wakeup:
            with contextlib.suppress(BlockingIOError):
                os.read(fd, 512)
            return
        pid = self._selector.get_key(fd).data
        messages = os.read(fd, 512)
        worker = self._workers.get(pid)
        if not messages or worker is None:  # the worker ended: _reap says how
            self._selector.unregister(fd)
            os.close(fd)
            return
        if b"R" in messages and not worker.serving:
            worker.serving = True
            if self._retiring is not None and self._retiring[1] == pid:
                old = self._retiring[0]
                if old in self._workers:
                    self._workers[old].stopping = True
                    os.kill(old, signal.SIGTERM)
        if b"D" in messages and not worker.stopping and not self._stopping:
            worker.stopping = True
            new = self._start(worker.number)
            log.info("worker %d (pid %d) is stopping: pid %d starts in its place", worker.number, pid, new)

    def _reap(self) -> int:
        """Collect the workers that ended; 1 once there were too many deaths, else 0."""
        status = 0
        while self._workers:
            try:
                pid, wait_status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            worker = self._workers.pop(pid, None)
            if worker is None:
                continue
            code = os.waitstatus_to_exitcode(wait_status)
            if self._retiring is not None and self._retiring[0] == pid:
                log.info("worker %d replaced: pid %d by pid %d", worker.number, pid, self._retiring[1])
                self._retiring = None
                self._roll_on()
            elif not worker.stopping and not self._stopping:
                status = max(status, self._replace_dead(worker, code))
        return status

    def _replace_dead(self, worker: _Worker, code: int) -> int:
        how = f"killed by signal {-code}" if code < 0 else f"exited with status {code}"
        if code == 0:  # it stopped without saying so: replace it, it was not a crash
            new = self._start(worker.number)
            log.info("worker %d (pid %d) %s: pid %d starts in its place", worker.number, worker.pid, how, new)
            return 0
        self._restarts += 1
        if self._restarts > self.max_restarts:
            log.error("worker %d (pid %d) %s: too many deaths, stopping the others", worker.number, worker.pid, how)
            self._stop_all("stopping every worker")
            return 1
        new = self._start(worker.number)
        log.warning("worker %d (pid %d) %s, restarting (pid %d)", worker.number, worker.pid, how, new)
        if self._retiring is not None and self._retiring[1] == worker.pid:  # the replacement died before serving
            self._retiring = (self._retiring[0], new)
        return 0

    def _roll_on(self) -> None:
        """Start the next step of a rolling restart, if one is under way and none is in progress."""
        while self._rolling and self._retiring is None and not self._stopping:
            old = self._rolling.popleft()
            worker = self._workers.get(old)
            if worker is None or worker.stopping:
                continue
            self._retiring = (old, self._start(worker.number))
        if self._rolled and not self._rolling and self._retiring is None:
            log.info("rolling restart done: %d worker(s) replaced", self._rolled)
            self._rolled = 0
