"""The reviewer's workspace in a real headless Chromium (Debian's chromium + chromedriver, driven by Selenium)
against a real stack: the app over HTTP, a Celery worker and the LLM simulator. A reviewer signs in, creates a
project, uploads a file, starts a run and watches it finish, settles three conflicts with the keyboard, sees the
PRISMA diagram and downloads an export; a form post without its CSRF token is refused; /api/docs renders with
no request leaving the server. Screenshots of each page go to the test's folder, and to docs/screenshots/ when
LITSCREEN_SCREENSHOTS=1."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.engine import configure_app, engine_env, query, sim
from tests.support.processes import ProcessGroup

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOTS = Path(__file__).resolve().parents[1] / "docs" / "screenshots"
RECORDS = 16
CONFLICTS_WANTED = 6

pytestmark = [
    pytest.mark.process,
    # a developer's machine without the browser skips these; CI (which installs both in .ci/run) never does
    pytest.mark.skipif(not (CHROMIUM.exists() and CHROMEDRIVER.exists()) and not os.environ.get("CI"),
                       reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)"),
]


@pytest.fixture
def browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Headless Chromium through /usr/bin/chromedriver (Selenium Manager is never asked to fetch anything)."""
    monkeypatch.setenv("SE_OFFLINE", "true")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1100,850", "--no-first-run", "--disable-extensions",
                     "--disable-background-networking", "--disable-component-update"):
        options.add_argument(argument)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.implicitly_wait(0)
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    driver.downloads = downloads  # type: ignore[attr-defined]
    try:
        yield driver
    finally:
        driver.quit()


