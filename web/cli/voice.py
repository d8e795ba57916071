"""canvass voice lines: which flow answers each of our phone numbers, or what a missed call starts."""

from __future__ import annotations

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from bot.flowlibrary import FlowLibrary
from bot.phones import InvalidPhone, PhoneParser
from ivr.models import VoiceLine
from web.context import runtime

MISSED_CALL_CHANNELS = ("sms", "whatsapp", "voice")


@click.group("voice")
def voice_group() -> None:
    """Calls: the numbers voters call and what answers them."""


@voice_group.group("lines")
def lines_group() -> None:
    """Our phone numbers that take calls."""


@lines_group.command("add")
@click.argument("number")
@click.option("--flow", "flow_name", help="The voice flow that answers calls to NUMBER.")
@click.option("--missed-call", "missed_flow", help="Make NUMBER a missed-call line that starts this flow.")
@click.option(
    "--missed-call-channel",
    type=click.Choice(MISSED_CALL_CHANNELS),
    default="sms",
    show_default=True,
    help="Where the missed-call flow talks to the voter (voice: canvass calls them back).",
)
@with_appcontext
def add_line(number: str, flow_name: str | None, missed_flow: str | None, missed_call_channel: str) -> None:
    """Map NUMBER (E.164) to a voice flow, or make it a missed-call line (--missed-call FLOW).

    A missed-call line rejects the call, so it costs the voter nothing, and starts FLOW
    by SMS (or WhatsApp) with them, or calls them back with it (--missed-call-channel
    voice). Run again to change a line.
    """
    if bool(flow_name) == bool(missed_flow):
        raise click.UsageError("give exactly one of --flow FLOW or --missed-call FLOW")
    rt = runtime()
    e164 = _e164(number)
    name = flow_name or missed_flow or ""
    channel = "voice" if flow_name else missed_call_channel
    with rt.db.session() as db:
        found = FlowLibrary(db).get(name)
        if found is None:
            raise click.BadParameter(f"no stored flow {name!r} (canvass flows load FILE first)", param_hint="FLOW")
        if channel not in found[0].channels:
            raise click.BadParameter(
                f"flow {name!r} runs on {', '.join(found[0].channels)}, not {channel}", param_hint="FLOW"
            )
        line = db.scalar(select(VoiceLine).where(VoiceLine.address == e164)) or VoiceLine(address=e164)
        line.flow_name = flow_name
        line.missed_call = bool(missed_flow)
        line.missed_call_flow = missed_flow
        line.missed_call_channel = missed_call_channel if missed_flow else None
        db.add(line)
    click.echo(f"{e164}: {_describe(line)}")


@lines_group.command("list")
@with_appcontext
def list_lines() -> None:
    """Show every line and what answers it."""
    with runtime().db.session() as db:
        lines = list(db.scalars(select(VoiceLine).order_by(VoiceLine.address)))
        if not lines:
            click.echo("no voice lines yet (canvass voice lines add NUMBER --flow FLOW)")
        for line in lines:
            click.echo(f"{line.address}  {_describe(line)}")


@lines_group.command("remove")
@click.argument("number")
@with_appcontext
def remove_line(number: str) -> None:
    """Stop taking calls on NUMBER (callers hear that the number takes no calls)."""
    rt = runtime()
    e164 = _e164(number)
    with rt.db.session() as db:
        line = db.scalar(select(VoiceLine).where(VoiceLine.address == e164))
        if line is None:
            raise click.ClickException(f"{e164} is not a voice line")
        db.delete(line)
    click.echo(f"{e164}: removed")


def _e164(number: str) -> str:
    try:
        return PhoneParser(runtime().settings.default_region).parse(number).e164
    except InvalidPhone as exc:
        raise click.BadParameter(f"{number!r}: {exc.reason}", param_hint="NUMBER") from None


def _describe(line: VoiceLine) -> str:
    if line.missed_call:
        return f"missed-call line: starts {line.missed_call_flow} by {line.missed_call_channel}"
    return f"answered by flow {line.flow_name}"


def register(cli: click.Group) -> None:
    """Add the ``voice`` group."""
    cli.add_command(voice_group)
