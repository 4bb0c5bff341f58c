"""Terminal client: `litscreen projects create|list` and what `litscreen import` reports (format, encoding,
records per source database, warnings once), as a subprocess against a live HTTP server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli import FIXTURES, LiveServer, assert_clean_error, run_cli

pytestmark = pytest.mark.process  # every test runs the litscreen command

PICOS_SPEC = {"picos": {"P": "adults with acne", "I": "blue light", "C": "placebo", "O": "lesion count",
                        "S": "randomised trials"},
              "inclusion_criteria": "RCTs", "exclusion_criteria": "animal studies"}


def test_projects_create_and_list(live_server: LiveServer, make_token, tmp_path: Path) -> None:
    token = make_token("alice")
    spec = tmp_path / "picos.json"
    spec.write_text(json.dumps(PICOS_SPEC))
    created = run_cli("projects", "create", "Blue light for acne", "--picos-file", str(spec), url=live_server.url,
                      token=token)
    assert created.returncode == 0, created.stderr
    project_id = int(created.stdout.strip())

    imported = run_cli("import", str(project_id), str(FIXTURES / "endnote_export.xml"), url=live_server.url,
                       token=token)
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.strip() == "imported 102, duplicates 0, skipped 0"
    assert "format endnote_xml, encoding utf-8" in imported.stderr
    assert "records per source database: PubMed 102" in imported.stderr

    listed = run_cli("projects", "list", url=live_server.url, token=token)
    assert listed.returncode == 0, listed.stderr
    rows = [line.split("\t") for line in listed.stdout.strip().splitlines()]
    assert [(int(r[0]), int(r[1]), r[3]) for r in rows] == [(project_id, 102, "Blue light for acne")]

    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert_clean_error(run_cli("projects", "create", "x", "--picos-file", str(bad), url=live_server.url,
                               token=token), "cannot read", secret=token)
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"picos": {"P": ""}}))
    assert_clean_error(run_cli("projects", "create", "x", "--picos-file", str(empty), url=live_server.url,
                               token=token), "HTTP 422", secret=token)


def test_import_prints_format_encoding_source_and_each_warning_once(live_server: LiveServer,
                                                                    make_token, project_id: int,
                                                                    tmp_path: Path) -> None:
    token = make_token("alice")
    result = run_cli("import", str(project_id), str(FIXTURES / "web_of_science_tab_delimited_utf16.txt"),
                     url=live_server.url, token=token)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "imported 50, duplicates 0, skipped 0"
    assert "format wos_tab, encoding utf-16" in result.stderr
    bib = tmp_path / "scopus.bib"
    bib.write_text("@article{a, title={One}, title={One again}, funding_details={A}, funding_details={B}, "
                   "year=2020}\n")
    labelled = run_cli("import", str(project_id), str(bib), "--source", "Scopus", url=live_server.url, token=token)
    assert labelled.returncode == 0, labelled.stderr
    assert labelled.stderr.count("warning: BibTeX entry 'a'") == 1
    assert "records per source database: Scopus 1" in labelled.stderr
