"""The ``litscreen demo`` command: the whole pipeline on bundled review data (see :mod:`app.demo.runner`)."""

from __future__ import annotations

import logging
import sys
from typing import Any

import click
from rich.console import Console

from app.models.statuses import TaskStatus
from app.terminal.client import ApiError

logger = logging.getLogger(__name__)


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
@click.option("--fulltext", is_flag=True,
              help="Then run full-text screening with 12-field extraction on the bundled open-access PDFs.")
def demo_command(records: int | None, workers: int, concurrency: int, kill_a_worker: bool, keep: bool,
                 latency: float | None, batch_size: int | None, fulltext: bool) -> None:
    """Run the whole pipeline on the bundled Nagtegaal 2019 review data with the LLM simulator.

    Starts a private PostgreSQL (under instance/), the simulator, real Celery workers, beat and the API; imports
    and screens through the API with a live progress bar; writes the results CSV, a PRISMA flow SVG and a
    summary JSON under instance/demo/; stops everything it started, also on Ctrl-C.
    """
    from app.demo.runner import DemoOptions, run_demo
    from app.processes import ProcessStackError

    # quiet library logging (httpx request lines, alembic) so the demo's own output reads cleanly;
    # the children's logs are in instance/demo/logs/
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    console = Console()
    options = DemoOptions(records=records, workers=workers, concurrency=concurrency, kill_a_worker=kill_a_worker,
                          keep=keep, latency=latency, batch_size=batch_size, fulltext=fulltext)
    try:
        summary = run_demo(options, console)
    except KeyboardInterrupt:
        console.print("[yellow]demo interrupted; every process it started was stopped[/yellow]")
        sys.exit(130)
    except (ProcessStackError, ApiError) as exc:
        console.print(f"[red]demo failed:[/red] {exc}")
        sys.exit(1)
    if summary.get("task_status") not in (TaskStatus.COMPLETED, TaskStatus.COMPLETED_WITH_ERRORS):
        console.print(f"[red]the screening task ended {summary.get('task_status')}[/red]")
        sys.exit(1)
    if fulltext and (summary.get("fulltext") or {}).get("task_status") not in ("completed", "completed_with_errors"):
        console.print(f"[red]the full-text task ended {(summary.get('fulltext') or {}).get('task_status')}[/red]")
        sys.exit(1)


def register(main: click.Group) -> None:
    """Add ``demo`` to the ``litscreen`` group."""
    main.add_command(demo_command)
