"""A live progress bar for one screening task, fed by polling ``GET /api/v1/asl/tasks/{id}``.

Used by ``litscreen watch`` and by the demo. Shows records done / total, batches done / total, the rate in
records per second and the ETA (the server's ``eta_seconds`` when it gives one, else extrapolated here).
:class:`BatchReporter` adds, above the bar, what a low rate does not explain: a batch waiting on a retry (why,
and when it runs again), a batch that failed, and a run that paused (``paused_reason``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from app.models.statuses import FINAL_TASK_STATUSES, BatchStatus, TaskStatus
from app.terminal.client import ApiError, LitscreenClient

logger = logging.getLogger(__name__)

PollHook = Callable[[dict[str, Any], Console], None]
STOP_STATUSES = (*FINAL_TASK_STATUSES, TaskStatus.PAUSED)  # a paused run waits for a human: watching ends there


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
            if task.get("status") in STOP_STATUSES:
                progress.refresh()
                return task
            if stall_timeout is not None and now - last_change > stall_timeout:
                raise TaskStalled(f"task {task_id} made no progress for {stall_timeout:.0f} s "
                                  f"(status {task.get('status')}, {done}/{total} records)")
            time.sleep(interval)


def _short_time(value: str | None) -> str:
    """``HH:MM:SS`` (local time) of an ISO timestamp, with how far away it is."""
    from datetime import UTC, datetime

    if not value:
        return "soon"
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return value
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    seconds = (when - datetime.now(UTC)).total_seconds()
    distance = f"in {seconds:.0f} s" if seconds > 0 else "due now"
    return f"{when.astimezone().strftime('%H:%M:%S')} ({distance})"


def batch_notes(batches: list[dict[str, Any]]) -> dict[tuple[int, str, int], str]:
    """What to tell about each batch that is retrying or failed: {(batch, kind, attempts): line}."""
    notes: dict[tuple[int, str, int], str] = {}
    for batch in batches:
        index, attempts = int(batch.get("batch_index", -1)), int(batch.get("attempts") or 0)
        error = (batch.get("error") or "").strip()
        if batch.get("status") == BatchStatus.PENDING and attempts > 0 and error:
            notes[(index, "retry", attempts)] = (
                f"batch {index} retrying (attempt {attempts + 1}): {error[:200]}; next attempt at "
                f"{_short_time(batch.get('next_attempt_at') or batch.get('dispatched_at'))}")
        elif batch.get("status") == BatchStatus.FAILED:
            notes[(index, "failed", attempts)] = f"batch {index} failed after {attempts} attempts: {error[:200]}"
    return notes


class BatchReporter:
    """An ``on_poll`` hook: prints each retrying or failed batch once (above the bar), and a paused run."""

    def __init__(self, client: LitscreenClient, task_id: int) -> None:
        self.client = client
        self.task_id = task_id
        self.told: set[tuple[int, str, int]] = set()
        self.told_paused = False

    def __call__(self, task: dict[str, Any], console: Console) -> None:
        try:
            notes = batch_notes(self.client.batches(self.task_id))
        except ApiError as exc:  # the bar goes on; the next poll tries again
            logger.debug("batches of task %s: %s", self.task_id, exc)
            notes = {}
        for key in sorted(notes):
            if key not in self.told:
                self.told.add(key)
                style = "red" if key[1] == "failed" else "yellow"
                console.print(f"[{style}]{escape(notes[key])}[/{style}]", highlight=False, soft_wrap=True)
        if task.get("status") == TaskStatus.PAUSED and not self.told_paused:
            self.told_paused = True
            reason = task.get("paused_reason") or "no reason given"
            console.print(f"[yellow]task {self.task_id} paused ({escape(str(reason))}): resume it with "
                          f"POST /api/v1/asl/tasks/{self.task_id}/resume[/yellow]", highlight=False, soft_wrap=True)
