"""The shared extraction primitives: evidence verification, value normalisation, agreement (in process)."""

from __future__ import annotations

import pytest

from app.services.extraction import (
    FieldSpec,
    NormalisationError,
    comparison_key,
    field_agreement,
    normalise_value,
    values_agree,
    verify_evidence,
    verify_evidence_in_pages,
)

NOTE = ("CHIEF COMPLAINT\n\nThe patient is a 57-year-old male with a “history of\nhyper-\ntension” and\n"
        "type 2 diabetes — well controlled.  Ejection fraction 45 %.\nFollow-\nup in 2 weeks.")


@pytest.mark.parametrize("quote", [
    "57-year-old male",
    "57-YEAR-OLD   MALE",
    '"history of hypertension"',
    "history of hyper-tension",
    "type 2 diabetes - well controlled",
    "diabetes – well controlled.",
    "ejection fraction 45 %",
    "follow-up in 2 weeks",
    "The patient is ... type 2 diabetes",
])
def test_quotes_found_after_normalisation(quote: str) -> None:
    match = verify_evidence(quote, NOTE)
    assert match.verified, quote
    assert match.start is not None and match.end is not None and match.start < match.end


def test_location_points_into_the_original_text() -> None:
    match = verify_evidence("ejection FRACTION 45", NOTE)
    assert NOTE[match.start:match.end] == "Ejection fraction 45"
    match = verify_evidence("history of hypertension", NOTE)
    assert NOTE[match.start:match.end] == "history of\nhyper-\ntension"


@pytest.mark.parametrize("quote", [None, "", "   ", "...", "ejection fraction 55 %", "female", "-",
                                   "The patient is ... CHIEF COMPLAINT"])
def test_quotes_not_in_the_text_are_unverified(quote) -> None:
    assert not verify_evidence(quote, NOTE).verified


def test_evidence_in_pages_reports_the_page() -> None:
    pages = ["Methods: randomised.", "Results: 120 patients were\nenrolled.", "Discussion"]
    match = verify_evidence_in_pages("120 patients were enrolled", pages)
    assert (match.verified, match.page) == (True, 2)
    assert pages[1][match.start:match.end] == "120 patients were\nenrolled"
    across = verify_evidence_in_pages("randomised. Results", pages)
    assert across.verified and across.page == 1 and pages[0][across.start:] == "randomised."
    assert not verify_evidence_in_pages("placebo", pages).verified


def spec(type_: str, **kw) -> FieldSpec:
    return FieldSpec(name="f", type=type_, **kw)


@pytest.mark.parametrize(("type_", "kw", "raw", "expected"), [
    ("string", {}, "  left   ventricular\nhypertrophy ", "left ventricular hypertrophy"),
    ("string", {}, "not stated", None),
    ("number", {}, "45", 45.0),
    ("number", {}, 37.5, 37.5),
    ("number", {"unit": "mg"}, "1.2 g", 1200.0),
    ("number", {"unit": "mg"}, "1,200 mg", 1200.0),
    ("number", {"unit": "mg"}, "250", 250.0),
    ("number", {"unit": "percent"}, "45 %", 45.0),
    ("number", {"unit": "kg"}, "154 lb", pytest.approx(69.853, rel=1e-3)),
    ("number", {"unit": "degC"}, "98.6 degF", pytest.approx(37.0, abs=0.01)),
    ("integer", {}, "57", 57),
    ("integer", {}, 12.0, 12),
    ("date", {}, "2019-03-04", "2019-03-04"),
    ("date", {}, "March 4, 2019", "2019-03-04"),
    ("date", {}, "03/04/2019", "2019-03-04"),
    ("date", {}, "2019-3", "2019-03"),
    ("date", {}, "2019", "2019"),
    ("boolean", {}, "Yes", True),
    ("boolean", {}, "absent", False),
    ("boolean", {}, 0, False),
    ("enum", {"enum": ("male", "female", "other")}, " Female ", "female"),
    ("enum", {"enum": ("Current", "Former", "Never")}, "former", "Former"),
    ("list", {}, "Metformin; lisinopril;metformin", ["Metformin", "lisinopril"]),
    ("list", {}, ["aspirin", "Aspirin ", "", "statin"], ["aspirin", "statin"]),
    ("list", {}, [], None),
    ("list", {"enum": ("a", "b")}, "A, b, a", ["a", "b"]),
])
def test_normalise_by_type(type_, kw, raw, expected) -> None:
    assert normalise_value(raw, spec(type_, **kw)) == expected


@pytest.mark.parametrize(("type_", "kw", "raw"), [
    ("number", {}, "forty-five"),
    ("number", {}, True),
    ("number", {"unit": "mg"}, "3 metres"),
    ("number", {"unit": "mg"}, "3 kg/"),
    ("number", {"unit": "mg"}, "3 zorks"),
    ("integer", {}, "2.5"),
    ("date", {}, "the day after"),
    ("date", {}, "2019-13"),
    ("boolean", {}, "perhaps"),
    ("enum", {"enum": ("male", "female")}, "dog"),
    ("list", {}, {"a": 1}),
    ("string", {}, {"a": 1}),
])
def test_unreadable_values_raise_without_quoting_the_value(type_, kw, raw) -> None:
    with pytest.raises(NormalisationError) as exc:
        normalise_value(raw, spec(type_, **kw))
    assert str(exc.value).startswith("f:")
    if isinstance(raw, str):
        assert raw not in str(exc.value)


def test_field_spec_validates_type_and_enum() -> None:
    with pytest.raises(ValueError):
        FieldSpec(name="x", type="colour")
    with pytest.raises(ValueError):
        FieldSpec(name="x", type="enum")
    field = FieldSpec.from_dict({"name": "sex", "type": "enum", "enum": ["m", "f"], "required": True})
    assert field.enum == ("m", "f") and field.required
    assert FieldSpec.from_dict(field.to_dict()) == field


@pytest.mark.parametrize(("type_", "kw", "a", "b", "agree"), [
    ("string", {}, "Chest pain.", "chest  PAIN", True),
    ("string", {}, "chest pain", "back pain", False),
    ("number", {}, 45.0, 45.2, True),
    ("number", {}, 45.0, 47.0, False),
    ("number", {"tolerance": 0.1}, 45.0, 47.0, True),
    ("integer", {}, 57, 57, True),
    ("date", {}, "2019-03-04", "2019-03-04", True),
    ("date", {}, "2019-03-04", "2019-03-05", False),
    ("enum", {"enum": ("male", "female")}, "male", "Male", True),
    ("boolean", {}, True, False, False),
    ("list", {}, ["b", "A"], ["a", "B"], True),
    ("list", {}, ["a"], ["a", "b"], False),
    ("string", {}, None, None, True),
    ("string", {}, None, "x", False),
])
def test_values_agree_by_type(type_, kw, a, b, agree) -> None:
    assert values_agree(a, b, spec(type_, **kw)) is agree


def test_field_agreement_across_models() -> None:
    field = spec("list")
    agreed = field_agreement({"m1": ["x", "y"], "m2": ["Y", "x"]}, field)
    assert agreed.agreed and agreed.value == ["x", "y"]
    assert not field_agreement({"m1": ["x"], "m2": ["z"]}, field).agreed
    assert not field_agreement({}, field).agreed
    assert comparison_key(["A ", "b"], field) == comparison_key(["b", "a"], field)
