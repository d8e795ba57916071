"""canvass campaigns: create from a spec, launch, schedule, pause, resume, abort, end, clone, status, export."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from bot.engine.errors import FlowInvalid
from campaigns import call_analytics, forecast, operations, progress, spec
from campaigns.exporters import REGISTRY as EXPORTERS
from campaigns.lifecycle import TransitionRefused
from campaigns.models import Campaign, CampaignStatus
from campaigns.planner import Plan
from web.context import runtime

S = CampaignStatus


class _Fails(click.Group):
    """Turns the campaign layer's refusals into one-line errors (exit 1)."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except (operations.CampaignError, TransitionRefused) as exc:
            raise click.ClickException(str(exc)) from None


@click.group("campaigns", cls=_Fails)
def campaigns_group() -> None:
    """Send a template to a segment at a pace; replies run the campaign's flow."""


def _plan_text(plan: Plan) -> str:
    skipped = ", ".join(f"{code} {n}" for code, n in sorted(plan.skipped.items())) or "none"
    return f"{plan.total} recipients: {plan.pending} to send in {len(plan.batches)} batch(es); skipped: {skipped}"


@campaigns_group.command("create")
@click.argument("spec_file", metavar="SPEC.yaml", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@with_appcontext
def create_cmd(spec_file: Path) -> None:
    """Create a campaign from a spec file; print its id (on a line of its own).

    The campaign is ready when nothing is missing, else a draft: what is missing is
    listed on stderr.
    """
    rt = runtime()
    try:
        fields = spec.parse(spec_file.read_text(encoding="utf-8"), str(spec_file))
    except FlowInvalid as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        raise click.ClickException(f"{spec_file}: {len(exc.problems)} problem(s); nothing created") from None
    except UnicodeDecodeError:
        raise click.ClickException(f"{spec_file}: not UTF-8 text") from None
    with rt.db.session(write=True) as db:
        campaign = operations.create(db, fields, region=rt.settings.default_region)
        click.echo(campaign.id)
        click.echo(f"campaign {campaign.id} {campaign.name!r} is {campaign.status}", err=True)
        for problem in campaign.problems:
            click.echo(f"  missing: {problem}", err=True)


@campaigns_group.command("list")
@with_appcontext
def list_cmd() -> None:
    """List campaigns, newest first."""
    with runtime().db.session() as db:
        rows = db.scalars(select(Campaign).order_by(Campaign.id.desc()).limit(200)).all()
    if not rows:
        click.echo("no campaigns yet: canvass campaigns create SPEC.yaml", err=True)
    for c in rows:
        test = " [test]" if c.is_test else ""
        click.echo(f"{c.id:>5}  {c.status:<10} {c.channel:<9} {c.name}{test}")


@campaigns_group.command("launch")
@click.argument("campaign_id", type=int)
@click.option(
    "--test", "tests", multiple=True, metavar="NUMBER", help="Send only to these test numbers (a test campaign)."
)
@with_appcontext
def launch_cmd(campaign_id: int, tests: tuple[str, ...]) -> None:
    """Launch now: plan the recipients and queue the sends (the worker sends them)."""
    rt = runtime()
    if tests:
        copy, plan = operations.test_send(rt, campaign_id, list(tests))
        click.echo(f"test campaign {copy.id} launched: {_plan_text(plan)}")
        return
    plan = operations.launch(rt, campaign_id)
    click.echo(f"campaign {campaign_id} launched: {_plan_text(plan)}")


@campaigns_group.command("estimate")
@click.argument("campaign_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print the estimate as JSON.")
@with_appcontext
def estimate_cmd(campaign_id: int, as_json: bool) -> None:
    """What sending to the audience would cost, by country and channel, against the budget (canvass prices list)."""
    rt = runtime()
    with rt.db.session() as db:
        campaign = operations.find(db, campaign_id)
        found = operations.estimate(db, campaign, region=rt.settings.default_region)
        if as_json:
            click.echo(json.dumps(found.as_dict()))
            return
        ahead = forecast.forecast(db, rt.settings, campaign)
    if found.currency is None:
        raise click.ClickException("no prices yet: canvass prices set whatsapp 91 0.0107 --currency USD")
    click.echo(f"about {found.total} {found.currency} for the campaign's audience")
    for code, (voters, cost) in sorted(found.by_code.items()):
        click.echo(f"  +{code}: {voters} voter(s), {cost} {found.currency}")
    if found.unpriced:
        click.echo(f"  {found.unpriced} voter(s) in countries without a price (canvass prices set ...)")
    if len(ahead.by_channel) > 1 or any(line.cap is not None for line in ahead.by_channel):
        for line in ahead.by_channel:
            cost = f"up to {line.cost} if every voter needed the fallback" if line.fallback else str(line.cost)
            click.echo(f"  {line.channel}: {cost} ({'no cap' if line.cap is None else f'cap {line.cap}'})")
    for warning in ahead.warnings:
        click.echo(f"  warning: {warning}")


@campaigns_group.command("schedule")
@click.argument("campaign_id", type=int)
@click.argument("at", metavar="AT")
@with_appcontext
def schedule_cmd(campaign_id: int, at: str) -> None:
    """Launch at AT (ISO-8601 with its offset, e.g. 2026-12-01T09:00:00+05:30)."""
    try:
        when = spec.parse_when(at)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="AT") from None
    campaign = operations.schedule(runtime(), campaign_id, when)
    click.echo(f"campaign {campaign.id} scheduled for {when.strftime('%Y-%m-%dT%H:%M:%SZ')}")


