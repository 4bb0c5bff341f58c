"""POST/GET /api/v1/asl/projects/{id}/literatures: imports of every format, dedup, all-or-nothing, limits, and
every bad input answered with a 4xx in the contract's error shape while nothing is written."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from tests.support import database

FIXTURES = Path(__file__).parent / "fixtures"
NAGTEGAAL = Path(__file__).parent.parent / "app" / "data" / "nagtegaal_2019_nudging.csv"


def url(project_id: int) -> str:
    return f"/api/v1/asl/projects/{project_id}/literatures"


def upload(client, headers, project_id: int, name: str, data: bytes):
    return client.post(
        url(project_id), headers=headers, data={"file": (io.BytesIO(data), name)}, content_type="multipart/form-data"
    )


def sql(database_url: str, query: str, *params):
    with psycopg.connect(database.conninfo(database_url)) as conn:
        return conn.execute(query, params).fetchall()


def literature_count(database_url: str) -> int:
    return sql(database_url, "SELECT count(*) FROM literature")[0][0]


def assert_error(response, status: int, field: str | None = None) -> dict:
    """A 4xx in the contract's shape: {code, status, message, errors?}, naming ``field`` when given."""
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert body["code"] == status
    assert isinstance(body["status"], str) and body["status"]
    assert isinstance(body["message"], str) and body["message"]
    if field is not None:
        assert field in str(body.get("errors")), body
    return body


@contextmanager
def config(app, **values) -> Iterator[None]:
    saved = {name: app.config[name] for name in values}
    app.config.update(values)
    try:
        yield
    finally:
        app.config.update(saved)


def ris(*records: dict[str, str]) -> bytes:
    lines = []
    for record in records:
        lines.append("TY  - JOUR")
        lines += [f"{tag}  - {value}" for tag, value in record.items()]
        lines.append("ER  - ")
    return ("\n".join(lines) + "\n").encode()


# --- imports of the real exports -------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("name", "file_format", "count"),
    [
        ("scopus_export.ris", "ris", 6),
        ("embase_export.ris", "ris", 6),
        ("ovid_psycinfo_export.ris", "ris", 6),
        ("zotero_export_of_pubmed.ris", "ris", 6),
        ("embase_export.csv", "csv", 6),
        ("pubmed_medline_balloon-guide-catheter.nbib", "medline", 75),
        ("ieee_xplore_export.csv", "csv", 10),
    ],
)
def test_real_exports_import(client, auth, project_id, database_url, name, file_format, count) -> None:
    response = upload(client, auth, project_id, name, (FIXTURES / name).read_bytes())
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["imported"] == count and body["duplicates"] == 0 and body["skipped"] == []
    assert body["format"] == file_format
    assert literature_count(database_url) == count
    assert sql(database_url, "SELECT DISTINCT source_format FROM literature") == [(file_format,)]


def test_medline_import_keeps_fields(client, auth, project_id, database_url) -> None:
    name = "pubmed_medline_balloon-guide-catheter.nbib"
    upload(client, auth, project_id, name, (FIXTURES / name).read_bytes())
    row = sql(database_url, "SELECT title, pmid, doi, year, journal, authors[1], dedup_key FROM literature "
              "WHERE pmid = '30776994'")[0]
    assert row[0].startswith("Impact of Balloon Guide Catheter Use")
    assert row[1:6] == ("30776994", "10.1161/strokeaha.118.021126", 2019, "Stroke", "Zaidat, Osama O")
    assert row[6] == "doi:10.1161/strokeaha.118.021126"
    assert sql(database_url, "SELECT count(*) FROM literature WHERE abstract IS NOT NULL")[0][0] == 70


