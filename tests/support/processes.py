"""Real subprocesses for tests: Celery workers (and anything else) in their own process groups."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]


def subprocess_env(database_url: str, **extra: str) -> dict[str, str]:
    """The environment a litscreen subprocess needs to reach the test database."""
    env = dict(os.environ)
    env.update({"DATABASE_URL": database_url, "PYTHONUNBUFFERED": "1", "LOG_LEVEL": "INFO"})
    env.update({k: str(v) for k, v in extra.items()})
    return env


class ProcessGroup:
    """Starts subprocesses in new sessions and kills all of them (and their children) at the end."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.processes: list[subprocess.Popen] = []

    def start(self, args: list[str], env: dict[str, str], name: str) -> subprocess.Popen:
        """Start ``args`` with its output in ``<log_dir>/<name>.log``."""
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        process = subprocess.Popen(args, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        process.log_path = self.log_dir / f"{name}.log"  # type: ignore[attr-defined]
        self.processes.append(process)
        return process

    def start_worker(self, database_url: str, name: str, concurrency: int = 1, queues: str | None = None,
                     pool: str = "prefork", **env: str) -> subprocess.Popen:
        """A real worker subprocess on the test database: the production worker plus the diagnostic probes
        (``celery -A tasks.diagnostic_worker worker``)."""
        args = [sys.executable, "-m", "celery", "-A", "tasks.diagnostic_worker", "worker", "--loglevel", "INFO",
                "--hostname", f"{name}@%h", "--concurrency", str(concurrency), "--pool", pool,
                "--prefetch-multiplier", "1", "--without-mingle", "--without-gossip"]
        if queues:
            args += ["--queues", queues]
        return self.start(args, subprocess_env(database_url, **env), name)

    @staticmethod
    def kill_tree(process: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the process and all its descendants (``kill -9`` by default)."""
        try:
            parent = psutil.Process(process.pid)
            children = parent.children(recursive=True)
        except psutil.NoSuchProcess:
            return
        for proc in [parent, *children]:
            try:
                proc.send_signal(sig)
            except psutil.NoSuchProcess:
                pass

    def stop_all(self) -> None:
        """Kill everything started here and reap it."""
        for process in self.processes:
            if process.poll() is None:
                self.kill_tree(process, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for process in self.processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.kill_tree(process, signal.SIGKILL)
                process.wait(timeout=5)


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
