"""The ``litscreen`` command line: a Flask CLI group bound to ``create_app``."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar, cast

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext

from app.config import ConfigError, Settings, load_settings
from app.extensions import db

F = TypeVar("F", bound=Callable[..., Any])


def _settings() -> Settings:
    """The validated settings; a bad variable is a usage error naming it, not a traceback."""
    try:
        return load_settings()
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None


def _create_app() -> Flask:
    from app import create_app

    _settings()
    return create_app()


class LitscreenGroup(FlaskGroup):
    """FlaskGroup that shows and accepts only litscreen's commands and options (no ``run``, ``shell``, ``routes``,
    ``--app``, ``--env-file``, ``--debug``), so ``--help`` never builds an app or starts a database, and that turns
    a database the command cannot use into one line naming the URL (password redacted) and the fix."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        flask_options = {"env_file", "app", "debug", "version"}
        self.params = [param for param in self.params if param.name not in flask_options]

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return click.Group.parse_args(self, ctx, args)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return click.Group.list_commands(self, ctx)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        return click.Group.get_command(self, ctx, name)

    def invoke(self, ctx: click.Context) -> Any:
        from app.services.doctor.database import DATABASE_ERRORS, DatabaseProblem, explain

        try:
            return super().invoke(ctx)
        except DatabaseProblem as exc:
            raise click.ClickException(str(exc)) from None
        except DATABASE_ERRORS as exc:
            line = explain(exc, _current_target())
            if line is None:
                raise
            raise click.ClickException(line) from None


def _current_target() -> Any:
    """The database the command used, for error lines (never starts the embedded server)."""
    from pathlib import Path

    from app.db.url import normalise_database_url
    from app.services.doctor.database import DatabaseTarget, embedded_instance_dir

    database = _settings().database
    if database.url:
        return DatabaseTarget(normalise_database_url(database.url), embedded=False)
    instance: Path = embedded_instance_dir(database)
    return DatabaseTarget(f"postgresql+psycopg:///litscreen?host={instance / 'pgdata'}", embedded=True,
                          instance_dir=instance)


def needs_schema(function: F) -> F:
    """For commands that need an existing, migrated stack (users, tokens): check the database first.

    Without DATABASE_URL they use the embedded PostgreSQL only if one exists under the instance directory, and say
    so on stderr; a database without the schema (or behind) is one line saying to run ``litscreen db upgrade``.
    """

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from app.services.doctor.database import database_target, require_schema

        target = database_target(_settings().database, start_embedded=False)
        if target.embedded:
            click.echo(f"note: using {target.shown}", err=True)
        require_schema(target)
        return function(*args, **kwargs)

    return cast(F, wrapper)


@click.group(cls=LitscreenGroup, create_app=_create_app, add_default_commands=False, add_version_option=False,
             load_dotenv=False, set_debug_flag=False, context_settings={"auto_envvar_prefix": None})
def main() -> None:
    """litscreen: dual-LLM screening of bibliographic records for systematic reviews."""


@main.group("db")
def db_group() -> None:
    """Database schema and the embedded PostgreSQL."""


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@with_appcontext
def db_upgrade(revision: str) -> None:
    """Apply migrations to DATABASE_DIRECT_URL / DATABASE_URL (or the embedded PostgreSQL)."""
    from app.db.migrate import upgrade

    upgrade(current_app.config["SQLALCHEMY_DIRECT_URI"], revision)
    click.echo(f"database at {revision}", err=True)


@db_group.command("create", with_appcontext=False)
def db_create() -> None:
    """Create the database named in DATABASE_URL on its server (nothing to do when it exists)."""
    from app.services.doctor.database import create_database, database_target

    database = _settings().database
    if not database.url:
        target = database_target(database)  # the embedded server creates its database on first use
        click.echo(f"database at {target.shown} exists", err=True)
        return
    target = database_target(database)
    created = create_database(target)
    click.echo(f"database {target.database_name} {'created' if created else 'exists already'} at {target.shown}; "
               "next: `litscreen db upgrade`", err=True)


@db_group.command("downgrade")
@click.option("--revision", default="base", show_default=True)
@with_appcontext
def db_downgrade(revision: str) -> None:
    """Revert migrations (default: everything)."""
    from app.db.migrate import downgrade

    downgrade(current_app.config["SQLALCHEMY_DIRECT_URI"], revision)
    click.echo(f"database at {revision}", err=True)


@db_group.command("url", with_appcontext=False)
def db_url() -> None:
    """Print the database URL every process uses (starts the embedded PostgreSQL if needed)."""
    from app.db.url import resolve_database_url

    database = _settings().database
    click.echo(resolve_database_url(database.url, database.instance_dir))


