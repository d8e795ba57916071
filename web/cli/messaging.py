"""canvass senders / canvass sandbox: the numbers we send from, and replying as a voter."""

from __future__ import annotations

import sys

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from bot.models import Sender
from bot.phones import InvalidPhone, PhoneParser
from web.context import runtime

CHANNELS = ("whatsapp", "sms", "voice")
PROVIDERS = ("sandbox", "twilio")


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
    try:
        e164 = PhoneParser(rt.settings.default_region).parse(address).e164
    except InvalidPhone as exc:
        raise click.BadParameter(f"{address!r}: {exc.reason}", param_hint="ADDRESS") from None
    if messaging_service and not (messaging_service.startswith("MG") and len(messaging_service) == 34):
        raise click.BadParameter(
            "a Messaging Service SID is MG followed by 32 characters", param_hint="--messaging-service"
        )
    with rt.db.session() as db:
        if db.scalar(select(Sender.id).where(Sender.channel == channel, Sender.address == e164)):
            raise click.ClickException(f"{e164} is already a {channel} sender")
        sender = Sender(
            provider=provider or rt.settings.provider,
            channel=channel,
            address=e164,
            name=name,
            rate_per_s=rate,
            messaging_service_sid=messaging_service,
            healthy=True,
        )
        db.add(sender)
        db.flush()
        click.echo(f"sender {sender.id}: {channel} {e164} via {sender.provider}")


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
