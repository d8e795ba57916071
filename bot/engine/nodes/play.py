"""play: play an audio file (on WhatsApp and SMS it is sent as a media message).

Example::

    nodes:
      welcome:
        play: media/welcome_{{ language }}.mp3
        next: jingle
      jingle:
        play: https://example.org/audio/jingle.ogg
        next: ask_booth

The audio is an ``http(s)://`` URL or a path relative to the media folder ending in
.mp3, .wav, .ogg or .m4a. A template is checked again once rendered: a bad result is
reported as an error and nothing is played.
"""

from __future__ import annotations

import re

from bot.engine.events import AudioPlayed
from bot.engine.nodes.base import Continue, NodeKind, Outcome, ParseContext, Run, register
from bot.engine.yamlsafe import LocDict

URL = re.compile(r"^https?://[^\s/?#]+[^\s]*$", re.IGNORECASE)
EXTENSIONS = (".mp3", ".wav", ".ogg", ".m4a")
PATH = re.compile(r"^[A-Za-z0-9_\-][A-Za-z0-9_\-./]*$")


def audio_problem(source: str) -> str | None:
    """Why ``source`` cannot be played, or None when it is a usable URL or media path."""
    if not source:
        return "there is no audio to play (the text is empty)"
    if URL.match(source):
        return None
    if "://" in source:
        return f"{source!r} is not an http(s) URL"
    if not PATH.match(source) or ".." in source.split("/") or "//" in source:
        return f"{source!r} is neither an http(s) URL nor a relative path such as media/welcome.mp3"
    if not source.lower().endswith(EXTENSIONS):
        return f"{source!r} must end in {', '.join(EXTENSIONS)}"
    return None


@register
class Play(NodeKind):
    """Play audio (or send it as media), then go on."""

    kind = "play"

    def parse(self, spec: LocDict, ctx: ParseContext) -> None:
        """Read the audio's URL or path; a plain one is checked now, a template when played."""
        self.source = (ctx.text(spec, "play", required=True) or "").strip()
        problem = audio_problem(self.source) if self.source and "{" not in self.source else None
        if problem:
            ctx.problem(spec.value_loc("play"), f"play: {problem}")

    def enter(self, run: Run) -> Outcome:
        """Emit the audio and go on."""
        source = run.render(self.id, self.source).strip()
        problem = audio_problem(source)
        if problem:
            run.error(self.id, f"play: {problem}; nothing was played")
        else:
            run.emit(AudioPlayed(node=self.id, url=source))
        return Continue()