def test_nagtegaal_imports_with_labels(client, auth, project_id, database_url) -> None:
    response = upload(client, auth, project_id, NAGTEGAAL.name, NAGTEGAAL.read_bytes())
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    # 2,019 rows; 10 repeat an earlier title (normalised; no DOIs or years in this set)
    assert (body["imported"], body["duplicates"], body["skipped"]) == (2009, 10, [])
    labels = dict(sql(database_url, "SELECT label, count(*) FROM literature GROUP BY label"))
    # 392 rows are labelled include; 3 duplicate pairs are both include, and where only the later copy of a
    # duplicate was included the kept record carries "include"
    assert labels == {"include": 389, "exclude": 1620}
    first = sql(database_url, "SELECT source_id, label FROM literature WHERE source_id = '1'")[0]
    assert first == ("1", "include")  # label_abstract_screening 1 (label_included is 0)


def test_json_import(client, auth, project_id, database_url) -> None:
    response = client.post(url(project_id), headers=auth, json={"records": [
        {"title": "Defaults in prescribing", "abstract": "RCT", "authors": ["A. Author", "B. Author"], "year": 2018,
         "journal": "BMJ", "doi": "https://doi.org/10.1136/BMJ.X1", "pmid": "123", "label": "include"},
        {"title": "  "},
        {"title": None, "abstract": "no title"},
        {"title": "Reminders for nurses", "year": None},
    ]})
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["imported"] == 2 and body["duplicates"] == 0 and body["format"] == "json"
    assert body["skipped"] == [{"index": 1, "reason": "no title"}, {"index": 2, "reason": "no title"}]
    row = sql(database_url, "SELECT authors, year, journal, doi, pmid, label, source_format FROM literature "
              "ORDER BY id LIMIT 1")[0]
    assert row == (["A. Author", "B. Author"], 2018, "BMJ", "10.1136/bmj.x1", "123", "include", "json")


def test_file_records_without_title_are_skipped_with_their_index(client, auth, project_id, database_url) -> None:
    data = ris({"AB": "no title"}, {"TI": "Has a title"}, {"PY": "2001"})
    body = upload(client, auth, project_id, "x.ris", data).get_json()
    assert body["imported"] == 1
    assert body["skipped"] == [{"index": 0, "reason": "no title"}, {"index": 2, "reason": "no title"}]


def test_bibtex_duplicated_field_entry_is_imported_with_a_warning(client, auth, project_id, database_url):
    data = (b"@article{a, title={One}, year=2001}\n@article{b, title={Two}, title={Two again}}\n"
            b"@misc{c, title={Three}}\n")
    response = upload(client, auth, project_id, "refs.bib", data)
    assert response.status_code == 201
    body = response.get_json()
    assert body["imported"] == 3 and body["format"] == "bibtex" and body["skipped"] == []
    assert any("'b'" in warning and "'title'" in warning for warning in body["warnings"])
    assert sorted(r[0] for r in sql(database_url, "SELECT title FROM literature")) == ["One", "Three", "Two"]


def test_cp1252_file_is_imported_with_an_encoding_note(client, auth, project_id, database_url) -> None:
    data = ris({"TI": "Müller’s café nudges", "PY": "2010"}).replace(b"\n", b"\r\n")
    response = upload(client, auth, project_id, "legacy.ris", data.decode().encode("cp1252"))
    assert response.status_code == 201
    body = response.get_json()
    assert body["encoding"] == "cp1252" and "Windows-1252" in body["warnings"][0]
    assert sql(database_url, "SELECT title FROM literature") == [("Müller’s café nudges",)]


# --- dedup -----------------------------------------------------------------------------------------------------

def test_dedup_within_one_file(client, auth, project_id, database_url) -> None:
    data = ris(
        {"TI": "Alpha", "DO": "10.1000/AAA", "PY": "2000"},
        {"TI": "Alpha (other copy)", "DO": "https://doi.org/10.1000/aaa"},   # same DOI
        {"TI": "Beta", "AN": "111", "DB": "PubMed"},
        {"TI": "Beta again", "AN": "111", "DB": "MEDLINE"},                # same PMID, no DOI
        {"TI": "Gamma: a Study!", "PY": "2005"},
        {"TI": "gamma a study", "PY": "2005"},                             # same normalised title + year
        {"TI": "Gamma: a study", "PY": "2006"},                            # other year: not a duplicate
    )
    body = upload(client, auth, project_id, "dups.ris", data).get_json()
    assert (body["imported"], body["duplicates"]) == (4, 3)
    keys = sorted(r[0] for r in sql(database_url, "SELECT dedup_key FROM literature"))
    assert keys == ["doi:10.1000/aaa", "pmid:111", "title:gamma a study|2005", "title:gamma a study|2006"]
    assert sql(database_url, "SELECT title FROM literature WHERE dedup_key = 'doi:10.1000/aaa'") == [("Alpha",)]


