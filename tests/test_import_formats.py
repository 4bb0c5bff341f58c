"""Every real export in tests/fixtures imports whole, and a few records per format are checked field by field
(title, abstract, authors in order, year, journal, DOI, PMID, record type, source database, accession number).
Also: author lists are never de-duplicated, repeated BibTeX fields and ``%`` in BibTeX, record-type mapping."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.importers import parse_file
from app.importers.record_types import from_label, from_ris, ris_code
from app.importers.sources import detect_source

FIXTURES = Path(__file__).parent / "fixtures"


def parse_fixture(name: str):
    return parse_file(name, (FIXTURES / name).read_bytes())


# file, detected format, encoding, records, with abstract, with DOI, with PMID, source database of every record
ALL_EXPORTS = [
    ("scopus_export.ris", "ris", "utf-8", 6, 6, 6, 5, {"Scopus"}),
    ("embase_export.ris", "ris", "utf-8", 6, 6, 6, 0, {"Embase"}),
    ("embase_export.csv", "csv", "utf-8", 6, 6, 0, 0, {"Embase"}),
    ("ovid_psycinfo_export.ris", "ris", "utf-8", 6, 6, 6, 0, {"PsycINFO"}),
    ("zotero_export_of_pubmed.ris", "ris", "utf-8", 6, 6, 6, 0, {None}),  # Zotero drops the PMID and source
    ("pubmed_medline_balloon-guide-catheter.nbib", "medline", "utf-8", 75, 70, 74, 75, {"PubMed"}),
    ("pubmed_medline_blue-light.nbib", "medline", "utf-8", 80, 77, 51, 80, {"PubMed"}),
    ("ieee_xplore_export.csv", "csv", "utf-8", 10, 10, 10, 0, {"IEEE Xplore"}),
    ("web_of_science_plaintext.txt", "wos", "utf-8", 50, 49, 47, 0, {"Web of Science"}),
    ("web_of_science_tab_delimited_utf8.txt", "wos_tab", "utf-8", 50, 49, 47, 0, {"Web of Science"}),
    ("web_of_science_tab_delimited_utf16.txt", "wos_tab", "utf-16", 50, 49, 47, 0, {"Web of Science"}),
    ("web_of_science_tab_delimited_2026.txt", "wos_tab", "utf-8", 71, 34, 37, 16, {"Web of Science"}),
    ("endnote_export.xml", "endnote_xml", "utf-8", 102, 98, 72, 102, {"PubMed"}),
    ("endnote_export.ris", "ris", "utf-8", 102, 98, 72, 102, {"PubMed"}),
    ("cochrane_central_via_endnote.ris", "ris", "utf-8", 3, 3, 3, 3, {"CENTRAL"}),
    ("cochrane_central_export.csv", "csv", "utf-8", 3, 3, 3, 3, {"CENTRAL"}),
    ("ebscohost_academic_search_export.ris", "ris", "utf-8", 9, 9, 9, 0, {"Academic Search Premier"}),
    ("ebscohost_academic_search_export.csv", "csv", "utf-8", 10, 10, 10, 0, {"Academic Search Premier"}),
    ("proquest_export.ris", "ris", "utf-8", 6, 6, 6, 0, {"PTSDpubs"}),
    ("rayyan_style_export.ris.txt", "ris", "utf-8", 19, 8, 3, 2, {None, "Web of Science", "PubMed"}),
]


@pytest.mark.parametrize(("name", "file_format", "encoding", "count", "abstracts", "dois", "pmids", "sources"),
                         ALL_EXPORTS, ids=[row[0] for row in ALL_EXPORTS])
def test_every_real_export_imports_whole(name, file_format, encoding, count, abstracts, dois, pmids,
                                         sources) -> None:
    parsed = parse_fixture(name)
    assert (parsed.format, parsed.encoding) == (file_format, encoding)
    assert len(parsed.records) == count and parsed.skipped == []
    assert all(r["title"] for r in parsed.records)
    assert sum(1 for r in parsed.records if r["abstract"]) == abstracts
    assert sum(1 for r in parsed.records if r["doi"]) == dois
    assert sum(1 for r in parsed.records if r["pmid"]) == pmids
    assert {r["source_database"] for r in parsed.records} == sources


def test_every_fixture_file_is_covered() -> None:
    exports = {p.name for p in FIXTURES.iterdir() if p.is_file() and p.name != "PROVENANCE.md"}
    assert exports == {row[0] for row in ALL_EXPORTS}


def test_web_of_science_plain_text_fields() -> None:
    records = parse_fixture("web_of_science_plaintext.txt").records
    first, second = records[0], records[1]
    assert first["title"] == ("Knowledge networks as channels and conduits: The effects of spillovers in the "
                              "Boston biotechnology community")  # TI continues on a second line
    assert first["abstract"].startswith("We contend that two important, nonrelational, features")
    assert first["authors"] == ["Owen-Smith, J", "Powell, WW"]
    assert (first["year"], first["journal"], first["doi"]) == (2004, "ORGANIZATION SCIENCE", "10.1287/orsc.1030.0054")
    assert first["pmid"] is None and first["source_id"] == "WOS:000220015600001"
    assert first["record_type"] == "journal_article" and first["source_database"] == "Web of Science"
    assert first["keywords"][:2] == ["knowledge networks", "economic geography"]
    assert len(second["authors"]) == 24 and second["authors"][:2] == ["Kerrien, S.", "Alam-Faruque, Y."]
    assert second["authors"][-1] == "Hermjakob, H." and second["doi"] == "10.1093/nar/gkl958"
    assert sum(1 for r in records if r["record_type"] == "conference_paper") == 2


@pytest.mark.parametrize("name", ["web_of_science_tab_delimited_utf8.txt", "web_of_science_tab_delimited_utf16.txt"])
def test_web_of_science_tab_delimited_matches_the_plain_text_export(name) -> None:
    plain = parse_fixture("web_of_science_plaintext.txt").records
    tabbed = parse_fixture(name).records
    fields = ("title", "abstract", "authors", "year", "journal", "doi", "pmid", "source_id", "record_type")
    assert [[r[f] for f in fields] for r in tabbed] == [[r[f] for f in fields] for r in plain]


def test_web_of_science_2026_export_fields() -> None:
    records = parse_fixture("web_of_science_tab_delimited_2026.txt").records
    first = records[0]
    assert first["title"].startswith("Design and Implementation of a Wearable System Based on a Flexible")
    assert first["authors"][:3] == ["Sheeja Prakash, Karthika", "Andersen, Erik", "von Einem, Vicky Chantal"]
    assert len(first["authors"]) == 11 and first["authors"][-1] == "Comella, Laura Maria"
    assert (first["year"], first["journal"], first["doi"]) == (2023, "ADVANCED SENSOR RESEARCH",
                                                               "10.1002/adsr.202300058")
    assert first["source_id"] == "WOS:001242600300012" and first["record_type"] == "journal_article"
    kinds = {r["record_type"] for r in records}
    assert {"journal_article", "conference_paper", "book_chapter", "book"} == kinds
    with_pmid = [r for r in records if r["pmid"]]
    assert with_pmid and all(r["pmid"].isdigit() for r in with_pmid)


@pytest.mark.parametrize("name", ["endnote_export.xml", "endnote_export.ris"])
def test_endnote_xml_and_ris_fields(name) -> None:
    records = parse_fixture(name).records
    first, second = records[0], records[1]
    assert first["title"] == ("Formulation of Herbal Gel of Antirrhinum majus Extract and Evaluation of its "
                              "Anti-Propionibacterium acne Effects")
    assert first["abstract"].startswith("BACKGROUND: Antirrhinum majus contains aurone") and \
        first["abstract"].endswith("must be performed.")
    assert first["authors"] == ["Shahtalebi, M. A.", "Asghari, G. R.", "Rahmani, F.", "Shafiee, F.",
                                "Jahanian-Najafabadi, A."]
    assert (first["year"], first["journal"], first["doi"], first["pmid"]) == (
        2018, "Adv Biomed Res", "10.4103/abr.abr_99_17", "29657938")
    assert first["record_type"] == "journal_article" and first["source_database"] == "PubMed"
    assert first["keywords"] == ["Acne", "Antirrhinum majus", "Propionibacterium acnes", "blue light"]
    assert "80% of the population" in second["abstract"]  # a '%' is text
    assert second["pmid"] == "15301568" and second["authors"][0] == "Charakida, A."


def test_endnote_xml_and_ris_agree_on_every_record() -> None:
    fields = ("title", "authors", "year", "doi", "pmid", "record_type", "source_database")
    xml = parse_fixture("endnote_export.xml").records
    ris = parse_fixture("endnote_export.ris").records
    assert [[r[f] for f in fields] for r in xml] == [[r[f] for f in fields] for r in ris]


def test_endnote_xml_refuses_entity_declarations() -> None:
    bomb = (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
            b"<xml><records><record><ref-type name=\"Journal Article\">17</ref-type><titles><title>&b;</title>"
            b"</titles></record></records></xml>")
    from app.importers import ImportRejected

    with pytest.raises(ImportRejected) as caught:
        parse_file("library.xml", bomb)
    assert caught.value.status == 422 and "DTD" in caught.value.message


def test_medline_blue_light_fields() -> None:
    first = parse_fixture("pubmed_medline_blue-light.nbib").records[0]
    assert first["title"].startswith("Formulation of Herbal Gel of Antirrhinum majus Extract")
    assert first["authors"][:2] == ["Shahtalebi, Mohammad Ali", "Asghari, Gholam Reza"]
    assert (first["year"], first["doi"], first["pmid"], first["source_id"]) == (
        2018, "10.4103/abr.abr_99_17", "29657938", "29657938")
    assert first["journal"] == "Advanced biomedical research" and first["record_type"] == "journal_article"


@pytest.mark.parametrize("name", ["cochrane_central_via_endnote.ris", "cochrane_central_export.csv"])
def test_cochrane_central_fields(name) -> None:
    records = parse_fixture(name).records
    first = records[0]
    assert first["title"].startswith("The Incredible Years Therapeutic Dinosaur Programme to build social")
    assert first["authors"] == ["Bywater, T", "Hutchings, J", "Whitaker, C", "Evans, C", "Parry, L"]
    assert (first["year"], first["journal"], first["doi"]) == (2011, "Trials", "10.1186/1745-6215-12-39")
    assert first["pmid"] == "21314913"  # RIS "C3  -  PUBMED 21314913", CSV "PUBMED 21314913"
    assert first["source_id"] == "CN-00778158" and first["source_database"] == "CENTRAL"
    assert first["record_type"] == "journal_article"
    assert first["abstract"].startswith("BACKGROUND: School interventions")
    assert [r["pmid"] for r in records] == ["21314913", "38407106", "37362617"]


@pytest.mark.parametrize("name", ["ebscohost_academic_search_export.ris", "ebscohost_academic_search_export.csv"])
def test_ebscohost_fields(name) -> None:
    first = parse_fixture(name).records[0]
    assert first["title"] == "Osteohistological insight into the growth dynamics of early dinosaurs and their " \
                             "contemporaries."
    assert first["authors"] == ["Curry Rogers, Kristina", "Martínez, Ricardo N.", "Colombi, Carina",
                                "Rogers, Raymond R.", "Alcober, Oscar"]
    assert (first["year"], first["journal"], first["doi"]) == (2024, "PLoS ONE", "10.1371/journal.pone.0298242")
    assert first["source_id"] == "176404503"  # RIS: "N1 Accession Number: …"; CSV: "Accession Number"
    assert first["abstract"].startswith("Dinosauria debuted on Earth's stage")
    assert first["source_database"] == "Academic Search Premier" and first["record_type"] == "journal_article"


def test_ebscohost_csv_holds_one_record_more_than_its_ris() -> None:
    ris = {r["doi"] for r in parse_fixture("ebscohost_academic_search_export.ris").records}
    csv_records = parse_fixture("ebscohost_academic_search_export.csv").records
    extra = [r for r in csv_records if r["doi"] not in ris]
    assert len(extra) == 1 and extra[0]["title"].startswith("A Late Cretaceous dinosaur and crocodyliform")


def test_proquest_and_rayyan_fields() -> None:
    first = parse_fixture("proquest_export.ris").records[0]
    assert first["title"].startswith("Predictors of posttraumatic stress symptom trajectories")
    assert first["authors"][:2] == ["Jones, Hannah", "Dorahy, Martin J"] and len(first["authors"]) == 7
    assert (first["year"], first["journal"], first["doi"]) == (2019, "Journal of Traumatic Stress",
                                                               "10.1002/jts.22387")
    assert first["source_database"] == "PTSDpubs"  # an unrecognised database name is kept as written
    rayyan = parse_fixture("rayyan_style_export.ris.txt").records
    assert rayyan[0]["title"] == "Overcoming Medication Reconciliation Challenges"
    assert rayyan[0]["keywords"][:3] == ["Health Facility Administration", "Joint Commission", "Standards"]
    assert rayyan[0]["source_id"] == "rayyan-264552525" and rayyan[0]["year"] == 2011
    assert sum(1 for r in rayyan if r["record_type"] is None) == 2  # TY GEN and TY CASE


def test_scopus_ris_pmid_eid_and_type() -> None:
    records = parse_fixture("scopus_export.ris").records
    assert records[0]["source_id"] == "2-s2.0-85074596690"  # the EID, from the record's URL
    assert all(r["record_type"] == "journal_article" and r["source_database"] == "Scopus" for r in records)


def test_authors_are_never_deduplicated() -> None:
    csv_data = ('"Authors","Title","Year","Source title","DOI","Source","EID"\n'
                '"Li Y.; Li Y.; Wang X.","Two authors called Li","2020","BMJ","10.1/x","Scopus","2-s2.0-9"\n')
    record = parse_file("scopus.csv", csv_data.encode()).records[0]
    assert record["authors"] == ["Li Y.", "Li Y.", "Wang X."] and record["source_database"] == "Scopus"
    ris = "TY  - JOUR\nAU  - Li, Y.\nAU  - Li, Y.\nTI  - Same name twice\nER  - \n"
    assert parse_file("x.ris", ris.encode()).records[0]["authors"] == ["Li, Y.", "Li, Y."]
    bib = "@article{a, author = {Li, Y. and Li, Y.}, title = {Same name}, year = 2020}\n"
    assert parse_file("x.bib", bib.encode()).records[0]["authors"] == ["Li, Y.", "Li, Y."]


def test_scopus_bibtex_repeated_funding_and_percent_signs() -> None:
    abstract = ("Of the patients, 45% had X and 12\\% had Y, and 30% of those improved. " * 20).strip()
    text = f"""@ARTICLE{{Li2020,
  author = {{Li, Y. and Li, Y. and M{{\\"u}}ller, H.}},
  title = {{Nudges for 50% of prescribers}},
  journal = {{BMJ}},
  year = {{2020}},
  abstract = {{{abstract}
% of the remaining clinicians, none changed.}},
  funding_details = {{National Institutes of Health}},
  funding_details = {{Wellcome Trust}},
  author_keywords = {{nudge; default}},
  document_type = {{Conference Paper}},
  source = {{Scopus}},
}}
@ARTICLE{{ok, title = {{Second}}, year = {{2021}}, source = {{Scopus}}}}
"""
    parsed = parse_file("scopus.bib", text.encode())
    assert len(parsed.records) == 2 and parsed.skipped == []
    record = parsed.records[0]
    assert record["title"] == "Nudges for 50% of prescribers"
    assert record["abstract"].startswith("Of the patients, 45% had X and 12% had Y, and 30% of those improved.")
    assert record["abstract"].endswith("% of the remaining clinicians, none changed.")
    assert len(record["abstract"]) > len(abstract)
    assert record["authors"] == ["Li, Y.", "Li, Y.", "Müller, H."]
    assert record["record_type"] == "conference_paper" and record["source_database"] == "Scopus"
    assert len(parsed.warnings) == 1 and "funding_details" in parsed.warnings[0] and "Li2020" in parsed.warnings[0]


@pytest.mark.parametrize(("code", "record_type", "back"), [
    ("JOUR", "journal_article", "JOUR"), ("CPAPER", "conference_paper", "CPAPER"),
    ("CONF", "conference_paper", "CPAPER"), ("CHAP", "book_chapter", "CHAP"), ("BOOK", "book", "BOOK"),
    ("THES", "thesis", "THES"), ("RPRT", "report", "RPRT"), ("GEN", None, "GEN"), ("XYZ", None, "GEN"),
])
def test_ris_types_map_both_ways(code, record_type, back) -> None:
    assert from_ris(code) == record_type and ris_code(record_type) == back


@pytest.mark.parametrize(("label", "record_type"), [
    ("Journal Article", "journal_article"), ("Conference Paper", "conference_paper"),
    ("Book Section", "book_chapter"), ("Book Chapter", "book_chapter"), ("Proceedings Paper", "conference_paper"),
    ("Review", "journal_article"), ("Case Reports", "journal_article"), ("Book", "book"),
    ("Thesis", "thesis"), ("Generic", None), ("", None),
])
def test_document_type_labels(label, record_type) -> None:
    assert from_label(label) == record_type


def test_source_detection_order() -> None:
    assert detect_source(["Embase", "Medline"]) == "Embase"
    assert detect_source(["PTSDpubs"], ["https://search.proquest.com/docview/1"]) == "PTSDpubs"
    assert detect_source([], ["http://ovidsp.ovid.com/ovidweb.cgi?T=JS&D=psyc16&AN=1"]) == "PsycINFO"
    assert detect_source([], ["CN-00778158"]) == "CENTRAL"
    assert detect_source(["NLM"]) == "PubMed" and detect_source([], ["rayyan-1"]) is None
