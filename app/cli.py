"""The ``litscreen`` command line: a Flask CLI group bound to ``create_app``."""

from __future__ import annotations

import sys

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext

from app.config import ConfigError, Settings, load_settings
from app.extensions import db


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
    """FlaskGroup that lists only litscreen's commands, so ``--help`` never builds an app or starts a database."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return click.Group.list_commands(self, ctx)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        return click.Group.get_command(self, ctx, name)


@click.group(cls=LitscreenGroup, create_app=_create_app, add_default_commands=False, add_version_option=False,
             load_dotenv=False, set_debug_flag=False)
def main() -> None:
    """litscreen: dual-LLM screening of bibliographic records for systematic reviews."""


@main.group("db")
def db_group() -> None:
    """Database schema and the embedded PostgreSQL."""


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@with_appcontext
def db_upgrade(revision: str) -> None:
    """Apply migrations to DATABASE_URL (or the embedded PostgreSQL)."""
    from app.db.migrate import upgrade

    upgrade(current_app.config["SQLALCHEMY_DATABASE_URI"], revision)
    click.echo(f"database at {revision}", err=True)


@db_group.command("downgrade")
@click.option("--revision", default="base", show_default=True)
@with_appcontext
def db_downgrade(revision: str) -> None:
    """Revert migrations (default: everything)."""
    from app.db.migrate import downgrade

    downgrade(current_app.config["SQLALCHEMY_DATABASE_URI"], revision)
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


@main.group("users")
def users_group() -> None:
    """Manage users."""


@users_group.command("create")
@click.argument("name")
@with_appcontext
def users_create(name: str) -> None:
    """Create a user; prints the user id."""
    from app.services.users import UserExistsError, create_user

    try:
        user = create_user(db.session(), name)
    except (UserExistsError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(user.id)


@main.group("tokens")
def tokens_group() -> None:
    """Manage API tokens."""


@tokens_group.command("create")
@click.argument("name")
@with_appcontext
def tokens_create(name: str) -> None:
    """Create an API token for user NAME; prints only the token."""
    from app.services.users import UnknownUserError, create_token

    try:
        token = create_token(db.session(), name)
    except UnknownUserError as exc:
        raise click.ClickException(str(exc)) from exc
    sys.stdout.write(token + "\n")


# Command modules of later features: each defines click commands and a ``register(main)`` function.
COMMAND_MODULES: list[str] = ["app.llm.cli", "app.terminal.commands", "app.demo.cli"]

for _module_name in COMMAND_MODULES:
    import importlib

    importlib.import_module(_module_name).register(main)


if __name__ == "__main__":
    main()
