"""canvass contacts: import, add, export."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import click
from flask.cli import with_appcontext

from bot.contact_import import ImportFileError, import_file
from bot.contacts import MAX_MANUAL, add_numbers, parse_tag, write_export
from bot.phones import PhoneParser
from web.context import runtime


def _tags(values: tuple[str, ...]) -> list:  # type: ignore[type-arg]
    try:
        return [parse_tag(v) for v in values]
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--tag") from None


@click.group("contacts")
def contacts_group() -> None:
    """Import, add and export contacts."""


@contacts_group.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--tag", "tags", multiple=True, metavar="T", help="Tag every imported contact (name or name=value). Repeatable."
)
@click.option("--encoding", default="auto", show_default=True, help="File encoding; auto = UTF-8, else Windows-1252.")
@click.option(
    "--rejects",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write rejected rows (default: FILE.rejects.csv).",
)
@with_appcontext
def import_cmd(file: Path, tags: tuple[str, ...], encoding: str, rejects: Path | None) -> None:
    """Import contacts from a CSV (with a header) or a TXT list of numbers.

    CSV columns: phone (required; also number, mobile, msisdn), name, language, timezone,
    tags (a;b), valued_tags (ward=12;booth=7), consent (opted_in / opted_out); any other
    column becomes a valued tag named after it. Rows upsert on the phone number; the
    whole file is one transaction, so a failure imports nothing.
    """
    rt = runtime()
    parsed = _tags(tags)
    if not file.exists():
        raise click.BadParameter(f"{file} does not exist", param_hint="FILE")
    size = file.stat().st_size
    # A progress bar on a terminal; nothing in logs and pipes.
    bar = (
        click.progressbar(length=size, label=f"importing {file.name}", file=sys.stderr, show_eta=True)
        if sys.stderr.isatty()
        else contextlib.nullcontext(None)
    )
    with bar as shown:
        last = [0]

        def progress(done: int) -> None:
            if shown is not None:
                shown.update(done - last[0])
            last[0] = done

        try:
            report = import_file(
                rt.db,
                file,
                region=rt.settings.default_region,
                tags=parsed,
                encoding=encoding,
                rejects_path=rejects,
                progress=progress,
            )
        except ImportFileError as exc:
            raise click.ClickException(f"{exc} (nothing was imported)") from None
        progress(size)
    rate = report.rows / report.seconds if report.seconds else 0
    click.echo(
        f"imported {report.imported:,}, updated {report.updated:,}, rejected {report.rejected:,} "
        f"({report.rows:,} rows in {report.seconds:.1f} s, {rate:,.0f} rows/s; read as {report.encoding})"
    )
    if report.rejects_path:
        click.echo(f"rejected rows, with line and reason: {report.rejects_path}")


@contacts_group.command("add")
@click.argument("numbers", nargs=-1, required=True)
@click.option("--tag", "tags", multiple=True, metavar="T", help="Tag the contacts (name or name=value). Repeatable.")
@with_appcontext
def add_cmd(numbers: tuple[str, ...], tags: tuple[str, ...]) -> None:
    """Add up to 50 numbers typed by hand (any format; CANVASS_DEFAULT_REGION applies)."""
    if len(numbers) > MAX_MANUAL:
        raise click.BadParameter(
            f"at most {MAX_MANUAL} numbers, got {len(numbers)}; use contacts import", param_hint="NUMBER"
        )
    rt = runtime()
    parsed = _tags(tags)
    with rt.db.session() as session:
        result = add_numbers(session, PhoneParser(rt.settings.default_region), numbers, parsed)
    for contact in result.created:
        click.echo(f"added   {contact.phone}")
    for contact in result.updated:
        click.echo(f"tagged  {contact.phone} (already a contact)")
    for text, reason in result.rejected:
        click.echo(f"rejected {text!r}: {reason}", err=True)
    if result.rejected and not (result.created or result.updated):
        sys.exit(1)


@contacts_group.command("export")
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="File to write (default: standard output)."
)
@with_appcontext
def export_cmd(output: Path | None) -> None:
    """Export every contact as CSV: phone (E.164), name, language, timezone, tags, valued_tags, consent."""
    rt = runtime()
    with rt.db.session() as session:
        if output is None:
            write_export(session, sys.stdout)
            return
        tmp = output.with_name(output.name + ".partial")
        with tmp.open("w", encoding="utf-8", newline="") as fh:
            n = write_export(session, fh)
        tmp.replace(output)
    click.echo(f"exported {n:,} contacts to {output}", err=True)


def register(cli: click.Group) -> None:
    """Add the commands to the CLI."""
    cli.add_command(contacts_group)