def test_dedup_against_earlier_imports_and_only_within_the_project(client, auth, project_id, database_url):
    data = (FIXTURES / "scopus_export.ris").read_bytes()
    assert upload(client, auth, project_id, "scopus.ris", data).get_json()["imported"] == 6
    again = upload(client, auth, project_id, "scopus.ris", data).get_json()
    assert (again["imported"], again["duplicates"]) == (0, 6)
    # the same DOI given another way, plus one new record
    body = client.post(url(project_id), headers=auth, json={"records": [
        {"title": "Different title, same DOI", "doi": "https://doi.org/10.1016/J.PSYNEUEN.2019.104501"},
        {"title": "New one"},
    ]}).get_json()
    assert (body["imported"], body["duplicates"]) == (1, 1)
    assert literature_count(database_url) == 7
    other = client.post("/api/v1/asl/projects", headers=auth, json={"name": "Other", "picos": {"P": "x"}})
    other_id = other.get_json()["id"]
    assert upload(client, auth, other_id, "scopus.ris", data).get_json()["imported"] == 6
    assert literature_count(database_url) == 13


def test_import_is_all_or_nothing(app, client, auth, project_id, database_url) -> None:
    """A failure in the middle of the bulk insert (here a trigger raising on one row) leaves no row behind."""
    with psycopg.connect(database.conninfo(database_url), autocommit=True) as conn:
        conn.execute(
            "CREATE FUNCTION test_fail_on_boom() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "IF NEW.title = 'BOOM' THEN RAISE EXCEPTION 'simulated failure'; END IF; RETURN NEW; END $$"
        )
        conn.execute("CREATE TRIGGER test_fail_on_boom BEFORE INSERT ON literature FOR EACH ROW "
                     "EXECUTE FUNCTION test_fail_on_boom()")
    try:
        records = [{"title": f"Record {i}", "year": 2000} for i in range(3000)]
        records[2500] = {"title": "BOOM"}  # after the first insert chunks were sent
        response = client.post(url(project_id), headers=auth, json={"records": records})
        assert response.status_code == 500
        assert response.get_json()["code"] == 500 and "simulated" not in response.get_data(as_text=True)
        assert literature_count(database_url) == 0
    finally:
        with psycopg.connect(database.conninfo(database_url), autocommit=True) as conn:
            conn.execute("DROP TRIGGER test_fail_on_boom ON literature")
            conn.execute("DROP FUNCTION test_fail_on_boom()")
    # the app is fine afterwards
    ok = client.post(url(project_id), headers=auth, json={"records": [{"title": "After"}]})
    assert ok.status_code == 201 and literature_count(database_url) == 1


# --- listing ---------------------------------------------------------------------------------------------------

def test_listing_paginates(client, auth, project_id) -> None:
    client.post(url(project_id), headers=auth, json={"records": [{"title": f"T{i}"} for i in range(7)]})
    page = client.get(url(project_id) + "?page=2&page_size=3", headers=auth)
    assert page.status_code == 200
    assert [r["title"] for r in page.get_json()] == ["T3", "T4", "T5"]
    assert '"total": 7' in page.headers["X-Pagination"]
    record = page.get_json()[0]
    assert {"id", "title", "abstract", "authors", "year", "journal", "doi", "pmid", "label", "source_format"} <= set(
        record
    )


