"""Start-up that says what is wrong: every CLI command (and ``make up``'s ``litscreen db upgrade``) turns a missing
database, an unmigrated or old schema, an unreachable host into ONE line naming the URL (password redacted) and
the fix; ``litscreen db create``; no embedded server started behind the operator's back; ``--help`` is litscreen's.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from tests.support.database import conninfo
from tests.support.pgcluster import free_port

pytestmark = pytest.mark.process  # every test runs the litscreen command

ROOT = Path(__file__).resolve().parents[1]


def litscreen(*args: str, database_url: str | None, **env: str) -> subprocess.CompletedProcess:
    """``litscreen ARGS`` with DATABASE_URL set to ``database_url`` (unset when None)."""
    environment = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DATABASE_DIRECT_URL")}
    if database_url is not None:
        environment["DATABASE_URL"] = database_url
    environment.update(env)
    return subprocess.run([sys.executable, "-m", "app.cli", *args], cwd=ROOT, env=environment, capture_output=True,
                          text=True, timeout=180)


def one_line_error(result: subprocess.CompletedProcess, *fragments: str, secret: str | None = None) -> str:
    """The command failed with exactly one line on stderr (``Error: …``), no traceback, containing ``fragments``."""
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Traceback" not in output, output
    errors = [text for text in result.stderr.splitlines() if text.strip() and not text.startswith("note:")]
    assert len(errors) == 1, result.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    if secret:
        assert secret not in output
    return errors[0]


def test_help_shows_litscreens_commands_only() -> None:
    result = litscreen("--help", database_url=None)
    assert result.returncode == 0
    for flask_thing in ("--env-file", "--app", "--debug", " run ", " shell ", " routes "):
        assert flask_thing not in result.stdout, result.stdout
    for ours in ("db", "users", "tokens", "doctor", "import", "watch", "export"):
        assert f"  {ours} " in result.stdout
    assert litscreen("run", database_url=None).returncode == 2  # Flask's dev server is not a litscreen command


def test_a_missing_database_is_one_line_then_db_create_and_upgrade(admin_database_url: str) -> None:
    name = f"litscreen_startup_{uuid.uuid4().hex[:8]}"
    url = make_url(admin_database_url).set(database=name, password="s3cret-pw").render_as_string(hide_password=False)
    try:
        line = one_line_error(litscreen("db", "upgrade", database_url=url), f"database {name} does not exist",
                              "litscreen db create", "***", secret="s3cret-pw")
        assert line.startswith("Error: ")
        one_line_error(litscreen("users", "create", "alice", database_url=url), "does not exist",
                       "litscreen db create", secret="s3cret-pw")

        created = litscreen("db", "create", database_url=url)
        assert created.returncode == 0 and f"database {name} created" in created.stderr
        assert "s3cret-pw" not in created.stderr
        again = litscreen("db", "create", database_url=url)
        assert again.returncode == 0 and "exists already" in again.stderr

        # the database exists, the schema does not
        one_line_error(litscreen("users", "create", "alice", database_url=url), "has no schema yet",
                       "litscreen db upgrade", secret="s3cret-pw")
        one_line_error(litscreen("tokens", "list", "alice", database_url=url), "litscreen db upgrade")

        # an old schema
        assert litscreen("db", "upgrade", "--revision", "0006", database_url=url).returncode == 0
        one_line_error(litscreen("users", "create", "alice", database_url=url), "is at migration 0006",
                       "litscreen db upgrade")

        assert litscreen("db", "upgrade", database_url=url).returncode == 0
        created_user = litscreen("users", "create", "alice", database_url=url)
        assert created_user.returncode == 0 and created_user.stdout.strip().isdigit(), created_user.stderr
    finally:
        with psycopg.connect(conninfo(admin_database_url), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_an_unreachable_host_is_one_line() -> None:
    url = f"postgresql://litscreen:hunter2-pw@127.0.0.1:{free_port()}/litscreen"
    for args in (("db", "upgrade"), ("users", "create", "alice"), ("tokens", "create", "alice")):
        one_line_error(litscreen(*args, database_url=url), "cannot reach a PostgreSQL server at",
                       "127.0.0.1", "***", secret="hunter2-pw")
    resolved = litscreen("db", "upgrade", database_url="postgresql://x@no-such-host.invalid/litscreen")
    one_line_error(resolved, "cannot resolve the host")


def test_without_database_url_stack_commands_never_start_an_embedded_server(tmp_path: Path) -> None:
    instance = tmp_path / "instance"
    result = litscreen("users", "create", "alice", database_url=None, LITSCREEN_INSTANCE_DIR=str(instance))
    one_line_error(result, "no DATABASE_URL set", "no embedded PostgreSQL", "litscreen db upgrade")
    assert not (instance / "pgdata").exists()
    tokens = litscreen("tokens", "create", "alice", database_url=None, LITSCREEN_INSTANCE_DIR=str(instance))
    one_line_error(tokens, "set DATABASE_URL")
    assert not (instance / "pgdata").exists()
    doctor = litscreen("doctor", database_url=None, LITSCREEN_INSTANCE_DIR=str(instance))
    assert doctor.returncode == 1 and "Traceback" not in doctor.stderr
    assert doctor.stdout.startswith("✗ database") and "no embedded PostgreSQL" in doctor.stdout
    assert not (instance / "pgdata").exists()


def test_an_embedded_server_without_schema_is_named_as_such() -> None:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="ls-emb-") as short:  # Unix-socket paths must stay short
        instance = str(Path(short) / "instance")
        try:
            started = litscreen("db", "url", database_url=None, LITSCREEN_INSTANCE_DIR=instance)
            assert started.returncode == 0, started.stderr
            result = litscreen("users", "create", "alice", database_url=None, LITSCREEN_INSTANCE_DIR=instance)
            assert "note: using" in result.stderr and "embedded PostgreSQL under" in result.stderr
            one_line_error(result, "the embedded PostgreSQL at", "has no schema yet", "litscreen db upgrade",
                           "set DATABASE_URL")
        finally:
            litscreen("db", "stop", database_url=None, LITSCREEN_INSTANCE_DIR=instance)
