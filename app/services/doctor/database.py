"""The database as an operator sees it: which URL (password redacted), embedded or not, and what is wrong in one line.

Every start-up path (``make up``'s ``litscreen db upgrade``, every CLI command, ``litscreen doctor``) turns a
missing database, an unmigrated schema, a wrong password or an unreachable host into a :class:`DatabaseProblem`
whose message is one line naming the URL and the fix, instead of a driver traceback.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

from app.config import DatabaseSettings
from app.db.url import normalise_database_url, redact

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 5


class DatabaseProblem(Exception):
    """The database cannot be used as configured; ``str()`` is one line naming the URL and the fix."""


@dataclass(frozen=True)
class DatabaseTarget:
    """Where the processes' data lives: the URL (never printed unredacted) and whether it is the embedded server."""

    url: str
    embedded: bool
    instance_dir: Path | None = None

    @property
    def shown(self) -> str:
        """The URL with its password hidden, and ``(embedded …)`` when it is litscreen's private server."""
        if self.embedded:
            return f"{redact(self.url)} (embedded PostgreSQL under {self.instance_dir}, no DATABASE_URL set)"
        return redact(self.url)

    @property
    def database_name(self) -> str:
        return make_url(self.url).database or "postgres"


def embedded_instance_dir(settings: DatabaseSettings) -> Path:
    """The embedded server's instance directory (``LITSCREEN_INSTANCE_DIR`` or ``./instance``)."""
    if settings.instance_dir:
        return Path(settings.instance_dir).expanduser().resolve()
    return Path.cwd().resolve() / "instance"


def embedded_exists(settings: DatabaseSettings) -> bool:
    """Whether an embedded server was ever initialised under the instance directory."""
    return (embedded_instance_dir(settings) / "pgdata" / "PG_VERSION").exists()


def database_target(settings: DatabaseSettings, start_embedded: bool = True) -> DatabaseTarget:
    """The configured database; without ``DATABASE_URL`` the embedded one (started only if ``start_embedded``).

    ``start_embedded=False`` and no embedded server initialised yet: DatabaseProblem saying how to get one.
    """
    if settings.url:
        return DatabaseTarget(normalise_database_url(settings.url), embedded=False)
    instance = embedded_instance_dir(settings)
    if not start_embedded and not embedded_exists(settings):
        raise DatabaseProblem(
            f"no DATABASE_URL set and no embedded PostgreSQL under {instance}: set DATABASE_URL to your stack's "
            "database, or run `litscreen db upgrade` to create and migrate the embedded one")
    from app.db.embedded import embedded_database_url

    return DatabaseTarget(embedded_database_url(instance), embedded=True, instance_dir=instance)