@db_group.command("stop", with_appcontext=False)
def db_stop() -> None:
    """Stop the embedded PostgreSQL under instance/ (whatever other processes still hold it)."""
    from app.db.embedded import stop_embedded

    click.echo("stopped" if stop_embedded() else "not running", err=True)


@main.command("doctor", with_appcontext=False)
@click.option("--timeout", type=click.FloatRange(0.1), default=None,
              help="Seconds to wait for worker replies and each LLM provider [default: DOCTOR_TIMEOUT_SECONDS, 3].")
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON instead of lines.")
def doctor(timeout: float | None, as_json: bool) -> None:
    """Check the stack and explain each finding (✓, or ✗ with the fix); exit status 0 only when all pass.

    Database (which URL, embedded or not), schema, broker tables, workers and their queues, beat, queue depth, LLM
    providers (a tiny request each; keys never shown), connections against max_connections, PgBouncer settings.
    """
    import json
    import logging

    from app.services.doctor import diagnose

    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per check is the report

    checks = diagnose(_settings(), lambda: _create_app().extensions["celery"], timeout)
    if as_json:
        click.echo(json.dumps([check.as_dict() for check in checks], indent=2))
    else:
        width = max(len(check.name) for check in checks)
        for check in checks:
            mark = click.style("✓", fg="green") if check.ok else click.style("✗", fg="red")
            click.echo(f"{mark} {check.name:<{width}}  {check.detail}")
            if check.fix:
                click.echo(f"  {'':<{width}}  fix: {check.fix}")
    failed = [check for check in checks if not check.ok]
    if not as_json:
        click.echo(f"{len(checks) - len(failed)} of {len(checks)} checks pass", err=True)
    sys.exit(1 if failed else 0)


@main.group("users")
def users_group() -> None:
    """Manage users."""


@users_group.command("create", with_appcontext=False)
@click.argument("name")
@click.option("--admin", is_flag=True, help="May manage the shared cache and see fleet-wide figures.")
@needs_schema
@with_appcontext
def users_create(name: str, admin: bool) -> None:
    """Create a user; prints the user id."""
    from app.services.users import UserExistsError, create_user

    try:
        user = create_user(db.session(), name, is_admin=admin)
    except (UserExistsError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(user.id)


@main.group("tokens")
def tokens_group() -> None:
    """Manage API tokens."""


@tokens_group.command("create", with_appcontext=False)
@click.argument("name")
@click.option("--expires-in", "expires_in", type=click.FloatRange(min=0, min_open=True), default=None,
              metavar="DAYS", help="The token stops working after DAYS days (default: never).")
@needs_schema
@with_appcontext
def tokens_create(name: str, expires_in: float | None) -> None:
    """Create an API token for user NAME; prints only the token."""
    from app.services.users import UnknownUserError, create_token

    try:
        token = create_token(db.session(), name, expires_in)
    except (UnknownUserError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    sys.stdout.write(token + "\n")


def _when(value: object) -> str:
    return value.isoformat(timespec="seconds") if value is not None else "-"  # type: ignore[attr-defined]


@tokens_group.command("list", with_appcontext=False)
@click.argument("name")
@needs_schema
@with_appcontext
def tokens_list(name: str) -> None:
    """List user NAME's tokens: id, prefix, created, expires, last used, revoked (never the secret)."""
    from app.services.users import UnknownUserError, list_tokens

    try:
        tokens = list_tokens(db.session(), name)
    except UnknownUserError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo("id\tprefix\tcreated\texpires\tlast_used\trevoked")
    for token in tokens:
        click.echo("\t".join([str(token.id), token.prefix + "…", _when(token.created_at), _when(token.expires_at),
                              _when(token.last_used_at), _when(token.revoked_at)]))


@tokens_group.command("revoke", with_appcontext=False)
@click.argument("token_id", type=int)
@needs_schema
@with_appcontext
def tokens_revoke(token_id: int) -> None:
    """Revoke token TOKEN_ID (see ``tokens list``): requests with it get 401 from now on."""
    from app.services.users import UnknownTokenError, revoke_token

    try:
        token = revoke_token(db.session(), token_id)
    except UnknownTokenError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"token {token.id} revoked at {_when(token.revoked_at)}", err=True)


# Command modules of later features: each defines click commands and a ``register(main)`` function.
COMMAND_MODULES: list[str] = ["app.llm.cli", "app.terminal.commands", "app.demo.cli"]

for _module_name in COMMAND_MODULES:
    import importlib

    importlib.import_module(_module_name).register(main)


if __name__ == "__main__":
    main()
