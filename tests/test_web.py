"""The reviewer's workspace at /ui/, in process: sign-in, the session cookie's flags, CSRF on every form (and
none on the bearer-token API), owner scoping (another user's project is a 404), projects and imports, the review
queue, field review, reports and downloads — and Swagger UI served from local files only."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from sqlalchemy import select, update

from tests.conftest import PICOS
from tests.support.screening import models_configured, seed_results, start

FIXTURES = Path(__file__).resolve().parent / "fixtures"
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(client, path: str = "/ui/sign-in") -> str:
    """The CSRF token a form of ``path`` carries."""
    page = client.get(path)
    found = CSRF_FIELD.search(page.get_data(as_text=True))
    assert found, page.get_data(as_text=True)[:500]
    return found.group(1)


def sign_in(client, token: str):
    """Sign in through the form; the response of the POST."""
    return client.post("/ui/sign-in", data={"token": token, "csrf_token": csrf_of(client), "next": ""})


@pytest.fixture
def signed_in(client, make_token):
    """A test client signed in as 'alice'."""
    assert sign_in(client, make_token("alice")).status_code == 302
    return client


def test_pages_need_a_session(client) -> None:
    response = client.get("/ui/")
    assert response.status_code == 302 and "/ui/sign-in" in response.headers["Location"]
    assert client.get("/ui/tasks/1/progress.json").status_code == 401


def test_sign_in_sets_a_hardened_session_cookie(client, make_token) -> None:
    response = sign_in(client, make_token("alice"))
    assert response.status_code == 302 and response.headers["Location"].endswith("/ui/")
    cookie = response.headers["Set-Cookie"]
    assert "litscreen_ui=" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/ui" in cookie
    assert "Secure" not in cookie  # plain http in development (WEB_COOKIE_SECURE=auto)
    page = client.get("/ui/")
    assert page.status_code == 200 and "Signed in as alice" in page.get_data(as_text=True)


def test_the_cookie_is_secure_over_https(app, make_token) -> None:
    client = app.test_client()
    token = make_token("alice")
    page = client.get("/ui/sign-in", base_url="https://localhost")
    csrf = CSRF_FIELD.search(page.get_data(as_text=True)).group(1)
    response = client.post("/ui/sign-in", data={"token": token, "csrf_token": csrf}, base_url="https://localhost",
                           headers={"Referer": "https://localhost/ui/sign-in"})
    assert response.status_code == 302
    assert "Secure" in response.headers["Set-Cookie"]


def test_the_session_holds_no_token(client, make_token) -> None:
    token = make_token("alice")
    response = sign_in(client, token)
    assert token not in response.headers["Set-Cookie"]


def test_a_bad_token_is_refused(client) -> None:
    response = sign_in(client, "lsk_not-a-real-token")
    assert response.status_code == 401
    body = response.get_data(as_text=True)
    assert "not valid" in body and "lsk_not-a-real-token" not in body


def test_a_post_without_the_csrf_token_is_refused(signed_in, make_token, client) -> None:
    assert client.post("/ui/sign-in", data={"token": make_token("bob")}).status_code == 400
    refused = signed_in.post("/ui/projects/new", data={"name": "X", "picos_P": "doctors"})
    assert refused.status_code == 400 and "form has expired" in refused.get_data(as_text=True)
    refused = signed_in.post("/ui/projects/new", data={"name": "X", "picos_P": "doctors", "csrf_token": "forged"})
    assert refused.status_code == 400
    assert "<td><a" not in signed_in.get("/ui/").get_data(as_text=True)  # no project was created


def test_the_bearer_api_needs_no_csrf_token(client, auth) -> None:
    response = client.post("/api/v1/asl/projects", json={"name": "API", "picos": PICOS}, headers=auth)
    assert response.status_code == 201


def test_sign_out_ends_the_session(signed_in) -> None:
    csrf = csrf_of(signed_in, "/ui/")
    assert signed_in.post("/ui/sign-out", data={"csrf_token": csrf}).status_code == 302
    assert signed_in.get("/ui/").status_code == 302


def test_revoking_the_token_ends_the_session(app, client, make_token) -> None:
    from app.extensions import db
    from app.models import ApiToken
    from app.services.users import revoke_token

    sign_in(client, make_token("alice"))
    assert client.get("/ui/").status_code == 200
    with app.app_context():
        session = db.session()
        for token_id in session.scalars(select(ApiToken.id)):
            revoke_token(session, token_id)
    assert client.get("/ui/").status_code == 302


def test_next_is_only_followed_inside_the_workspace(client, make_token) -> None:
    token = make_token("alice")
    for target, expected in (("https://evil.example/", "/ui/"), ("//evil.example/ui/", "/ui/"),
                             ("/ui/projects/new", "/ui/projects/new")):
        client.post("/ui/sign-out", data={"csrf_token": csrf_of(client)})
        response = client.post("/ui/sign-in", data={"token": token, "csrf_token": csrf_of(client), "next": target})
        assert response.headers["Location"].endswith(expected), target
        assert "evil" not in response.headers["Location"]


def test_another_users_project_and_run_are_404(app, client, auth, project_id, make_token, monkeypatch) -> None:
    models_configured(app, monkeypatch)
    client.post(f"/api/v1/asl/projects/{project_id}/literatures", headers=auth,
                json={"records": [{"title": f"Nudges for doctors {i}", "abstract": "A trial."} for i in range(5)]})
    task_id = start(client, auth, project_id).get_json()["id"]
    result_ids = seed_results(app, task_id)
    other = app.test_client()
    sign_in(other, make_token("mallory"))
    for path in (f"/ui/projects/{project_id}", f"/ui/projects/{project_id}/runs/new",
                 f"/ui/projects/{project_id}/prisma.svg", f"/ui/tasks/{task_id}", f"/ui/tasks/{task_id}/report",
                 f"/ui/tasks/{task_id}/progress.json", f"/ui/tasks/{task_id}/queue/conflicts",
                 f"/ui/tasks/{task_id}/export.csv", f"/ui/results/{result_ids[0]}/fields"):
        response = other.get(path)
        assert response.status_code == 404, path
    csrf = csrf_of(other, "/ui/")
    assert other.post(f"/ui/results/{result_ids[2]}/decide",
                      data={"decision": "include", "csrf_token": csrf}).status_code == 404
    assert other.post(f"/ui/tasks/{task_id}/cancel", data={"csrf_token": csrf}).status_code == 404
    assert "Nudging" not in other.get("/ui/").get_data(as_text=True)


def test_workspace_pages_carry_security_headers(signed_in) -> None:
    response = signed_in.get("/ui/")
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_create_a_project_and_import_a_file(signed_in) -> None:
    csrf = csrf_of(signed_in, "/ui/projects/new")
    missing = signed_in.post("/ui/projects/new", data={"name": "", "csrf_token": csrf})
    assert missing.status_code == 422 and "At least one of P, I, C, O, S" in missing.get_data(as_text=True)
    created = signed_in.post("/ui/projects/new", data={
        "name": "Gut stress", "picos_P": "adults with bowel disease", "picos_I": "stress reduction",
        "inclusion_criteria": "trials", "csrf_token": csrf})
    assert created.status_code == 302
    project_path = created.headers["Location"]
    page = signed_in.get(project_path).get_data(as_text=True)
    assert "Gut stress" in page and "adults with bowel disease" in page

    ris = (FIXTURES / "scopus_export.ris").read_bytes()
    imported = signed_in.post(f"{project_path}/import", content_type="multipart/form-data", data={
        "file": (io.BytesIO(ris), "scopus_export.ris"), "source": "Scopus", "csrf_token": csrf})
    body = imported.get_data(as_text=True)
    assert imported.status_code == 200, body
    assert "Import report: scopus_export.ris" in body and "imported" in body and "Possible duplicates" in body
    count = int(re.search(r'id="record-count">(\d+)<', body).group(1))
    assert count > 0

    again = signed_in.post(f"{project_path}/import", content_type="multipart/form-data", data={
        "file": (io.BytesIO(ris), "scopus_export.ris"), "csrf_token": csrf})
    assert re.search(r"<strong>(\d+)</strong> duplicates not imported", again.get_data(as_text=True)).group(1) == str(
        count)

    bad = signed_in.post(f"{project_path}/import", content_type="multipart/form-data", data={
        "file": (io.BytesIO(b"\x00\x01 not a bibliography"), "junk.bin"), "csrf_token": csrf})
    assert bad.status_code in (415, 422) and "Nothing was imported" in bad.get_data(as_text=True)


def _run_with_conflicts(app, client, auth, project_id, monkeypatch) -> tuple[int, list[int]]:
    models_configured(app, monkeypatch)
    records = [{"title": f"Nudges and reminders for physicians {i}", "abstract": "Default order sets changed "
                "prescribing among nurses in a randomised trial.", "label": "include" if i % 2 else "exclude"}
               for i in range(10)]
    client.post(f"/api/v1/asl/projects/{project_id}/literatures", headers=auth, json={"records": records})
    task_id = start(client, auth, project_id).get_json()["id"]
    return task_id, seed_results(app, task_id)


def test_the_conflict_queue_one_record_at_a_time(app, client, auth, project_id, monkeypatch, make_token) -> None:
    task_id, result_ids = _run_with_conflicts(app, client, auth, project_id, monkeypatch)
    sign_in(client, make_token("alice"))
    page = client.get(f"/ui/tasks/{task_id}/queue/conflicts")
    body = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "<mark>Nudges</mark>" in body and "<mark>physicians</mark>" in body  # PICOS terms marked
    assert "A says include" in body and "B says exclude" in body and "0.90" in body
    assert re.search(r'data-left="(\d+)"', body).group(1) == "2"
    first = int(re.search(r'data-result-id="(\d+)"', body).group(1))

    skipped = client.get(re.search(r'id="skip"[^>]*href="([^"]+)"', body).group(1).replace("&amp;", "&"))
    second = int(re.search(r'data-result-id="(\d+)"', skipped.get_data(as_text=True)).group(1))
    assert second != first

    csrf = csrf_of(client, "/ui/")
    decided = client.post(f"/ui/results/{second}/decide", data={
        "decision": "exclude", "reason": "wrong population", "note": "students, not staff", "queue": "conflicts",
        "csrf_token": csrf}, follow_redirects=True)
    text = decided.get_data(as_text=True)
    assert "Saved: exclude" in text and re.search(r'data-left="(\d+)"', text).group(1) == "1"
    review = client.get(f"/api/v1/asl/tasks/{task_id}/results?review=reviewed", headers=auth).get_json()
    assert [(r["id"], r["review"]["decision"], r["review"]["note"], r["exclusion_reason"]) for r in review] == [
        (second, "exclude", "students, not staff", "wrong population")]

    client.post(f"/ui/results/{first}/decide", data={"decision": "include", "queue": "conflicts",
                                                      "csrf_token": csrf})
    done = client.get(f"/ui/tasks/{task_id}/queue/conflicts").get_data(as_text=True)
    assert "Nothing left in this queue" in done
    assert first in result_ids


def test_reports_downloads_and_the_audit_queue(app, client, auth, project_id, monkeypatch, make_token) -> None:
    task_id, _ = _run_with_conflicts(app, client, auth, project_id, monkeypatch)
    sign_in(client, make_token("alice"))
    report = client.get(f"/ui/tasks/{task_id}/report").get_data(as_text=True)
    assert "Agreement with human labels" in report and "Methods paragraph" in report and "PRISMA 2020" in report
    svg = client.get(f"/ui/projects/{project_id}/prisma.svg")
    assert svg.status_code == 200 and svg.mimetype == "image/svg+xml" and b"<svg" in svg.data
    for fmt, mimetype in (("csv", "text/csv"), ("ris", "application/x-research-info-systems"),
                          ("xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")):
        download = client.get(f"/ui/tasks/{task_id}/export.{fmt}")
        assert download.status_code == 200 and download.mimetype == mimetype
        assert f'filename="litscreen-task-{task_id}.{fmt}"' in download.headers["Content-Disposition"]
    assert client.get(f"/ui/tasks/{task_id}/export.exe").status_code == 404

    csrf = csrf_of(client, "/ui/")
    drawn = client.post(f"/ui/tasks/{task_id}/audit-sample", data={"size": "2", "csrf_token": csrf},
                        follow_redirects=True)
    text = drawn.get_data(as_text=True)
    assert "added to the audit queue" in text and re.search(r'data-left="(\d+)"', text).group(1) == "2"
    result_id = int(re.search(r'data-result-id="(\d+)"', text).group(1))
    client.post(f"/ui/results/{result_id}/decide", data={"decision": "include", "queue": "audit",
                                                          "csrf_token": csrf})
    audit = client.get(f"/api/v1/asl/tasks/{task_id}/audit", headers=auth).get_json()
    assert audit["reviewed"] == 1 and audit["missed_includes"] == 1


def test_the_progress_page_and_its_json(app, client, auth, project_id, monkeypatch, make_token) -> None:
    task_id, _ = _run_with_conflicts(app, client, auth, project_id, monkeypatch)
    sign_in(client, make_token("alice"))
    doc = client.get(f"/ui/tasks/{task_id}/progress.json").get_json()
    assert doc["final"] is True and doc["processed_items"] == 10 and doc["failed_items"] == 2
    assert doc["conflict_items"] == 2 and doc["retries"] == 0 and doc["batches"][0]["status"] == "done"
    page = client.get(f"/ui/tasks/{task_id}").get_data(as_text=True)
    assert "Conflict queue" in page and 'data-final="true"' in page and "Retry failed records" in page  # 2 failed


def test_starting_a_run_shows_the_estimate_takes_a_budget_and_resumes_a_paused_run(
        app, client, auth, project_id, monkeypatch, make_token) -> None:

    models_configured(app, monkeypatch)
    client.post(f"/api/v1/asl/projects/{project_id}/literatures", headers=auth,
                json={"records": [{"title": f"Record {i}", "abstract": "Text."} for i in range(4)]})
    sign_in(client, make_token("alice"))
    page = client.get(f"/ui/projects/{project_id}/runs/new").get_data(as_text=True)
    assert re.search(r"<strong>8</strong> model calls", page)
    csrf = csrf_of(client, f"/ui/projects/{project_id}/runs/new")
    bad = client.post(f"/ui/projects/{project_id}/runs", data={"batch_size": "ten", "csrf_token": csrf})
    assert bad.status_code == 422 and "whole number" in bad.get_data(as_text=True)
    refused = client.post(f"/ui/projects/{project_id}/runs", data={"budget_usd": "-5", "csrf_token": csrf})
    assert refused.status_code == 422 and "budget" in refused.get_data(as_text=True)
    started = client.post(f"/ui/projects/{project_id}/runs",
                          data={"batch_size": "2", "budget_usd": "0.5", "csrf_token": csrf})
    assert started.status_code == 302 and "/ui/tasks/" in started.headers["Location"]
    again = client.post(f"/ui/projects/{project_id}/runs", data={"csrf_token": csrf})
    assert again.status_code == 409 and "Not started" in again.get_data(as_text=True)

    task_path = started.headers["Location"]
    task_id = int(task_path.rstrip("/").rsplit("/", 1)[1])
    assert client.get(f"{task_path}/progress.json").get_json()["budget_usd"] == 0.5
    with app.app_context():  # what a budget pause leaves (the pause itself runs on real workers: test_budget_run)
        from app.extensions import db
        from app.models import ScreeningTask
        db.session.execute(update(ScreeningTask).where(ScreeningTask.id == task_id)
                           .values(status="paused", paused_reason="budget", budget_spent_usd=0.5))
        db.session.commit()
    paused = client.get(task_path).get_data(as_text=True)
    assert "Resume the run" in paused and "(budget)" in paused
    too_low = client.post(f"{task_path}/resume", data={"budget_usd": "0.5", "csrf_token": csrf},
                          follow_redirects=True)
    assert "budget_usd must be above" in too_low.get_data(as_text=True)
    resumed = client.post(f"{task_path}/resume", data={"budget_usd": "2", "csrf_token": csrf}, follow_redirects=True)
    assert "Resumed" in resumed.get_data(as_text=True)
    progress = client.get(f"{task_path}/progress.json").get_json()
    assert progress["status"] == "running" and progress["budget_usd"] == 2 and progress["paused_reason"] is None
    cancelled = client.post(f"{task_path}/cancel", data={"csrf_token": csrf}, follow_redirects=True)
    text = cancelled.get_data(as_text=True)
    assert "Cancel requested" in text and "cancelled" in text and "Retry failed records" in text
    retried = client.post(f"{task_path}/retry", data={"csrf_token": csrf}, follow_redirects=True)
    assert "Retry queued" in retried.get_data(as_text=True)
    assert client.get(f"{task_path}/progress.json").get_json()["status"] in ("pending", "running")


def test_the_field_review_page(app, client, auth, project_id, monkeypatch, make_token) -> None:
    from app.extensions import db
    from app.models import ScreeningResult

    task_id, result_ids = _run_with_conflicts(app, client, auth, project_id, monkeypatch)
    fields = {
        "sample_size": {"value": 120, "evidence": "120 nurses were randomised", "page": 2, "agreed": False,
                        "by_model": {"sim:model-a": 120, "sim:model-b": 112}, "review_required": True},
        "country": {"value": "Norway", "evidence": "in Norway", "page": 1, "agreed": True,
                    "by_model": {"sim:model-a": "Norway", "sim:model-b": "Norway"}},
    }
    with app.app_context():
        db.session().execute(update(ScreeningResult).where(ScreeningResult.id == result_ids[0])
                             .values(fields=fields, manual_review_required=True))
        db.session().commit()
    sign_in(client, make_token("alice"))
    page = client.get(f"/ui/results/{result_ids[0]}/fields")
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and "sample size" in body and "120 nurses were randomised" in body
    assert "sim:model-b “112”" in body and "(page 2)" in body
    csrf = csrf_of(client, "/ui/")
    saved = client.post(f"/ui/results/{result_ids[0]}/fields", data={
        "value__sample_size": "112", "note__sample_size": "table 1", "value__country": "Norway",
        "csrf_token": csrf}, follow_redirects=True)
    assert "Saved the field review" in saved.get_data(as_text=True)
    with app.app_context():
        stored = db.session().get(ScreeningResult, result_ids[0]).fields
    assert stored["sample_size"]["value"] == 112 and stored["sample_size"]["llm_value"] == 120
    assert stored["sample_size"]["review"]["note"] == "table 1" and "review" not in stored["country"]


def test_swagger_ui_is_served_from_local_files(client) -> None:
    page = client.get("/api/docs")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "SwaggerUIBundle" in html
    references = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert references and not [ref for ref in references if re.match(r"(?i)(https?:)?//", ref)]
    assert not re.search(r"https?://", html)
    for ref in references:
        asset = client.get(ref)
        assert asset.status_code == 200 and len(asset.data) > 1000, ref


def test_highlighting_escapes_and_marks() -> None:
    from app.web.text import evidence_in_context, highlight_terms, picos_terms

    terms = picos_terms({"P": "physicians and nurses", "I": "nudges"})
    assert "physicians" in terms and "and" not in terms
    marked = str(highlight_terms("A <script> nudge for Physicians", terms))
    assert "&lt;script&gt;" in marked and "<mark>nudge</mark>" in marked and "<mark>Physicians</mark>" in marked
    found = evidence_in_context({1: "x " * 400 + "We enrolled 120\nnurses <b>there</b>." + " y" * 400},
                                "enrolled 120 nurses", 1)
    assert found is not None and found[0] == 1
    assert "<mark>enrolled 120\nnurses</mark>" in str(found[1]) and "&lt;b&gt;" in str(found[1])
    assert str(found[1]).startswith("… ") and str(found[1]).endswith(" …")
    assert evidence_in_context({1: "nothing here"}, "enrolled", None) is None


def test_the_instance_secret_key_is_made_once(tmp_path) -> None:
    from app.web import instance_secret_key

    first = instance_secret_key(str(tmp_path))
    assert len(first) > 40 and instance_secret_key(str(tmp_path)) == first
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600


def test_an_unwritable_instance_directory_still_gives_a_key(tmp_path) -> None:
    from app.web import instance_secret_key

    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert len(instance_secret_key(str(blocker / "instance"))) > 40


def test_attach_a_full_text_pdf(app, client, auth, project_id, make_token) -> None:
    pdf = Path(__file__).resolve().parents[1] / "app" / "data" / "fulltext" / "synthetic_rct_heart_failure.pdf"
    client.post(f"/api/v1/asl/projects/{project_id}/literatures", headers=auth,
                json={"records": [{"title": "A heart failure trial", "abstract": "Text."}]})
    literature_id = client.get(f"/api/v1/asl/projects/{project_id}/literatures", headers=auth).get_json()[0]["id"]
    sign_in(client, make_token("alice"))
    page = client.get(f"/ui/projects/{project_id}").get_data(as_text=True)
    assert f"<td>{literature_id}</td>" in page
    csrf = csrf_of(client, f"/ui/projects/{project_id}")
    missing_id = client.post(f"/ui/projects/{project_id}/fulltexts", content_type="multipart/form-data", data={
        "fulltext": (io.BytesIO(pdf.read_bytes()), pdf.name), "csrf_token": csrf})
    assert missing_id.status_code == 422 and "literature_id" in missing_id.get_data(as_text=True)
    attached = client.post(f"/ui/projects/{project_id}/fulltexts", content_type="multipart/form-data", data={
        "fulltext": (io.BytesIO(pdf.read_bytes()), pdf.name), "literature_id": str(literature_id),
        "csrf_token": csrf})
    assert attached.status_code == 200 and "<strong>1</strong> attached" in attached.get_data(as_text=True)
    info = client.get(f"/api/v1/asl/literatures/{literature_id}/fulltext", headers=auth).get_json()
    assert info["pages"] >= 1


def test_the_field_review_of_a_clinical_record(app, client, auth, monkeypatch, make_token) -> None:
    from app.extensions import db
    from app.models import DcRecord, ScreeningResult

    models_configured(app, monkeypatch)
    csv = Path(__file__).resolve().parent / "fixtures" / "clinical" / "aci_bench_30.csv"
    dataset = client.post("/api/v1/dc/datasets", headers=auth, content_type="multipart/form-data",
                          data={"file": (io.BytesIO(csv.read_bytes()), "aci.csv")}).get_json()
    task = client.post(f"/api/v1/dc/datasets/{dataset['id']}/extractions", headers=auth, json={
        "id_column": "encounter_id", "text_columns": ["note"],
        "schema": {"fields": [{"name": "age", "type": "integer", "description": "Patient age in years"}]}}).get_json()
    with app.app_context():
        session = db.session()
        record = session.scalar(select(DcRecord).where(DcRecord.dataset_id == dataset["id"])
                                .order_by(DcRecord.row_index))
        quote = " ".join(str(record.data["note"]).split()[5:12])
        result = ScreeningResult(task_id=task["id"], item_id=record.id, batch_index=0, llm_decision="review",
                                 final_decision="review", manual_review_required=True,
                                 fields={"age": {"value": 61, "evidence": quote, "agreed": False,
                                                 "by_model": {"sim:model-a": 61, "sim:model-b": 16}}})
        session.add(result)
        session.commit()
        result_id = result.id
    sign_in(client, make_token("alice"))
    assert f'href="/ui/tasks/{task["id"]}"' in client.get("/ui/").get_data(as_text=True)
    page = client.get(f"/ui/results/{result_id}/fields").get_data(as_text=True)
    assert "<mark>" in page and "In note." in page and "sim:model-b “16”" in page
    csrf = csrf_of(client, "/ui/")
    bad = client.post(f"/ui/results/{result_id}/fields", data={"value__age": "sixty-ish", "csrf_token": csrf})
    assert bad.status_code == 422 and "Not saved" in bad.get_data(as_text=True)
    saved = client.post(f"/ui/results/{result_id}/fields", data={"value__age": "62", "note__age": "per history",
                                                                 "csrf_token": csrf}, follow_redirects=True)
    assert "Saved the field review" in saved.get_data(as_text=True)
    reviewed = client.get(f"/api/v1/dc/tasks/{task['id']}/results", headers=auth).get_json()[0]
    assert reviewed["fields"]["age"]["review"]["value"] == 62 and reviewed["fields"]["age"]["value"] == 61
    assert 'value="62"' in client.get(f"/ui/results/{result_id}/fields").get_data(as_text=True)
    assert client.get(f"/ui/tasks/{task['id']}/export.xlsx").status_code == 200
    assert client.get(f"/ui/tasks/{task['id']}/export.ris").status_code == 404
    for path in (f"/ui/tasks/{task['id']}", f"/ui/tasks/{task['id']}/report", f"/ui/tasks/{task['id']}/results"):
        assert client.get(path).status_code == 200, path
