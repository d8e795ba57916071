"""The ``canvass`` command: a Flask CLI group over the app factory."""

from __future__ import annotations

import click
from flask.cli import FlaskGroup

from bot.settings import SettingsError


def _factory():  # type: ignore[no-untyped-def]
    from web import create_app

    try:
        return create_app()
    except SettingsError as exc:
        raise click.ClickException(f"configuration: {exc}") from None


@click.group(cls=FlaskGroup, create_app=_factory, add_version_option=False)
def cli() -> None:
    """canvass: reach voters on WhatsApp, SMS and calls, and talk with each of them.

    Settings come from environment variables (and .env): DATABASE_URL, REDIS_URL,
    SECRET_KEY, PUBLIC_BASE_URL, CANVASS_PROVIDER, CANVASS_DEFAULT_REGION, ... (see README).
    """


def main() -> None:
    """Console-script entry point."""
    cli.main(prog_name="canvass")


# The commands live one group per module; they import this module's `cli` only here,
# after it exists.
from web.cli import (  # noqa: E402
    audio,
    campaigns,
    contacts,
    db,
    demo,
    flows,
    messaging,
    prices,
    processes,
    templates,
    users,
    voice,
)

for _module in (db, contacts, users, flows, messaging, templates, campaigns, prices, processes, demo, audio, voice):
    _module.register(cli)
