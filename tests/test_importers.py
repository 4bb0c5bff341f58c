"""Parsers and format detection on the real exports in tests/fixtures and on hand-made edge cases."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.importers import ImportRejected, detect_format, parse_file
from app.importers.normalise import dedup_key, normalise_doi, normalise_label, normalise_pmid, parse_year

FIXTURES = Path(__file__).parent / "fixtures"
NAGTEGAAL = Path(__file__).parent.parent / "app" / "data" / "nagtegaal_2019_nudging.csv"


def parse_fixture(name: str):
    return parse_file(name, (FIXTURES / name).read_bytes())


@pytest.mark.parametrize(
    ("name", "file_format", "count", "with_abstract"),
    [
        ("scopus_export.ris", "ris", 6, 6),
        ("embase_export.ris", "ris", 6, 6),
        ("ovid_psycinfo_export.ris", "ris", 6, 6),
        ("zotero_export_of_pubmed.ris", "ris", 6, 6),
        ("embase_export.csv", "csv", 6, 6),
        ("pubmed_medline_balloon-guide-catheter.nbib", "medline", 75, 70),
        ("ieee_xplore_export.csv", "csv", 10, 10),
    ],
)
def test_real_exports_parse_with_the_right_counts(name, file_format, count, with_abstract) -> None:
    parsed = parse_fixture(name)
    assert parsed.format == file_format
    assert len(parsed.records) == count
    assert parsed.skipped == []
    assert sum(1 for r in parsed.records if r["abstract"]) == with_abstract
    assert all(r["title"] for r in parsed.records)
    assert [r["index"] for r in parsed.records] == list(range(count))


def test_scopus_ris_fields() -> None:
    first, second = parse_fixture("scopus_export.ris").records[:2]
    assert first["title"].startswith("Stress and the brain-gut axis in functional")
    assert first["authors"][:2] == ["Labanski, A.", "Langhorst, J."]
    assert first["year"] == 2020
    assert first["journal"] == "Psychoneuroendocrinology"
    assert first["doi"] == "10.1016/j.psyneuen.2019.104501"
    assert "Brain-gut axis" in first["keywords"]
    assert first["pmid"] is None and second["pmid"] is not None and second["pmid"].isdigit()  # C2 = PubMed ID


def test_embase_ris_bom_and_repeated_tags() -> None:
    data = (FIXTURES / "embase_export.ris").read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    records = parse_fixture("embase_export.ris").records
    first = records[0]
    assert first["title"] == "Duplication cysts: Diagnosis, management, and the role of endoscopic ultrasound"
    assert first["authors"] == ["Liu R.", "Adler D.G."]
    assert first["year"] == 2014
    assert first["journal"] == "Endoscopic Ultrasound"
    assert first["doi"] == "10.4103/2303-9027.138783"
    assert first["source_id"] == "L373791783"


def test_ovid_ris_numbered_lines_and_n2_a1_t1_tags() -> None:
    records = parse_fixture("ovid_psycinfo_export.ris").records
    first = records[0]
    assert first["title"].startswith("The influence of self-criticism on depression symptoms")
    assert first["abstract"].startswith("Considering that self-criticism")  # N2
    assert first["authors"][0] == "Trindade, Ines A"  # A1
    assert first["year"] == 2019  # "Y1  - 2019//"
    assert first["doi"] == "10.1002/cpp.2398"  # "http://dx.doi.org/…" prefix removed
    assert first["source_id"] == "2019-65183-001"
    assert all(r["doi"] and not r["doi"].startswith("http") for r in records)


def test_zotero_ris_fields() -> None:
    first = parse_fixture("zotero_export_of_pubmed.ris").records[0]
    assert first["title"].startswith("The importance of cognitive flexibility")
    assert first["journal"] == "Przeglad gastroenterologiczny"
    assert first["doi"] == "10.5114/pg.2018.81081"
    assert first["year"] == 2019


def test_medline_crlf_and_continuation_lines() -> None:
    assert b"\r\n" in (FIXTURES / "pubmed_medline_balloon-guide-catheter.nbib").read_bytes()
    records = parse_fixture("pubmed_medline_balloon-guide-catheter.nbib").records
    first = records[0]
    # TI spans two lines in the file
    assert first["title"] == (
        "Impact of Balloon Guide Catheter Use on Clinical and Angiographic Outcomes in the "
        "STRATIS Stroke Thrombectomy Registry."
    )
    assert first["pmid"] == "30776994" and first["source_id"] == "30776994"
    assert first["doi"] == "10.1161/strokeaha.118.021126"
    assert first["year"] == 2019 and first["journal"] == "Stroke"
    assert first["authors"][0] == "Zaidat, Osama O"
    assert all(r["pmid"] for r in records)
    assert len({r["pmid"] for r in records}) == 75


def test_medline_value_with_unicode_line_separator_stays_one_record() -> None:
    # One abstract in the fixture holds U+2028; str.splitlines() would cut the record there.
    records = parse_fixture("pubmed_medline_balloon-guide-catheter.nbib").records
    assert any("Medtronic" in (r["abstract"] or "") or r["pmid"] == "30712011" for r in records)


def test_medline_record_with_only_abbreviated_authors_and_odd_issn() -> None:
    text = "PMID- 123\nTI  - A title\n      continued\nIS  - 1234-5678\nAU  - Smith J\nAU  - Doe A\nDP  - 2001 Jan\n"
    parsed = parse_file("x.nbib", text.encode())
    assert parsed.records[0]["title"] == "A title continued"
    assert parsed.records[0]["authors"] == ["Smith J", "Doe A"]
    assert parsed.records[0]["year"] == 2001


def test_medline_unreadable_record_is_skipped_not_fatal() -> None:
    text = "PMID- 1\nTI  - Good one\n\nPMID- not-a-number\nTI  - Bad one\n\nPMID- 3\nTI  - Another\n"
    parsed = parse_file("x.txt", text.encode())
    assert parsed.format == "medline"
    assert [r["title"] for r in parsed.records] == ["Good one", "Another"]
    assert parsed.skipped[0]["index"] == 1 and "line 4" in parsed.skipped[0]["reason"]


def test_embase_csv_author_names_and_source_column() -> None:
    first = parse_fixture("embase_export.csv").records[0]
    assert first["title"].startswith("Duplication cysts")
    assert first["authors"] == ["Liu R.", "Adler D.G."]
    assert first["journal"] == "Endoscopic Ultrasound" and first["year"] == 2014
    assert "bronchogenic duplication cyst (diagnosis, surgery)" in first["keywords"]


def test_ieee_csv_document_title_columns() -> None:
    records = parse_fixture("ieee_xplore_export.csv").records
    first = records[0]
    assert first["title"].startswith("Exascale Computing Trends")
    assert first["authors"] == ["P. Kogge", "J. Shalf"]
    assert first["year"] == 2013
    assert first["journal"] == "Computing in Science & Engineering"
    assert first["doi"] == "10.1109/mcse.2013.95"
    assert all(r["doi"] for r in records)


def test_scopus_csv_headers() -> None:
    data = (
        '\ufeff"Authors","Author(s) ID","Title","Year","Source title","DOI","Abstract","Author Keywords",'
        '"PubMed ID","Source","EID"\n'
        '"Smith J., Doe A.","1;2","Nudges for doctors","2018","BMJ","https://doi.org/10.1136/BMJ.K1",'
        '"An abstract","nudge; default","29999999","Scopus","2-s2.0-1"\n'
    ).encode("utf-8")
    record = parse_file("scopus.csv", data).records[0]
    assert record["authors"] == ["Smith J.", "Doe A."]
    assert (record["title"], record["year"], record["journal"]) == ("Nudges for doctors", 2018, "BMJ")
    assert record["doi"] == "10.1136/bmj.k1"
    assert record["pmid"] == "29999999" and record["source_id"] == "2-s2.0-1"
    assert record["keywords"] == ["nudge", "default"]


def test_semicolon_and_tab_separated_csv() -> None:
    semicolon = parse_file("x.csv", b"title;abstract;label_included\nA;text;1\nB;;0\n")
    assert [(r["title"], r["label"]) for r in semicolon.records] == [("A", "include"), ("B", "exclude")]
    tabbed = parse_file("x.tsv", b"Title\tYear\nA study\t1999\n")
    assert tabbed.records[0]["year"] == 1999


def test_nagtegaal_label_comes_from_label_abstract_screening() -> None:
    parsed = parse_file(NAGTEGAAL.name, NAGTEGAAL.read_bytes())
    assert len(parsed.records) == 2019
    # record 1: label_included 0, label_abstract_screening 1
    assert parsed.records[0]["source_id"] == "1" and parsed.records[0]["label"] == "include"
    assert sum(1 for r in parsed.records if r["label"] == "include") == 392
    assert sum(1 for r in parsed.records if r["label"] == "exclude") == 1627


def test_unrecognised_labels_are_dropped_with_a_warning() -> None:
    parsed = parse_file("x.csv", b"title,label\nA,maybe\nB,include\n")
    assert [r["label"] for r in parsed.records] == [None, "include"]
    assert "maybe" in parsed.warnings[0]


def test_bibtex_duplicated_field_keeps_the_entry_with_a_warning() -> None:
    text = r"""
