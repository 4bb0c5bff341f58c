"""Hostile requests through a real gunicorn (``gunicorn.conf.py``: gthread workers) on the test database:
concurrent starts of one project's run, health checks during a big import, gunicorn's own error answers and an
oversize chunked body."""

from __future__ import annotations

import io
import socket
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.conftest import PICOS
from tests.hostile import generate
from tests.support.engine import add_records, scalar
from tests.support.processes import ProcessGroup, subprocess_env, wait_for

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def web(processes: ProcessGroup, database_url: str) -> Iterator[str]:
    """A gunicorn web process with the repository's config (2 gthread workers)."""
    port = free_port()
    env = subprocess_env(database_url, PORT=str(port), WEB_CONCURRENCY="2", WEB_THREADS="8",
                         SCREENING_MODELS="sim:model-a,sim:model-b", SIM_BASE_URL="http://127.0.0.1:9/v1")
    processes.start([sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", "app:create_app()"],
                    env, "gunicorn")
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(answers, timeout=60, message="gunicorn /healthz")
    yield url


def test_parallel_starts_give_one_task_per_project_and_409s(web: str, app, make_token, database_url) -> None:
    headers = {"Authorization": f"Bearer {make_token('alice')}"}
    projects = []
    for i in range(10):
        created = httpx.post(f"{web}/api/v1/asl/projects", json={"name": f"p{i}", "picos": PICOS},
                             headers=headers, timeout=30)
        assert created.status_code == 201
        projects.append(created.json()["id"])
        add_records(app, projects[-1], 3)
    barrier = threading.Barrier(6)

    def start(project_id: int) -> int:
        barrier.wait(timeout=30)
        return httpx.post(f"{web}/api/v1/asl/projects/{project_id}/screening", json={}, headers=headers,
                          timeout=60).status_code

    for project_id in projects:
        with ThreadPoolExecutor(6) as pool:
            codes = sorted(pool.map(start, [project_id] * 6))
        assert codes == [202, 409, 409, 409, 409, 409], (project_id, codes)
    assert scalar(database_url, "SELECT count(*) FROM screening_tasks WHERE status IN ('pending', 'running')") == 10
    assert scalar(database_url, "SELECT max(n) FROM (SELECT count(*) AS n FROM screening_tasks "
                                "GROUP BY project_id) AS per_project") == 1


def test_health_checks_are_answered_while_a_hostile_import_runs(web: str, make_token) -> None:
    headers = {"Authorization": f"Bearer {make_token('alice')}"}
    project = httpx.post(f"{web}/api/v1/asl/projects", json={"name": "p", "picos": PICOS}, headers=headers,
                         timeout=30).json()["id"]
    data = generate.bibtex_50mb()
    done = threading.Event()
    answers: list[int] = []

    def import_file() -> int:
        try:
            return httpx.post(f"{web}/api/v1/asl/projects/{project}/literatures", headers=headers,
                              files={"file": ("big.bib", io.BytesIO(data))}, timeout=300).status_code
        finally:
            done.set()

    with ThreadPoolExecutor(1) as pool:
        imported = pool.submit(import_file)
        while not done.is_set():
            answers.append(httpx.get(f"{web}/healthz", timeout=30).status_code)
            if len(answers) >= 5:
                break
        answered_during_import = not done.is_set()
        assert imported.result() == 201
    assert answers and set(answers) == {200}
    assert answered_during_import, "the import finished before five health checks were answered"


def raw_request(url: str, payload: bytes) -> tuple[int, str, bytes]:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(payload)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    content_type = next((h.split(":", 1)[1].strip() for h in header_lines if h.lower().startswith("content-type")),
                        "")
    return int(status_line.split()[1]), content_type, body


def test_gunicorns_own_errors_are_json(web: str) -> None:
    status, content_type, body = raw_request(web, b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 414 and content_type == "application/json"
    assert httpx.Response(status, content=body).json()["code"] == 414
    status, content_type, body = raw_request(
        web, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(150)) + b"\r\n")
    assert status == 431 and content_type == "application/json"
    assert httpx.Response(status, content=body).json()["code"] == 431


def test_a_60mb_chunked_body_is_413(web: str, make_token) -> None:
    token = make_token("alice")
    host, port = web.removeprefix("http://").split(":")
    chunk = b"x" * (1024 * 1024)
    with socket.create_connection((host, int(port)), timeout=60) as sock:
        sock.sendall(b"POST /api/v1/asl/projects/1/literatures HTTP/1.1\r\nHost: x\r\n"
                     b"Authorization: Bearer " + token.encode() + b"\r\nContent-Type: application/json\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        try:
            for _ in range(60):
                sock.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
            sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before the whole body was sent
        answer = b""
        try:
            while data := sock.recv(65536):
                answer += data
        except ConnectionResetError:
            pass
    status_line = answer.split(b"\r\n", 1)[0]
    assert status_line.startswith(b"HTTP/1.1 413"), answer[:300]
    assert b'"code": 413' in answer or b'"code":413' in answer
