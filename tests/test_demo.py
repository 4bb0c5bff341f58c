"""`litscreen demo --records 40` end to end: embedded PostgreSQL, simulator, real workers, beat and the API.

Runs the command as a subprocess with its own instance directory (so a fresh embedded server and database),
then checks that the summary adds up, that the agreement figures follow from the labels in the CSV, that the
CSV and the SVG are well-formed, and that no process is left behind.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from app.demo import dataset, report

RECORDS = 40


def processes_mentioning(text: str) -> list[psutil.Process]:
    """Running processes whose command line contains ``text`` (the embedded postgres names its data dir)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if any(text in part for part in proc.info["cmdline"] or []):
                found.append(proc)
        except psutil.Error:
            continue
    return found


@pytest.fixture(scope="module")
def demo_run() -> Iterator[tuple[subprocess.CompletedProcess, Path, list[psutil.Process]]]:
    """One demo run in a private instance directory (short path: Unix socket paths are limited)."""
    instance = Path(tempfile.mkdtemp(prefix="ls-demo-"))
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "TEST_DATABASE_URL", "SCREENING_MODELS",
                                                            "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND")}
    env.update(LITSCREEN_INSTANCE_DIR=str(instance), PYTHONUNBUFFERED="1", COLUMNS="120")
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    result = subprocess.run([sys.executable, "-m", "app.cli", "demo", "--records", str(RECORDS)], env=env,
                            capture_output=True, text=True, timeout=420)
    leftovers = [p for p in psutil.Process().children(recursive=True) if p.pid not in before]
    try:
        yield result, instance, leftovers
    finally:
        if (instance / "pgdata" / "postmaster.pid").exists():  # only after a failed run
            subprocess.run([sys.executable, "-m", "app.cli", "db", "stop"], env=env, capture_output=True)
        shutil.rmtree(instance, ignore_errors=True)


@pytest.mark.process
def test_demo_runs_to_the_end(demo_run) -> None:
    result, instance, _ = demo_run
    logs = instance / "demo" / "logs"
    tails = "\n".join(f"== {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in sorted(logs.glob("*.log")))
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}\n{tails}"
    assert "simulator" in result.stdout
    assert "SCREENING_MODELS" in result.stdout  # says how to use real models


@pytest.mark.process
def test_summary_adds_up(demo_run) -> None:
    result, instance, _ = demo_run
    summary = json.loads((instance / "demo" / "summary.json").read_text())
    assert summary["records_sent"] == RECORDS
    assert summary["imported"] + summary["duplicates"] + summary["skipped"] == RECORDS
    assert summary["screened"] == summary["imported"]
    assert summary["included"] + summary["excluded"] + summary["conflicts"] + summary["failed"] == summary["screened"]
    assert summary["task_status"] in ("completed", "completed_with_errors")
    counters = summary["task_counters"]
    assert counters["processed_items"] == summary["screened"]
    assert counters["failed_items"] == summary["failed"]
    assert counters["conflict_items"] == summary["conflicts"]
    # two models judged every record; nothing was lost, nothing was paid for twice on a fresh database
    assert summary["llm_calls"] >= 2 * (summary["screened"] - summary["failed"])
    assert set(summary["llm_calls_by_model"]) == {"model-a", "model-b"}
    assert summary["prompt_tokens"] > 0


@pytest.mark.process
def test_agreement_follows_from_the_labels_in_the_csv(demo_run) -> None:
    _, instance, _ = demo_run
    summary = json.loads((instance / "demo" / "summary.json").read_text())
    text = (instance / "demo" / "results.csv").read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == summary["screened"]
    counts, agreement = report.agreement_from_csv(text)
    assert (counts.included, counts.excluded, counts.conflicts, counts.failed) == (
        summary["included"], summary["excluded"], summary["conflicts"], summary["failed"])
    stored = summary["agreement"]
    assert agreement.labelled == summary["screened"]  # every demo record carries the review team's label
    for key in ("true_positive", "false_negative", "true_negative", "false_positive"):
        assert getattr(agreement, key) == stored[key], key
    assert stored["recall"] == pytest.approx(agreement.recall)
    assert stored["specificity"] == pytest.approx(agreement.specificity)
    assert stored["work_saved"] == pytest.approx(summary["excluded"] / summary["screened"])
    # the labels are the data set's own: the subset keeps its share of includes
    subset = dataset.demo_subset(dataset.load_dataset(), RECORDS)
    assert agreement.true_positive + agreement.false_negative == sum(r.label == "include" for r in subset)


