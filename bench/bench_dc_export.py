"""Extraction export benchmark: rows per second of the CSV and XLSX exports of a finished ``dc_extraction`` task.

Builds a dataset of ``--rows`` clinical-note rows (the ACI-Bench fixture's notes, cycled) through the dataset
service, a finished task of the discharge-summary-like schema below with one result per row (realistic ``fields``
JSON: two models' values, evidence, flags), then times ``export_csv`` and ``export_xlsx`` (the code behind
``GET /api/v1/dc/tasks/{id}/export``). Database from TEST_DATABASE_URL / 127.0.0.1:5432 / embedded, dropped after.

    .venv/bin/python bench/bench_dc_export.py [--rows 5000]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support import database  # noqa: E402

FIXTURE = ROOT / "tests" / "fixtures" / "clinical" / "aci_bench_30.csv"
FIELDS = [
    {"name": "age", "type": "integer", "description": "age", "required": True},
    {"name": "sex", "type": "enum", "enum": ["male", "female"], "description": "sex", "required": True},
    {"name": "chief_complaint", "type": "string", "description": "complaint", "required": True},
    {"name": "secondary_complaints", "type": "list", "description": "history"},
    {"name": "xray", "type": "boolean", "description": "x-ray"},
    {"name": "ejection_fraction", "type": "number", "description": "EF", "unit": "percent"},
]
MODELS = ["sim:model-a", "sim:model-b"]
VALUES = {"age": 57, "sex": "male", "chief_complaint": "Back pain", "secondary_complaints": ["diabetes", "CHF"],
          "xray": True, "ejection_fraction": 45.0}


def field_entry(name: str) -> dict:
    value = VALUES[name]
    return {"value": value, "evidence": "57-year-old male", "page": None, "agreed": True,
            "by_model": {m: value for m in MODELS}, "verified": True, "flags": [], "review_required": False,
            "evidence_by_model": {m: {"quote": "57-year-old male", "verified": True, "start": 10, "end": 26}
                                  for m in MODELS}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5000)
    args = parser.parse_args()
    notes = [r["note"] for r in csv.DictReader(FIXTURE.open(encoding="utf-8"))]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["record_id", "note"])
    for i in range(args.rows):
        writer.writerow([f"R{i:07d}", notes[i % len(notes)]])
    admin = database.admin_url()
    database_url = database.create_database(admin)
    try:
        from app.db.migrate import upgrade

        upgrade(database_url)
        from sqlalchemy import insert, select

        from app import create_app
        from app.extensions import db
        from app.models import DcRecord, ScreeningResult, ScreeningTask, User
        from app.services.dc.datasets import create_dataset
        from app.services.dc.export import export_csv, export_xlsx
        from app.services.users import create_user

        app = create_app({"DATABASE_URL": database_url})
        with app.app_context():
            session = db.session()
            create_user(session, "bench")
            user = session.scalar(select(User).where(User.name == "bench"))
            dataset = create_dataset(session, user.id, "notes.csv", out.getvalue().encode(), None, app.config, None)
            task = ScreeningTask(owner_id=user.id, task_type="dc_extraction", status="completed",
                                 params={"dataset_id": dataset.id, "id_column": "record_id", "text_columns": ["note"],
                                         "schema": {"fields": FIELDS}, "gold_columns": {},
                                         "columns": dataset.columns},
                                 model_config={"models": [{"provider": "sim", "model": m.split(":")[1]}
                                                          for m in MODELS]},
                                 total_items=args.rows)
            session.add(task)
            session.flush()
            fields = {f["name"]: field_entry(f["name"]) for f in FIELDS}
            ids = list(session.scalars(select(DcRecord.id).where(DcRecord.dataset_id == dataset.id)))
            session.execute(insert(ScreeningResult), [
                {"task_id": task.id, "item_id": item, "batch_index": 0, "status": "success", "decisions": [],
                 "llm_decision": "agreed", "final_decision": "agreed", "fields": fields} for item in ids])
            session.commit()
            report = {"rows": args.rows}
            for label, export in (("csv", export_csv), ("xlsx", export_xlsx)):
                start = time.perf_counter()
                body = export(session, task)
                seconds = time.perf_counter() - start
                report[label] = {"seconds": round(seconds, 2), "rows_per_second": round(args.rows / seconds),
                                 "megabytes": round(len(body) / 1e6, 1)}
            print(json.dumps(report))
            db.session.remove()
        app.extensions["litscreen_db_engine"].dispose()
    finally:
        database.drop_database(admin, database_url)


if __name__ == "__main__":
    main()
