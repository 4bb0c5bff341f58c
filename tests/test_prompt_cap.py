"""What one record may put into a prompt is capped (PROMPT_MAX_CHARS_PER_RECORD); the cut is a warning on every
model decision of the record and in its result (issue 11: one 5.2 MB title cost 2.6 M prompt tokens)."""

from __future__ import annotations

from flask import Flask

from app.llm.prompt_limits import cap_record_text
from app.services.record_screening import RecordText
from app.services.screening_results import result_view
from tests.test_llm_screening import (
    screen_all,
    sim_config,
    simulator,  # noqa: F401  (a pytest fixture this module's test uses)
)


def test_cap_keeps_the_title_first_then_the_abstract() -> None:
    assert cap_record_text("t" * 10, "a" * 10, 100) == ("t" * 10, "a" * 10, None)
    title, abstract, warning = cap_record_text("t" * 10, "a" * 100, 50)
    assert (title, abstract) == ("t" * 10, "a" * 40) and "PROMPT_MAX_CHARS_PER_RECORD" in warning
    title, abstract, warning = cap_record_text("t" * 80, "a" * 100, 50)
    assert (title, abstract) == ("t" * 50, None) and warning


def test_a_huge_record_reaches_the_models_capped_with_a_warning(app: Flask, simulator) -> None:  # noqa: F811 - the fixture
    huge = RecordText(1, "Nudges for prescribers " * 230_000, "abstract " * 1000)  # a 5.2 MB title
    normal = RecordText(2, "Nudges for prescribers", "A short abstract.")
    capped, plain = screen_all(app, sim_config(simulator, PROMPT_MAX_CHARS_PER_RECORD=4000), [huge, normal])
    assert all(d.warning and "truncated" in d.warning for d in capped.decisions)
    assert all(d.warning is None for d in plain.decisions)
    for decision in capped.decisions:
        assert decision.prompt_tokens < 4000  # 4,000 characters of record plus the criteria, not 2.6 M tokens

    class Stored:  # a stored result row / record as result_view reads them (unset columns are None)
        def __init__(self, **values) -> None:  # type: ignore[no-untyped-def]
            self.__dict__.update(values)

        def __getattr__(self, name: str) -> None:
            return None

    row = Stored(id=1, task_id=1, literature_id=1, decisions=[d.to_dict() for d in capped.decisions],
                 final_decision=capped.final_decision, has_conflict=False, manual_review_required=False,
                 status="success")
    assert result_view(row, Stored(title=huge.title))["warnings"] == [capped.decisions[0].warning]  # type: ignore[arg-type]
