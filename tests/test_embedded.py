"""The embedded PostgreSQL default: long instance paths, the test suite's fallback, and clean shutdown."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.process  # each test starts a PostgreSQL server of its own

PROBE = """
from tests.support.database import admin_url, create_database, drop_database
import psycopg
from tests.support.database import conninfo

admin = admin_url()
url = create_database(admin)
with psycopg.connect(conninfo(url)) as conn:
    print(conn.execute("SHOW server_version").fetchone()[0])
drop_database(admin, url)
print(admin)
"""


def _env_without_databases(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "TEST_DATABASE_URL")}
    env.update(extra)
    return env


def test_suite_falls_back_to_the_embedded_server_when_no_server_answers(tmp_path: Path) -> None:
    env = _env_without_databases(LITSCREEN_TEST_LOCAL_URL="postgresql+psycopg://postgres@127.0.0.1:1/postgres",
                                 LITSCREEN_TEST_EMBEDDED_DIR=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.returncode == 0, out.stderr
    version, admin = out.stdout.split()
    assert version.startswith("18")
    assert "host=" in admin and "127.0.0.1:1" not in admin
    # the last handle exited, so the server stopped
    assert not (tmp_path / "pgdata" / "postmaster.pid").exists()


def test_embedded_server_works_from_an_instance_path_longer_than_the_socket_limit(tmp_path: Path) -> None:
    deep = tmp_path / ("a-rather-long-directory-name-" * 5) / "instance"
    deep.mkdir(parents=True)
    assert len(str(deep / "pgdata" / ".s.PGSQL.5432")) > 107
    env = _env_without_databases(LITSCREEN_INSTANCE_DIR=str(deep))
    upgrade = subprocess.run([sys.executable, "-m", "app.cli", "db", "upgrade"], env=env, capture_output=True,
                             text=True, timeout=120)
    assert upgrade.returncode == 0, upgrade.stderr
    user = subprocess.run([sys.executable, "-m", "app.cli", "users", "create", "dora"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert user.returncode == 0, user.stderr
    assert user.stdout.strip() == "1"
    assert not (deep / "pgdata" / "postmaster.pid").exists()
