"""Helpers of the screening API tests: models configured, a run started, results seeded with the engine's own
statements (no worker runs)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from app.extensions import db
from app.models import ScreeningBatch, ScreeningResult, ScreeningTask
from app.services import engine


def models_configured(app: Any, monkeypatch: Any) -> None:
    """Two simulated models in the app's config (never called: no worker runs)."""
    monkeypatch.setitem(app.config, "SCREENING_MODELS", "sim:model-a,sim:model-b")
    monkeypatch.setitem(app.config, "SIM_BASE_URL", "http://127.0.0.1:9/v1")  # never called: no worker here


def start(client: Any, auth: dict[str, str], project_id: int, **body: Any) -> Any:
    """POST …/screening; the response."""
    return client.post(f"/api/v1/asl/projects/{project_id}/screening", json=body, headers=auth)


def seed_results(app: Any, task_id: int) -> list[int]:
    """Claim batch 0 and checkpoint results for its records with the engine's own statements."""
    settings = engine.EngineSettings()
    ctx = engine.engine_context(app)
    with app.app_context():
        session = db.session()
        batch = session.scalar(select(ScreeningBatch).where(ScreeningBatch.task_id == task_id,
                                                            ScreeningBatch.batch_index == 0))
        claim = engine.claim_batch(ctx, task_id, 0, "test-host:1:x")
        assert isinstance(claim, engine.ClaimedBatch)
        plans = [("include", "include"), ("exclude", "exclude"), ("include", "exclude"), (None, "exclude"),
                 ("exclude", "exclude")]
        rows = []
        for lit_id, (a, b) in zip(batch.item_ids, plans * 100, strict=False):
            failed = a is None
            final = None if failed else (a if a == b else "conflict")
            rows.append({
                "task_id": task_id, "literature_id": lit_id, "batch_index": 0,
                "decisions": [{"model": "sim:model-a", "decision": a, "reason": f"A says {a}", "confidence": 0.9,
                               "error": "invalid output" if failed else None},
                              {"model": "sim:model-b", "decision": b, "reason": f"B says {b}", "confidence": 0.8}],
                "final_decision": final, "has_conflict": final == "conflict",
                "manual_review_required": final == "conflict", "status": "failed" if failed else "success",
                "error": "sim:model-a: invalid output" if failed else None, "prompt_tokens": 100,
                "completion_tokens": 20, "cost_estimate": 0.001, "duration_ms": 5.0})
        with db.engine.begin() as conn:
            engine.write_checkpoint(conn, claim, rows, len(rows), "done", settings)
        assert engine.finalize_task(ctx, task_id) in ("completed_with_errors", None)
        task = session.get(ScreeningTask, task_id)
        session.refresh(task)
        return list(session.scalars(select(ScreeningResult.id).where(ScreeningResult.task_id == task_id)
                                    .order_by(ScreeningResult.literature_id)))