@pytest.mark.parametrize("query", ["page_size=0", "page_size=501", "page_size=abc", "page=0"])
def test_page_size_out_of_range_is_422(client, auth, project_id, query) -> None:
    assert_error(client.get(url(project_id) + "?" + query, headers=auth), 422, query.split("=")[0])


# --- bad input: 4xx, contract shape, nothing written ----------------------------------------------------------

BAD_FILES = [
    ("merged.ris", b"TY  - JOUR\nTI  - One\nTY  - JOUR\nTI  - Two\nER  - \n", 422, "RIS"),
    ("truncated.ris", ris({"TI": "One"}) + b"TY  - JOUR\nTI  - Two\nAB  - cut off", 422, "ER"),
    ("broken.bib", b"@article{a, title = {One}, year = 2001\n@article{b, title={Two}}\n", 422, "BibTeX"),
    ("ragged.csv", b'title,abstract\n"A","x"\n"B","y","z"\n', 422, "CSV"),
    ("quote.csv", b'title,abstract\n"A","x"\n"B,"unterminated\n', 422, "CSV"),
    ("empty.ris", b"", 422, "empty"),
    ("garbage.ris", bytes(range(256)) * 64, 415, "binary"),
    ("bad-utf8.ris", "TY  - JOUR\nTI  - Zürich\nER  - \n".encode() + b"TY  - JOUR\nTI  - \xff\xfe\nER  - \n", 422,
     "UTF-8"),
    ("readme.txt", b"These are my references, see attached.\n", 415, "format"),
    ("refs.xlsx", b"PK\x03\x04" + bytes(200), 415, "ZIP"),
]


@pytest.mark.parametrize(("name", "data", "status", "phrase"), BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_files_are_4xx_and_write_nothing(client, auth, project_id, database_url, name, data, status, phrase):
    # a good record first in the same file where the format allows it: nothing of the file may be written
    body = assert_error(upload(client, auth, project_id, name, data), status, "file")
    assert phrase.lower() in body["message"].lower()
    assert literature_count(database_url) == 0


def test_oversize_file_is_413(app, client, auth, project_id, database_url) -> None:
    data = (FIXTURES / "scopus_export.ris").read_bytes()
    with config(app, MAX_IMPORT_BYTES=1000):
        body = assert_error(upload(client, auth, project_id, "scopus.ris", data), 413, "file")
        assert "MAX_IMPORT_BYTES" in body["message"]
        # far over the limit: refused before the body is parsed
        assert_error(upload(client, auth, project_id, "big.ris", data * 20), 413)
        big_json = {"records": [{"title": "x" * 500} for _ in range(200)]}
        assert_error(client.post(url(project_id), headers=auth, json=big_json), 413)
    assert literature_count(database_url) == 0


def test_too_many_records_is_422(app, client, auth, project_id, database_url) -> None:
    with config(app, MAX_IMPORT_RECORDS=5):
        body = assert_error(
            upload(client, auth, project_id, "scopus.ris", (FIXTURES / "scopus_export.ris").read_bytes()), 422, "file"
        )
        assert "MAX_IMPORT_RECORDS" in body["message"]
        records = [{"title": f"T{i}"} for i in range(6)]
        assert_error(client.post(url(project_id), headers=auth, json={"records": records}), 422, "records")
        ok = client.post(url(project_id), headers=auth, json={"records": records[:5]})
        assert ok.status_code == 201
    assert literature_count(database_url) == 5


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([{"title": "a list, not an object"}], "json"),
        ("just a string", "json"),
        ({"records": "not a list"}, "records"),
        ({"records": [1, 2]}, "records"),
        ({"records": [{"title": 5}]}, "title"),
        ({"records": [{"title": "x", "year": "soon"}]}, "year"),
        ({"records": [{"title": "x", "authors": "A. Author"}]}, "authors"),
        ({"records": [{"title": "x", "label": "maybe"}]}, "label"),
        ({"records": [{"title": "x", "pmid": "PMC123"}]}, "pmid"),
    ],
)
def test_json_body_of_the_wrong_type_is_422(client, auth, project_id, database_url, body, field) -> None:
    assert_error(client.post(url(project_id), headers=auth, json=body), 422, field)
    assert literature_count(database_url) == 0


