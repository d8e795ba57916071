"""canvass audio: upload call audio and render a flow's spoken prompts ahead of a campaign."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask.cli import with_appcontext

from bot.mediastore import MediaStore
from ivr.audio import AudioError
from ivr.prompts import PromptAudio
from ivr.tts import TtsError
from ivr.uploads import MAX_DURATION_S, MAX_UPLOAD_BYTES, accept_upload, describe
from web.cli.flows import _load
from web.context import runtime


@click.group("audio")
def audio_group() -> None:
    """Sound for calls: uploaded recordings and text-to-speech prompts (CANVASS_TTS)."""


@audio_group.command("upload")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--name",
    "given",
    metavar="NAME",
    help="A name for flows to play it by (play: media/NAME), e.g. welcome_hi.mp3; given again, it moves.",
)
@with_appcontext
def upload_cmd(file: Path, given: str | None) -> None:
    """Store an MP3, WAV, OGG or M4A file as telephone audio; print its name and URL.

    The file is checked by its content, converted to 8 kHz mono WAV at one loudness,
    and served at PUBLIC_BASE_URL/media/<name> (use the URL in a flow's play node, or
    give it a --name and write `play: media/NAME`).
    """
    settings = runtime().settings
    store = MediaStore(settings.var_dir)
    try:
        stored = accept_upload(file, store)
    except AudioError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        name = store.name_as(given, stored.name) if given else stored.name
    except ValueError as exc:
        raise click.ClickException(f"--name: {exc} (the recording was stored as {stored.name})") from None
    click.echo(name)
    click.echo(MediaStore.url(settings.public_base_url, name))
    click.echo(f"{stored.duration_s:.2f} s, 8 kHz mono WAV", err=True)


upload_cmd.help = (upload_cmd.help or "") + (
    f"\n\nLimits: {MAX_UPLOAD_BYTES // 2**20} MB, 0.2 s to {describe(MAX_DURATION_S)} of sound."
)


@audio_group.command("prerender")
@click.argument("flows", nargs=-1, required=True, metavar="FLOW...")
@click.option(
    "--language", "languages", multiple=True, metavar="CODE", help="Only these languages (default: all of the flow's)."
)
@with_appcontext
def prerender_cmd(flows: tuple[str, ...], languages: tuple[str, ...]) -> None:
    """Render every static prompt of each FLOW (a file or a stored flow's name) with CANVASS_TTS.

    Prints rendered / cached / dynamic counts per flow. Dynamic prompts (with {{ }}) are
    spoken during the call instead.
    """
    settings = runtime().settings
    audio = PromptAudio(settings.var_dir, settings.tts)
    for target in flows:
        flow = _load(target)
        todo = audio.prompts(flow, list(languages) or None)
        with click.progressbar(length=len(todo), label=f"rendering {flow.name}", file=sys.stderr) as bar:
            try:
                report = audio.prerender(flow, list(languages) or None, progress=lambda _spoken: bar.update(1))
            except TtsError as exc:
                raise click.ClickException(f"{flow.name}: {exc}") from None
        for problem in report.problems:
            click.echo(f"{flow.name}: {problem}", err=True)
        for spoken in report.dynamic:
            click.echo(f"{flow.name}: {spoken.node} ({spoken.language}) has a template; it is spoken during the call")
        click.echo(report.summary())


def register(cli: click.Group) -> None:
    """Add the commands to the CLI."""
    cli.add_command(audio_group)
