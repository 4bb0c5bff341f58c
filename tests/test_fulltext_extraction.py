"""Full-text extraction in process against the simulator over real loopback HTTP: decisions, evidence
verification (a planted wrong quote is flagged), per-field agreement, long documents in parts, the cache."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from app.cache import MemoryCache
from app.llm.fulltext_prompts import FIELD_NAMES, FieldAnswer
from app.llm.simulator import SimulatorKnobs, SimulatorServer
from app.services.fulltext.checks import locate_quote, values_agree
from app.services.fulltext.extractor import Criteria, Document, build_extractor
from app.services.fulltext.pdf_text import extract_pdf_text
from app.services.fulltext.sections import plan_parts, render_pages
from tests.fulltext_support import HEART_FAILURE_PICOS, RCT, RECORDS, REVIEW, pdf_bytes

SNAPSHOT = {"models": [{"provider": "sim", "model": "model-a"}, {"provider": "sim", "model": "model-b"}]}
CRITERIA = Criteria(HEART_FAILURE_PICOS, "randomised trials of follow-up programmes in adults with heart failure")


@pytest.fixture
def simulator_url() -> Iterator[tuple[str, SimulatorServer]]:
    yield from _server(SimulatorKnobs())


@pytest.fixture
def lying_simulator_url() -> Iterator[tuple[str, SimulatorServer]]:
    yield from _server(SimulatorKnobs(wrong_quote_fields=("funding_conflicts",)))


def _server(knobs: SimulatorKnobs) -> Iterator[tuple[str, SimulatorServer]]:
    server = SimulatorServer(("127.0.0.1", 0), knobs)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", server
    finally:
        server.shutdown()
        server.server_close()


def document(name: str) -> Document:
    return Document(1, RECORDS[name][0], extract_pdf_text(pdf_bytes(name)).page_texts)


def extractor(url: str, cache=None, **config):
    return build_extractor({**SNAPSHOT, "models": [dict(m, base_url=url) for m in SNAPSHOT["models"]]},
                           {"LLM_MAX_ATTEMPTS": 1, **config}, cache)


def test_a_trial_is_included_with_every_field_quoted_from_the_text(simulator_url) -> None:
    url, server = simulator_url
    doc = document(RCT)
    screener = extractor(url)
    try:
        outcome = screener.screen(CRITERIA, doc)
    finally:
        screener.close()
    assert not outcome.failed and outcome.llm_decision == "include" and outcome.exclusion_reason is None
    assert set(outcome.fields) == set(FIELD_NAMES)
    for name, field in outcome.fields.items():
        assert field["value"], name
        assert field["verified"] is True and field["unverified"] is False, (name, field)
        assert locate_quote(field["evidence"], doc.page_texts) == field["page"]
    assert outcome.fields["study_design"]["value"] == "randomised controlled trial"
    assert outcome.fields["participants"]["value"] == "412 randomised / 398 analysed"
    assert outcome.fields["follow_up_duration"]["value"] == "12 months"
    assert outcome.fields["main_results"]["page"] == 2
    assert outcome.prompt_tokens > 0 and server.state.calls_total == 2


def test_a_planted_wrong_quote_is_flagged_unverified(lying_simulator_url) -> None:
    url, _server = lying_simulator_url
    screener = extractor(url)
    try:
        outcome = screener.screen(CRITERIA, document(RCT))
    finally:
        screener.close()
    funding = outcome.fields["funding_conflicts"]
    assert funding["unverified"] is True and funding["verified"] is False and funding["review_required"] is True
    assert all(e["verified"] is False for e in funding["evidence_by_model"].values())
    assert "funding_conflicts" in outcome.review_fields and outcome.manual_review_required
    assert outcome.fields["intervention"]["verified"] is True  # the other fields still check out


def test_a_systematic_review_is_excluded_as_not_a_primary_study(simulator_url) -> None:
    url, _server = simulator_url
    screener = extractor(url)
    try:
        outcome = screener.screen(CRITERIA, document(REVIEW))
    finally:
        screener.close()
    assert outcome.llm_decision == "exclude" and outcome.exclusion_reason == "not a primary study"
    assert outcome.fields["study_design"]["value"] == "systematic review"


def test_a_document_longer_than_the_context_is_read_in_parts_and_cached(simulator_url) -> None:
    url, server = simulator_url
    doc = document(REVIEW)
    assert len(render_pages(doc.page_texts)) > 20000
    parts = plan_parts(doc.page_texts, 2000)
    assert len(parts) > 3
    # nothing is dropped: the parts hold every character of every page
    assert "".join(p for part in parts for _page, p in part.pieces).replace("\n", "") == \
        "".join(doc.page_texts).replace("\n", "")
    cache = MemoryCache()
    screener = extractor(url, cache, FULLTEXT_CONTEXT_TOKENS=5000)
    try:
        first = screener.screen(CRITERIA, doc)
        calls = server.state.calls_total
        again = screener.screen(CRITERIA, doc)
    finally:
        screener.close()
    assert first.models[0].parts > 1 and calls == 2 * first.models[0].parts
    assert first.llm_decision == "exclude" and first.exclusion_reason == "not a primary study"
    assert all(f["verified"] in (True, None) for f in first.fields.values())
    # the second run is answered from the cache: no call, no tokens paid
    assert server.state.calls_total == calls and again.prompt_tokens == 0 and again.cost == 0
    assert again.fields == first.fields


def test_agreement_by_field_kind_and_hyphenation_aware_matching() -> None:
    assert values_agree("category", "RCT", "a randomised controlled trial")
    assert not values_agree("category", "cohort study", "randomised controlled trial")
    assert values_agree("counts", "412 randomised / 398 analysed", "398 analysed of 412 randomised")
    assert not values_agree("counts", "412 randomised", "410 randomised")
    assert values_agree("duration", "12 months", "1 year") and not values_agree("duration", "6 months", "1 year")
    assert values_agree("text", None, None) and not values_agree("text", "usual care", None)
    pages = ["The treat-\nment group re-\nceived usual care.", "Second page."]
    assert locate_quote("The treatment group received usual care.", pages) == 1
    assert locate_quote("Nothing like this is written.", pages) is None
    assert FieldAnswer(None, None, None).value is None
