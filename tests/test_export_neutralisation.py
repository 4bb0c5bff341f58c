"""CSV export is spreadsheet-safe (OWASP CSV injection): cells starting with =, +, -, @, tab or CR get a leading
quote — titles, authors, journals, review notes and model reasons alike; the RIS export is unchanged."""

from __future__ import annotations

import csv
import io
import json

import pytest

from app.services.spreadsheet_safe import neutralise_cell
from tests.support.engine import query
from tests.support.screening import models_configured, seed_results, start

HOSTILE = ["=HYPERLINK(\"http://evil\",\"x\")", "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)", "\tTab", "\rCR"]


@pytest.mark.parametrize("value", HOSTILE)
def test_formula_starts_get_a_quote(value: str) -> None:
    assert neutralise_cell(value) == "'" + value


@pytest.mark.parametrize("value", ["Plain title", "A = B", "", 42, 0.9, None, "'already"])
def test_other_cells_are_unchanged(value) -> None:
    assert neutralise_cell(value) == value


def test_csv_export_neutralises_every_text_column(app, client, auth, project_id, monkeypatch,
                                                  database_url) -> None:
    models_configured(app, monkeypatch)
    # imports collapse leading whitespace, so tab and CR starts are tested in the review note and model reasons
    records = [{"title": value, "authors": [value], "journal": value, "year": 2020} for value in HOSTILE[:4]]
    imported = client.post(f"/api/v1/asl/projects/{project_id}/literatures", json={"records": records},
                           headers=auth)
    assert imported.status_code == 201 and imported.get_json()["imported"] == 4
    task = start(client, auth, project_id, batch_size=10).get_json()
    seed_results(app, task["id"])
    for (result_id,) in query(database_url, "SELECT id FROM screening_results"):
        decisions = [{"model": "sim:model-a", "decision": "include", "reason": "=1+1", "confidence": 0.9},
                     {"model": "sim:model-b", "decision": "include", "reason": "\rCR", "confidence": 0.8}]
        query(database_url, "UPDATE screening_results SET decisions = %s, review_note = E'\\tnote' WHERE id = %s "
              "RETURNING id", json.dumps(decisions), result_id)
    exported = client.get(f"/api/v1/asl/tasks/{task['id']}/export?format=csv", headers=auth)
    assert exported.status_code == 200
    rows = list(csv.DictReader(io.StringIO(exported.get_data(as_text=True), newline="")))
    assert len(rows) == 4
    for row in rows:
        for column in ("title", "authors", "journal", "review_note", "sim:model-a reason", "sim:model-b reason"):
            assert row[column].startswith("'"), (column, row[column])
            assert row[column][1:2] in ("=", "+", "-", "@", "\t", "\r"), (column, row[column])
        assert not row["literature_id"].startswith("'") and not row["year"].startswith("'")