def test_a_bad_record_among_good_ones_writes_nothing(client, auth, project_id, database_url) -> None:
    records = [{"title": "good"}] * 3 + [{"title": "bad", "year": "never"}]
    body = assert_error(client.post(url(project_id), headers=auth, json={"records": records}), 422, "year")
    assert "3" in str(body["errors"])  # names the record's position
    assert literature_count(database_url) == 0


@pytest.mark.parametrize(
    "send",
    [
        lambda c, h, p: c.post(url(p), headers=h, json={}),
        lambda c, h, p: c.post(url(p), headers=h, json={"records": [{"abstract": "title key missing"}]}),
        lambda c, h, p: c.post(url(p), headers=h, data={"other": "x"}, content_type="multipart/form-data"),
        lambda c, h, p: c.post(url(p), headers=h, data="title\nA\n", content_type="text/csv"),
    ],
    ids=["no-records", "no-title-key", "multipart-without-file", "raw-body"],
)
def test_missing_required_fields_is_422(client, auth, project_id, database_url, send) -> None:
    body = assert_error(send(client, auth, project_id), 422)
    assert "records" in str(body.get("errors")) or "title" in str(body.get("errors"))
    assert literature_count(database_url) == 0


def test_unknown_project_is_404(client, auth, database_url) -> None:
    assert_error(client.post(url(999999), headers=auth, json={"records": [{"title": "x"}]}), 404)
    assert_error(upload(client, auth, 999999, "x.ris", ris({"TI": "x"})), 404)
    assert_error(client.get(url(999999), headers=auth), 404)
    assert literature_count(database_url) == 0


def test_another_users_project_is_404(client, auth, make_token, project_id, database_url) -> None:
    other = {"Authorization": f"Bearer {make_token('mallory')}"}
    assert_error(client.post(url(project_id), headers=other, json={"records": [{"title": "x"}]}), 404)
    assert_error(upload(client, other, project_id, "x.ris", ris({"TI": "x"})), 404)
    assert_error(client.get(url(project_id), headers=other), 404)
    assert literature_count(database_url) == 0


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer lsk_wrong"}, {"Authorization": "Basic abc"}])
def test_no_or_bad_token_is_401(client, auth, project_id, database_url, headers) -> None:
    assert_error(client.post(url(project_id), headers=headers, json={"records": [{"title": "x"}]}), 401)
    assert_error(upload(client, headers, project_id, "x.ris", ris({"TI": "x"})), 401)
    assert_error(client.get(url(project_id), headers=headers), 401)
    assert literature_count(database_url) == 0


def test_concurrent_imports_into_one_project_do_not_collide(app, project_id, database_url) -> None:
    """Two imports of overlapping records in opposite orders, at the same time: both succeed, each key once."""
    import threading

    from app.extensions import db
    from app.models import Project
    from app.services.literature import import_records

    records = [{"title": f"Shared {i}", "doi": f"10.5555/shared.{i}"} for i in range(3000)]
    results: dict[str, object] = {}

    def run(name: str, batch: list[dict]) -> None:
        try:
            with app.app_context():
                session = db.session()
                results[name] = import_records(session, session.get(Project, project_id), batch)
        except Exception as exc:  # noqa: BLE001 — reported by the assertion below
            results[name] = exc

    threads = [threading.Thread(target=run, args=("forward", records)),
               threading.Thread(target=run, args=("backward", records[::-1]))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    summaries = list(results.values())
    assert all(not isinstance(s, Exception) for s in summaries), summaries
    assert sum(s.imported for s in summaries) == 3000  # type: ignore[attr-defined]
    assert sum(s.duplicates for s in summaries) == 3000  # type: ignore[attr-defined]
    assert literature_count(database_url) == 3000
