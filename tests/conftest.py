"""Session fixtures (one fresh, migrated PostgreSQL database per test session, dropped afterwards) and the tiers.

Test tiers: a test that starts any process (a worker, beat, a server, the CLI) is a ``process`` test — marked
explicitly, or by using the ``processes`` fixture, or by being ``slow``. ``make test-fast`` runs the rest, in
process; an unmarked test that starts a process fails, so the fast tier stays fast.
"""

from __future__ import annotations

import subprocess
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.support import database
from tests.support.cli import LiveServer
from tests.support.engine import start_beat
from tests.support.processes import ProcessGroup

PROCESS_FIXTURES = {"processes"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests using a process fixture, and slow tests, are process tests."""
    for item in items:
        if PROCESS_FIXTURES & set(getattr(item, "fixturenames", ())) or item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.process)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """Fail a test that starts a process without the ``process`` mark (its body only: fixtures may start the
    embedded test server)."""
    if item.get_closest_marker("process"):
        yield
        return
    original = subprocess.Popen.__init__

    def refuse(self: subprocess.Popen, args: Any, *more: Any, **kwargs: Any) -> None:
        raise AssertionError(f"{item.nodeid} starts a process ({args!r}): mark it @pytest.mark.process")

    subprocess.Popen.__init__ = refuse  # type: ignore[method-assign]
    try:
        yield
    finally:
        subprocess.Popen.__init__ = original  # type: ignore[method-assign]


@pytest.fixture(scope="session")
def admin_database_url() -> str:
    """A server to create test databases on (TEST_DATABASE_URL, local 127.0.0.1:5432, or embedded)."""
    return database.admin_url()


@pytest.fixture(scope="session")
def database_url(admin_database_url: str) -> Iterator[str]:
    """A fresh database at the newest migration, dropped at the end of the session."""
    from app.db.migrate import upgrade

    url = database.create_database(admin_database_url)
    try:
        upgrade(url)
        yield url
    finally:
        database.drop_database(admin_database_url, url)


@pytest.fixture(scope="session")
def app(database_url: str) -> Flask:
    """The litscreen app on the test database."""
    from app import create_app

    return create_app({"DATABASE_URL": database_url, "TESTING": True, "CACHE_BACKEND": "postgres",
                       "SECRET_KEY": "test-session-key"})


@pytest.fixture(autouse=True)
def _clean_tables(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each test that touches the database starts and ends with empty tables."""
    yield
    if "database_url" in request.fixturenames:
        database.truncate_all(request.getfixturevalue("database_url"))


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def make_token(app: Flask):
    """Create a user named ``name`` (once) and return a fresh API token for it."""
    from sqlalchemy import select

    from app.extensions import db
    from app.models import User
    from app.services.users import create_token, create_user

    def _make(name: str = "alice", admin: bool = False) -> str:
        with app.app_context():
            session = db.session()
            if session.scalar(select(User).where(User.name == name)) is None:
                create_user(session, name, is_admin=admin)
            return create_token(session, name)

    return _make


@pytest.fixture
def auth(make_token) -> dict[str, str]:
    """Authorization headers for user 'alice'."""
    return {"Authorization": f"Bearer {make_token('alice')}"}


@pytest.fixture
def admin_auth(make_token) -> dict[str, str]:
    """Authorization headers for 'root', an admin."""
    return {"Authorization": f"Bearer {make_token('root', admin=True)}"}


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[ProcessGroup]:
    """Start real subprocesses (workers, servers); all are killed at the end of the test."""
    group = ProcessGroup(tmp_path)
    try:
        yield group
    finally:
        group.stop_all()


@pytest.fixture
def fast_teardown(processes: ProcessGroup):
    """SIGKILL this test's subprocesses when it ends (their work is in the database already; a graceful worker
    shutdown takes seconds)."""
    yield
    for process in processes.processes:
        ProcessGroup.kill_tree(process)


@pytest.fixture
def beat(processes: ProcessGroup, database_url: str):
    """Start ``celery beat`` (the sweeper's clock) with ``beat(env)``; killed at teardown (it keeps no state)."""
    started: list[Any] = []

    def start(env: dict[str, str]) -> Any:
        process = start_beat(processes, database_url, env, name=f"beat{len(started)}")
        started.append(process)
        return process

    yield start
    for process in started:
        ProcessGroup.kill_tree(process)


@pytest.fixture
def live_server(app: Flask) -> Iterator[LiveServer]:
    """The test app on a free loopback port (real HTTP, served from a thread)."""
    server = LiveServer(app)
    try:
        yield server
    finally:
        server.stop()


PICOS = {
    "P": "healthcare professionals such as physicians, nurses and pharmacists",
    "I": "nudges, choice architecture, defaults, reminders, feedback",
    "C": "usual care or no nudge",
    "O": "evidence-based practice behaviour, prescribing, guideline adherence",
    "S": "randomised or controlled trials, quasi-experimental studies",
}


@pytest.fixture
def project_id(client: FlaskClient, auth: dict[str, str]) -> int:
    """A project of 'alice' with the nudging review's PICOS."""
    response = client.post("/api/v1/asl/projects", json={"name": "Nudging", "picos": PICOS}, headers=auth)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


@pytest.fixture
def pg_cluster() -> Iterator:
    """A factory of private PostgreSQL servers (``tests/support/pgcluster.py``), destroyed after the test.

    ``pg_cluster(max_connections=40)`` returns a started ``PgCluster``: for tests that restart or fill the server.
    """
    from tests.support.pgcluster import PgCluster

    clusters: list[PgCluster] = []

    def _make(**kwargs):
        cluster = PgCluster(**kwargs)
        clusters.append(cluster)
        return cluster.start()

    try:
        yield _make
    finally:
        for cluster in clusters:
            cluster.destroy()
