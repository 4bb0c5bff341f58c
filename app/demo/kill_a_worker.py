"""``litscreen demo --kill-a-worker``: ``kill -9`` the worker holding a batch mid-way, then show who resumes it."""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from rich.console import Console

from app.processes import ChildProcess, ProcessStack
from app.terminal.client import LitscreenClient

logger = logging.getLogger(__name__)


class WorkerKiller:
    """Kills (SIGKILL, whole process tree) the worker holding a batch mid-way, then reports who resumes it."""

    def __init__(self, client: LitscreenClient, stack: ProcessStack, workers: list[ChildProcess], task_id: int,
                 min_cursor: int) -> None:
        self.client = client
        self.stack = stack
        self.workers = workers
        self.task_id = task_id
        self.min_cursor = min_cursor
        self.victim: ChildProcess | None = None
        self.batch: dict[str, Any] | None = None
        self.killed_at: float | None = None
        self.resumed: dict[str, Any] | None = None
        self.events: list[str] = []

    def owner_of(self, lease_owner: str | None) -> ChildProcess | None:
        """Which of our workers a batch's ``lease_owner`` names (by Celery hostname or by a pid in it)."""
        if not lease_owner:
            return None
        for worker in self.workers:
            if worker.name in lease_owner:
                return worker
        # the engine names owners "host:pid:suffix", the pid being the pool process that runs the batch
        numbers = {int(part) for part in lease_owner.split(":")[1:] if part.isdigit()}
        for worker in self.workers:
            if numbers & worker.tree_pids():
                return worker
        return None

    def __call__(self, task: dict[str, Any], console: Console) -> None:
        if self.resumed is not None or task.get("status") not in ("running", "pending"):
            return
        batches = self.client.batches(self.task_id)
        if self.victim is None:
            self._maybe_kill(batches, console)
        else:
            self._maybe_report_resume(batches, console)

    def _maybe_kill(self, batches: list[dict[str, Any]], console: Console) -> None:
        for batch in batches:
            if batch.get("status") != "running" or int(batch.get("cursor") or 0) < self.min_cursor:
                continue
            if int(batch.get("cursor") or 0) >= int(batch.get("size") or 0):
                continue
            worker = self.owner_of(batch.get("lease_owner"))
            if worker is None or not worker.running():
                continue
            self.stack.kill(worker)
            self.victim, self.batch, self.killed_at = worker, batch, time.monotonic()
            self._say(console, f"[red]kill -9[/red] {worker.name} (pid {worker.pid} and its pool) while it held "
                               f"batch {batch['batch_index']} at cursor {batch['cursor']}/{batch['size']} "
                               f"(lease_owner {batch.get('lease_owner')})")
            return

    def _maybe_report_resume(self, batches: list[dict[str, Any]], console: Console) -> None:
        assert self.batch is not None and self.killed_at is not None
        old_owner = self.batch.get("lease_owner")
        current = next((b for b in batches if b.get("batch_index") == self.batch["batch_index"]), None)
        if current is None:
            return
        owner = current.get("lease_owner")
        if owner and owner != old_owner and int(current.get("cursor") or 0) >= int(self.batch["cursor"]):
            self.resumed = current
            new_worker = self.owner_of(owner)
            where = f" on {new_worker.name}" if new_worker else ""
            self._say(console, f"[green]batch {current['batch_index']} resumed{where}[/green] "
                               f"{time.monotonic() - self.killed_at:.1f} s after the kill: lease_owner "
                               f"{old_owner} → {owner}; cursor {self.batch['cursor']} → {current.get('cursor')}/"
                               f"{current.get('size')}, attempts {current.get('attempts')}, status "
                               f"{current.get('status')} (the items before the cursor were not screened again)")

    def _say(self, console: Console, text: str) -> None:
        self.events.append(re.sub(r"\[/?[a-z ]+\]", "", text))
        console.print(text)

    def as_dict(self) -> dict[str, Any]:
        return {
            "killed_worker": self.victim.name if self.victim else None,
            "batch_index": self.batch.get("batch_index") if self.batch else None,
            "cursor_at_kill": self.batch.get("cursor") if self.batch else None,
            "lease_owner_before": self.batch.get("lease_owner") if self.batch else None,
            "lease_owner_after": self.resumed.get("lease_owner") if self.resumed else None,
            "events": self.events,
        }
