"""Real subprocesses for tests (workers, beat, servers), on the product's own harness (``app/processes.py``).

``ProcessGroup`` is a test's view of :class:`app.processes.ProcessStack`: the same start (new session, log file,
parent-death signal) and the same ordered stop, plus the test worker command and ``kill -9`` of a whole tree.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

from app.processes import ChildProcess, ProcessStack

ROOT = Path(__file__).resolve().parents[2]


def subprocess_env(database_url: str, **extra: str) -> dict[str, str]:
    """The environment a litscreen subprocess needs to reach the test database."""
    env = dict(os.environ)
    env.update({"DATABASE_URL": database_url, "PYTHONUNBUFFERED": "1", "LOG_LEVEL": "INFO"})
    env.update({k: str(v) for k, v in extra.items()})
    return env


class ProcessGroup:
    """Starts subprocesses in new sessions and stops all of them (and their children) at the end of a test."""

    def __init__(self, log_dir: Path) -> None:
        self.stack = ProcessStack(log_dir, cwd=ROOT)

    @property
    def log_dir(self) -> Path:
        return self.stack.log_dir

    @property
    def processes(self) -> list[ChildProcess]:
        """Every child started so far, oldest first."""
        return list(self.stack.children)

    def start(self, args: list[str], env: dict[str, str], name: str) -> ChildProcess:
        """Start ``args`` with its output in ``<log_dir>/<name>.log`` (``child.log_path``)."""
        return self.stack.start(name, args, env, essential=False)

    def start_worker(self, database_url: str, name: str, concurrency: int = 1, queues: str | None = None,
                     pool: str = "prefork", **env: str) -> ChildProcess:
        """A real worker subprocess on the test database: the production worker plus the diagnostic probes
        (``celery -A tasks.diagnostic_worker worker``)."""
        args = [sys.executable, "-m", "celery", "-A", "tasks.diagnostic_worker", "worker", "--loglevel", "INFO",
                "--hostname", f"{name}@%h", "--concurrency", str(concurrency), "--pool", pool,
                "--prefetch-multiplier", "1", "--without-mingle", "--without-gossip"]
        if queues:
            args += ["--queues", queues]
        return self.start(args, subprocess_env(database_url, **env), name)

    @staticmethod
    def kill_tree(process: ChildProcess, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the process and all its descendants (``kill -9`` by default); does not wait."""
        ProcessStack.signal_group(process, sig)

    def stop_all(self) -> None:
        """Stop everything started here, newest first (SIGTERM, then SIGKILL after 10 s), and reap it."""
        self.stack.stop_all(timeout=10.0)


def wait_for(condition: Callable[[], object], timeout: float, interval: float = 0.2,
             message: str = "condition") -> object:
    """Poll ``condition`` until it returns something truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)
