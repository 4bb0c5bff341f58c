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
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console

from app.config import load_settings
from app.demo import dataset, report
from app.demo.kill_a_worker import WorkerKiller
from app.demo.stack import (
    DEMO_DATABASE,
    DEMO_RECOVERY_ENV,
    SCREENING_MODELS,
    DemoError,
    answers,
    child_env,
    create_demo_token,
    interrupts_as_keyboard_interrupt,
    litscreen_command,
    prepare_database,
    release_embedded_server,
    shielded_from_interrupts,
    worker_command,
)
from app.processes import ProcessStack, free_port
from app.terminal.client import ApiError, LitscreenClient
from app.terminal.progress import TaskStalled, watch_task

logger = logging.getLogger(__name__)

AUDIT_SAMPLE_SIZE = 50  # machine exclusions the demo audits (the "human" is the data set's own label)


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
    fulltext: bool = False             # also run the full-text stage on the bundled PDFs
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
            if options.fulltext:
                from app.demo.fulltext import run_fulltext_stage

                self.summary["fulltext"] = run_fulltext_stage(client, console, self.step, self.out_dir, database_url,
                                                              options.stall_timeout)
                (self.out_dir / "summary.json").write_text(json.dumps(self.summary, indent=2) + "\n",
                                                           encoding="utf-8")

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
        agreement = report.flat_agreement(client.agreement(task_id), len(results))

        csv_text = client.export(task_id, "csv").decode("utf-8")
        csv_text = with_label_column(csv_text, labels)
        audit = self._audit(client, task_id, labels, counts.excluded)
        drift = self._drift(client, task_id)
        methods = client.methods(task_id)
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
        svg_path.write_bytes(client.prisma_svg(project_id))
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
            "agreement": agreement,
            "audit": audit,
            "methods": methods["text"],
            "drift": drift,
            "prisma": client.prisma(project_id),
            "models": SCREENING_MODELS,
            "decisions_from": "the built-in LLM simulator (deterministic lexical score), not a language model",
            "workers": self.options.worker_count,
            "kill_a_worker": killer.as_dict() if killer else None,
            "files": {"results_csv": str(results_csv), "prisma_svg": str(svg_path),
                      "summary_json": str(summary_path), "logs": str(self.stack.log_dir)},
        }
        summary_path.write_text(json.dumps(self.summary, indent=2) + "\n", encoding="utf-8")

    def _drift(self, client: LitscreenClient, task_id: int, timeout: float = 120.0) -> dict[str, Any]:
        """The run's drift check (a fixed subset re-screened without the cache once the run completed), waited
        for when the run was long enough to get one."""
        deadline = time.monotonic() + timeout
        while True:
            drift = client.drift(task_id)
            if drift.get("status") not in ("pending", "running") or time.monotonic() > deadline:
                return drift
            time.sleep(0.5)

    def _audit(self, client: LitscreenClient, task_id: int, labels: dict[int, str | None],
               excluded: int) -> dict[str, Any]:
        """Audit the machine's exclusions as a reviewer would: a random sample, each record decided by a human
        (here: the review team's own title/abstract decision, which the data set carries), then the bound."""
        if not excluded:
            return client.audit(task_id)
        sample = client.audit_sample(task_id, min(AUDIT_SAMPLE_SIZE, excluded))
        by_id = {int(r["id"]): int(r["literature_id"]) for r in client.results(task_id, decision="exclude")}
        for result_id in sample["result_ids"]:
            label = labels.get(by_id.get(result_id, -1)) or "exclude"
            client.review(result_id, label, "demo: the review team's own title/abstract decision")
        return client.audit(task_id)

    def _print_summary(self) -> None:
        console, summary = self.console, self.summary
        console.print()
        console.print(report.summary_table(summary))
        console.print(report.agreement_table(summary["agreement"]))
        report.print_agreement_definition(console)
        report.print_audit(console, summary["audit"])
        report.print_drift(console, summary["drift"])
        report.print_methods(console, summary["methods"])
        counters = summary["task_counters"]
        if counters.get("failed_items") is not None and int(counters["failed_items"]) != summary["failed"]:
            console.print(f"[yellow]note: the task counts {counters['failed_items']} failed items, the results "
                          f"{summary['failed']}[/yellow]")
        if summary["kill_a_worker"]:
            kill = summary["kill_a_worker"]
            if kill["lease_owner_after"]:
                drift_calls = 2 * int(summary["drift"].get("records") or 0) + 2 * int(summary["drift"].get("failed")
                                                                                     or 0)
                redone = summary["llm_calls"] - 2 * (summary["screened"] - summary["failed"]) - drift_calls
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
            console.print(f"  workspace     {self.api_url}/ui/   (sign in by pasting the API token kept in "
                          f"{self.out_dir / 'token'})")
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
        # the token is pasted into the sign-in form rather than put in a link: a secret in a URL ends up in
        # the browser's history and in access logs
        self.console.print(f"[bold]Reviewer's workspace:[/bold] {self.api_url}/ui/sign-in — paste the token "
                           f"printed by: cat {token_path}")
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
