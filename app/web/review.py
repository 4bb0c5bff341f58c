"""Workspace pages for human review: the conflict and audit queues one record at a time (keyboard: i include,
e exclude, s skip), the results list, and the field review of full-text and clinical-record extractions."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from marshmallow import ValidationError
from werkzeug.wrappers import Response

from app.api.dc.schemas import ResultReviewSchema as ClinicalReviewSchema
from app.api.screening.schemas import ReviewInputSchema
from app.extensions import db
from app.llm.fulltext_prompts import EXCLUSION_REASONS
from app.models import ScreeningResult, ScreeningTask
from app.services import review_queue
from app.services import screening_results as results_service
from app.services.dc.errors import DatasetRejected
from app.services.dc.review import review_result as review_clinical_result
from app.services.fulltext.review import FieldReviewRejected, review_result_fields
from app.services.kinds.dc_extraction import TASK_TYPE as CLINICAL_TASK_TYPE
from app.services.kinds.dc_extraction import field_specs
from app.web.auth import reviewer
from app.web.blueprint import bp
from app.web.projects import load_project
from app.web.runs import load_task
from app.web.text import evidence_in_context, highlight_terms, picos_terms

QUEUE_TITLES = {"conflicts": "Conflicts: the models disagree", "audit": "Audit sample of machine exclusions"}
RESULTS_PAGE_SIZE = 50


def _queue_name(queue: str) -> str:
    if queue not in review_queue.QUEUES:
        abort(404)
    return queue


@bp.route("/tasks/<int:task_id>/queue/<queue>")
def review_queue_page(task_id: int, queue: str) -> str:
    """The next undecided record of the queue (after ``?after=ITEM`` when skipping)."""
    run = load_task(task_id)
    queue = _queue_name(queue)
    after = request.args.get("after", type=int)
    session = db.session()
    found = review_queue.next_in_queue(session, run, queue, after)
    counts = review_queue.queue_counts(session, run)
    project = load_project(run.project_id) if run.project_id is not None else None
    context: dict[str, Any] = {"task": run, "queue": queue, "queue_title": QUEUE_TITLES[queue], "counts": counts,
                               "project": project, "reasons": EXCLUSION_REASONS}
    if found is None:
        return render_template("web/queue.html", result=None, **context)
    result, record = found
    terms = picos_terms(project.picos if project is not None else {})
    return render_template(
        "web/queue.html", result=result, record=record, view=results_service.result_view(result, record),
        title=highlight_terms(record.title if record else None, terms),
        abstract=highlight_terms(record.abstract if record else None, terms), terms=terms, **context)


def _review(result: ScreeningResult, payload: dict[str, Any]) -> str | None:
    """Apply a review through the API's schema and service; the problem as text, or None."""
    try:
        review = ReviewInputSchema().load(payload)
        review_result_fields(db.session(), reviewer(), result, review)
    except ValidationError as exc:
        db.session().rollback()
        messages = exc.messages if isinstance(exc.messages, dict) else {"form": exc.messages}
        return "; ".join(f"{name}: {' '.join(map(str, problems))}" for name, problems in messages.items())
    except FieldReviewRejected as exc:
        db.session().rollback()
        return str(exc)
    return None


@bp.route("/results/<int:result_id>/decide", methods=["POST"])
def decide(result_id: int) -> Response:
    """Record the reviewer's decision (include / exclude, a reason, a note) and show the queue's next record."""
    result, _record = results_service.get_result(db.session(), reviewer(), result_id)
    queue = request.form.get("queue", "conflicts")
    queue = queue if queue in review_queue.QUEUES else "conflicts"
    reason = request.form.get("reason") or None
    note = (request.form.get("note") or "").strip() or None
    decision = request.form.get("decision")
    payload: dict[str, Any] = {"review_decision": decision, "note": note}
    if decision == "exclude" and reason:
        payload["exclusion_reason"] = reason
    problem = _review(result, payload)
    if problem:
        flash(f"Not saved: {problem}")
        return redirect(url_for("web.review_queue_page", task_id=result.task_id, queue=queue,
                                after=result.item_id - 1))
    flash(f"Saved: {decision} for record {result.literature_id or result.item_id}.")
    return redirect(url_for("web.review_queue_page", task_id=result.task_id, queue=queue, after=result.item_id))


