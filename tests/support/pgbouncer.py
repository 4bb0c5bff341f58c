"""A real PgBouncer (Debian package ``pgbouncer``, ``/usr/sbin/pgbouncer``) in transaction mode in front of a
private test cluster (``tests/support/pgcluster.py``), its config written to a temporary directory.

PgBouncer refuses to run as root: as root it runs as the cluster's system user. ``.ci/run`` installs the package
when it is missing.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

from tests.support.pgcluster import PgCluster, free_port

PGBOUNCER = os.environ.get("PGBOUNCER_BIN") or shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"


class PgBouncer:
    """``pool_mode = transaction``, trust auth, ``pool_size`` server connections per database at most."""

    def __init__(self, cluster: PgCluster, pool_size: int = 10, max_client_conn: int = 1000) -> None:
        self.cluster = cluster
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="pgb-"))
        self.pool_size = pool_size
        self.max_client_conn = max_client_conn
        self.log = self.dir / "pgbouncer.log"
        self.process: subprocess.Popen | None = None

    def _write_config(self) -> Path:
        (self.dir / "userlist.txt").write_text('"postgres" ""\n')
        config = self.dir / "pgbouncer.ini"
        config.write_text(f"""[databases]
* = host=127.0.0.1 port={self.cluster.port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {self.port}
unix_socket_dir =
auth_type = trust
auth_file = {self.dir / 'userlist.txt'}
admin_users = postgres
pool_mode = transaction
default_pool_size = {self.pool_size}
max_db_connections = {self.pool_size}
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = {self.max_client_conn}
server_reset_query =
server_check_delay = 1
ignore_startup_parameters = extra_float_digits,options
logfile = {self.log}
pidfile = {self.dir / 'pgbouncer.pid'}
""")
        return config

    def start(self) -> PgBouncer:
        config = self._write_config()
        user = self.cluster.user
        if user is not None:
            entry = pwd.getpwnam(user)
            for path in (self.dir, *self.dir.iterdir()):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        self.process = subprocess.Popen([PGBOUNCER, str(config)], user=user, cwd=self.dir,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(self.conninfo(), connect_timeout=2, prepare_threshold=None):
                    return self
            except psycopg.OperationalError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"pgbouncer did not start: {self.log_text()[-2000:]}") from None
                time.sleep(0.1)

    def url(self, database: str = "postgres") -> str:
        """A SQLAlchemy URL (psycopg) for ``database`` through PgBouncer."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def conninfo(self, database: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={database}"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> PgBouncer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
