"""Which records a full-text task covers, the 4xx / 409 answers when it cannot start, and the PRISMA full-text
counts of a project that went through title/abstract screening (in process: no worker needed)."""

from __future__ import annotations

from app.extensions import db
from app.models import Project, ScreeningResult, ScreeningTask
from app.services.fulltext.prisma import fulltext_prisma_counts
from app.services.kinds import TaskScope, get_kind
from tests.fulltext_support import (
    QUALITATIVE,
    RCT,
    REVIEW,
    add_matching_records,
    heart_failure_project,
    pdf_bytes,
    upload,
)


def title_abstract_outcome(app, project_id: int, decisions: dict[int, str]) -> int:
    """A finished title/abstract task of the project with ``{literature_id: final_decision}`` results."""
    with app.app_context():
        session = db.session()
        owner = session.get(Project, project_id).owner_id
        task = ScreeningTask(project_id=project_id, owner_id=owner, task_type="title_abstract", status="completed",
                             total_items=len(decisions), model_config={})
        session.add(task)
        session.flush()
        for literature_id, decision in decisions.items():
            session.add(ScreeningResult(task_id=task.id, item_id=literature_id, literature_id=literature_id,
                                        batch_index=0, llm_decision=decision, final_decision=decision))
        session.commit()
        return task.id


def test_default_items_are_title_abstract_passes_with_full_text(app, client, auth, monkeypatch) -> None:
    monkeypatch.setitem(app.config, "SCREENING_MODELS", "sim:model-a,sim:model-b")
    monkeypatch.setitem(app.config, "SIM_BASE_URL", "http://127.0.0.1:9/v1")  # never called: nothing starts
    project_id = heart_failure_project(client, auth)
    ids = add_matching_records(client, auth, project_id)
    kind = get_kind("fulltext")
    start = f"/api/v1/asl/projects/{project_id}/screening"

    # no title/abstract task yet: nothing to do by default (409), and a record without a PDF is named (422)
    nothing = client.post(start, json={"task_type": "fulltext"}, headers=auth)
    assert nothing.status_code == 409 and "title/abstract" in nothing.get_json()["message"]
    missing = client.post(start, json={"task_type": "fulltext", "literature_ids": [ids[RCT]]}, headers=auth)
    assert missing.status_code == 422 and "literature_ids" in str(missing.get_json()["errors"])

    upload(client, auth, project_id, "rct.pdf", pdf_bytes(RCT), ids[RCT])
    upload(client, auth, project_id, "review.pdf", pdf_bytes(REVIEW), ids[REVIEW])
    # the RCT passed (include), the review is a conflict, the qualitative study passed but has no PDF
    title_abstract_outcome(app, project_id, {ids[RCT]: "include", ids[REVIEW]: "conflict",
                                             ids[QUALITATIVE]: "include"})
    with app.app_context():
        owner = db.session().get(Project, project_id).owner_id
        assert kind.list_items(db.session(), TaskScope(owner, project_id, {})) == sorted([ids[RCT], ids[REVIEW]])
        counts = fulltext_prisma_counts(db.session(), project_id)
    assert counts["reports_sought"] == 3 and counts["reports_not_retrieved"] == 1
    assert counts["reports_assessed"] == 0 and counts["fulltext_task_id"] is None


def test_a_title_abstract_exclusion_is_not_sought(app, client, auth) -> None:
    project_id = heart_failure_project(client, auth)
    ids = add_matching_records(client, auth, project_id)
    for name in (RCT, REVIEW):
        upload(client, auth, project_id, f"{name}", pdf_bytes(name), ids[name])
    title_abstract_outcome(app, project_id, {ids[RCT]: "include", ids[REVIEW]: "exclude",
                                             ids[QUALITATIVE]: "exclude"})
    with app.app_context():
        owner = db.session().get(Project, project_id).owner_id
        assert get_kind("fulltext").list_items(db.session(), TaskScope(owner, project_id, {})) == [ids[RCT]]
        assert fulltext_prisma_counts(db.session(), project_id)["reports_sought"] == 1
