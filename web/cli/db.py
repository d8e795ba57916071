"""canvass db: migrations."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from web.context import runtime


@click.group("db")
def db_group() -> None:
    """Create and migrate the database."""


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Target revision.")
@with_appcontext
def upgrade(revision: str) -> None:
    """Apply migrations (creates the tables on an empty database)."""
    from web.schema import current_revision, upgrade_database

    db = runtime().db
    before = current_revision(db)
    upgrade_database(db, revision)
    after = current_revision(db)
    if before == after:
        click.echo(f"database is up to date (revision {after})")
    else:
        click.echo(f"database migrated: {before or 'empty'} -> {after}")


@db_group.command("current")
@with_appcontext
def current() -> None:
    """Show the database's revision and the newest one."""
    from web.schema import current_revision, head_revision

    click.echo(f"database: {current_revision(runtime().db) or 'empty'}; newest: {head_revision()}")


def register(cli: click.Group) -> None:
    """Add the commands to the CLI."""
    cli.add_command(db_group)