def conninfo(url: str) -> str:
    """A libpq connection string for a SQLAlchemy URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


_HINTS: tuple[tuple[str, str], ...] = (
    (r'database "[^"]*" does not exist',
     "database {name} does not exist at {url}: create it with `litscreen db create` (then `litscreen db upgrade`)"),
    (r"password authentication failed|no password supplied|authentication failed",
     "password authentication failed at {url}: check the user and password in DATABASE_URL"),
    (r'role "[^"]*" does not exist',
     "the user in DATABASE_URL does not exist at {url}: create the role (CREATE ROLE … LOGIN) or fix the URL"),
    (r"too many clients|remaining connection slots are reserved",
     "the server at {url} refuses new connections (max_connections reached): run `litscreen doctor` for the "
     "connection budget"),
    (r"failed to resolve host|could not translate host name|Name or service not known",
     "cannot resolve the host of {url}: check the host name in DATABASE_URL"),
    (r"Connection refused|No such file or directory|could not connect|timeout expired|Connection timed out|"
     r"server closed the connection|Network is unreachable",
     "cannot reach a PostgreSQL server at {url}: is it running and listening there? (check host and port in "
     "DATABASE_URL)"),
    (r'relation "[^"]*" does not exist|UndefinedTable',
     "the database {name} at {url} has no litscreen schema: run `litscreen db upgrade`"),
    (r"permission denied to create database",
     "the user in DATABASE_URL may not create databases at {url}: create {name} as a superuser "
     "(createdb {name}) or grant CREATEDB"),
)


def explain(error: BaseException, target: DatabaseTarget) -> str | None:
    """One line naming ``target`` and the fix for a database error, or None when the error is not about that."""
    inner = getattr(error, "orig", None) or error
    message = str(inner)
    for pattern, hint in _HINTS:
        if re.search(pattern, message, re.IGNORECASE) or re.search(pattern, type(inner).__name__):
            return hint.format(url=target.shown, name=target.database_name)
    if isinstance(inner, psycopg.OperationalError):
        first = message.strip().splitlines()[0] if message.strip() else type(inner).__name__
        return f"cannot use the database at {target.shown}: {_without_secrets(first, target)}"
    return None


def _without_secrets(text: str, target: DatabaseTarget) -> str:
    password = make_url(target.url).password
    return text.replace(str(password), "***") if password else text


DATABASE_ERRORS = (psycopg.Error, sa_exc.OperationalError, sa_exc.ProgrammingError, sa_exc.InterfaceError)


def connect_check(target: DatabaseTarget) -> str:
    """Connect once; the server version on success, DatabaseProblem (one line) otherwise."""
    try:
        with psycopg.connect(conninfo(target.url), connect_timeout=CONNECT_TIMEOUT_SECONDS, autocommit=True) as conn:
            version = conn.execute("SHOW server_version").fetchone()
    except psycopg.Error as exc:
        raise DatabaseProblem(explain(exc, target) or f"cannot use the database at {target.shown}") from None
    return str(version[0]) if version else "?"


def schema_revision(target: DatabaseTarget) -> str | None:
    """The Alembic revision the database is at (None before the first migration); DatabaseProblem if unreachable."""
    try:
        with psycopg.connect(conninfo(target.url), connect_timeout=CONNECT_TIMEOUT_SECONDS, autocommit=True) as conn:
            if conn.execute("SELECT to_regclass('alembic_version')").fetchone()[0] is None:  # type: ignore[index]
                return None
            row = conn.execute("SELECT version_num FROM alembic_version LIMIT 1").fetchone()
    except psycopg.Error as exc:
        raise DatabaseProblem(explain(exc, target) or f"cannot use the database at {target.shown}") from None
    return str(row[0]) if row else None


def require_schema(target: DatabaseTarget) -> None:
    """DatabaseProblem (one line with the fix) unless the database is reachable and at the newest migration."""
    from app.db.migrate import head_revision

    current, head = schema_revision(target), head_revision()
    if current == head:
        return
    where = ("the embedded PostgreSQL" if target.embedded else "the database") + f" at {target.shown}"
    if current is None:
        raise DatabaseProblem(f"{where} has no schema yet: run `litscreen db upgrade`"
                              + ("" if not target.embedded else " (or set DATABASE_URL to your stack's database)"))
    raise DatabaseProblem(f"{where} is at migration {current}, the code needs {head}: run `litscreen db upgrade`")


def create_database(target: DatabaseTarget) -> bool:
    """Create the database named in ``target``'s URL on its server; False when it exists already."""
    name = target.database_name
    server = make_url(target.url)
    last_error: psycopg.Error | None = None
    for maintenance_db in ("postgres", "template1"):
        try:
            with psycopg.connect(conninfo(server.set(database=maintenance_db).render_as_string(hide_password=False)),
                                 connect_timeout=CONNECT_TIMEOUT_SECONDS, autocommit=True) as conn:
                if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                    return False
                try:
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                except psycopg.errors.DuplicateDatabase:
                    return False
                return True
        except psycopg.errors.InsufficientPrivilege as exc:
            raise DatabaseProblem(explain(exc, target) or str(exc)) from None
        except psycopg.Error as exc:
            last_error = exc
            if "does not exist" not in str(exc):
                break
    assert last_error is not None
    raise DatabaseProblem(explain(last_error, target) or f"cannot create {name} at {target.shown}") from None
