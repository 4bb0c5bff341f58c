"""The simulator's extraction answers (in process): real spans of the record, deterministic, dispatched only for
extraction prompts; and the prompt/answer round trip."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from app.llm import sim_extraction
from app.llm.extraction_prompts import build_extraction_messages, parse_extraction_answer, record_text
from app.llm.prompts import InvalidOutput, build_messages
from app.services.dc.field_schema import load_field_schema
from app.services.extraction import verify_evidence

FIXTURE = Path(__file__).parent / "fixtures" / "clinical" / "aci_bench_30.csv"
FIELDS = load_field_schema({"fields": [
    {"name": "age", "type": "integer", "description": "Patient age in years"},
    {"name": "sex", "type": "enum", "enum": ["male", "female"], "description": "Patient sex"},
    {"name": "chief_complaint", "type": "string", "description": "Chief complaint"},
    {"name": "xray", "type": "boolean", "description": "An X-ray was done"},
]})


def rows() -> list[dict[str, str]]:
    return list(csv.DictReader(FIXTURE.open(encoding="utf-8")))


def test_answers_are_spans_of_the_record_and_deterministic() -> None:
    verified = total = 0
    for row in rows():
        text = record_text(row, ["note"])
        messages = build_extraction_messages(FIELDS, text)
        first = sim_extraction.answer("model-a", messages)
        assert first == sim_extraction.answer("model-a", messages)
        for item in parse_extraction_answer(json.dumps(first), FIELDS).values():
            if item["evidence"]:
                total += 1
                verified += verify_evidence(item["evidence"], text).verified
    # a few answers are paraphrased on purpose (so verification has something to catch), the rest are spans
    assert total > 60 and 0.8 < verified / total < 1.0


def test_the_two_models_sometimes_disagree() -> None:
    differ = 0
    for row in rows():
        messages = build_extraction_messages(FIELDS, record_text(row, ["note"]))
        differ += sim_extraction.answer("model-a", messages) != sim_extraction.answer("model-b", messages)
    assert 0 < differ < len(rows())


def test_screening_prompts_are_not_extraction_prompts() -> None:
    messages = build_messages({"P": "adults"}, None, None, "A title", "An abstract")
    assert sim_extraction.answer("model-a", messages) is None


@pytest.mark.parametrize("content", ["not json", "[1, 2]", '{"fields": [1]}'])
def test_unusable_answers_raise_invalid_output(content: str) -> None:
    with pytest.raises(InvalidOutput):
        parse_extraction_answer(content, FIELDS)


def test_missing_fields_and_bare_values_are_accepted() -> None:
    answer = parse_extraction_answer('```json\n{"fields": {"age": 57}}\n```', FIELDS)
    assert answer["age"] == {"value": 57, "evidence": ""}
    assert answer["sex"] == {"value": None, "evidence": ""}


def test_several_text_columns_are_headed_by_their_names() -> None:
    text = record_text({"a": "first", "b": "", "c": "third"}, ["a", "b", "c"])
    assert text == "a:\nfirst\n\nc:\nthird"