@pytest.mark.process
def test_prisma_svg_is_well_formed_and_shows_the_counts(demo_run) -> None:
    _, instance, _ = demo_run
    summary = json.loads((instance / "demo" / "summary.json").read_text())
    root = ET.parse(instance / "demo" / "prisma.svg").getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    texts = " | ".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))
    prisma = summary["prisma"]
    assert prisma["screening"]["records_screened"] == summary["screened"]
    audited = summary["audit"]["reviewed"]
    # the audited exclusions were decided by a human; the rest were marked ineligible by automation
    assert prisma["screening"]["marked_ineligible_by_automation"] == summary["excluded"] - audited
    assert f"automation tools (n = {summary['excluded'] - audited:,})" in texts
    assert f"Records identified from databases (n = {summary['imported']:,})" in texts
    assert len(list(root.iter("{http://www.w3.org/2000/svg}rect"))) >= 7


@pytest.mark.process
def test_demo_prints_agreement_audit_and_methods_from_the_endpoints(demo_run) -> None:
    _, instance, _ = demo_run
    summary = json.loads((instance / "demo" / "summary.json").read_text())
    agreement, audit = summary["agreement"], summary["audit"]
    assert agreement["n"] == summary["screened"] and agreement["kappa"] is not None and agreement["ac1"] is not None
    assert audit["reviewed"] == min(50, summary["excluded"])
    # the demo's "human" is the data set's label: the missed includes are exactly the false negatives audited
    assert 0 <= audit["missed_includes"] <= agreement["false_negative"]
    assert audit["miss_rate_upper_95"] is not None and audit["miss_rate_upper_95"] > 0
    assert "model-a (sim)" in summary["methods"] and "Clopper" in summary["methods"]


@pytest.mark.process
def test_no_process_is_left_behind(demo_run) -> None:
    _, instance, leftovers = demo_run
    assert [p for p in leftovers if p.is_running() and p.status() != psutil.STATUS_ZOMBIE] == []
    assert processes_mentioning(str(instance)) == []
    assert not (instance / "pgdata" / "postmaster.pid").exists()


def test_subset_is_deterministic_and_keeps_both_labels() -> None:
    records = dataset.load_dataset()
    assert len(records) == dataset.DATASET_SIZE
    assert sum(r.label == "include" for r in records) == 392  # as in app/data/PROVENANCE.md
    first, second = dataset.demo_subset(records, 300), dataset.demo_subset(records, 300)
    assert [r.record_id for r in first] == [r.record_id for r in second]
    assert len({r.record_id for r in first}) == 300
    assert sum(r.label == "include" for r in first) == round(300 * 392 / 2019)
    tiny = dataset.demo_subset(records, 2)
    assert {r.label for r in tiny} == {"include", "exclude"}
    assert len(dataset.demo_subset(records, None)) == dataset.DATASET_SIZE


def test_agreement_treats_conflicts_and_failures_as_sent_to_a_human() -> None:
    pairs = [("include", "include"), ("conflict", "include"), (None, "include"), ("exclude", "include"),
             ("exclude", "exclude"), ("exclude", "exclude"), ("conflict", "exclude"), ("include", "exclude"),
             ("include", None)]
    result = report.agreement(pairs)
    assert (result.true_positive, result.false_negative) == (3, 1)
    assert (result.true_negative, result.false_positive) == (2, 2)
    assert result.unlabelled == 1
    assert result.recall == pytest.approx(3 / 4)
    assert result.specificity == pytest.approx(2 / 4)
    assert result.work_saved == pytest.approx(3 / 8)


@pytest.mark.process
def test_ctrl_c_mid_run_stops_everything() -> None:
    """SIGINT while the records are being screened: exit 130, no child process and no postgres left."""
    instance = Path(tempfile.mkdtemp(prefix="ls-demo-int-"))
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "TEST_DATABASE_URL", "SCREENING_MODELS",
                                                            "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND")}
    env.update(LITSCREEN_INSTANCE_DIR=str(instance), PYTHONUNBUFFERED="1", COLUMNS="200")
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    demo = subprocess.Popen([sys.executable, "-m", "app.cli", "demo", "--records", "all", "--latency", "0.05"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output: list[str] = []
    try:
        assert demo.stdout is not None
        for line in demo.stdout:
            output.append(line)
            if "screening task" in line and "started" in line:
                break
        else:
            pytest.fail("the demo ended before screening started:\n" + "".join(output))
        demo.send_signal(signal.SIGINT)
        rest, _ = demo.communicate(timeout=90)
        output.append(rest)
        assert demo.returncode == 130, "".join(output)
        assert "every process it started was stopped" in "".join(output)
        leftovers = [p for p in psutil.Process().children(recursive=True) if p.pid not in before]
        assert [p for p in leftovers if p.is_running() and p.status() != psutil.STATUS_ZOMBIE] == []
        assert processes_mentioning(str(instance)) == []
        assert not (instance / "pgdata" / "postmaster.pid").exists()
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait(timeout=30)
        if (instance / "pgdata" / "postmaster.pid").exists():
            subprocess.run([sys.executable, "-m", "app.cli", "db", "stop"], env=env, capture_output=True)
        shutil.rmtree(instance, ignore_errors=True)
