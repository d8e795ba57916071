"""What every text-to-speech engine shares: its voices, its errors, its one method."""

from __future__ import annotations

import abc
import dataclasses
from pathlib import Path

DEFAULT_LANGUAGE = "en"


class TtsError(RuntimeError):
    """An engine could not speak a text; ``retryable`` says whether trying again may work."""

    def __init__(self, engine: str, message: str, *, retryable: bool) -> None:
        super().__init__(f"{engine}: {message}" + (" (temporary; try again)" if retryable else ""))
        self.engine = engine
        self.message = message
        self.retryable = retryable


@dataclasses.dataclass(frozen=True)
class Voice:
    """The voice an engine speaks a language with.

    ``id`` is part of the prompt cache's key: two languages spoken with one voice share
    their rendered files. ``problem`` says why the voice is not the one asked for (an
    unknown language falls back to another) and is None when it is.
    """

    id: str
    language: str
    problem: str | None = None


def pick_voice(engine: str, voices: dict[str, str], language: str | None) -> Voice:
    """The voice for ``language``: its exact code, else its base (``hi`` for ``hi-IN``), else English."""
    asked = (language or DEFAULT_LANGUAGE).strip().lower().replace("_", "-")
    for code in (asked, asked.split("-")[0]):
        if code in voices:
            return Voice(id=voices[code], language=code)
    known = ", ".join(sorted(voices))
    return Voice(
        id=voices[DEFAULT_LANGUAGE],
        language=DEFAULT_LANGUAGE,
        problem=f"{engine} has no voice for language {language!r} (it knows {known}); spoken with the English voice",
    )


class TtsEngine(abc.ABC):
    """Turns a text into a sound file; subclasses are registered by ``name`` in ``ivr.tts.ENGINES``."""

    name: str = ""
    # False for an engine that leaves speaking to Twilio (<Say>): nothing is rendered or cached.
    renders = True

    @abc.abstractmethod
    def voice(self, language: str | None) -> Voice:
        """The voice that speaks ``language``; never raises (see :class:`Voice` ``problem``)."""

    @abc.abstractmethod
    def render(self, text: str, voice: Voice, workdir: Path) -> Path | None:
        """Speak ``text`` into a sound file under ``workdir`` (any format ffmpeg reads).

        Returns None when the engine does not render (Twilio speaks the text itself).

        Raises:
            TtsError: the engine failed; ``retryable`` says whether to try again.
        """
