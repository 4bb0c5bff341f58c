"""``litscreen demo``: the whole pipeline on a private PostgreSQL, with real processes, on real review data.

Steps: start (or reuse) the embedded PostgreSQL under ``instance/`` and give the demo a fresh database
(``litscreen_demo``, dropped and recreated at every run and left in place afterwards for inspection); migrate it;
start the LLM simulator (serving two models), real ``celery worker`` subprocesses, ``celery beat`` and the API
(gunicorn) on free loopback ports; create a user, a token and a project; import the records through the API;
start screening through the API and draw a live progress bar; then fetch the results and the CSV export, and
write a summary (JSON), the CSV and a PRISMA-style SVG under ``instance/demo/``. Every child process is stopped
at the end, also on Ctrl-C or SIGTERM, and the embedded server is released (stopped when nobody else holds it).
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console

from app.config import load_settings
from app.demo import dataset, report
from app.demo.prisma import PrismaCounts, prisma_svg
from app.processes import ChildProcess, ProcessStack, ProcessStackError, free_port
from app.terminal.client import ApiError, LitscreenClient
from app.terminal.progress import TaskStalled, watch_task

logger = logging.getLogger(__name__)

DEMO_DATABASE = "litscreen_demo"
DEMO_USER = "demo"
SIMULATED_MODELS = ("model-a", "model-b")
SCREENING_MODELS = ",".join(f"sim:{model}" for model in SIMULATED_MODELS)
# Recovery settings for the demo: short, so --kill-a-worker shows a resumed batch within seconds.
DEMO_RECOVERY_ENV = {"LEASE_TTL_SECONDS": "10", "SWEEP_INTERVAL_SECONDS": "3", "CHECKPOINT_EVERY": "5"}
# Variables that must not leak from the caller's shell into the demo's private stack.
STRIPPED_ENV = ("DATABASE_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "SCREENING_MODELS", "SIM_BASE_URL",
                "LLM_CACHE", "CACHE_BACKEND")


class DemoError(ProcessStackError):
    """The demo cannot go on; the message says why and where to look."""


@dataclass
class DemoOptions:
    """What ``litscreen demo`` was asked to do."""

    records: int | None = 300          # None = all 2,019
    workers: int = 1
    concurrency: int = 2
    kill_a_worker: bool = False
    keep: bool = False
    latency: float | None = None       # simulator seconds per call; None = 0, or 0.2 with --kill-a-worker
    batch_size: int | None = None      # None = about 12 batches (more with --kill-a-worker)
    instance_dir: Path | None = None
    stall_timeout: float = 180.0

    @property
    def worker_count(self) -> int:
        return max(self.workers, 2) if self.kill_a_worker else max(self.workers, 1)

    @property
    def simulator_latency(self) -> float:
        if self.latency is not None:
            return self.latency
        return 0.2 if self.kill_a_worker else 0.0

    def batch_size_for(self, records: int) -> int:
        if self.batch_size:
            return self.batch_size
        if self.kill_a_worker:  # long enough that the kill lands mid-batch, enough batches to spread
            return max(10, min(60, math.ceil(records / 6)))
        return max(10, min(100, math.ceil(records / 12)))


# -- the embedded server and the demo database -------------------------------------------------------------

def prepare_database(instance: Path) -> tuple[str, str]:
    """Start (or reuse) the embedded server; drop and recreate the demo database; migrate it.

    Returns (database URL, server version).
    """
    import psycopg

    from app.db.embedded import embedded_server_url
    from app.db.migrate import upgrade

    admin_url = embedded_server_url(instance)
    conninfo = admin_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        row = conn.execute("SHOW server_version").fetchone()
        version = str(row[0]) if row else "unknown"
        conn.execute(f'DROP DATABASE IF EXISTS "{DEMO_DATABASE}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DEMO_DATABASE}"')
    database_url = embedded_server_url(instance, DEMO_DATABASE)
    upgrade(database_url)
    return database_url, version


def release_embedded_server(instance: Path) -> None:
    """Drop this process's handle on the embedded server; stop it if no live process holds one any more.

    The wheel stops the server when its last handle goes; a handle left by a process that was ``kill -9``ed
    would keep it running forever, so dead holders are ignored here.
    """
    import psutil

    from app.db import embedded

    server = embedded._server  # the handle this process took in embedded_server_url
    if server is not None:
        server.cleanup()
        embedded._server = None
    pgdata = instance / "pgdata"
    try:
        holders = json.loads((pgdata / ".handle_pids.json").read_text() or "[]")
    except (OSError, ValueError):
        holders = []
    if not any(psutil.pid_exists(pid) for pid in holders) and (pgdata / "postmaster.pid").exists():
        embedded.stop_embedded(instance)


def create_demo_token(database_url: str) -> str:
    """Create the demo user and an API token (in this process, through the services)."""
    from app import create_app
    from app.extensions import db
    from app.services.users import create_token, create_user

    app = create_app({"DATABASE_URL": database_url})
    try:
        with app.app_context():
            create_user(db.session(), DEMO_USER)
            return create_token(db.session(), DEMO_USER)
    finally:
        app.extensions["litscreen_db_engine"].dispose()


# -- child processes ---------------------------------------------------------------------------------------

def child_env(database_url: str, simulator_url: str, instance: Path) -> dict[str, str]:
    """The environment of every child: the demo database, the simulated models, short recovery timings."""
    env = {k: v for k, v in os.environ.items() if k not in STRIPPED_ENV}
    env.update(DEMO_RECOVERY_ENV)
    env.update({
        "DATABASE_URL": database_url,
        "SCREENING_MODELS": SCREENING_MODELS,
        "SIM_BASE_URL": simulator_url,
        "CACHE_BACKEND": "postgres",
        "LLM_CACHE": "on",
        "LITSCREEN_INSTANCE_DIR": str(instance),
        "PYTHONUNBUFFERED": "1",
        "LOG_LEVEL": "INFO",
    })
    return env


def litscreen_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "app.cli", *args]


def worker_command(index: int, concurrency: int) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "tasks", "worker", "--loglevel", "INFO",
            "--hostname", f"demo-worker-{index}@%h", "--concurrency", str(concurrency),
            "--prefetch-multiplier", "1", "--without-mingle", "--without-gossip"]


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


# -- signals -----------------------------------------------------------------------------------------------

@contextmanager
def interrupts_as_keyboard_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP behave like Ctrl-C inside the block, so the same cleanup runs for all three."""

    def _interrupt(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    # Ctrl-C must work even when the caller started us with SIGINT ignored (a background job of a script)
    previous[signal.SIGINT] = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextmanager
def shielded_from_interrupts(console: Console) -> Iterator[None]:
    """While cleaning up, a second Ctrl-C only says that cleanup is running."""

    def _say(_signum: int, _frame: object) -> None:
        console.print("[yellow]stopping the demo's processes, one moment…[/yellow]")

    previous = {sig: signal.signal(sig, _say) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# -- --kill-a-worker ---------------------------------------------------------------------------------------

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


# -- the run -----------------------------------------------------------------------------------------------

class Demo:
    """One demo run (see the module docstring)."""

    def __init__(self, options: DemoOptions, console: Console) -> None:
        from app.db.embedded import default_instance_dir

        self.options = options
        self.console = console
        self.instance = (options.instance_dir or default_instance_dir()).resolve()
        self.out_dir = self.instance / "demo"
        self.stack = ProcessStack(self.out_dir / "logs")
        self.started = time.monotonic()
        self.api_url = ""
        self.flower_url: str | None = None
        self.summary: dict[str, Any] = {}
        self.token = ""
        self.task_id: int | None = None

    def step(self, text: str) -> None:
        self.console.print(f"[green]✓[/green] {text} [dim]({time.monotonic() - self.started:.1f} s)[/dim]")

    def run(self) -> dict[str, Any]:
        """Run the demo; every child process is stopped before this returns or raises."""
        self.instance.mkdir(parents=True, exist_ok=True)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for stale in ("summary.json", "results.csv", "prisma.svg"):
            (self.out_dir / stale).unlink(missing_ok=True)
        try:
            with interrupts_as_keyboard_interrupt():
                self._run()
                if self.options.keep:
                    try:
                        self._keep_running()
                    except KeyboardInterrupt:
                        self.console.print("stopping the kept stack…")
            return self.summary
        except KeyboardInterrupt:
            self._cancel_running_task()
            raise
        finally:
            stopping = time.monotonic()
            with shielded_from_interrupts(self.console), self.console.status(
                    "stopping the demo's processes (Celery workers finish their warm shutdown)…"):
                self.stack.stop_all()
                release_embedded_server(self.instance)
            self.console.print(f"[dim]stopped every process the demo started ({len(self.stack.children)}) and "
                               f"released PostgreSQL in {time.monotonic() - stopping:.1f} s; logs in "
                               f"{self.stack.log_dir}[/dim]")

    def _run(self) -> None:
        options, console = self.options, self.console
        console.rule("[bold]litscreen demo")
        if load_settings().database.url:
            console.print("[dim]DATABASE_URL is set; the demo ignores it and runs on its own embedded PostgreSQL "
                          "under instance/[/dim]")
        records = dataset.demo_subset(dataset.load_dataset(), options.records)
        with console.status("starting the embedded PostgreSQL and migrating a fresh database…"):
            database_url, version = prepare_database(self.instance)
        self.step(f"PostgreSQL {version} (embedded, data in {self.instance / 'pgdata'}); fresh database "
                  f"'{DEMO_DATABASE}' migrated to head")

        sim_port, api_port = free_port(), free_port()
        simulator_url = f"http://127.0.0.1:{sim_port}/v1"
        self.api_url = f"http://127.0.0.1:{api_port}"
        env = child_env(database_url, simulator_url, self.instance)
        if options.kill_a_worker:
            # a few records in flight per process, so a batch takes seconds and the kill lands mid-batch
            env["SIM_MAX_CONCURRENCY"] = "4"
        sim = self.stack.start("simulator", litscreen_command(
            "llm-simulator", "--host", "127.0.0.1", "--port", str(sim_port),
            "--latency", str(options.simulator_latency)), env)
        api = self.stack.start("api", [
            sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{api_port}", "--workers", "2",
            "--timeout", "180", "--access-logfile", "-", "app:create_app()"], env)
        workers = [self.stack.start(f"demo-worker-{i}", worker_command(i, options.concurrency), env)
                   for i in range(1, options.worker_count + 1)]
        self.stack.start("beat", [sys.executable, "-m", "celery", "-A", "tasks", "beat", "--loglevel", "INFO",
                                  "--schedule", str(self.out_dir / "celerybeat-schedule")], env)
        if options.keep:
            flower_port = free_port()
            self.flower_url = f"http://127.0.0.1:{flower_port}"
            self.stack.start("flower", [sys.executable, "-m", "celery", "-A", "tasks", "flower",
                                        "--address=127.0.0.1", f"--port={flower_port}"], env, essential=False)
        token = self.token = create_demo_token(database_url)
        with console.status("waiting for the simulator and the API…"):
            self.stack.wait_until(lambda: answers(f"{simulator_url}/models"), 60, "the LLM simulator", sim)
            self.stack.wait_until(lambda: answers(f"{self.api_url}/healthz"), 90, "the API", api)
        self.step(f"LLM simulator serving {SCREENING_MODELS} at {simulator_url} (simulated models: no language "
                  f"model is called, no API key used; latency {options.simulator_latency:g} s); API at "
                  f"{self.api_url}; {len(workers)} celery worker(s) × concurrency {options.concurrency}; beat")

        with LitscreenClient(self.api_url, token) as client:
            project = client.create_project(dataset.PROJECT_NAME, dataset.PICOS, dataset.INCLUSION_CRITERIA,
                                            dataset.EXCLUSION_CRITERIA)
            with console.status(f"importing {len(records)} records through the API…"):
                imported = client.import_records(project["id"], [r.as_import_record() for r in records])
            self.step(f"project {project['id']} created; {len(records)} records of the {dataset.DATASET_NAME} "
                      f"sent to POST /literatures: {imported['imported']} imported, {imported['duplicates']} "
                      f"duplicates, {len(imported.get('skipped') or [])} skipped")

            task = client.start_screening(project["id"], options.batch_size_for(int(imported["imported"])))
            task_id = self.task_id = int(task["id"])
            self.step(f"screening task {task_id} started: {task.get('total_items')} records in "
                      f"{task.get('total_batches')} batches")
            screening_started = time.monotonic()
            killer = None
            if options.kill_a_worker:
                killer = WorkerKiller(client, self.stack, workers, task_id,
                                      min_cursor=int(DEMO_RECOVERY_ENV["CHECKPOINT_EVERY"]))

            def on_poll(polled: dict[str, Any], poll_console: Console) -> None:
                self.stack.check_alive()
                if killer is not None:
                    killer(polled, poll_console)

            try:
                final = watch_task(client, task_id, console, interval=0.25, on_poll=on_poll,
                                   stall_timeout=options.stall_timeout, label="screening")
            except TaskStalled as exc:
                raise DemoError(f"{exc}; worker logs in {self.stack.log_dir}") from None
            screening_seconds = time.monotonic() - screening_started
            self.step(f"task {task_id} {final['status']}")
            self._collect(client, simulator_url, records, imported, final, screening_seconds, killer)
        self._print_summary()

    # -- results -------------------------------------------------------------------------------------------

    def _labels(self, client: LitscreenClient, project_id: int,
                records: list[dataset.DatasetRecord]) -> dict[int, str | None]:
        """literature id → human label, from the stored records (falling back to a title match)."""
        by_title: dict[str, str] = {}
        for record in records:
            key = " ".join(record.title.lower().split())
            by_title[key] = "include" if "include" in (by_title.get(key), record.label) else record.label
        labels: dict[int, str | None] = {}
        for literature in client.literatures(project_id):
            label = literature.get("label")
            if label not in ("include", "exclude"):
                label = by_title.get(" ".join(str(literature.get("title", "")).lower().split()))
            labels[int(literature["id"])] = label
        return labels

    def _collect(self, client: LitscreenClient, simulator_url: str, records: list[dataset.DatasetRecord],
                 imported: dict[str, Any], final: dict[str, Any], screening_seconds: float,
                 killer: WorkerKiller | None) -> None:
        task_id, project_id = int(final["id"]), int(final["project_id"])
        results = list(client.results(task_id))
        labels = self._labels(client, project_id, records)
        screened = int(final.get("total_items") or 0)
        counts = report.count_decisions([r.get("final_decision") for r in results])
        counts.failed += max(0, screened - len(results))  # a record without a result row has no decision
        pairs = [(r.get("final_decision"), labels.get(int(r["literature_id"]))) for r in results]
        agreement = report.agreement(pairs)

        csv_text = client.export(task_id, "csv").decode("utf-8")
        csv_text = with_label_column(csv_text, labels)
        stats = httpx.get(f"{simulator_url}/stats", timeout=5).json()
        cache_hits = None
        try:
            cache_hits = client.cache_stats().get("hits")
        except ApiError:
            pass
        batches = client.batches(task_id)

        results_csv = self.out_dir / "results.csv"
        svg_path = self.out_dir / "prisma.svg"
        summary_path = self.out_dir / "summary.json"
        results_csv.write_text(csv_text, encoding="utf-8")
        svg_path.write_text(prisma_svg(PrismaCounts(
            identified=len(records), duplicates=int(imported["duplicates"]),
            skipped=len(imported.get("skipped") or []), screened=screened, excluded=counts.excluded,
            conflicts=counts.conflicts, failed=counts.failed, included=counts.included,
            source=dataset.source_line(len(records)),
            models=", ".join(SIMULATED_MODELS) + " (simulated)")), encoding="utf-8")
        elapsed = time.monotonic() - self.started
        self.summary = {
            "dataset": dataset.DATASET_NAME,
            "records_sent": len(records),
            "imported": int(imported["imported"]),
            "duplicates": int(imported["duplicates"]),
            "skipped": len(imported.get("skipped") or []),
            "screened": screened,
            "project_id": project_id,
            "task_id": task_id,
            "task_status": final.get("status"),
            "included": counts.included,
            "excluded": counts.excluded,
            "conflicts": counts.conflicts,
            "failed": counts.failed,
            "result_rows": len(results),
            "task_counters": {k: final.get(k) for k in (
                "processed_items", "success_items", "failed_items", "conflict_items", "total_batches",
                "processed_batches")},
            "total_batches": int(final.get("total_batches") or len(batches)),
            "batch_attempts": sum(int(b.get("attempts") or 0) for b in batches),
            "llm_calls": int(stats.get("calls_total", 0)),
            "llm_calls_by_model": stats.get("calls_by_model", {}),
            "cache_hits": cache_hits,
            "prompt_tokens": int(final.get("prompt_tokens") or 0),
            "completion_tokens": int(final.get("completion_tokens") or 0),
            "screening_seconds": round(screening_seconds, 2),
            "records_per_second": round(screened / screening_seconds, 2) if screening_seconds else 0.0,
            "elapsed_seconds": round(elapsed, 2),
            "agreement": agreement.as_dict(),
            "models": SCREENING_MODELS,
            "decisions_from": "the built-in LLM simulator (deterministic lexical score), not a language model",
            "workers": self.options.worker_count,
            "kill_a_worker": killer.as_dict() if killer else None,
            "files": {"results_csv": str(results_csv), "prisma_svg": str(svg_path),
                      "summary_json": str(summary_path), "logs": str(self.stack.log_dir)},
        }
        summary_path.write_text(json.dumps(self.summary, indent=2) + "\n", encoding="utf-8")

    def _print_summary(self) -> None:
        console, summary = self.console, self.summary
        console.print()
        console.print(report.summary_table(summary))
        console.print(report.agreement_table(summary["agreement"]))
        report.print_agreement_definition(console)
        counters = summary["task_counters"]
        if counters.get("failed_items") is not None and int(counters["failed_items"]) != summary["failed"]:
            console.print(f"[yellow]note: the task counts {counters['failed_items']} failed items, the results "
                          f"{summary['failed']}[/yellow]")
        if summary["kill_a_worker"]:
            kill = summary["kill_a_worker"]
            if kill["lease_owner_after"]:
                redone = summary["llm_calls"] - 2 * (summary["screened"] - summary["failed"])
                console.print(f"[bold]--kill-a-worker:[/bold] batch {kill['batch_index']} was held by "
                              f"{kill['lease_owner_before']} when it was killed at cursor {kill['cursor_at_kill']}; "
                              f"it resumed under {kill['lease_owner_after']} from that checkpoint. "
                              f"{max(redone, 0)} LLM calls beyond two per record were made (items in flight "
                              f"at the kill, not yet checkpointed); the cache answered "
                              f"{summary['cache_hits'] or 0} repeated calls.")
            elif kill["killed_worker"]:
                console.print(f"[yellow]--kill-a-worker: {kill['killed_worker']} was killed but the resumed "
                              f"batch was not seen under a new owner before the run ended[/yellow]")
            else:
                console.print("[yellow]--kill-a-worker: no batch was caught mid-way (the run was too quick); "
                              "try --records all or --latency 0.1[/yellow]")
        files = summary["files"]
        console.print()
        console.print(f"results CSV   {files['results_csv']}")
        console.print(f"PRISMA flow   {files['prisma_svg']}")
        console.print(f"summary JSON  {files['summary_json']}")
        console.print()
        console.print("[bold yellow]These decisions come from the built-in LLM simulator[/bold yellow] — a "
                      "deterministic keyword score standing in for two models — not from a language model. "
                      "The figures show the pipeline, not screening quality.")
        console.print("Real models: [bold]export SCREENING_MODELS=deepseek:deepseek-chat,qwen:qwen-plus "
                      "DEEPSEEK_API_KEY=… QWEN_API_KEY=…[/bold] (any OpenAI-compatible endpoint: "
                      "SCREENING_MODELS=NAME:model with NAME_BASE_URL / NAME_API_KEY), then "
                      "[bold]make up[/bold] and use the API or the terminal client.")
        console.print()
        console.print("[bold]Where to look next[/bold]")
        if self.options.keep:
            console.print(f"  API docs      {self.api_url}/api/docs   (OpenAPI: {self.api_url}/api/openapi.json)")
            console.print(f"  Flower        {self.flower_url}")
            console.print(f"  terminal      export LITSCREEN_API_URL={self.api_url} "
                          f"LITSCREEN_TOKEN=$(cat {self.out_dir / 'token'})")
            console.print(f"                litscreen watch {summary['task_id']}; litscreen export "
                          f"{summary['task_id']} -o results.csv")
        else:
            console.print("  litscreen demo --keep     keeps this stack running: API docs at /api/docs, Flower, "
                          "and a token for the terminal client")
            console.print("  make up                   the full stack (API on http://127.0.0.1:5000/api/docs, "
                          "Flower on http://127.0.0.1:5555)")
            console.print("  litscreen import / screen / watch / export   the terminal client (see README)")

    def _cancel_running_task(self) -> None:
        """On Ctrl-C mid-run, cancel the task so workers stop at their next checkpoint and shut down quickly."""
        if self.task_id is None or self.summary:
            return
        try:
            with LitscreenClient(self.api_url, self.token, timeout=3.0) as client:
                client.cancel(self.task_id)
            self.console.print(f"[yellow]task {self.task_id} cancelled[/yellow]")
        except ApiError:
            pass

    def _keep_running(self) -> None:
        token_path = self.out_dir / "token"
        token_path.write_text(self.token + "\n", encoding="utf-8")
        token_path.chmod(0o600)
        self.console.print(f"[bold]The stack keeps running; press Ctrl-C to stop it.[/bold] "
                           f"(API token in {token_path})")
        while True:
            self.stack.check_alive()
            time.sleep(1)


def with_label_column(csv_text: str, labels: dict[int, str | None]) -> str:
    """The export CSV, with a ``human_label`` column added from the stored labels unless it has one already."""
    import csv
    import io

    rows = list(csv.reader(io.StringIO(csv_text)))
    if not rows:
        return csv_text
    header = [h.strip() for h in rows[0]]
    if any(column in header for column in report.LABEL_COLUMNS):
        return csv_text
    id_column = next((c for c in ("literature_id",) if c in header), None)
    if id_column is None:
        return csv_text
    index = header.index(id_column)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*rows[0], "human_label"])
    for row in rows[1:]:
        try:
            label = labels.get(int(row[index])) or ""
        except (ValueError, IndexError):
            label = ""
        writer.writerow([*row, label])
    return out.getvalue()


def run_demo(options: DemoOptions, console: Console | None = None) -> dict[str, Any]:
    """Run the demo and return its summary (also written to instance/demo/summary.json)."""
    return Demo(options, console or Console()).run()
