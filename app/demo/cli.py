"""Commands ``litscreen demo`` and the terminal client: ``import``, ``screen``, ``watch``, ``export``.

None of them builds the Flask app of the CLI group: the client commands talk HTTP to a running service
(LITSCREEN_API_URL / LITSCREEN_TOKEN or --api-url / --token), and the demo builds its own private stack.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console

from app.client import ApiError, LitscreenClient, settings_from_env
from app.models.statuses import TaskStatus

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

# exit codes of `litscreen watch` (and `screen --watch`)
EXIT_FAILED = 1
EXIT_CANCELLED = 2


class RecordsType(click.ParamType):
    """A positive number of records, or ``all``."""

    name = "N|all"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int | None:
        if value is None or (isinstance(value, str) and value.strip().lower() == "all"):
            return None
        try:
            number = int(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is neither a number nor 'all'", param, ctx)
        if number <= 0:
            self.fail("must be positive", param, ctx)
        return number


def api_options(function: F) -> F:
    """--api-url and --token, defaulting to LITSCREEN_API_URL / LITSCREEN_TOKEN."""
    function = click.option("--token", envvar="LITSCREEN_TOKEN", default=None, show_envvar=True,
                            help="API token (prefer the environment variable: flags show up in `ps`).")(function)
    function = click.option("--api-url", envvar="LITSCREEN_API_URL", default=None, show_envvar=True,
                            help="Base URL of the litscreen service [default: http://127.0.0.1:5000].")(function)
    return function


def make_client(api_url: str | None, token: str | None) -> LitscreenClient:
    url, token = settings_from_env(api_url, token)
    if not token:
        raise click.ClickException("no API token: set LITSCREEN_TOKEN (or pass --token); create one with "
                                   "`litscreen tokens create NAME`")
    return LitscreenClient(url, token)


def stderr_console() -> Console:
    return Console(stderr=True)


@click.command("import")
@click.argument("project_id", type=int)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@api_options
def import_command(project_id: int, file: Path, api_url: str | None, token: str | None) -> None:
    """Import FILE (RIS, MEDLINE/.nbib, BibTeX or CSV; detected) into project PROJECT_ID."""
    try:
        with make_client(api_url, token) as client:
            answer = client.import_file(project_id, file)
    except ApiError as exc:
        raise click.ClickException(str(exc)) from None
    skipped = answer.get("skipped") or []
    click.echo(f"imported {answer.get('imported', 0)}, duplicates {answer.get('duplicates', 0)}, "
               f"skipped {len(skipped)}")
    for item in skipped[:20]:
        click.echo(f"  skipped record {item.get('index')}: {item.get('reason')}", err=True)
    if len(skipped) > 20:
        click.echo(f"  … and {len(skipped) - 20} more", err=True)


@click.command("screen")
@click.argument("project_id", type=int)
@click.option("--batch-size", type=click.IntRange(1), default=None, help="Records per batch [default: server's].")
@click.option("--watch/--no-watch", "watch", default=False, help="Follow the task with a progress bar.")
@api_options
def screen_command(project_id: int, batch_size: int | None, watch: bool, api_url: str | None,
                   token: str | None) -> None:
    """Start title/abstract screening of project PROJECT_ID; prints the task id on stdout."""
    try:
        with make_client(api_url, token) as client:
            task = client.start_screening(project_id, batch_size)
            click.echo(task["id"])
            click.echo(f"task {task['id']} {task.get('status')}: {task.get('total_items')} records in "
                       f"{task.get('total_batches')} batches; follow it with `litscreen watch {task['id']}`",
                       err=True)
            if watch:
                _watch(client, int(task["id"]), 1.0)
    except ApiError as exc:
        raise click.ClickException(str(exc)) from None


@click.command("watch")
@click.argument("task_id", type=int)
@click.option("--interval", type=click.FloatRange(0.1), default=1.0, show_default=True,
              help="Seconds between polls.")
@api_options
def watch_command(task_id: int, interval: float, api_url: str | None, token: str | None) -> None:
    """Follow task TASK_ID with a live progress bar until it ends.

    Exit status: 0 completed (also with failed items, which are reported), 1 failed, 2 cancelled.
    """
    try:
        with make_client(api_url, token) as client:
            _watch(client, task_id, interval)
    except ApiError as exc:
        raise click.ClickException(str(exc)) from None


def _watch(client: LitscreenClient, task_id: int, interval: float) -> None:
    from app.demo.progress import watch_task

    console = stderr_console()
    task = watch_task(client, task_id, console, interval=interval)
    status = task.get("status")
    line = (f"task {task_id} {status}: {task.get('processed_items')}/{task.get('total_items')} records, "
            f"{task.get('conflict_items')} conflicts, {task.get('failed_items')} failed")
    if status == TaskStatus.FAILED:
        console.print(f"[red]{line}[/red]" + (f" — {task['error']}" if task.get("error") else ""))
        sys.exit(EXIT_FAILED)
    if status == TaskStatus.CANCELLED:
        console.print(f"[yellow]{line}[/yellow]")
        sys.exit(EXIT_CANCELLED)
    console.print(f"[green]{line}[/green]")


@click.command("export")
@click.argument("task_id", type=int)
@click.option("--format", "fmt", type=click.Choice(["csv", "ris"]), default="csv", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True, path_type=Path), default=None,
              help="Write to this file instead of stdout.")
@api_options
def export_command(task_id: int, fmt: str, output: Path | None, api_url: str | None, token: str | None) -> None:
    """Export the results of task TASK_ID as CSV or RIS."""
    try:
        with make_client(api_url, token) as client:
            data = client.export(task_id, fmt)
    except ApiError as exc:
        raise click.ClickException(str(exc)) from None
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        output.write_bytes(data)
        click.echo(f"wrote {len(data):,} bytes to {output}", err=True)


@click.command("demo")
@click.option("--records", type=RecordsType(), default="300", show_default=True,
              help="How many records of the bundled 2,019 to screen ('all' for every one).")
@click.option("--workers", type=click.IntRange(1, 16), default=1, show_default=True,
              help="Celery worker processes (at least 2 with --kill-a-worker).")
@click.option("--concurrency", type=click.IntRange(1, 32), default=2, show_default=True,
              help="Pool processes per worker.")
@click.option("--kill-a-worker", is_flag=True, help="kill -9 a worker mid-batch and show the batch resume elsewhere.")
@click.option("--keep", is_flag=True,
              help="Keep the stack (API, workers, beat, Flower) running after the run, until Ctrl-C.")
@click.option("--latency", type=click.FloatRange(0), default=None,
              help="Simulated LLM latency in seconds per call [default: 0; 0.2 with --kill-a-worker].")
@click.option("--batch-size", type=click.IntRange(1), default=None, help="Records per batch [default: about 12 "
              "batches].")
def demo_command(records: int | None, workers: int, concurrency: int, kill_a_worker: bool, keep: bool,
                 latency: float | None, batch_size: int | None) -> None:
    """Run the whole pipeline on the bundled Nagtegaal 2019 review data with the LLM simulator.

    Starts a private PostgreSQL (under instance/), the simulator, real Celery workers, beat and the API; imports
    and screens through the API with a live progress bar; writes the results CSV, a PRISMA flow SVG and a
    summary JSON under instance/demo/; stops everything it started, also on Ctrl-C.
    """
    from app.demo.runner import DemoOptions, run_demo
    from app.demo.stack import DemoError

    # quiet library logging (httpx request lines, alembic) so the demo's own output reads cleanly;
    # the children's logs are in instance/demo/logs/
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    console = Console()
    options = DemoOptions(records=records, workers=workers, concurrency=concurrency, kill_a_worker=kill_a_worker,
                          keep=keep, latency=latency, batch_size=batch_size)
    try:
        summary = run_demo(options, console)
    except KeyboardInterrupt:
        console.print("[yellow]demo interrupted; every process it started was stopped[/yellow]")
        sys.exit(130)
    except (DemoError, ApiError) as exc:
        console.print(f"[red]demo failed:[/red] {exc}")
        sys.exit(1)
    if summary.get("task_status") not in (TaskStatus.COMPLETED, TaskStatus.COMPLETED_WITH_ERRORS):
        console.print(f"[red]the screening task ended {summary.get('task_status')}[/red]")
        sys.exit(1)


def register(main: click.Group) -> None:
    """Add the demo and the terminal client commands to the ``litscreen`` group."""
    for command in (demo_command, import_command, screen_command, watch_command, export_command):
        main.add_command(command)