@bp.route("/tasks/<int:task_id>/results")
def results(task_id: int) -> str:
    """The run's results, a page at a time, filtered like the API's list."""
    run = load_task(task_id)
    page = max(1, request.args.get("page", 1, type=int))
    decision = request.args.get("decision") or None
    decision = decision if decision in results_service.DECISION_FILTERS else None
    review = request.args.get("review") or None
    review = review if review in results_service.REVIEW_FILTERS else None
    items, total = results_service.list_results(
        db.session(), run, results_service.ResultFilters(decision=decision, review=review),
        (page - 1) * RESULTS_PAGE_SIZE, RESULTS_PAGE_SIZE)
    pages = max(1, -(-total // RESULTS_PAGE_SIZE))
    return render_template("web/results.html", task=run, items=items, total=total, page=page, pages=pages,
                           decision=decision, review=review, decisions=results_service.DECISION_FILTERS,
                           reviews=results_service.REVIEW_FILTERS)


def _typed(raw: str, current: Any) -> Any:
    """A form value in the type of the field's current value (number, yes/no, list), else the text."""
    text = raw.strip()
    if text == "":
        return None
    if isinstance(current, bool):
        return text.lower() in ("yes", "true", "1", "y")
    if isinstance(current, int | float):
        try:
            number = float(text)
        except ValueError:
            return text
        return int(number) if isinstance(current, int) and number.is_integer() else number
    if isinstance(current, list):
        return [part.strip() for part in text.split(";") if part.strip()]
    return text


def field_display(value: Any) -> str:
    """A field value as the form shows it (lists joined by '; ')."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return "; ".join(str(part) for part in value)
    return str(value)


def _review_clinical(run: ScreeningTask, result: ScreeningResult, reviews: dict[str, Any],
                     note: str | None) -> str | None:
    """A clinical-record review through the dc API's schema and service (values normalised by field type)."""
    try:
        data = ClinicalReviewSchema().load({"fields": reviews, "note": note})
        review_clinical_result(result, field_specs(run.params or {}), data["fields"], data.get("note"), reviewer().id)
        db.session().commit()
    except ValidationError as exc:
        db.session().rollback()
        return str(exc.messages)
    except DatasetRejected as exc:
        db.session().rollback()
        return str(exc)
    return None


def _shown_value(entry: dict[str, Any]) -> Any:
    """A clinical field's reviewed value once there is one (its ``value`` stays the models'); else its value."""
    review = entry.get("review")
    return review.get("value") if isinstance(review, dict) and "value" in review else entry.get("value")


def _field_reviews(fields: dict[str, Any], form: Any, clinical: bool) -> dict[str, Any]:
    """The fields the reviewer changed, annotated or confirmed: {name: {value, note}}."""
    reviews: dict[str, Any] = {}
    for name, entry in fields.items():
        raw = form.get(f"value__{name}")
        if raw is None:
            continue
        note = (form.get(f"note__{name}") or "").strip() or None
        confirmed = form.get(f"confirm__{name}") == "on"
        current = _shown_value(entry)
        value = (raw.strip() or None) if clinical else _typed(raw, current)
        changed = (value or "") != field_display(current) if clinical else value != current
        if changed or note or confirmed:
            reviews[name] = {"value": value if not clinical or changed else current, "note": note}
    return reviews


@bp.route("/results/<int:result_id>/fields", methods=["GET", "POST"])
def field_review(result_id: int) -> Any:
    """Each extracted field: value, each model's value, the evidence marked in its source text, the page."""
    session = db.session()
    result, record = results_service.get_result(session, reviewer(), result_id)
    run = load_task(result.task_id)
    clinical = run.task_type == CLINICAL_TASK_TYPE
    fields = result.fields or {}
    error = None
    if request.method == "POST":
        reviews = _field_reviews(fields, request.form, clinical)
        decision = request.form.get("decision")
        if clinical:
            error = (_review_clinical(run, result, reviews, (request.form.get("note") or "").strip() or None)
                     if reviews else "Change or confirm at least one field.")
        else:
            payload: dict[str, Any] = {"fields": reviews} if reviews else {}
            if decision in ("include", "exclude"):
                payload["review_decision"] = decision
            error = _review(result, payload) if payload else "Change or confirm at least one field, or decide."
        if error is None:
            flash("Saved the field review.")
            return redirect(url_for("web.field_review", result_id=result.id))
    sources = review_queue.source_texts(session, run, result)
    rows = []
    for name, entry in fields.items():
        located = evidence_in_context(sources, entry.get("evidence"), entry.get("page"))
        by_model = {model: field_display(value) for model, value in (entry.get("by_model") or {}).items()}
        rows.append({"name": name, "entry": entry, "display": field_display(_shown_value(entry)),
                     "by_model": by_model, "located": located})
    return render_template("web/fields.html", task=run, result=result, record=record, rows=rows, error=error,
                           clinical=clinical, view=results_service.result_view(result, record)), 422 if error else 200
