"""canvass senders / canvass sandbox: the numbers we send from, and replying as a voter."""

from __future__ import annotations

import sys

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from bot import senders
from bot.models import Sender
from bot.phones import InvalidPhone, PhoneParser
from bot.senders import CHANNELS, PROVIDERS
from web.context import runtime


@click.group("senders")
def senders_group() -> None:
    """Numbers and WhatsApp senders canvass sends from."""


@senders_group.command("add")
@click.argument("address")
@click.option("--channel", type=click.Choice(CHANNELS), required=True)
@click.option("--provider", type=click.Choice(PROVIDERS), default=None, help="Default: CANVASS_PROVIDER.")
@click.option("--name", help="A label for the console.")
@click.option("--rate", type=click.FloatRange(0.01, 1000), default=1.0, show_default=True, help="Messages per second.")
@click.option("--messaging-service", "messaging_service", help="Twilio Messaging Service SID (MG...).")
@with_appcontext
def add_sender(
    address: str, channel: str, provider: str | None, name: str | None, rate: float, messaging_service: str | None
) -> None:
    """Add a sender: a phone number (E.164) for SMS, WhatsApp or calls."""
    rt = runtime()
    with rt.db.session() as db:
        try:
            sender = senders.add_sender(
                db,
                address=address,
                channel=channel,
                provider=provider or rt.settings.provider,
                region=rt.settings.default_region,
                name=name,
                rate=rate,
                messaging_service=messaging_service,
            )
        except senders.SenderError as exc:
            hint = {"address": "ADDRESS", "messaging_service": "--messaging-service"}.get(exc.field)
            if hint:
                raise click.BadParameter(exc.message, param_hint=hint) from None
            raise click.ClickException(str(exc)) from None
        click.echo(f"sender {sender.id}: {channel} {sender.address} via {sender.provider}")


@senders_group.command("list")
@with_appcontext
def list_senders() -> None:
    """List senders with their channel, provider, rate and health."""
    with runtime().db.session() as db:
        rows = db.scalars(select(Sender).order_by(Sender.channel, Sender.id)).all()
    if not rows:
        click.echo("no senders yet: canvass senders add +919999900001 --channel whatsapp", err=True)
    for s in rows:
        health = "healthy" if s.healthy else f"UNHEALTHY ({s.health_note or 'no reason given'})"
        click.echo(
            f"{s.id:>4}  {s.channel:<9} {s.address:<16} {s.provider:<8} {s.rate_per_s:g}/s  {health}  {s.name or ''}"
        )


@click.group("sandbox")
def sandbox_group() -> None:
    """Talk to canvass as a voter, without Twilio."""


@sandbox_group.command("reply")
@click.argument("phone")
@click.argument("text")
@click.option("--channel", type=click.Choice(("whatsapp", "sms")), default="whatsapp", show_default=True)
@with_appcontext
def sandbox_reply(phone: str, text: str, channel: str) -> None:
    """Send TEXT as the voter PHONE to the sandbox sender; print the bot's answer."""
    rt = runtime()
    try:
        voter = PhoneParser(rt.settings.default_region).parse(phone).e164
    except InvalidPhone as exc:
        raise click.BadParameter(f"{phone!r}: {exc.reason}", param_hint="PHONE") from None
    with rt.db.session() as db:
        sender = db.scalar(
            select(Sender)
            .where(Sender.provider == "sandbox", Sender.channel == channel, Sender.healthy.is_(True))
            .order_by(Sender.id)
        )
        if sender is None:
            raise click.ClickException(
                f"no sandbox {channel} sender: canvass senders add +919999900001 --channel {channel} --provider sandbox"
            )
        sender_id, sender_address = sender.id, sender.address
    from bot.channels import REGISTRY
    from bot.conversations import receive

    inbound = REGISTRY["sandbox"]().parse_inbound(
        {"From": voter, "To": sender_address, "Body": text, "Channel": channel}
    )
    routed, replies = receive(rt, inbound, sender_id)
    click.echo(f"voter {voter}: {text}   [{routed.outcome}]")
    for reply in replies:
        keys = "  [" + " | ".join(f"{c['key']}: {c['label']}" for c in reply.choices) + "]" if reply.choices else ""
        click.echo(f"bot: {reply.body or ''}{keys}")
    if replies:
        click.echo(f"({len(replies)} message(s) queued; the worker sends them)", err=True)
    if routed.outcome == "stored":
        click.echo(
            "(no flow answered: load one with a keyword trigger or default: true — canvass flows load)", err=True
        )
    sys.exit(0)


def register(cli: click.Group) -> None:
    """Add the commands to the CLI."""
    cli.add_command(senders_group)
    cli.add_command(sandbox_group)
