"""The human review queues of a run, one record at a time: the models' conflicts and the audit sample.

A record leaves its queue when a reviewer decides it (``review_decision`` set). Skipping moves on to the next
record in item order and comes back round to the skipped ones at the end.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.orm import Session

from app.models import Literature, ScreeningResult, ScreeningTask

QUEUES = ("conflicts", "audit")


class UnknownQueue(ValueError):
    """No queue of that name."""


def _in_queue(queue: str) -> ColumnElement[bool]:
    if queue == "conflicts":
        return ScreeningResult.has_conflict.is_(True)
    if queue == "audit":
        return ScreeningResult.audit_sampled_at.is_not(None)
    raise UnknownQueue(f"queue must be one of {', '.join(QUEUES)}")


def next_in_queue(session: Session, task: ScreeningTask, queue: str,
                  after_item_id: int | None = None) -> tuple[ScreeningResult, Literature | None] | None:
    """The first undecided record of ``queue`` after item ``after_item_id`` (wrapping round), or None when done."""
    base = (select(ScreeningResult, Literature)
            .outerjoin(Literature, Literature.id == ScreeningResult.literature_id)
            .where(ScreeningResult.task_id == task.id, _in_queue(queue), ScreeningResult.review_decision.is_(None))
            .order_by(ScreeningResult.item_id).limit(1))
    row = None
    if after_item_id is not None:
        row = session.execute(base.where(ScreeningResult.item_id > after_item_id)).first()
    if row is None:
        row = session.execute(base).first()
    return (row[0], row[1]) if row is not None else None


def queue_counts(session: Session, task: ScreeningTask) -> dict[str, int]:
    """Per queue: records left to decide and records decided (``<queue>_left``, ``<queue>_decided``)."""
    counts: dict[str, int] = {}
    for queue in QUEUES:
        left, decided = session.execute(
            select(func.count().filter(ScreeningResult.review_decision.is_(None)),
                   func.count().filter(ScreeningResult.review_decision.is_not(None)))
            .where(and_(ScreeningResult.task_id == task.id, _in_queue(queue)))).one()
        counts[f"{queue}_left"] = left
        counts[f"{queue}_decided"] = decided
    return counts


def source_texts(session: Session, task: ScreeningTask, result: ScreeningResult) -> dict[int | str, str]:
    """The text a result's field evidence was quoted from: a full text's pages ({page number: text}) or a
    clinical record's text columns ({column: text}); empty when there is none."""
    from app.models import DcRecord
    from app.services.fulltext.attach import fulltext_of

    if task.task_type == "fulltext" and result.literature_id is not None:
        fulltext = fulltext_of(session, result.literature_id)
        if fulltext is None or not fulltext.text_available:
            return {}
        return {number: text for number, text in enumerate(fulltext.page_texts or [], start=1)}
    if task.task_type == "dc_extraction":
        record = session.get(DcRecord, result.item_id)
        if record is None:
            return {}
        columns = (task.params or {}).get("text_columns") or []
        return {column: str(record.data.get(column) or "") for column in columns}
    return {}
