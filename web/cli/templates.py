"""canvass templates: load template files, list them, submit for approval."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from bot.engine.errors import FlowInvalid
from bot.mediastore import MediaStore
from bot.runtime import Runtime
from campaigns import approval, templates
from campaigns.models import Template, TemplateVersion
from web.context import runtime


@click.group("templates")
def templates_group() -> None:
    """Message templates: WhatsApp templates (approved by WhatsApp) and SMS snippets."""


@templates_group.command("load")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, exists=True, path_type=Path))
@with_appcontext
def load_cmd(files: tuple[Path, ...]) -> None:
    """Create or update templates from YAML files (a changed text in use becomes a new version)."""
    rt = runtime()
    parsed = []
    failed = 0
    for path in files:
        try:
            parsed.append(templates.parse_file(path.read_text(encoding="utf-8"), str(path), base_dir=path.parent))
        except FlowInvalid as exc:
            failed += 1
            for problem in exc.problems:
                click.echo(str(problem), err=True)
    if failed:
        raise click.ClickException(f"{failed} file(s) with problems; nothing loaded")
    with rt.db.session(write=True) as db:
        for item in parsed:
            try:
                loaded = templates.store(db, item, publish=publisher(rt))
            except ValueError as exc:
                raise click.ClickException(str(exc)) from None
            versions = ", ".join(f"{lang} v{v} ({what})" for lang, v, what in loaded.versions)
            click.echo(f"template {loaded.name} {'created' if loaded.created else 'updated'}: {versions}")
            for lang, spec in item["languages"].items():
                for note in templates.notes(item["channel"], spec["body"], spec["samples"]):
                    click.echo(f"  {lang}: {note}")


def publisher(rt: Runtime) -> Callable[[Path, str], str]:
    """Header files go to the media store and are served at PUBLIC_BASE_URL/media/..."""
    store = MediaStore(rt.settings.var_dir)

    def publish(path: Path, content_type: str) -> str:
        return MediaStore.url(rt.settings.public_base_url, store.put(path, content_type))

    return publish


@templates_group.command("list")
@with_appcontext
def list_cmd() -> None:
    """Templates with each language's newest version and its approval state."""
    with runtime().db.session() as db:
        rows = db.execute(
            select(Template, TemplateVersion)
            .join(TemplateVersion, TemplateVersion.template_id == Template.id)
            .order_by(Template.name, TemplateVersion.language, TemplateVersion.version.desc())
        ).all()
    if not rows:
        click.echo("no templates yet: canvass templates load FILE.yaml", err=True)
    seen = set()
    for template, version in rows:
        if (template.id, version.language) in seen:
            continue
        seen.add((template.id, version.language))
        used = " (in use)" if version.used_at else ""
        click.echo(
            f"{template.name:<28} {template.channel:<9} {template.category:<17} {version.language:<6} "
            f"v{version.version:<3} {version.status}{used}"
        )


@templates_group.command("submit")
@click.argument("name")
@click.option("--language", help="Only this language (default: every language with a draft).")
@with_appcontext
def submit_cmd(name: str, language: str | None) -> None:
    """Submit a template's draft versions for WhatsApp's approval (the sandbox approves at once)."""
    rt = runtime()
    with rt.db.session(write=True) as db:
        try:
            done = approval.submit(db, rt.settings, name, language=language)
        except approval.ApprovalError as exc:
            raise click.ClickException(str(exc)) from None
    for lang, version, status in done:
        click.echo(f"{name} {lang} v{version}: {status}")


@templates_group.command("refresh")
@click.argument("name")
@with_appcontext
def refresh_cmd(name: str) -> None:
    """Ask Twilio for the approval state of a template's submitted versions."""
    rt = runtime()
    with rt.db.session(write=True) as db:
        try:
            done = approval.refresh(db, rt.settings, name)
        except approval.ApprovalError as exc:
            raise click.ClickException(str(exc)) from None
    for lang, version, status in done:
        click.echo(f"{name} {lang} v{version}: {status}")


def register(cli: click.Group) -> None:
    """Add the commands to the CLI."""
    cli.add_command(templates_group)