def _move(name: str, target: CampaignStatus, doc: str) -> None:
    @campaigns_group.command(name, help=doc)
    @click.argument("campaign_id", type=int)
    @with_appcontext
    def command(campaign_id: int) -> None:
        rt = runtime()
        if target in (S.ABORTED, S.ENDED):
            campaign = operations.stop(rt, campaign_id, target)
        elif target == S.ACTIVE:
            plan = operations.resume(rt, campaign_id)
            click.echo(f"campaign {campaign_id} resumed: {plan.pending} still to send")
            return
        else:
            campaign = operations.simple_move(rt, campaign_id, target)
        click.echo(f"campaign {campaign.id} is {campaign.status}")


_move("unschedule", S.READY, "Take a scheduled campaign back to ready.")
_move("pause", S.PAUSED, "Pause sending (within a second); resume carries on where it stopped.")
_move("resume", S.ACTIVE, "Resume a paused campaign.")
_move("abort", S.ABORTED, "Stop for good: nothing more is sent, its voters are released.")
_move("end", S.ENDED, "End a completed campaign: its voters are released for other campaigns.")


@campaigns_group.command("clone")
@click.argument("campaign_id", type=int)
@with_appcontext
def clone_cmd(campaign_id: int) -> None:
    """Copy a campaign's settings into a new one; print its id."""
    copy = operations.clone(runtime(), campaign_id)
    click.echo(copy.id)
    click.echo(f"campaign {copy.id} {copy.name!r} is {copy.status}", err=True)


@campaigns_group.command("delete")
@click.argument("campaign_id", type=int)
@with_appcontext
def delete_cmd(campaign_id: int) -> None:
    """Delete a draft."""
    operations.remove(runtime(), campaign_id)
    click.echo(f"campaign {campaign_id} deleted")


@campaigns_group.command("status")
@click.argument("campaign_id", type=int)
@click.option("--watch", is_flag=True, help="Redraw every second until the campaign stops sending (Ctrl-C to leave).")
@click.option("--json", "as_json", is_flag=True, help="Print the numbers as JSON.")
@with_appcontext
def status_cmd(campaign_id: int, watch: bool, as_json: bool) -> None:
    """Progress: pending / sent / failed / skipped, rates, spend per channel and why some were not sent."""
    rt = runtime()
    with rt.db.session(write=True) as db:
        campaign = operations.find(db, campaign_id)
        if campaign.status in (S.DRAFT, S.READY):
            # A template approved or a flow loaded since: say so now.
            operations.refresh(db, campaign, region=rt.settings.default_region)
    while True:
        with rt.db.session() as db:
            campaign = operations.find(db, campaign_id)
            numbers = progress.measure(db, campaign)
            name, problems = campaign.name, list(campaign.problems or [])
            calls = call_analytics.measure(db, campaign) if campaign.channel == "voice" else None
            eta = progress.eta_for(db, rt.settings, campaign)
            if eta.warning():
                problems.append(f"warning: {eta.warning()}")
            elif eta.remaining and eta.finishes_at is not None:
                problems.append(f"{eta.remaining} to send; done by {eta.finishes_at.strftime('%Y-%m-%dT%H:%M:%SZ')}")
        if as_json:
            extra = {"calls": calls.to_dict()} if calls is not None else {}
            click.echo(json.dumps({**numbers.as_dict(), "eta": progress.eta_json(eta), **extra}))
        elif watch and sys.stdout.isatty():
            click.echo(f"\r\x1b[2K{numbers.status:<9} {progress.bar(numbers)}", nl=False)
        else:
            _print_status(name, numbers, problems, calls)
        if not watch or numbers.status not in (S.ACTIVE, S.SCHEDULED):
            break
        time.sleep(1)
    if watch and sys.stdout.isatty() and not as_json:
        click.echo()
        _print_status(name, numbers, problems, calls)


