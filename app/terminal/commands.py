"""The terminal client's commands: ``litscreen projects create|list``, ``import``, ``screen``, ``watch``,
``export``.

None of them builds the Flask app of the CLI group: they talk HTTP to a running service
(LITSCREEN_API_URL / LITSCREEN_TOKEN or --api-url / --token) through :mod:`app.terminal.client`.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console

from app.models.statuses import TaskStatus
from app.terminal.client import DEFAULT_API_URL, ApiError, LitscreenClient
from app.terminal.progress import BatchReporter, watch_task

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

# exit codes of `litscreen watch` (and `screen --watch`)
EXIT_FAILED = 1
EXIT_CANCELLED = 2
EXIT_PAUSED = 3


def api_options(function: F) -> F:
    """--api-url and --token, defaulting to LITSCREEN_API_URL / LITSCREEN_TOKEN."""
    function = click.option("--token", envvar="LITSCREEN_TOKEN", default=None, show_envvar=True,
                            help="API token (prefer the environment variable: flags show up in `ps`).")(function)
    function = click.option("--api-url", envvar="LITSCREEN_API_URL", default=None, show_envvar=True,
                            help="Base URL of the litscreen service [default: http://127.0.0.1:5000].")(function)
    return function


def make_client(api_url: str | None, token: str | None) -> LitscreenClient:
    """A client for ``--api-url`` / ``--token`` (click reads LITSCREEN_API_URL / LITSCREEN_TOKEN for them)."""
    if not token:
        raise click.ClickException("no API token: set LITSCREEN_TOKEN (or pass --token); create one with "
                                   "`litscreen tokens create NAME`")
    return LitscreenClient(api_url or DEFAULT_API_URL, token)


def stderr_console() -> Console:
    return Console(stderr=True)


@click.command("import")
@click.argument("project_id", type=int)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--source", default=None, help="The database searched (e.g. Embase); replaces the detected source "
              "database of every record (for PRISMA's per-database counts).")
@api_options
def import_command(project_id: int, file: Path, source: str | None, api_url: str | None, token: str | None) -> None:
    """Import FILE (RIS, MEDLINE/.nbib, BibTeX, CSV, Web of Science, EndNote XML; detected) into PROJECT_ID.

    Prints "imported N, duplicates D, skipped S" on stdout; the detected format, encoding, records per source
    database and any warnings on stderr."""
    try:
        with make_client(api_url, token) as client:
            answer = client.import_file(project_id, file, source=source)
    except ApiError as exc:
        raise click.ClickException(str(exc)) from None
    skipped = answer.get("skipped") or []
    click.echo(f"imported {answer.get('imported', 0)}, duplicates {answer.get('duplicates', 0)}, "
               f"skipped {len(skipped)}")
    click.echo(f"format {answer.get('format')}, encoding {answer.get('encoding') or 'n/a'}", err=True)
    sources = answer.get("source_databases") or {}
    if sources:
        click.echo("records per source database: " + ", ".join(f"{name} {count}" for name, count in sources.items()),
                   err=True)
    for warning in dict.fromkeys(answer.get("warnings") or []):
        click.echo(f"warning: {warning}", err=True)
    for item in skipped[:20]:
        click.echo(f"  skipped record {item.get('index')}: {item.get('reason')}", err=True)
    if len(skipped) > 20:
        click.echo(f"  … and {len(skipped) - 20} more", err=True)


@click.command("screen")
@click.argument("project_id", type=int)
@click.option("--batch-size", type=click.IntRange(1), default=None, help="Records per batch [default: server's].")
@click.option("--budget", "budget", type=click.FloatRange(0), default=None,
              help="USD: the run pauses before its LLM calls would pass it (resume with `litscreen resume`).")
@click.option("--watch/--no-watch", "watch", default=False, help="Follow the task with a progress bar.")
@api_options
def screen_command(project_id: int, batch_size: int | None, budget: float | None, watch: bool, api_url: str | None,
                   token: str | None) -> None:
    """Start title/abstract screening of project PROJECT_ID; prints the task id on stdout."""
    try:
        with make_client(api_url, token) as client:
            task = client.start_screening(project_id, batch_size, budget_usd=budget)
            click.echo(task["id"])
            click.echo(f"task {task['id']} {task.get('status')}: {task.get('total_items')} records in "
                       f"{task.get('total_batches')} batches; follow it with `litscreen watch {task['id']}`",
                       err=True)
            if watch:
                _watch(client, int(task["id"]), 1.0)
    except ApiError as exc:
        raise click.ClickException(str(exc)) from None


@click.command("resume")
@click.argument("task_id", type=int)
@click.option("--budget", "budget", type=click.FloatRange(0, min_open=True), required=True,
              help="The new budget in USD (above what the run has spent).")
@click.option("--watch/--no-watch", "watch", default=False, help="Follow the task with a progress bar.")
@api_options
def resume_command(task_id: int, budget: float, watch: bool, api_url: str | None, token: str | None) -> None:
    """Continue task TASK_ID, paused by its budget, with a raised budget."""
    try:
        with make_client(api_url, token) as client:
            task = client.resume(task_id, budget)
            click.echo(f"task {task_id} {task.get('status')}: budget USD {task.get('budget_usd')}, spent USD "
                       f"{float(task.get('budget_spent_usd') or 0):.4f}", err=True)
            if watch:
                _watch(client, task_id, 1.0)
    except ApiError as exc:
        raise click.ClickException(str(exc)) from None


@click.command("watch")
@click.argument("task_id", type=int)
@click.option("--interval", type=click.FloatRange(0.1), default=1.0, show_default=True,
              help="Seconds between polls.")
@api_options
def watch_command(task_id: int, interval: float, api_url: str | None, token: str | None) -> None:
    """Follow task TASK_ID with a live progress bar until it ends.

    Above the bar it tells what a low rate does not: a batch waiting on a retry (the reason, and when it runs
    again), a batch that failed, a run that paused (and why).

    Exit status: 0 completed (also with failed items, which are reported), 1 failed, 2 cancelled, 3 paused
    (its budget is reached: `litscreen resume TASK_ID --budget USD`).
    """
    try:
        with make_client(api_url, token) as client:
            _watch(client, task_id, interval)
    except ApiError as exc:
        raise click.ClickException(str(exc)) from None


def _watch(client: LitscreenClient, task_id: int, interval: float) -> None:
    console = stderr_console()
    task = watch_task(client, task_id, console, interval=interval, on_poll=BatchReporter(client, task_id))
    status = task.get("status")
    line = (f"task {task_id} {status}: {task.get('processed_items')}/{task.get('total_items')} records, "
            f"{task.get('conflict_items')} conflicts, {task.get('failed_items')} failed")
    if status == TaskStatus.FAILED:
        console.print(f"[red]{line}[/red]" + (f" — {task['error']}" if task.get("error") else ""))
        sys.exit(EXIT_FAILED)
    if status == TaskStatus.CANCELLED:
        console.print(f"[yellow]{line}[/yellow]")
        sys.exit(EXIT_CANCELLED)
    if status == TaskStatus.PAUSED:
        console.print(f"[yellow]{line}; paused ({task.get('paused_reason') or 'no reason given'}) after USD "
                      f"{float(task.get('budget_spent_usd') or 0):.4f} of USD {task.get('budget_usd')}: continue with "
                      f"`litscreen resume {task_id} --budget USD`[/yellow]")
        sys.exit(EXIT_PAUSED)
    console.print(f"[green]{line}[/green]")


@click.command("export")
@click.argument("task_id", type=int)
@click.option("--format", "fmt", type=click.Choice(["csv", "ris", "xlsx"]), default="csv", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True, path_type=Path), default=None,
              help="Write to this file instead of stdout.")
@api_options
def export_command(task_id: int, fmt: str, output: Path | None, api_url: str | None, token: str | None) -> None:
    """Export the results of task TASK_ID as CSV, RIS or XLSX."""
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


@click.group("projects")
def projects_group() -> None:
    """Screening projects of the token's user (terminal client)."""


