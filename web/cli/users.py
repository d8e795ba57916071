"""canvass users: accounts and API tokens."""

from __future__ import annotations

import secrets
import sys

import click
from flask.cli import with_appcontext

from web.context import runtime
from web.models import Role
from web.users import UserError, create_user, find_user, issue_token, set_password


@click.group("users")
def users_group() -> None:
    """Console users and API tokens."""


@users_group.command("create")
@click.argument("email")
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True, help="What the user may do.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (first line).")
@with_appcontext
def create(email: str, role: str, password_stdin: bool) -> None:
    """Create a user. Without --password-stdin a strong password is generated and printed once."""
    generated = False
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = secrets.token_urlsafe(15)
        generated = True
    try:
        with runtime().db.session() as session:
            user = create_user(session, email, role, password)
            email = user.email
    except UserError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"created {email} ({role})")
    if generated:
        click.echo(f"password: {password}  (shown once; keep it safe)")


@users_group.command("token")
@click.argument("email")
@with_appcontext
def token(email: str) -> None:
    """Print a new Bearer token for the REST API (shown once)."""
    with runtime().db.session() as session:
        user = find_user(session, email)
        if user is None or not user.active:
            raise click.ClickException(f"no active user {email.strip().lower()!r}")
        click.echo(issue_token(session, user))


@users_group.command("password")
@click.argument("email")
@click.option("--password-stdin", is_flag=True, help="Read the new password from standard input.")
@with_appcontext
def password_cmd(email: str, password_stdin: bool) -> None:
    """Set a new password (generated and printed once unless --password-stdin); signs the user out everywhere."""
    password = sys.stdin.readline().rstrip("\r\n") if password_stdin else secrets.token_urlsafe(15)
    with runtime().db.session() as session:
        user = find_user(session, email)
        if user is None:
            raise click.ClickException(f"no user {email.strip().lower()!r}")
        try:
            set_password(user, password)
        except UserError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"password changed for {user.email}")
    if not password_stdin:
        click.echo(f"password: {password}  (shown once; keep it safe)")


def register(cli: click.Group) -> None:
    """Add the commands to the CLI."""
    cli.add_command(users_group)