def _print_status(
    name: str, numbers: progress.Progress, problems: list[str], calls: call_analytics.CallStats | None = None
) -> None:
    data = numbers.as_dict()
    click.echo(f"campaign {numbers.campaign_id} {name!r}: {numbers.status}")
    for problem in problems:
        click.echo(f"  {problem}" if problem.startswith(("warning:", tuple("0123456789"))) else f"  missing: {problem}")
    click.echo("  " + progress.bar(numbers))
    rates = data["rates"]
    if calls is not None:
        average = f"{calls.average_duration_s:.0f} s" if calls.average_duration_s is not None else "-"
        click.echo(
            f"  calls {calls.calls} to {calls.voters_called} voters: answered {calls.answer_rate:.1%}, "
            f"flow completed {calls.completion_rate:.1%}, machines {calls.machines}, average {average}"
        )
        for q in calls.questions:
            click.echo(f"    {q.node}: heard {q.heard}, answered {q.answered}, hung up there {q.hung_up}")
    else:
        click.echo(f"  received {rates['received']:.1%}, read {rates['read']:.1%}, replied {rates['replied']:.1%}")
    spend = data["spend"]
    if spend["currency"]:
        budget = f" of a budget of {spend['budget']}" if spend["budget"] else ""
        click.echo(f"  spent {spend['spent']} {spend['currency']}{budget}")
        channels = spend["by_channel"]
        if len(channels) > 1 or any(line["budget"] for line in channels.values()):
            shown = [
                f"{ch} {line['spent']}" + (f" of {line['budget']}" if line["budget"] else "")
                for ch, line in channels.items()
            ]
            click.echo("    by channel: " + ", ".join(shown))
    for kind, counts in data["not_sent"].items():
        if counts:
            click.echo(f"  {kind}: " + ", ".join(f"{code} {n}" for code, n in sorted(counts.items())))


@campaigns_group.command("export")
@click.argument("campaign_id", type=int)
@click.option("-o", "output", type=click.Path(dir_okay=False, path_type=Path), help="File to write (default: stdout).")
@click.option("--format", "fmt", type=click.Choice(sorted(EXPORTERS)), default="csv", show_default=True)
@with_appcontext
def export_cmd(campaign_id: int, output: Path | None, fmt: str) -> None:
    """Per-voter funnel CSV (one row per recipient), or a FLOIP Flow Results package (zip)."""
    rt = runtime()
    exporter_class = EXPORTERS[fmt]
    if exporter_class.binary and output is None and sys.stdout.isatty():
        raise click.UsageError(f"--format {fmt} writes a zip: give -o FILE")
    with rt.db.session() as db:
        exporter = exporter_class(db, operations.find(db, campaign_id))
        mode = "wb" if exporter_class.binary else "w"
        if output is None:
            stream = sys.stdout.buffer if exporter_class.binary else sys.stdout
            n = exporter.write(stream)
        else:
            with output.open(mode, **({} if exporter_class.binary else {"encoding": "utf-8", "newline": ""})) as out:
                n = exporter.write(out)
    click.echo(f"{n} row(s) written{f' to {output}' if output else ''}", err=True)


def register(cli: click.Group) -> None:
    """Add the commands to the CLI."""
    cli.add_command(campaigns_group)