def wait_until(condition: Any, timeout: float = 60, message: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = condition()
        except Exception:  # noqa: BLE001 - a page mid-navigation: try again
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {message}")
        time.sleep(0.2)


def screenshot(driver: Any, tmp_path: Path, name: str, max_height: int = 1800) -> None:
    """The whole page (up to ``max_height`` pixels tall) as PNG."""
    path = tmp_path / f"{name}.png"
    width, height = driver.get_window_size()["width"], driver.get_window_size()["height"]
    content = int(driver.execute_script("return document.documentElement.scrollHeight;"))
    driver.set_window_size(width, min(max(content + 140, height), max_height))
    driver.save_screenshot(str(path))
    driver.set_window_size(width, height)
    if os.environ.get("LITSCREEN_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, SCREENSHOTS / path.name)


def records_with_conflicts() -> list[Any]:
    """Demo records of which, by the simulator's own judge, about ``CONFLICTS_WANTED`` split the two models."""
    from app.demo.dataset import EXCLUSION_CRITERIA, INCLUSION_CRITERIA, PICOS, load_dataset
    from app.llm.prompts import build_messages
    from app.llm.simulator import judge

    conflicts, agreed = [], []
    for record in load_dataset():
        if not record.abstract:
            continue
        messages = build_messages(PICOS, INCLUSION_CRITERIA, EXCLUSION_CRITERIA, record.title, record.abstract)
        text = "\n".join(message["content"] for message in messages)
        decisions = {judge(model, text)["decision"] for model in ("model-a", "model-b")}
        (conflicts if decisions != {"include"} and decisions != {"exclude"} else agreed).append(record)
        if len(conflicts) >= CONFLICTS_WANTED and len(agreed) >= RECORDS - CONFLICTS_WANTED:
            break
    return conflicts[:CONFLICTS_WANTED] + agreed[:RECORDS - CONFLICTS_WANTED]


def write_ris(path: Path, records: list[Any]) -> None:
    lines = []
    for record in records:
        lines += ["TY  - JOUR", f"TI  - {record.title}", f"AB  - {record.abstract}",
                  f"KW  - litscreen:label:{record.label}", "ER  - ", ""]
    path.write_text("\n".join(lines), encoding="utf-8")


def fits_at_200_percent(driver: Any) -> bool:
    """Whether the page needs no sideways scrolling at half the width (what 200 % zoom does to the layout)."""
    size = driver.get_window_size()
    driver.set_window_size(size["width"] // 2, size["height"])
    try:
        return bool(driver.execute_script(
            "var e = document.documentElement; return e.scrollWidth <= e.clientWidth + 1;"))
    finally:
        driver.set_window_size(size["width"], size["height"])


def press(driver: Any, keys: str) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(driver).send_keys(keys).perform()


@pytest.mark.usefixtures("fast_teardown")
def test_a_reviewer_screens_in_the_browser(app, live_server, browser, make_token, database_url: str,
                                           processes: ProcessGroup, monkeypatch, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    from app.demo.dataset import EXCLUSION_CRITERIA, INCLUSION_CRITERIA, PICOS

    simulator = sim(processes, latency=0.3)
    configure_app(app, monkeypatch, simulator)
    processes.start_worker(database_url, "w1", concurrency=2, **engine_env(simulator))
    export_file = tmp_path / "search.ris"
    write_ris(export_file, records_with_conflicts())
    token = make_token("alice")
    base = live_server.url
    driver = browser

    # sign in: the workspace sends an anonymous visitor to the sign-in form
    driver.get(f"{base}/ui/")
    wait_until(lambda: driver.find_element(By.ID, "token"), message="the sign-in form")
    screenshot(driver, tmp_path, "sign_in")
    driver.find_element(By.ID, "token").send_keys(token + Keys.ENTER)
    wait_until(lambda: "Signed in as alice" in driver.page_source, message="the project list")

    # a new project with the demo's PICOS
    driver.find_element(By.LINK_TEXT, "New project").click()
    wait_until(lambda: driver.find_element(By.ID, "name"))
    driver.find_element(By.ID, "name").send_keys("Nudging healthcare professionals")
    for key, value in PICOS.items():
        driver.execute_script("arguments[0].value = arguments[1];", driver.find_element(By.ID, f"picos_{key}"), value)
    driver.execute_script("arguments[0].value = arguments[1];",
                          driver.find_element(By.ID, "inclusion_criteria"), INCLUSION_CRITERIA)
    driver.execute_script("arguments[0].value = arguments[1];",
                          driver.find_element(By.ID, "exclusion_criteria"), EXCLUSION_CRITERIA)
    screenshot(driver, tmp_path, "project_new")
    driver.find_element(By.CSS_SELECTOR, "form.card button[type=submit]").click()

    # upload the export; the import report answers
    wait_until(lambda: driver.find_element(By.ID, "file"), message="the project page")
    driver.find_element(By.ID, "file").send_keys(str(export_file))
    driver.find_element(By.ID, "source").send_keys("Nagtegaal 2019")
    driver.find_element(By.ID, "file").submit()
    report = wait_until(lambda: driver.find_element(By.ID, "import-report"), message="the import report")
    assert f"{RECORDS}\nimported" in report.text or f"{RECORDS} imported" in report.text, report.text
    assert driver.find_element(By.ID, "record-count").text == str(RECORDS)
    screenshot(driver, tmp_path, "project_import")

    # start a run after its estimate
    driver.find_element(By.LINK_TEXT, "Start a run").click()
    estimate = wait_until(lambda: driver.find_element(By.ID, "estimate"), message="the estimate")
    assert f"{2 * RECORDS}\nmodel calls" in estimate.text or f"{2 * RECORDS} model calls" in estimate.text
    driver.find_element(By.ID, "batch_size").send_keys("4")
    screenshot(driver, tmp_path, "run_new")
    driver.find_element(By.ID, "batch_size").submit()

    # live progress, until the poller reloads the finished page
    wait_until(lambda: driver.find_element(By.ID, "progress-bar"), message="the progress page")
    wait_until(lambda: driver.find_element(By.CSS_SELECTOR, '[data-field="processed_items"]').text not in ("", "0"),
               timeout=120, message="the first records screened")
    driver.find_element(By.CSS_SELECTOR, "details.card summary").click()  # the batches table, updated live
    screenshot(driver, tmp_path, "run_progress")
    wait_until(lambda: driver.find_element(By.ID, "conflicts-link"), timeout=180, message="the run to finish")
    task_id = int(driver.current_url.rstrip("/").rsplit("/", 1)[1])
    assert "completed" in driver.find_element(By.CSS_SELECTOR, '[data-field="status"]').text
    conflicts = int(driver.find_element(By.CSS_SELECTOR, '[data-field="conflict_items"]').text)
    assert conflicts >= 3, conflicts
    screenshot(driver, tmp_path, "run_done")

    # three conflicts settled by keyboard: exclude with a reason and a note; skip one; include the next two
    driver.find_element(By.ID, "conflicts-link").click()

    def showing(*not_these: str | None) -> Any:
        return wait_until(lambda: (lambda rid: rid if rid not in not_these else None)(
            driver.find_element(By.ID, "record").get_attribute("data-result-id")), message="the next conflict")

    first = showing()
    assert driver.find_elements(By.CSS_SELECTOR, ".abstract mark"), "PICOS terms are marked"
    screenshot(driver, tmp_path, "conflict_queue")
    assert fits_at_200_percent(driver)
    press(driver, "r")
    assert driver.switch_to.active_element.get_attribute("id") == "reason"
    press(driver, Keys.ARROW_DOWN)  # "wrong population"
    press(driver, Keys.ESCAPE)  # leaves the list, so the next key is a shortcut again
    press(driver, "n")
    press(driver, "staff not studied")
    press(driver, Keys.ESCAPE)
    press(driver, "e")
    skipped = showing(first)
    press(driver, "s")
    second = showing(first, skipped)
    press(driver, "i")
    third = showing(first, skipped, second)
    press(driver, "i")
    wait_until(lambda: "Saved: include" in driver.page_source and
               driver.find_element(By.CSS_SELECTOR, "[data-left]").get_attribute("data-left") == str(conflicts - 3),
               message="three conflicts decided")
    reviewed = query(database_url, "SELECT id, review_decision, review_note, exclusion_reason FROM screening_results "
                                   "WHERE task_id = %s AND review_decision IS NOT NULL ORDER BY id", task_id)
    assert sorted(reviewed) == sorted([(int(first), "exclude", "staff not studied", "wrong population"),
                                       (int(second), "include", None, None), (int(third), "include", None, None)])

    # a field review page (full-text results carry fields; one is given some here to show the page)
    query(database_url, "UPDATE screening_results SET fields = %s::jsonb WHERE id = %s RETURNING id",
          '{"sample_size": {"value": 120, "evidence": "nurses", "page": 1, "agreed": false, '
          '"by_model": {"sim:model-a": 120, "sim:model-b": 112}, "review_required": true}}', int(first))
    driver.get(f"{base}/ui/results/{first}/fields")
    wait_until(lambda: driver.find_element(By.ID, "value__sample_size"), message="the field review page")
    screenshot(driver, tmp_path, "field_review")

    # reports: the PRISMA diagram renders; an export downloads
    driver.get(f"{base}/ui/tasks/{task_id}/report")
    wait_until(lambda: driver.execute_script(
        "var i = document.getElementById('prisma'); return i && i.complete && i.naturalWidth > 0;"),
        message="the PRISMA diagram")
    screenshot(driver, tmp_path, "report")
    assert fits_at_200_percent(driver)
    driver.find_element(By.ID, "export-csv").click()
    downloaded = wait_until(lambda: [p for p in driver.downloads.glob("*.csv")], message="the CSV download")
    assert downloaded[0].name == f"litscreen-task-{task_id}.csv"
    assert downloaded[0].read_text(encoding="utf-8").count("\n") >= RECORDS

    # a form post without its CSRF token is refused, though the session cookie goes with it
    status = driver.execute_async_script(
        "var done = arguments[arguments.length - 1];"
        "fetch('/ui/projects/new', {method: 'POST', credentials: 'same-origin',"
        " body: new URLSearchParams({name: 'forged', picos_P: 'x'})}).then(function (r) { done(r.status); });")
    assert status in (400, 403)
    assert query(database_url, "SELECT count(*) FROM projects WHERE name = 'forged'")[0][0] == 0

    # /api/docs renders Swagger UI with every request answered by this server
    driver.get(f"{base}/api/docs")
    wait_until(lambda: driver.find_element(By.CSS_SELECTOR, ".swagger-ui .info .title"), timeout=30,
               message="Swagger UI")
    wait_until(lambda: driver.find_elements(By.CSS_SELECTOR, ".opblock"), timeout=30, message="the operations")
    resources = driver.execute_script(
        "return performance.getEntriesByType('resource').map(function (e) { return e.name; });")
    assert resources and all(name.startswith(base + "/") for name in resources), resources
    screenshot(driver, tmp_path, "api_docs", max_height=900)
