"""A live progress bar for one screening task, fed by polling ``GET /api/v1/asl/tasks/{id}``.

Used by ``litscreen watch`` and by the demo. Shows records done / total, batches done / total, the rate in
records per second and the ETA (the server's ``eta_seconds`` when it gives one, else extrapolated here).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from app.models.statuses import FINAL_TASK_STATUSES, TaskStatus
from app.terminal.client import ApiError, LitscreenClient

logger = logging.getLogger(__name__)

PollHook = Callable[[dict[str, Any], Console], None]


class TaskStalled(Exception):
    """The task made no progress for longer than the stall timeout."""


def _format_eta(seconds: float | None) -> str:
    if seconds is None:
        return "ETA –"
    seconds = max(0, int(round(seconds)))
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"ETA {hours}:{minutes:02d}:{secs:02d}" if hours else f"ETA {minutes}:{secs:02d}"


def new_progress(console: Console) -> Progress:
    """The progress bar layout: status, bar, percent, records, batches, rate, ETA, elapsed."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(bar_width=32),
        TaskProgressColumn(),
        TextColumn("{task.fields[records]} records"),
        TextColumn("{task.fields[batches]} batches"),
        TextColumn("{task.fields[rate]}"),
        TextColumn("{task.fields[eta]}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
        refresh_per_second=8,
    )


class RateMeter:
    """Records per second over the run so far, measured from the first poll that saw work in progress."""

    def __init__(self) -> None:
        self.start_time: float | None = None
        self.start_done = 0

    def update(self, done: int, now: float) -> float | None:
        if self.start_time is None:
            self.start_time, self.start_done = now, done
            return None
        elapsed = now - self.start_time
        if elapsed <= 0 or done <= self.start_done:
            return None
        return (done - self.start_done) / elapsed


def run_rate(task: dict[str, Any]) -> float | None:
    """Records per second of a finished task, from its own started_at / completed_at."""
    from datetime import datetime

    try:
        started = datetime.fromisoformat(str(task["started_at"]))
        completed = datetime.fromisoformat(str(task["completed_at"]))
    except (KeyError, TypeError, ValueError):
        return None
    seconds = (completed - started).total_seconds()
    done = int(task.get("processed_items") or 0)
    return done / seconds if seconds > 0 and done else None


def watch_task(client: LitscreenClient, task_id: int, console: Console, interval: float = 0.5,
               on_poll: PollHook | None = None, stall_timeout: float | None = None,
               label: str | None = None) -> dict[str, Any]:
    """Poll the task until it reaches a final status (or is paused), drawing the bar; returns the last task
    document.

    ``on_poll(task, console)`` runs after every poll (the demo uses it to kill a worker and to check its
    processes); print through ``console`` so lines appear above the bar. ``stall_timeout`` raises
    :class:`TaskStalled` when processed_items has not moved for that many seconds.
    """
    meter = RateMeter()
    last_done, last_change = -1, time.monotonic()
    transient_errors = 0
    with new_progress(console) as progress:
        bar = progress.add_task(label or f"task {task_id}", total=None, records="–/–", batches="–/–", rate="",
                                eta=_format_eta(None))
        while True:
            try:
                task = client.task(task_id)
                transient_errors = 0
            except ApiError as exc:
                # a restarting API (or a 5xx during a database restart) is not the end of the run
                if exc.status is not None and exc.status < 500:
                    raise
                transient_errors += 1
                if transient_errors > 20:
                    raise
                time.sleep(interval)
                continue
            now = time.monotonic()
            done = int(task.get("processed_items") or 0)
            total = int(task.get("total_items") or 0)
            if done != last_done:
                last_done, last_change = done, now
            rate = meter.update(done, now) if task.get("status") == "running" or done else None
            if task.get("status") in FINAL_TASK_STATUSES:
                rate = run_rate(task) or rate
            eta = task.get("eta_seconds")
            if eta is None and rate and total:
                eta = (total - done) / rate
            progress.update(
                bar,
                description=label or f"task {task_id} {task.get('status', '?')}",
                completed=done,
                total=total or None,
                records=f"{done:>5}/{total:<5}",
                batches=f"{task.get('processed_batches', 0)}/{task.get('total_batches', 0)}",
                rate=f"{rate:6.1f} rec/s" if rate else "   – rec/s",
                eta=_format_eta(0 if task.get("status") in FINAL_TASK_STATUSES else eta),
            )
            if on_poll is not None:
                on_poll(task, progress.console)
            if task.get("status") in FINAL_TASK_STATUSES or task.get("status") == TaskStatus.PAUSED:
                progress.refresh()
                return task
            if stall_timeout is not None and now - last_change > stall_timeout:
                raise TaskStalled(f"task {task_id} made no progress for {stall_timeout:.0f} s "
                                  f"(status {task.get('status')}, {done}/{total} records)")
            time.sleep(interval)
