"""canvass prices: the price table campaigns are estimated and capped with."""

from __future__ import annotations

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from campaigns.models import Price
from campaigns.pricing import PriceError, money, set_price
from web.context import runtime


@click.group("prices")
def prices_group() -> None:
    """Prices per channel and country calling code (per message; per segment for SMS)."""


@prices_group.command("set")
@click.argument("channel", type=click.Choice(("whatsapp", "sms", "voice")))
@click.argument("calling_code", metavar="CODE")
@click.argument("amount")
@click.option("--currency", default="USD", show_default=True)
@with_appcontext
def set_cmd(channel: str, calling_code: str, amount: str, currency: str) -> None:
    """Set the price of one message (one SMS segment, one call) to CODE (91 for India, 1 for the US)."""
    with runtime().db.session(write=True) as db:
        try:
            price = set_price(db, channel, calling_code, amount, currency)
        except PriceError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"{channel} +{price.calling_code}: {money(price.micros)} {price.currency}")


@prices_group.command("list")
@with_appcontext
def list_cmd() -> None:
    """The price table."""
    with runtime().db.session() as db:
        rows = db.scalars(select(Price).order_by(Price.channel, Price.calling_code)).all()
    if not rows:
        click.echo("no prices yet: canvass prices set whatsapp 91 0.0107 --currency USD", err=True)
    for p in rows:
        click.echo(f"{p.channel:<9} +{p.calling_code:<4} {money(p.micros)} {p.currency}")


def register(cli: click.Group) -> None:
    """Add the commands to the CLI."""
    cli.add_command(prices_group)
