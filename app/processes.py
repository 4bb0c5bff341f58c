"""Child processes started, watched and always stopped: the one harness of the demo and the test suite.

Each child runs in a new session (so a Ctrl-C at the terminal reaches only the parent, which then shuts the
children down in order) with its output in ``<log_dir>/<name>.log``. On Linux each child also gets
``PR_SET_PDEATHSIG`` so it is told to stop even if the parent itself is killed with ``kill -9``.
``litscreen demo`` (``app/demo/runner.py``) runs its stack on it, and the tests' ``processes`` fixture
(``tests/support/processes.py``) their workers, beat, servers and simulators.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

logger = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1


class ProcessStackError(Exception):
    """A child the stack depends on died or did not become ready; the message says why and where to look."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        except OSError:
            pass


@dataclass
class ChildProcess:
    """One started child and what its parent knows about it."""

    name: str
    popen: subprocess.Popen
    log_path: Path
    essential: bool = True
    killed_on_purpose: bool = False
    started_at: float = field(default_factory=time.monotonic)

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def returncode(self) -> int | None:
        return self.popen.returncode

    def poll(self) -> int | None:
        """The exit code, or None while it runs."""
        return self.popen.poll()

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the child to exit (``subprocess.TimeoutExpired`` after ``timeout``); its exit code."""
        return self.popen.wait(timeout=timeout)

    def send_signal(self, sig: int) -> None:
        """Signal the child itself (not its descendants)."""
        self.popen.send_signal(sig)

    def running(self) -> bool:
        return self.popen.poll() is None

    def tree(self) -> list[psutil.Process]:
        """The child and every descendant (psutil handles, safe against pid reuse)."""
        try:
            parent = psutil.Process(self.pid)
            return [parent, *parent.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def tree_pids(self) -> set[int]:
        """The child's pid and every descendant's pid."""
        return {proc.pid for proc in self.tree()}

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


class ProcessStack:
    """Starts, checks and stops a set of children (the demo's simulator, API, workers, beat and Flower; a test's
    workers and servers)."""

    def __init__(self, log_dir: Path, cwd: Path | None = None) -> None:
        self.log_dir = log_dir
        self.cwd = cwd
        self.children: list[ChildProcess] = []
        log_dir.mkdir(parents=True, exist_ok=True)

    def start(self, name: str, args: list[str], env: dict[str, str], essential: bool = True) -> ChildProcess:
        """Start ``args`` in a new session, output to ``<log_dir>/<name>.log`` (``<name>-2.log`` for a second
        child of that name)."""
        count = sum(1 for child in self.children if child.name == name)
        log_path = self.log_dir / (f"{name}.log" if count == 0 else f"{name}-{count + 1}.log")
        with log_path.open("wb") as log:
            popen = subprocess.Popen(args, env=env, cwd=self.cwd, stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True,
                                     preexec_fn=_die_with_parent)
        child = ChildProcess(name, popen, log_path, essential)
        self.children.append(child)
        logger.debug("started %s (pid %s)", name, popen.pid)
        return child

    def get(self, name: str) -> ChildProcess:
        return next(c for c in self.children if c.name == name)

    def check_alive(self) -> None:
        """Raise ProcessStackError naming the first essential child that exited unexpectedly, with its log's tail."""
        for child in self.children:
            if child.essential and not child.killed_on_purpose and not child.running():
                raise ProcessStackError(f"{child.name} exited unexpectedly (exit code {child.popen.returncode}); "
                                f"log {child.log_path}:\n{child.log_tail()}")

    def wait_until(self, condition: Callable[[], bool], timeout: float, what: str,
                   child: ChildProcess | None = None) -> None:
        """Poll ``condition`` until true; fail early when ``child`` (or any essential child) dies."""
        deadline = time.monotonic() + timeout
        while not condition():
            self.check_alive()
            if time.monotonic() > deadline:
                hint = f"; log {child.log_path}:\n{child.log_tail()}" if child else ""
                raise ProcessStackError(f"timed out after {timeout:.0f} s waiting for {what}{hint}")
            time.sleep(0.1)

    @staticmethod
    def signal_group(child: ChildProcess, sig: int) -> None:
        """Send ``sig`` to the child's process group and to any descendant that left it."""
        procs = child.tree()
        try:
            os.killpg(child.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        for proc in procs:
            try:
                proc.send_signal(sig)
            except psutil.Error:
                pass

    def kill(self, child: ChildProcess) -> None:
        """``kill -9`` the child and everything under it, on purpose (the demo's --kill-a-worker, crash tests)."""
        child.killed_on_purpose = True
        self.signal_group(child, signal.SIGKILL)
        try:
            child.popen.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass

    def stop_all(self, timeout: float = 10.0) -> None:
        """SIGTERM every child (newest first), wait up to ``timeout``, then SIGKILL its group and what is left.

        Only the child itself gets the SIGTERM: gunicorn's master and Celery's main process stop their own
        workers (a pool process killed behind Celery's back makes its shutdown hang).
        """
        remaining: list[psutil.Process] = []
        for child in reversed(self.children):
            remaining.extend(child.tree())
            if child.running():
                try:
                    child.popen.send_signal(signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + timeout
        for child in reversed(self.children):
            try:
                child.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                logger.warning("%s did not stop within %.0f s; killing it", child.name, timeout)
                self.signal_group(child, signal.SIGKILL)
                try:
                    child.popen.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
        # grandchildren that outlived their parent (a pool child of a killed worker, for instance)
        leftovers = [proc for proc in remaining if proc.is_running()]
        for proc in leftovers:
            try:
                proc.kill()
            except psutil.Error:
                pass
        psutil.wait_procs(leftovers, timeout=5)