@projects_group.command("create")
@click.argument("name")
@click.option("--picos-file", "picos_file", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help='JSON: {"picos": {"P": …, "I": …, "C": …, "O": …, "S": …}, "inclusion_criteria"?, '
                   '"exclusion_criteria"?} (or just the PICOS object).')
@api_options
def projects_create(name: str, picos_file: Path, api_url: str | None, token: str | None) -> None:
    """Create project NAME with the criteria in --picos-file; prints the project id on stdout."""
    import json

    try:
        spec = json.loads(picos_file.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise click.ClickException(f"cannot read {picos_file} as JSON: {exc}") from None
    if not isinstance(spec, dict):
        raise click.ClickException(f"{picos_file} must hold a JSON object with 'picos'")
    picos = spec.get("picos", spec if set(spec) & set("PICOS") else None)
    if not isinstance(picos, dict):
        raise click.ClickException(f"{picos_file} must hold 'picos': an object with P, I, C, O and S")
    try:
        with make_client(api_url, token) as client:
            project = client.create_project(name, picos, spec.get("inclusion_criteria"),
                                            spec.get("exclusion_criteria"))
    except ApiError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(project["id"])
    click.echo(f"project {project['id']} '{project['name']}' created; import records with "
               f"`litscreen import {project['id']} FILE`", err=True)


@projects_group.command("list")
@api_options
def projects_list(api_url: str | None, token: str | None) -> None:
    """List your projects: id, records, created, name (one per line, tab-separated)."""
    try:
        with make_client(api_url, token) as client:
            projects = list(client.projects())
    except ApiError as exc:
        raise click.ClickException(str(exc)) from None
    for project in projects:
        click.echo(f"{project['id']}\t{project.get('literature_count', 0)}\t{(project.get('created_at') or '')[:10]}"
                   f"\t{project['name']}")
    if not projects:
        click.echo("no projects yet: create one with `litscreen projects create NAME --picos-file F`", err=True)


def register(main: click.Group) -> None:
    """Add the terminal client commands to the ``litscreen`` group."""
    for command in (import_command, screen_command, resume_command, watch_command, export_command, projects_group):
        main.add_command(command)