@article{good1,
  title = {M{\"u}ller's nudges},
  author = {M{\"u}ller, Hans and Doe, Jane},
  year = {2019}, doi = {10.1000/ABC}, journal = {J Test}, keywords = {nudge; default}
}
@article{twice,
  title = {First title},
  title = {Second title},
  year = 2020
}
@inproceedings{good2, title = {Proceedings paper}, booktitle = {Conf}, year = 2021, pmid = {555}}
"""
    parsed = parse_file("refs.bib", text.encode())
    assert parsed.format == "bibtex"
    assert [r["title"] for r in parsed.records] == ["Müller's nudges", "First title", "Proceedings paper"]
    assert [r["index"] for r in parsed.records] == [0, 1, 2]
    first = parsed.records[0]
    assert first["authors"] == ["Müller, Hans", "Doe, Jane"] and first["doi"] == "10.1000/abc"
    assert first["keywords"] == ["nudge", "default"] and first["source_id"] == "good1"
    assert parsed.records[1]["year"] == 2020
    assert parsed.records[2]["journal"] == "Conf" and parsed.records[2]["pmid"] == "555"
    assert parsed.records[2]["record_type"] == "conference_paper"
    assert parsed.skipped == []
    assert len(parsed.warnings) == 1 and "twice" in parsed.warnings[0] and "'title'" in parsed.warnings[0]


def test_bibtex_entries_sharing_a_key_are_both_read() -> None:
    text = "@article{k, title={One}, year=2001}\n@article{k, title={Two}, year=2002}\n"
    assert [r["title"] for r in parse_file("x.bib", text.encode()).records] == ["One", "Two"]


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("export.txt", "TY  - JOUR\nTI  - x\nER  - \n", "ris"),
        ("export", "PMID- 1\nTI  - x\n", "medline"),
        ("export.txt", "@article{a, title={x}}", "bibtex"),
        ("export.dat", "Title,Abstract\nx,y\n", "csv"),
        ("export.ris", "PMID- 1\nTI  - x\n", "medline"),  # content wins over a wrong extension
        ("export.nbib", "PMID- 1\nTI  - x\n", "medline"),
        ("export.ris", "just some words\n", "ris"),  # name decides; the RIS parser then says what is wrong
    ],
)
def test_detect_format_from_name_and_content(name, text, expected) -> None:
    assert detect_format(name, text) == expected


def test_unknown_format_is_415() -> None:
    with pytest.raises(ImportRejected) as caught:
        parse_file("notes.txt", b"Dear colleague,\nplease find the references attached.\n")
    assert caught.value.status == 415 and "notes.txt" in caught.value.message


@pytest.mark.parametrize(
    ("name", "data", "status", "phrase"),
    [
        ("empty.ris", b"", 422, "empty"),
        ("blank.csv", b"  \n\n", 422, "empty"),
        ("garbage.ris", bytes(range(256)) * 40, 415, "binary"),
        ("refs.xlsx", b"PK\x03\x04" + b"\x00" * 100, 415, "ZIP"),
        ("paper.ris", b"%PDF-1.7\n...", 415, "PDF"),
        ("bad.ris", "TY  - JOUR\nTI  - Müller\n".encode() + b"\xff\xfe oops\nER  - \n", 422, "not valid UTF-8"),
        ("undefined.ris", b"TY  - JOUR\nTI  - caf\x81\nER  - \n", 422, "Windows-1252"),
        ("truncated.ris", b"TY  - JOUR\nTI  - One\nER  - \nTY  - JOUR\nTI  - Two\n", 422, "no end tag"),
        ("merged.ris", b"TY  - JOUR\nTI  - One\nTY  - JOUR\nTI  - Two\nER  - \n", 422, "before the record"),
        ("words.ris", b"this is not RIS\n", 422, "no record"),
        ("broken.bib", b"@article{a, title = {One}, year = 2001\n@article{b, title={Two}}\n", 422, "BibTeX"),
        ("ragged.csv", b'title,abstract\n"A","x","extra"\n', 422, "3 fields"),
        ("quote.csv", b'title,abstract\n"A,"unterminated\n', 422, "Malformed CSV"),
        ("no_title.csv", b"name,abstract\nA,x\n", 422, "no title column"),
        ("header_only.csv", b"title,abstract\n", 422, "no records"),
    ],
)
def test_bad_files_are_rejected_with_a_reason(name, data, status, phrase) -> None:
    with pytest.raises(ImportRejected) as caught:
        parse_file(name, data)
    assert caught.value.status == status
    assert phrase.lower() in caught.value.message.lower()


def test_windows_1252_file_is_read_with_a_note() -> None:
    parsed = parse_file("legacy.ris", "TY  - JOUR\nTI  - Müller’s café study\nER  - \n".encode("cp1252"))
    assert parsed.records[0]["title"] == "Müller’s café study"
    assert parsed.encoding == "cp1252"
    assert "Windows-1252" in parsed.warnings[0] and "line 2" in parsed.warnings[0]


def test_utf16_with_bom_is_read() -> None:
    parsed = parse_file("excel.csv", "Title\tAbstract\nÜber nudges\tx\n".encode("utf-16"))
    assert parsed.records[0]["title"] == "Über nudges" and parsed.encoding == "utf-16"


def test_ris_record_without_title_is_kept_for_the_importer_to_skip() -> None:
    parsed = parse_file("x.ris", b"TY  - JOUR\nAB  - no title here\nER  - \nTY  - JOUR\nTI  - Titled\nER  - \n")
    assert [r["title"] for r in parsed.records] == [None, "Titled"]


@pytest.mark.parametrize(
    ("raw", "doi"),
    [
        ("https://doi.org/10.1000/XYZ.1", "10.1000/xyz.1"),
        ("doi:10.1000/abc", "10.1000/abc"),
        ("http://dx.doi.org/10.1002/cpp.2398.", "10.1002/cpp.2398"),
        ("not a doi", None),
        (None, None),
    ],
)
def test_normalise_doi(raw, doi) -> None:
    assert normalise_doi(raw) == doi


def test_small_normalisers() -> None:
    assert normalise_pmid("PMID: 00123") == "123" and normalise_pmid("12a") is None and normalise_pmid(5) == "5"
    assert parse_year("2019//") == 2019 and parse_year(None, "Mar 2001") == 2001 and parse_year("n.d.") is None
    assert normalise_label("Included") == ("include", True) and normalise_label("?") == (None, False)
    assert dedup_key("10.1/x", "1", "T", 2000) == "doi:10.1/x"
    assert dedup_key(None, "1", "T", 2000) == "pmid:1"
    assert dedup_key(None, None, "  The Café,  study! ", 2000) == dedup_key(None, None, "the cafe study", 2000)
    assert dedup_key(None, None, "T", 2000) != dedup_key(None, None, "T", 2001)


def test_ris_concatenated_exports_with_a_second_bom_keep_every_record() -> None:
    one = "TY  - JOUR\nTI  - One\nER  - \n"
    two = "\ufeffTY  - JOUR\nTI  - Two\nER  - \n"
    parsed = parse_file("both.ris", (one + two).encode("utf-8"))
    assert [r["title"] for r in parsed.records] == ["One", "Two"]

